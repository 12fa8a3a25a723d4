import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidOptionError } from '../errors.js';

/** Options of {@link writeNetworkFiles}. */
export interface NetworkFilesOptions {
  /** The container's hostname (goes to /etc/hostname and /etc/hosts). */
  readonly hostname: string;
  /** The container's address, mapped to its hostname in /etc/hosts. */
  readonly address?: string;
  /** More /etc/hosts entries, like `--add-host`: name → address. */
  readonly extraHosts?: Readonly<Record<string, string>>;
  /** Name servers for /etc/resolv.conf. @defaultValue the host's, without loopback ones (unreachable from a netns), else 8.8.8.8 and 8.8.4.4 */
  readonly dns?: readonly string[];
  /** Search domains for /etc/resolv.conf. @defaultValue the host's */
  readonly dnsSearch?: readonly string[];
  /** Keep loopback name servers (host mode shares the host's loopback). @defaultValue false */
  readonly keepLoopbackDns?: boolean;
  /** The host's resolv.conf to start from. @defaultValue `/etc/resolv.conf` */
  readonly hostResolvConf?: string;
}

/** The paths {@link writeNetworkFiles} wrote. */
export interface NetworkFiles {
  /** `DIR/hosts`. */
  readonly hosts: string;
  /** `DIR/hostname`. */
  readonly hostname: string;
  /** `DIR/resolv.conf`. */
  readonly resolvConf: string;
}

/**
 * Writes a container's `hosts`, `hostname` and `resolv.conf` into `dir` (to be bind-mounted
 * over /etc/hosts, /etc/hostname and /etc/resolv.conf in the container), as Docker does.
 */
export async function writeNetworkFiles(dir: string, options: NetworkFilesOptions): Promise<NetworkFiles> {
  const name = options.hostname;
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$/.test(name)) throw new InvalidOptionError('hostname', `"${name}" is not a valid hostname`);
  // Three small files on a local disk, made on every container start: synchronous calls take
  // microseconds each, a thread-pool round trip per call costs more than the work.
  mkdirSync(dir, { recursive: true });
  const hosts = [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'ff00::0\tip6-mcastprefix',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
    options.address ? `${options.address}\t${name}` : `127.0.1.1\t${name}`,
    ...Object.entries(options.extraHosts ?? {}).map(([h, a]) => `${a}\t${h}`),
  ];
  const host = readHostFile(options.hostResolvConf ?? '/etc/resolv.conf');
  const hostServers = [...host.matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => m[1]!);
  const hostSearch = [...host.matchAll(/^\s*search\s+(.+)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/));
  let servers = options.dns ?? hostServers.filter((s) => options.keepLoopbackDns || !(s.startsWith('127.') || s === '::1'));
  if (servers.length === 0) servers = ['8.8.8.8', '8.8.4.4'];
  const search = options.dnsSearch ?? hostSearch;
  const resolv = [...servers.map((s) => `nameserver ${s}`), ...(search.length ? [`search ${search.join(' ')}`] : [])];
  const files = { hosts: join(dir, 'hosts'), hostname: join(dir, 'hostname'), resolvConf: join(dir, 'resolv.conf') };
  writeUnlessSame(files.hosts, `${hosts.join('\n')}\n`);
  writeUnlessSame(files.hostname, `${name}\n`);
  writeUnlessSame(files.resolvConf, `${resolv.join('\n')}\n`);
  return files;
}

/**
 * Writes `text` to `path` (mode 0644 when new), unless the file holds it already: a container's
 * layer kept for the next one (see Container.run) has them. On ext4, truncating a file written
 * a moment ago costs a disk write (its blocks are allocated first); reading it costs microseconds.
 */
function writeUnlessSame(path: string, text: string): void {
  try {
    if (readFileSync(path, 'utf8') === text) return;
  } catch {
    // not there yet
  }
  writeFileSync(path, text, { mode: 0o644 });
}

/** The host's file as text, or '' when it cannot be read. */
function readHostFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
