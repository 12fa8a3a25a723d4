import { join } from 'node:path';
import { AbortError } from '../errors.js';
import { logger } from '../log.js';
import { attachToBridge, type AttachOptions, type BridgeAttachment, type AttachTarget } from './attach.js';
import { NetworkError } from './errors.js';
import { Ipam } from './ipam.js';
import { formatIpv4, parseIpv4, parseSubnet, subnetsOverlap, inSubnet, type Ipv4Subnet } from './ipv4.js';
import { addBridgeNat, removeBridgeNat } from './nat.js';
import { NetworkNamespace } from './netns.js';
import { checkIfname, Rtnetlink } from './rtnetlink.js';
import { networkStateDir, withFileLock } from './state-lock.js';

const log = logger('ctrkit:network');

/** Options of {@link Bridge.create}. */
export interface BridgeOptions {
  /** Interface name of the bridge, at most 15 bytes, e.g. `ctk0`. */
  readonly name: string;
  /** Its IPv4 subnet, e.g. `10.88.0.0/24`. */
  readonly subnet: string;
  /** The bridge's own address, the containers' default gateway. @defaultValue the subnet's first address */
  readonly gateway?: string;
  /** Masquerade the subnet's traffic leaving through other interfaces. @defaultValue true */
  readonly masquerade?: boolean;
  /** The namespace that plays "the host". @defaultValue the one Node's main thread is in */
  readonly netns?: NetworkNamespace;
  /** Where IPAM leases and locks live. @defaultValue `/run/ctrkit/network` */
  readonly stateDir?: string;
  /** MTU of the bridge and of the veths attached to it. */
  readonly mtu?: number;
  /** Cancels the setup; whatever it made is removed. */
  readonly signal?: AbortSignal;
}

/**
 * A Linux bridge with a gateway address, IPAM for its subnet and (by default) masquerade:
 * Docker's `docker0`, as an object. Containers join it with {@link Bridge.attach}.
 *
 * `create` adopts a bridge of the same name and address that already exists, so several
 * processes can share one; their containers never get the same address (the IPAM state is
 * shared and locked).
 *
 * @example
 * ```ts
 * await using br = await Bridge.create({ name: 'ctk0', subnet: '10.88.0.0/24' });
 * await using att = await br.attach(container.pid, { ports: ['8080:80'] });
 * att.address; // '10.88.0.2'
 * ```
 */
export class Bridge implements AsyncDisposable {
  /** The bridge's interface name. */
  readonly name: string;
  /** Its subnet. */
  readonly subnet: Ipv4Subnet;
  /** Its address (the containers' gateway). */
  readonly gateway: string;
  /** The host namespace it lives in. */
  readonly netns: NetworkNamespace;
  /** Its address allocator. */
  readonly ipam: Ipam;
  /** The state directory. */
  readonly stateDir: string;
  /** MTU for attached veths, when set. */
  readonly mtu: number | undefined;
  private readonly masquerade: boolean;
  private removed = false;

  private constructor(o: {
    name: string;
    subnet: Ipv4Subnet;
    gateway: string;
    netns: NetworkNamespace;
    ipam: Ipam;
    stateDir: string;
    mtu: number | undefined;
    masquerade: boolean;
  }) {
    this.name = o.name;
    this.subnet = o.subnet;
    this.gateway = o.gateway;
    this.netns = o.netns;
    this.ipam = o.ipam;
    this.stateDir = o.stateDir;
    this.mtu = o.mtu;
    this.masquerade = o.masquerade;
  }

  /**
   * Creates the bridge (or adopts an existing one with the same address), gives it its
   * gateway address, brings it up and installs masquerade. Refuses a subnet that overlaps a
   * route of the host namespace ({@link NetworkError} `ERR_NETWORK_SUBNET_OVERLAP`).
   */
  static async create(options: BridgeOptions): Promise<Bridge> {
    const name = checkIfname(options.name, 'name');
    const subnet = parseSubnet(options.subnet);
    const gatewayN = options.gateway ? parseIpv4(options.gateway, 'gateway') : subnet.network + 1;
    const gateway = formatIpv4(gatewayN);
    const netns = options.netns ?? NetworkNamespace.current();
    const stateDir = options.stateDir ?? networkStateDir();
    const ipam = Ipam.open({ name: `${name}-${netns.inode}`, subnet: subnet.cidr, gateway, stateDir });
    if (!inSubnet(gatewayN, subnet)) throw new NetworkError('ERR_NETWORK_BRIDGE', `gateway ${gateway} is not in ${subnet.cidr}`);
    const bridge = new Bridge({ name, subnet, gateway, netns, ipam, stateDir, mtu: options.mtu, masquerade: options.masquerade ?? true });
    using rt = Rtnetlink.open({ netns });
    // Check-then-create under a lock shared by every process: two processes starting the
    // first containers of a bridge at once must not both create it (or adopt it half-made).
    const created = await withFileLock(
      join(stateDir, 'bridges.lock'),
      () => {
        const existing = rt.link(name);
        if (existing) {
          const cidr = `${gateway}/${subnet.prefix}`;
          const has = rt.addresses().some((a) => a.index === existing.index && a.cidr === cidr);
          if (existing.kind !== 'bridge' || !has) {
            throw new NetworkError('ERR_NETWORK_BRIDGE', `${name} already exists and is not a bridge with address ${cidr}`);
          }
          log('adopting bridge %s', name);
          return false;
        }
        const clash = rt.routes().find((r) => r.destination !== 'default' && subnetsOverlap(parseSubnet(r.destination), subnet));
        if (clash) {
          throw new NetworkError(
            'ERR_NETWORK_SUBNET_OVERLAP',
            `subnet ${subnet.cidr} overlaps the route ${clash.destination}${clash.index ? ` on ${rt.link(clash.index)?.name ?? clash.index}` : ''}`,
          );
        }
        rt.createBridge(name, { mtu: options.mtu });
        try {
          rt.addAddress(name, `${gateway}/${subnet.prefix}`);
          rt.setLink(name, { up: true });
        } catch (e) {
          rt.deleteLink(name, { ifExists: true });
          throw e;
        }
        return true;
      },
      options.signal,
    );
    try {
      if (bridge.masquerade) await addBridgeNat(netns, name, subnet.cidr, stateDir, options.signal);
      return bridge;
    } catch (e) {
      if (created) {
        rt.deleteLink(name, { ifExists: true });
        await removeBridgeNat(netns, name, stateDir).catch(() => undefined);
      }
      throw e;
    }
  }

  /**
   * Connects a container: a veth pair whose inner end appears in the container's network
   * namespace as `eth0` (or `options.ifname`), an address from the IPAM, a default route via
   * the gateway, and the published `ports`. Typed errors leave nothing behind.
   * @param target - the container's host PID, `{ pid }`, or a network namespace
   */
  async attach(target: AttachTarget, options: AttachOptions = {}): Promise<BridgeAttachment> {
    if (this.removed) throw new NetworkError('ERR_NETWORK_BRIDGE', `bridge ${this.name} was removed`);
    if (options.signal?.aborted) throw new AbortError(options.signal.reason);
    return attachToBridge(this, target, options);
  }

  /** The bridge's live leases (addresses held by running containers). */
  leases(): ReturnType<Ipam['leases']> {
    return this.ipam.leases();
  }

  /**
   * Removes the bridge once no container holds an address on it (the last one detached),
   * under the same lock that creation takes, so no other process adopts it half-removed.
   * How the default bridge of `network: 'bridge'` goes away with its last container.
   * @returns whether it was removed
   */
  async removeIfUnused(options: { readonly signal?: AbortSignal } = {}): Promise<boolean> {
    if (this.removed) return false;
    return withFileLock(
      join(this.stateDir, 'bridges.lock'),
      async () => {
        if ((await this.ipam.leases()).length > 0) return false;
        await this.remove(options);
        return true;
      },
      options.signal,
    );
  }

  /**
   * Removes the bridge, its NAT rules and its IPAM state. Containers still attached lose
   * their connectivity (their veths go with the bridge's ports, not with the bridge).
   */
  async remove(options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    await removeBridgeNat(this.netns, this.name, this.stateDir, options.signal);
    {
      using rt = Rtnetlink.open({ netns: this.netns });
      rt.deleteLink(this.name, { ifExists: true });
    }
    await this.ipam.destroy();
    log('removed bridge %s', this.name);
  }

  /** Same as {@link Bridge.remove}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove();
  }
}
