import { InvalidOptionError } from '../errors.js';
import { logger } from '../log.js';
import type { BridgeAttachment } from './attach.js';
import { Bridge, type BridgeOptions } from './bridge.js';
import type { CniAttachment, CniNetwork } from './cni/network.js';
import { NetworkError } from './errors.js';
import { NetworkNamespace } from './netns.js';
import type { PastaAttachment, PastaOptions } from './pasta.js';
import { parsePortMapping, type PortSpec } from './ports.js';
import { Rtnetlink } from './rtnetlink.js';

const log = logger('ctrkit:network');

/**
 * How a container is networked:
 * - `none`: its own namespace with only `lo`, up;
 * - `host`: no namespace of its own (start it without `net`); nothing to do here;
 * - `bridge`: a veth on a {@link Bridge}, an address, a default route, NAT, published ports;
 * - `container`: another container's namespace (start it with that one's netns); nothing to do here;
 * - `cni`: a CNI network configuration list ({@link CniNetwork});
 * - `pasta`: rootless networking through pasta (the `passt` package), started attached to the
 *   container's user and network namespaces: an `eth0` with the host's address and route,
 *   outbound traffic carried over the caller's own sockets, published ports bound by pasta.
 */
export type NetworkMode = 'none' | 'host' | 'bridge' | 'container' | 'cni' | 'pasta';

/** Options of {@link connectContainer}. */
export interface ConnectOptions {
  /** The container's init as the host's /proc sees it (the spawn hook's `pid`). */
  readonly pid: number;
  /** @defaultValue `bridge` */
  readonly mode?: NetworkMode;
  /** For `bridge`: a bridge, or the options to create/adopt one. @defaultValue `{ name: 'ctk0', subnet: '10.88.0.0/16' }` */
  readonly bridge?: Bridge | Omit<BridgeOptions, 'signal'>;
  /** For `cni`: the network to ADD the container to. */
  readonly cni?: CniNetwork;
  /** For `pasta`: its options (address, gateway, host loopback, more arguments). */
  readonly pasta?: PastaOptions;
  /** A container id (CNI needs one; IPAM leases carry it). @defaultValue `ctk-<pid>` */
  readonly containerId?: string;
  /** Published ports (`bridge`, `pasta`, and `cni` with a portmap plugin). */
  readonly ports?: readonly PortSpec[];
  /** Interface name inside. @defaultValue `eth0` */
  readonly ifname?: string;
  /** `bridge`: add a default route via the bridge. @defaultValue true */
  readonly defaultRoute?: boolean;
  /** The host namespace. @defaultValue the one Node's main thread is in */
  readonly netns?: NetworkNamespace;
  /** Cancels the setup; whatever it made is removed. */
  readonly signal?: AbortSignal;
}

/**
 * The result of {@link connectContainer}: what the container got, and the way to undo it.
 * Disposing it (or `detach()`) releases the address, the veth and the port mappings; a bridge
 * made from options (the default `ctk0` included) is removed with its last container, while a
 * {@link Bridge} the caller passed stays the caller's.
 */
export interface NetworkAttachment extends AsyncDisposable {
  /** The mode used. */
  readonly mode: NetworkMode;
  /** The container's IPv4 address, when it has one (bridge, cni). */
  readonly address: string | undefined;
  /** Its prefix length. */
  readonly prefix: number | undefined;
  /** Its default gateway. */
  readonly gateway: string | undefined;
  /** Interface name inside, when one was made. */
  readonly ifname: string | undefined;
  /** Published ports, as given. */
  readonly ports: readonly PortSpec[];
  /** The bridge attachment (bridge mode). */
  readonly bridge: BridgeAttachment | undefined;
  /** The CNI attachment (cni mode). */
  readonly cni: CniAttachment | undefined;
  /** The pasta process and the ports it publishes (pasta mode). */
  readonly pasta?: PastaAttachment | undefined;
  /** Undoes the attachment. Idempotent. */
  detach(): Promise<void>;
}

/** `pasta` mode: pasta joins the container's user and network namespaces and configures its `eth0`. */
async function connectPasta(options: ConnectOptions, ports: readonly PortSpec[], host: NetworkNamespace): Promise<NetworkAttachment> {
  if (NetworkNamespace.open(options.pid).sameAs(host))
    throw new NetworkError('ERR_NETWORK_NAMESPACE', `process ${options.pid} has no network namespace of its own`);
  const { startPasta } = await import('./pasta.js');
  const att = await startPasta(options.pid, { ...options.pasta, ports, ifname: options.ifname, signal: options.signal });
  return {
    mode: 'pasta',
    address: att.address,
    prefix: att.prefix,
    gateway: att.gateway,
    ifname: att.ifname,
    ports,
    bridge: undefined,
    cni: undefined,
    pasta: att,
    detach: att.stop,
    [Symbol.asyncDispose]: att.stop,
  };
}

/**
 * Networks a container whose namespaces exist and whose command has not started: call it
 * from the spawn hook (`onNamespaces: ({ pid }) => connectContainer({ pid, ... })`), and
 * dispose the result when the container ends.
 */
export async function connectContainer(options: ConnectOptions): Promise<NetworkAttachment> {
  const mode = options.mode ?? 'bridge';
  const ports = options.ports ?? [];
  ports.forEach(parsePortMapping); // refuse bad input before anything is made
  if (ports.length && mode !== 'bridge' && mode !== 'cni' && mode !== 'pasta')
    throw new InvalidOptionError('ports', `ports need bridge or cni networking (or pasta, rootless), not "${mode}"`);
  const host = options.netns ?? NetworkNamespace.current();
  const none = (m: NetworkMode): NetworkAttachment => ({
    mode: m,
    address: undefined,
    prefix: undefined,
    gateway: undefined,
    ifname: undefined,
    ports: [],
    bridge: undefined,
    cni: undefined,
    detach: async () => undefined,
    [Symbol.asyncDispose]: async () => undefined,
  });
  switch (mode) {
    case 'host': {
      // Decided when the container is spawned (without a net namespace); a container that got
      // one anyway would silently have no network, so say so.
      if (!NetworkNamespace.open(options.pid).sameAs(host)) {
        throw new NetworkError('ERR_NETWORK_NAMESPACE', `host mode: process ${options.pid} has a network namespace of its own; start it without "net"`);
      }
      return none(mode);
    }
    case 'container':
      // Decided when the container is spawned (into the other container's netns); nothing to build.
      return none(mode);
    case 'none': {
      const ns = NetworkNamespace.open(options.pid);
      if (ns.sameAs(host)) throw new NetworkError('ERR_NETWORK_NAMESPACE', `process ${options.pid} has no network namespace of its own`);
      using rt = Rtnetlink.open({ netns: ns });
      rt.setLink('lo', { up: true });
      return none('none');
    }
    case 'bridge': {
      const given = options.bridge ?? { name: 'ctk0', subnet: '10.88.0.0/16' };
      const bridge = given instanceof Bridge ? given : await Bridge.create({ netns: host, ...given, signal: options.signal });
      const att = await bridge.attach(options.pid, {
        ports,
        ifname: options.ifname,
        id: options.containerId,
        defaultRoute: options.defaultRoute,
        signal: options.signal,
      });
      log('container %d on %s: %s', options.pid, bridge.name, att.cidr);
      // A bridge made from options (the default `ctk0` included) goes with its last container:
      // nothing of ctrkit's stays on the host. A Bridge the caller passed is the caller's.
      const detach = async () => {
        await att.detach();
        if (!(given instanceof Bridge)) await bridge.removeIfUnused();
      };
      return {
        mode,
        address: att.address,
        prefix: att.prefix,
        gateway: att.gateway,
        ifname: att.ifname,
        ports,
        bridge: att,
        cni: undefined,
        detach,
        [Symbol.asyncDispose]: detach,
      };
    }
    case 'cni': {
      if (!options.cni) throw new InvalidOptionError('cni', 'mode "cni" needs a CniNetwork');
      if (ports.some((p) => parsePortMapping(p).hostPort === 0))
        throw new InvalidOptionError('ports', 'random host ports need bridge networking (a CNI portmap plugin takes fixed ports)');
      const att = await options.cni.add({
        containerId: options.containerId ?? `ctk-${options.pid}`,
        netns: `/proc/${options.pid}/ns/net`,
        ifname: options.ifname ?? 'eth0',
        ports: ports.map(parsePortMapping),
        signal: options.signal,
      });
      return {
        mode,
        address: att.address,
        prefix: att.prefix,
        gateway: att.gateway,
        ifname: options.ifname ?? 'eth0',
        ports,
        bridge: undefined,
        cni: att,
        detach: () => att.delete(),
        [Symbol.asyncDispose]: () => att.delete(),
      };
    }
    case 'pasta':
      return connectPasta(options, ports, host);
    default:
      throw new InvalidOptionError('mode', `unknown network mode "${String(mode)}" (none, host, bridge, container, cni, pasta)`);
  }
}
