import { InvalidOptionError } from '../errors.js';
import { parseIpv4, formatIpv4 } from './ipv4.js';

/** A published port: traffic to `hostIp:hostPort` goes to the container's `containerPort`. */
export interface PortMapping {
  /** The host port; 0 until the kernel chose a free one (`'80'`, `'0:80'`, `'127.0.0.1::80'`). */
  readonly hostPort: number;
  /** The container port. */
  readonly containerPort: number;
  /** `tcp` or `udp`. */
  readonly protocol: 'tcp' | 'udp';
  /** Only this host address; undefined means every local address, 127.0.0.1 included. */
  readonly hostIp: string | undefined;
}

/**
 * A port mapping as text (`8080:80`, `8080:80/udp`, `127.0.0.1:8080:80`) or as an object.
 * Without a host port (`80`, `0:80`, `127.0.0.1::80`) the kernel picks a free one when the
 * container is attached, like `docker run -p 80`.
 */
export type PortSpec = string | PortMapping;

function port(text: string, what: string, spec: string, zero = false): number {
  if (zero && (text === '' || text === '0')) return 0;
  const n = Number(text);
  if (!/^\d{1,5}$/.test(text) || n < 1 || n > 65535) throw new InvalidOptionError('ports', `"${spec}": ${what} "${text}" is not a port number 1-65535`);
  return n;
}

/**
 * Parses Docker's `-p` syntax: `[[hostIp:]hostPort:]containerPort[/tcp|udp]`; a missing,
 * empty or 0 host port (`80`, `0:80`, `127.0.0.1::80`) gives `hostPort: 0`, "the kernel chooses".
 * @example `parsePortMapping('127.0.0.1:8080:80/tcp')`
 */
export function parsePortMapping(spec: PortSpec): PortMapping {
  if (typeof spec !== 'string') {
    return parsePortMapping(`${spec.hostIp ? `${spec.hostIp}:` : ''}${spec.hostPort}:${spec.containerPort}/${spec.protocol}`);
  }
  const [addr = '', proto = 'tcp', ...extra] = spec.split('/');
  if (extra.length || (proto !== 'tcp' && proto !== 'udp')) throw new InvalidOptionError('ports', `"${spec}": the protocol must be tcp or udp`);
  const parts = addr.split(':');
  if (parts.length > 3) throw new InvalidOptionError('ports', `"${spec}" is not [[hostIp:]hostPort:]containerPort[/tcp|udp]`);
  const hostIp = parts.length === 3 ? formatIpv4(parseIpv4(parts[0]!, 'ports')) : undefined;
  return {
    hostIp,
    hostPort: parts.length === 1 ? 0 : port(parts[parts.length - 2]!, 'host port', spec, true),
    containerPort: port(parts[parts.length - 1]!, 'container port', spec),
    protocol: proto,
  };
}

/** `127.0.0.1:8080->80/tcp`, as `docker ps` shows a mapping. */
export function formatPortMapping(m: PortMapping): string {
  return `${m.hostIp ?? '0.0.0.0'}:${m.hostPort}->${m.containerPort}/${m.protocol}`;
}
