/**
 * A VXLAN overlay between hosts, built the way flannel's `vxlan` backend builds it: one
 * VXLAN device per host (VNI 1, UDP 8472, learning off), whose address is the host's
 * container subnet's network address as a /32, and per remote host three kernel entries
 * that flannel's control plane would write from the other host's lease:
 *
 * 1. a neighbour (ARP) entry: the remote VTEP's overlay address → the remote VTEP's MAC;
 * 2. an FDB entry on the device: that MAC → the remote host's underlay IP;
 * 3. a route: the remote container subnet via the remote VTEP's overlay address, `onlink`.
 *
 * With learning off and every entry static, no multicast and no flooding is needed: a packet
 * for a remote container is routed to the VXLAN device, its next hop's MAC comes from the
 * ARP entry, and the FDB entry says which host to send the encapsulated frame to.
 */
import { logger } from '../log.js';
import { InvalidOptionError } from '../errors.js';
import { NetlinkError, NetworkError } from './errors.js';
import { formatIpv4, parseIpv4, parseSubnet, subnetsOverlap, type Ipv4Subnet } from './ipv4.js';
import { NetworkNamespace } from './netns.js';
import { Rtnetlink, type LinkRef } from './rtnetlink.js';
import { writeNetSysctl } from './sysctl.js';

const log = logger('ctrkit:network');

/** Options of {@link VxlanOverlay.create}. */
export interface VxlanOverlayOptions {
  /** This host's container subnet, e.g. `10.244.1.0/24`; the device gets its network address as a /32. */
  readonly subnet: string;
  /** This host's underlay address, the source of the tunnel packets (flannel's `public-ip`). */
  readonly local: string;
  /** The underlay interface (flannel's `--iface`). @defaultValue whichever the route to a peer takes */
  readonly device?: LinkRef;
  /** Interface name, at most 15 bytes. @defaultValue `ctk.VNI` (flannel names it `flannel.VNI`) */
  readonly name?: string;
  /** VXLAN network identifier. @defaultValue 1 (flannel's) */
  readonly vni?: number;
  /** UDP port. @defaultValue 8472 (flannel's and Linux's historical default) */
  readonly port?: number;
  /** The device's MAC. @defaultValue one the kernel picks */
  readonly mac?: string;
  /** MTU. @defaultValue the underlay's minus 50 bytes of headers (when `device` is given) */
  readonly mtu?: number;
  /**
   * Turn on IPv4 forwarding in `netns`: packets from the local bridge must be routed into the
   * tunnel and back out. Only `netns` changes. @defaultValue true
   */
  readonly forwarding?: boolean;
  /** The namespace that plays this host. @defaultValue the one Node's main thread is in */
  readonly netns?: NetworkNamespace;
}

/**
 * What one host tells the others about itself (flannel keeps it in the subnet lease's
 * backend data): enough for them to reach its containers.
 */
export interface VxlanPeer {
  /** The peer's container subnet, e.g. `10.244.2.0/24`. */
  readonly subnet: string;
  /** The peer's underlay address, where tunnel packets go. */
  readonly underlay: string;
  /** The MAC of the peer's VXLAN device. */
  readonly mac: string;
}

/**
 * One host's end of a VXLAN overlay (see the module comment for the kernel entries).
 *
 * @example
 * ```ts
 * const a = VxlanOverlay.create({ subnet: '10.244.1.0/24', local: '192.0.2.1', device: 'eth0', netns: hostA });
 * const b = VxlanOverlay.create({ subnet: '10.244.2.0/24', local: '192.0.2.2', device: 'eth0', netns: hostB });
 * a.addPeer(b.self);
 * b.addPeer(a.self);
 * // containers on 10.244.1.0/24 behind host A now reach those on 10.244.2.0/24 behind host B
 * ```
 */
export class VxlanOverlay implements Disposable {
  /** The device's name. */
  readonly name: string;
  /** Its VNI. */
  readonly vni: number;
  /** Its UDP port. */
  readonly port: number;
  /** This host's container subnet. */
  readonly subnet: Ipv4Subnet;
  /** The device's overlay address (the subnet's network address, e.g. `10.244.1.0`). */
  readonly address: string;
  /** This host's underlay address. */
  readonly local: string;
  /** The device's MAC. */
  readonly mac: string;
  /** The namespace it lives in. */
  readonly netns: NetworkNamespace;
  private readonly peerList: VxlanPeer[] = [];
  private removed = false;

  private constructor(o: { name: string; vni: number; port: number; subnet: Ipv4Subnet; local: string; mac: string; netns: NetworkNamespace }) {
    this.name = o.name;
    this.vni = o.vni;
    this.port = o.port;
    this.subnet = o.subnet;
    this.address = formatIpv4(o.subnet.network);
    this.local = o.local;
    this.mac = o.mac;
    this.netns = o.netns;
  }

  /**
   * Creates the VXLAN device, gives it `SUBNET_NETWORK/32` and brings it up. Throws
   * {@link NetworkError} `ERR_NETWORK_VXLAN` when the kernel cannot make one (no vxlan
   * support, the name or the VNI+port already taken), with the kernel's error as `cause`;
   * nothing is left behind.
   */
  static create(options: VxlanOverlayOptions): VxlanOverlay {
    const subnet = parseSubnet(options.subnet, 'subnet');
    if (subnet.prefix > 30) throw new InvalidOptionError('subnet', `${subnet.cidr} leaves no room for containers`);
    parseIpv4(options.local, 'local');
    const vni = options.vni ?? 1;
    const port = options.port ?? 8472;
    const name = options.name ?? `ctk.${vni}`;
    const netns = options.netns ?? NetworkNamespace.current();
    using rt = Rtnetlink.open({ netns });
    try {
      rt.createVxlan({ name, vni, port, local: options.local, device: options.device, learning: false, mac: options.mac, mtu: options.mtu });
    } catch (e) {
      if (!(e instanceof NetlinkError)) throw e;
      throw new NetworkError('ERR_NETWORK_VXLAN', `cannot create VXLAN device ${name} (VNI ${vni}, UDP ${port}): ${e.message}`, { cause: e });
    }
    try {
      rt.addAddress(name, `${formatIpv4(subnet.network)}/32`);
      rt.setLink(name, { up: true });
      if (options.forwarding ?? true) writeNetSysctl(netns, 'ipv4/ip_forward', '1');
      const mac = rt.link(name)?.mac;
      if (!mac) throw new NetworkError('ERR_NETWORK_VXLAN', `VXLAN device ${name} has no MAC address`);
      log('vxlan %s vni %d local %s subnet %s mac %s', name, vni, options.local, subnet.cidr, mac);
      return new VxlanOverlay({ name, vni, port, subnet, local: options.local, mac, netns });
    } catch (e) {
      rt.deleteLink(name, { ifExists: true });
      throw e;
    }
  }

  /** What the other hosts pass to their {@link VxlanOverlay.addPeer} to reach this one. */
  get self(): VxlanPeer {
    return { subnet: this.subnet.cidr, underlay: this.local, mac: this.mac };
  }

  /** The peers added so far. */
  peers(): readonly VxlanPeer[] {
    return [...this.peerList];
  }

  /**
   * Makes a remote host's containers reachable: its ARP entry, its FDB entry and a route to
   * its subnet (in that order, so the route never points at an unresolved hop). Throws
   * {@link NetworkError} `ERR_NETWORK_SUBNET_OVERLAP` when the peer's subnet overlaps this
   * host's or another peer's; on any failure nothing of this peer is left.
   */
  addPeer(peer: VxlanPeer): void {
    this.assertPresent();
    const subnet = parseSubnet(peer.subnet, 'peer.subnet');
    parseIpv4(peer.underlay, 'peer.underlay');
    for (const other of [this.subnet, ...this.peerList.map((p) => parseSubnet(p.subnet))]) {
      if (subnetsOverlap(subnet, other))
        throw new NetworkError('ERR_NETWORK_SUBNET_OVERLAP', `peer subnet ${subnet.cidr} overlaps ${other.cidr} on ${this.name}`);
    }
    const gateway = formatIpv4(subnet.network);
    using rt = Rtnetlink.open({ netns: this.netns });
    try {
      rt.setNeighbour({ device: this.name, address: gateway, mac: peer.mac });
      rt.setFdbEntry({ device: this.name, mac: peer.mac, destination: peer.underlay });
      rt.addRoute({ destination: subnet.cidr, gateway, device: this.name, onlink: true });
    } catch (e) {
      undoPeer(rt, this.name, subnet.cidr, gateway, peer);
      throw e;
    }
    this.peerList.push({ subnet: subnet.cidr, underlay: peer.underlay, mac: peer.mac });
    log('vxlan %s peer %s via %s (%s)', this.name, subnet.cidr, peer.underlay, peer.mac);
  }

  /** Removes a peer's route, FDB and ARP entries. A peer that was never added is a no-op. */
  removePeer(peer: VxlanPeer): void {
    this.assertPresent();
    const cidr = parseSubnet(peer.subnet, 'peer.subnet').cidr;
    const i = this.peerList.findIndex((p) => p.subnet === cidr);
    if (i < 0) return;
    const known = this.peerList[i]!;
    using rt = Rtnetlink.open({ netns: this.netns });
    undoPeer(rt, this.name, cidr, formatIpv4(parseSubnet(cidr).network), known);
    this.peerList.splice(i, 1);
  }

  /** Deletes the device; its routes, ARP and FDB entries go with it. Idempotent. */
  remove(): void {
    if (this.removed) return;
    this.removed = true;
    using rt = Rtnetlink.open({ netns: this.netns });
    rt.deleteLink(this.name, { ifExists: true });
    this.peerList.length = 0;
  }

  /** Same as {@link VxlanOverlay.remove}. */
  [Symbol.dispose](): void {
    this.remove();
  }

  private assertPresent(): void {
    if (this.removed) throw new NetworkError('ERR_NETWORK_VXLAN', `VXLAN device ${this.name} was removed`);
  }
}

/** Best-effort removal of one peer's entries (each may be missing after a partial add). */
function undoPeer(rt: Rtnetlink, device: string, cidr: string, gateway: string, peer: VxlanPeer): void {
  try {
    rt.deleteRoute({ destination: cidr, gateway, device });
  } catch (e) {
    if (!isMissing(e)) throw e;
  }
  rt.deleteFdbEntry({ device, mac: peer.mac, destination: peer.underlay }, { ifExists: true });
  rt.deleteNeighbour({ device, address: gateway }, { ifExists: true });
}

function isMissing(e: unknown): boolean {
  return e instanceof NetlinkError && (e.errnoName === 'ESRCH' || e.errnoName === 'ENOENT' || e.errnoName === 'ENODEV');
}
