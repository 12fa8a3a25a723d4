import { randomBytes } from 'node:crypto';
import { AbortError } from '../errors.js';
import { logger } from '../log.js';
import { NetworkError } from './errors.js';
import { ownerAlive, ownerOf, type Ipam, type Lease, type LeaseOwner } from './ipam.js';
import type { Ipv4Subnet } from './ipv4.js';
import { addPortMappings, removePortMappings } from './nat.js';
import { NetworkNamespace } from './netns.js';
import { parsePortMapping, type PortMapping, type PortSpec } from './ports.js';
import { reservePorts, type PortReservation } from './port-reservation.js';
import { checkIfname, Rtnetlink } from './rtnetlink.js';

const log = logger('ctrkit:network');

/** What to attach: a container's host PID, `{ pid }` (a container handle), or a network namespace. */
export type AttachTarget = number | { readonly pid: number } | NetworkNamespace;

/** Options of {@link Bridge.attach}. */
export interface AttachOptions {
  /** The interface name inside the container. @defaultValue `eth0` */
  readonly ifname?: string;
  /** A specific address instead of the next free one. */
  readonly address?: string;
  /**
   * Published ports: `hostPort:containerPort[/tcp|udp]`, optionally `hostIp:` first; without
   * a host port (`80`, `0:80`, `127.0.0.1::80`) the kernel picks a free one, held open by this
   * process until the attachment is detached ({@link BridgeAttachment.ports} tells which).
   */
  readonly ports?: readonly PortSpec[];
  /** Add a default route via the bridge (`false` for a network that reaches only its own subnet). @defaultValue true */
  readonly defaultRoute?: boolean;
  /** An id for the lease (a container id). */
  readonly id?: string;
  /** Cancels the attach; whatever it made is removed. */
  readonly signal?: AbortSignal;
}

/**
 * What attaching needs of a bridge. `Bridge` satisfies it; attach.ts names this instead of
 * importing `Bridge`, because bridge.ts imports attach.ts (no import cycle, not even of types).
 * @internal
 */
export interface AttachableBridge {
  /** The bridge's interface name. */
  readonly name: string;
  /** Its subnet. */
  readonly subnet: Ipv4Subnet;
  /** Its address (the containers' gateway). */
  readonly gateway: string;
  /** The namespace the bridge lives in. */
  readonly netns: NetworkNamespace;
  /** Its address allocator. */
  readonly ipam: Ipam;
  /** The state directory (IPAM, NAT rules, locks). */
  readonly stateDir: string;
  /** MTU for attached veths, when set. */
  readonly mtu: number | undefined;
}

/** One container's connection to a {@link Bridge}. Disposing it detaches. */
export class BridgeAttachment implements AsyncDisposable {
  /** The bridge's name. */
  readonly bridge: string;
  /** The container's address, e.g. `10.88.0.2`. */
  readonly address: string;
  /** The subnet's prefix length. */
  readonly prefix: number;
  /** The default gateway (the bridge's address). */
  readonly gateway: string;
  /** The interface name inside the container. */
  readonly ifname: string;
  /** The veth end on the host, enslaved to the bridge. */
  readonly hostIfname: string;
  /** The published ports, with the host ports the kernel chose for random ones. */
  readonly ports: readonly PortMapping[];
  private readonly owner: AttachableBridge;
  private readonly lease: Lease;
  private readonly reservation: PortReservation | undefined;
  private detached = false;

  /** @internal */
  constructor(owner: AttachableBridge, lease: Lease, ifname: string, hostIfname: string, ports: readonly PortMapping[], reservation?: PortReservation) {
    this.owner = owner;
    this.reservation = reservation;
    this.lease = lease;
    this.bridge = owner.name;
    this.address = lease.address;
    this.prefix = lease.prefix;
    this.gateway = owner.gateway;
    this.ifname = ifname;
    this.hostIfname = hostIfname;
    this.ports = ports;
  }

  /** The bridge's subnet, e.g. `10.88.0.0/16`. */
  get subnetCidr(): string {
    return this.owner.subnet.cidr;
  }

  /** The path of the host network namespace the bridge lives in, when it has a name there (`/run/netns/...`). */
  get hostNetnsPath(): string | undefined {
    return this.owner.netns.path.startsWith('/run/netns/') ? this.owner.netns.path : undefined;
  }

  /** The directory of the bridge's IPAM and NAT state. */
  get stateDir(): string {
    return this.owner.stateDir;
  }

  /** Who holds the address lease and the port rules: the container's init (PID and start time). */
  get leaseOwner(): LeaseOwner {
    return this.lease.owner;
  }

  /** `10.88.0.2/24`. */
  get cidr(): string {
    return `${this.address}/${this.prefix}`;
  }

  /** Unpublishes the ports, deletes the veth (if the container has not taken it with it) and releases the address. */
  async detach(options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    if (this.detached) return;
    this.detached = true;
    try {
      await undo(this.owner, this.ports, this.hostIfname, this.lease, this.lease.owner, options.signal);
    } finally {
      // Only once the rules are gone: until then the port must stay ours.
      this.reservation?.release();
    }
  }

  /** Same as {@link BridgeAttachment.detach}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.detach();
  }
}

async function undo(
  bridge: AttachableBridge,
  ports: readonly PortMapping[],
  hostIfname: string | undefined,
  lease: Lease | undefined,
  owner: LeaseOwner,
  signal?: AbortSignal,
): Promise<void> {
  const errors: unknown[] = [];
  await removePortMappings(bridge.netns, bridge.name, ports, owner, bridge.stateDir, signal).catch((e: unknown) => errors.push(e));
  if (hostIfname) {
    try {
      using rt = Rtnetlink.open({ netns: bridge.netns });
      rt.deleteLink(hostIfname, { ifExists: true });
    } catch (e) {
      errors.push(e);
    }
  }
  if (lease) await bridge.ipam.release(lease.address).catch((e: unknown) => errors.push(e));
  if (errors.length) throw errors[0];
}

/** A host-side veth name: `ctk` and 8 random hex digits (11 bytes, unique enough to never clash). */
function hostVethName(): string {
  return `ctk${randomBytes(4).toString('hex')}`;
}

/** @internal */
export async function attachToBridge(bridge: AttachableBridge, target: AttachTarget, options: AttachOptions): Promise<BridgeAttachment> {
  const ifname = checkIfname(options.ifname ?? 'eth0', 'ifname');
  const requested = (options.ports ?? []).map(parsePortMapping);
  const signal = options.signal;
  const pid = target instanceof NetworkNamespace ? undefined : typeof target === 'number' ? target : target.pid;
  // The lease belongs to the container's init; for a bare namespace, to this process.
  const owner: LeaseOwner = ownerOf(pid ?? process.pid);
  const gone = () => pid !== undefined && !ownerAlive(owner);
  const goneError = (cause?: unknown) => new NetworkError('ERR_NETWORK_CONTAINER_GONE', `container process ${pid} exited during attach`, { cause });
  let netns: NetworkNamespace;
  try {
    netns = target instanceof NetworkNamespace ? target : NetworkNamespace.open(pid!);
  } catch (e) {
    throw gone() ? goneError(e) : e;
  }
  if (netns.sameAs(bridge.netns))
    throw new NetworkError('ERR_NETWORK_NAMESPACE', `the target shares the host namespace ${bridge.netns.path}; it needs a network namespace of its own`);

  let lease: Lease | undefined;
  let hostIfname: string | undefined;
  let published: readonly PortMapping[] = [];
  let reservation: PortReservation | undefined;
  try {
    lease = await bridge.ipam.allocate({ pid: owner.pid, id: options.id, address: options.address, signal });
    hostIfname = hostVethName();
    {
      using host = Rtnetlink.open({ netns: bridge.netns });
      host.createVeth({ name: hostIfname, peer: { name: ifname, netns }, mtu: bridge.mtu });
      host.setLink(hostIfname, { master: bridge.name, up: true });
      // Hairpin: with br_netfilter a container reaching its own published port is DNATed back
      // out of the port its packet came in by, which a bridge refuses without it.
      host.setHairpin(hostIfname, true);
    }
    {
      using inner = Rtnetlink.open({ netns });
      inner.setLink('lo', { up: true });
      inner.addAddress(ifname, lease.cidr);
      inner.setLink(ifname, { up: true });
      if (options.defaultRoute !== false) inner.addRoute({ destination: 'default', gateway: bridge.gateway, device: ifname });
    }
    if (signal?.aborted) throw new AbortError(signal.reason);
    reservation = await reservePorts(bridge.netns, requested);
    const ports = reservation.mappings;
    // Marked for rollback only once added: a refused mapping may name another container's port.
    await addPortMappings(bridge.netns, bridge.name, bridge.subnet.cidr, lease.address, ports, owner, bridge.stateDir, signal, reservation.held);
    published = ports;
    if (gone()) throw goneError();
    log('attached %s (%s) to %s as %s', pid ?? netns.path, hostIfname, bridge.name, lease.cidr);
    return new BridgeAttachment(bridge, lease, ifname, hostIfname, ports, reservation);
  } catch (e) {
    await undo(bridge, published, hostIfname, lease, owner).catch((err: unknown) => log('rolling back a failed attach: %s', (err as Error).message));
    reservation?.release();
    if (gone() && !(e instanceof NetworkError && e.code === 'ERR_NETWORK_CONTAINER_GONE')) throw goneError(e);
    throw e;
  }
}
