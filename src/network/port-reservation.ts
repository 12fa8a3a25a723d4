/**
 * Random host ports (`-p 80`): the kernel picks a free port when a socket binds to port 0 in
 * the bridge's host namespace, and that socket stays open as long as the mapping exists, as
 * docker-proxy holds its ports. So no other program, and no other container published at
 * the same moment (another test file, another process), can be given the same port: the
 * kernel never hands out a port that an open socket holds. The holder is the process that
 * attached the container (its owner, or the owner helper for a detached one); when it ends
 * the kernel closes the sockets, and the port rules go with the container's release.
 * @internal
 */
import { logger } from '../log.js';
import type { NetworkNamespace } from './netns.js';
import type { PortMapping } from './ports.js';

const log = logger('ctrkit:network');

/** Ports held open for a container's random mappings, and the mappings with their ports. @internal */
export interface PortReservation {
  /** Every mapping, the chosen host ports filled in. */
  readonly mappings: readonly PortMapping[];
  /** `tcp:PORT` / `udp:PORT` keys of the ports held here (they are not "in use by someone else"). */
  readonly held: ReadonlySet<string>;
  /** Closes the held sockets (idempotent). */
  release(): void;
}

/** Picks and holds a host port for each mapping whose `hostPort` is 0; others pass through. @internal */
export async function reservePorts(netns: NetworkNamespace, mappings: readonly PortMapping[]): Promise<PortReservation> {
  const random = mappings.filter((m) => m.hostPort === 0);
  if (random.length === 0) return { mappings, held: new Set(), release: () => undefined };
  const { bindEphemeral, closeSocket } = await import('../sys/inet.js');
  const fds: number[] = [];
  const held = new Set<string>();
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    for (const fd of fds) closeSocket(fd);
  };
  try {
    const out = netns.runSync(() =>
      mappings.map((m) => {
        if (m.hostPort !== 0) return m;
        // Bound to the mapping's host address, or to every address for "all of them".
        const { fd, port } = bindEphemeral(m.protocol, m.hostIp ?? '0.0.0.0');
        fds.push(fd);
        held.add(`${m.protocol}:${port}`);
        return { ...m, hostPort: port };
      }),
    );
    log('kernel chose host ports %o', [...held]);
    return { mappings: out, held, release };
  } catch (e) {
    release();
    throw e;
  }
}
