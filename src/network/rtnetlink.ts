import { closeSync } from 'node:fs';
import { constants } from 'node:os';
import { InvalidOptionError } from '../errors.js';
import { logger } from '../log.js';
import { bytes, decodeAttrs, encodeAttrs, nested, readStr, readU32, str, u32, u8, type Attr } from './netlink/attributes.js';
import * as C from './netlink/constants.js';
import { decodeVxlanData, encodeVxlanData, formatMac, macBytes, ndmsg, neighbourBody, parseNeighbour } from './netlink/neighbours.js';
import { ifinfomsg } from './netlink/link.js';
import { NetlinkSocket, type NetlinkMessage } from './netlink/socket.js';
import { NetlinkError } from './errors.js';
import { formatIpv4, ipv4Bytes, parseIpv4, parseSubnet } from './ipv4.js';
import { NetworkNamespace } from './netns.js';

const log = logger('ctrkit:network');

/** The longest interface name Linux accepts (IFNAMSIZ - 1). */
export const MAX_IFNAME_BYTES = 15;

/** One network interface, from an RTM_GETLINK dump. */
export interface LinkInfo {
  /** Interface index. */
  readonly index: number;
  /** Name, e.g. `eth0`. */
  readonly name: string;
  /** IFF_* flags; `up` is IFF_UP. */
  readonly flags: number;
  /** True when administratively up. */
  readonly up: boolean;
  /** MTU. */
  readonly mtu: number | undefined;
  /** MAC address, `aa:bb:...`, when it has one. */
  readonly mac: string | undefined;
  /** Link kind from IFLA_INFO_KIND (`veth`, `bridge` ...), when it has one. */
  readonly kind: string | undefined;
  /** Index of the master (bridge) it is enslaved to. */
  readonly master: number | undefined;
  /** Index of the peer (veth) in its own namespace. */
  readonly link: number | undefined;
}

/** One IPv4 address, from an RTM_GETADDR dump. */
export interface AddressInfo {
  /** Index of the interface it is on. */
  readonly index: number;
  /** `10.1.1.2`. */
  readonly address: string;
  /** Prefix length, e.g. 24. */
  readonly prefix: number;
  /** `10.1.1.2/24`. */
  readonly cidr: string;
}

/** One IPv4 route of the main table, from an RTM_GETROUTE dump. */
export interface RouteInfo {
  /** Destination: `default` or a CIDR. */
  readonly destination: string;
  /** Next hop, when there is one. */
  readonly gateway: string | undefined;
  /** Output interface index. */
  readonly index: number | undefined;
  /** Preferred source address. */
  readonly source: string | undefined;
  /** The rtm_scope (0 universe, 253 link, 254 host). */
  readonly scope: number;
  /** True for a route added `onlink` (its gateway is taken as on the link, no address says so). */
  readonly onlink: boolean;
}

/** One IPv4 neighbour (ARP) entry. */
export interface NeighbourInfo {
  /** Interface index. */
  readonly index: number;
  /** IPv4 address. */
  readonly address: string;
  /** MAC address, when resolved. */
  readonly mac: string | undefined;
  /** NUD_* state bits. */
  readonly state: number;
}

/** A link by name or index. */
export type LinkRef = string | number;

/** Options of {@link Rtnetlink.createVeth}. */
export interface VethOptions {
  /** Name of this end (in the client's namespace). At most 15 bytes. */
  readonly name: string;
  /** The other end. */
  readonly peer: {
    /** Its name. At most 15 bytes. */
    readonly name: string;
    /** Create it straight inside this namespace (no move afterwards). @defaultValue the client's */
    readonly netns?: NetworkNamespace;
  };
  /** MTU of both ends. */
  readonly mtu?: number;
}

/** Changes {@link Rtnetlink.setLink} applies in one request. */
export interface LinkChanges {
  /** Bring it up (true) or down (false). */
  readonly up?: boolean;
  /** New MTU. */
  readonly mtu?: number;
  /** Enslave to this bridge, or `null` to release it. */
  readonly master?: LinkRef | null;
  /** New name (the link must be down for most kinds). */
  readonly name?: string;
  /** Move into this namespace. */
  readonly netns?: NetworkNamespace;
}

/** Options of {@link Rtnetlink.open}. */
export interface RtnetlinkOptions {
  /** The namespace the client works in. @defaultValue the one Node's main thread is in */
  readonly netns?: NetworkNamespace;
}

/** A route to add or delete. */
export interface RouteSpec {
  /** `default` or a CIDR such as `10.2.0.0/16`. */
  readonly destination: string;
  /** Next hop. */
  readonly gateway?: string;
  /** Output interface. */
  readonly device?: LinkRef;
  /**
   * Take the gateway as reachable on `device` even though no address of the device covers it
   * (`ip route add ... onlink`): how flannel routes a remote subnet through a VXLAN device
   * whose own address is a /32.
   */
  readonly onlink?: boolean;
}

/** Options of {@link Rtnetlink.createVxlan} (`ip link add NAME type vxlan id VNI ...`). */
export interface VxlanLinkOptions {
  /** Interface name, at most 15 bytes. */
  readonly name: string;
  /** The VXLAN network identifier, 0..16777215. */
  readonly vni: number;
  /** UDP destination port. @defaultValue 8472 (Linux's historical default, which flannel keeps; IANA's is 4789) */
  readonly port?: number;
  /** Source address of the encapsulated packets (this host's underlay IP). */
  readonly local?: string;
  /** Underlay interface the tunnel packets leave through. */
  readonly device?: LinkRef;
  /** Learn remote MACs from received packets. @defaultValue false (entries come from the control plane, as in flannel) */
  readonly learning?: boolean;
  /** The device's MAC address. @defaultValue one the kernel picks */
  readonly mac?: string;
  /** MTU. @defaultValue the kernel's: the underlay's minus 50 bytes of encapsulation */
  readonly mtu?: number;
  /** TTL of the outer IP header. @defaultValue inherited (the kernel's default) */
  readonly ttl?: number;
}

/** A vxlan link's own settings, as the kernel reports them ({@link Rtnetlink.vxlan}). */
export interface VxlanLinkInfo {
  /** VXLAN network identifier. */
  readonly vni: number;
  /** UDP destination port. */
  readonly port: number;
  /** Source address of encapsulated packets, when set. */
  readonly local: string | undefined;
  /** Index of the underlay link, when set. */
  readonly device: number | undefined;
  /** Whether the device learns remote MACs from traffic. */
  readonly learning: boolean;
}

/** A permanent IPv4 neighbour (ARP) entry (`ip neigh replace ADDRESS lladdr MAC dev DEVICE nud permanent`). */
export interface NeighbourSpec {
  /** The interface. */
  readonly device: LinkRef;
  /** The IPv4 address. */
  readonly address: string;
  /** Its MAC address (needed to add, ignored to delete). */
  readonly mac?: string;
}

/**
 * A forwarding-database entry of a device itself, not of a bridge it is enslaved to
 * (`bridge fdb replace MAC dev DEVICE dst DESTINATION self permanent`). On a vxlan device it
 * says where to send frames for `mac`: to the VTEP at `destination`.
 */
export interface FdbEntrySpec {
  /** The device (a vxlan link). */
  readonly device: LinkRef;
  /** The destination MAC of the frames. */
  readonly mac: string;
  /** The remote tunnel endpoint's IPv4 address (needed to add; narrows a delete). */
  readonly destination?: string;
}

/** One forwarding-database entry ({@link Rtnetlink.fdb}). */
export interface FdbEntry {
  /** Interface index. */
  readonly index: number;
  /** MAC address. */
  readonly mac: string;
  /** Remote tunnel endpoint, for vxlan entries that have one. */
  readonly destination: string | undefined;
  /** True for a permanent (static) entry. */
  readonly permanent: boolean;
  /** True for an entry of the device itself (NTF_SELF), as on a vxlan device. */
  readonly self: boolean;
}

/**
 * An rtnetlink client (what `ip link/addr/route/neigh` speak), bound for its whole life to
 * one network namespace. Requests are synchronous: the kernel answers them inline. Kernel
 * refusals throw {@link NetlinkError} naming the request and the errno.
 *
 * @example
 * ```ts
 * using rt = Rtnetlink.open({ netns });
 * rt.createVeth({ name: 'ctk-veth0', peer: { name: 'eth0', netns: container } });
 * rt.addAddress('ctk-veth0', '10.1.1.1/24');
 * rt.setLink('ctk-veth0', { up: true });
 * ```
 */
export class Rtnetlink implements Disposable {
  /** The namespace this client acts on. */
  readonly netns: NetworkNamespace;
  private readonly socket: NetlinkSocket;

  private constructor(netns: NetworkNamespace, socket: NetlinkSocket) {
    this.netns = netns;
    this.socket = socket;
  }

  /** Opens a client in `options.netns` (a socket stays bound to the namespace it was made in). */
  static open(options: RtnetlinkOptions = {}): Rtnetlink {
    const netns = options.netns ?? NetworkNamespace.current();
    const socket = netns.runSync(() => new NetlinkSocket());
    return new Rtnetlink(netns, socket);
  }

  /** Every link of the namespace. */
  links(): LinkInfo[] {
    return this.socket
      .dump(C.RTM_GETLINK, ifinfomsg(0), 'RTM_GETLINK dump')
      .filter((m) => m.type === C.RTM_NEWLINK)
      .map((m) => parseLink(m.payload));
  }

  /** A link by name or index, or undefined when there is none. */
  link(ref: LinkRef): LinkInfo | undefined {
    try {
      const attrs = typeof ref === 'number' ? [] : [str(C.IFLA_IFNAME, checkIfname(ref))];
      const body = Buffer.concat([ifinfomsg(typeof ref === 'number' ? ref : 0), encodeAttrs(attrs)]);
      // A plain GET (no dump) answers with one RTM_NEWLINK, or ENODEV.
      const found = this.socket.request(C.RTM_GETLINK, 0, body, `RTM_GETLINK ${ref}`).find((m) => m.type === C.RTM_NEWLINK);
      return found ? parseLink(found.payload) : undefined;
    } catch (e) {
      if (e instanceof NetlinkError && (e.errnoName === 'ENODEV' || e.errnoName === 'ENOENT')) return undefined;
      throw e;
    }
  }

  /** The index of a link; throws NetlinkError ENODEV when it does not exist. */
  indexOf(ref: LinkRef): number {
    if (typeof ref === 'number') return ref;
    const l = this.link(ref);
    if (!l) throw new NetlinkError(`RTM_GETLINK ${ref}`, constants.errno.ENODEV, 'no such interface');
    return l.index;
  }

  /** Creates a veth pair; the peer can be created straight inside another namespace. */
  createVeth(options: VethOptions): void {
    checkIfname(options.name, 'name');
    checkIfname(options.peer.name, 'peer.name');
    const peerFd = options.peer.netns?.openFd();
    try {
      const peerAttrs: Attr[] = [str(C.IFLA_IFNAME, options.peer.name)];
      if (options.mtu) peerAttrs.push(u32(C.IFLA_MTU, options.mtu));
      if (peerFd !== undefined) peerAttrs.push(u32(C.IFLA_NET_NS_FD, peerFd));
      const attrs: Attr[] = [str(C.IFLA_IFNAME, options.name)];
      if (options.mtu) attrs.push(u32(C.IFLA_MTU, options.mtu));
      attrs.push(
        nested(C.IFLA_LINKINFO, [
          str(C.IFLA_INFO_KIND, 'veth'),
          nested(C.IFLA_INFO_DATA, [bytes(C.VETH_INFO_PEER, Buffer.concat([ifinfomsg(0), encodeAttrs(peerAttrs)]))]),
        ]),
      );
      this.request(
        C.RTM_NEWLINK,
        C.NLM_F_CREATE | C.NLM_F_EXCL,
        Buffer.concat([ifinfomsg(0), encodeAttrs(attrs)]),
        `RTM_NEWLINK veth ${options.name} peer ${options.peer.name}${options.peer.netns ? ` in ${options.peer.netns.path}` : ''}`,
      );
    } finally {
      if (peerFd !== undefined) closeSync(peerFd);
    }
    log('veth %s <-> %s', options.name, options.peer.name);
  }

  /** Creates a bridge (down, like `ip link add NAME type bridge`). */
  createBridge(name: string, options: { readonly mtu?: number } = {}): void {
    checkIfname(name, 'name');
    const attrs: Attr[] = [str(C.IFLA_IFNAME, name), nested(C.IFLA_LINKINFO, [str(C.IFLA_INFO_KIND, 'bridge')])];
    if (options.mtu) attrs.push(u32(C.IFLA_MTU, options.mtu));
    this.request(C.RTM_NEWLINK, C.NLM_F_CREATE | C.NLM_F_EXCL, Buffer.concat([ifinfomsg(0), encodeAttrs(attrs)]), `RTM_NEWLINK bridge ${name}`);
  }

  /**
   * Creates a VXLAN device (down), like `ip link add NAME type vxlan id VNI dstport PORT
   * local IP dev DEVICE nolearning`. Without learning, the device sends a frame only where an
   * FDB entry ({@link Rtnetlink.setFdbEntry}) says its MAC lives.
   */
  createVxlan(options: VxlanLinkOptions): void {
    checkIfname(options.name, 'name');
    if (!Number.isInteger(options.vni) || options.vni < 0 || options.vni > 0xffffff)
      throw new InvalidOptionError('vni', `must be an integer 0..16777215, got ${options.vni}`);
    const port = options.port ?? 8472;
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidOptionError('port', `must be a UDP port 1..65535, got ${port}`);
    const data = encodeVxlanData({
      vni: options.vni,
      port,
      local: options.local === undefined ? undefined : ipv4Bytes(parseIpv4(options.local, 'local')),
      link: options.device === undefined ? undefined : this.indexOf(options.device),
      learning: options.learning ?? false,
      ttl: options.ttl,
    });
    const attrs: Attr[] = [str(C.IFLA_IFNAME, options.name), nested(C.IFLA_LINKINFO, [str(C.IFLA_INFO_KIND, 'vxlan'), nested(C.IFLA_INFO_DATA, data)])];
    if (options.mac !== undefined) attrs.push(bytes(C.IFLA_ADDRESS, macBytes(options.mac)));
    if (options.mtu) attrs.push(u32(C.IFLA_MTU, options.mtu));
    this.request(
      C.RTM_NEWLINK,
      C.NLM_F_CREATE | C.NLM_F_EXCL,
      Buffer.concat([ifinfomsg(0), encodeAttrs(attrs)]),
      `RTM_NEWLINK vxlan ${options.name} id ${options.vni} dstport ${port}${options.local ? ` local ${options.local}` : ''}`,
    );
  }

  /** The VXLAN settings of a link, or undefined when it is not a vxlan link (or does not exist). */
  vxlan(ref: LinkRef): VxlanLinkInfo | undefined {
    let found: NetlinkMessage | undefined;
    try {
      const attrs = typeof ref === 'number' ? [] : [str(C.IFLA_IFNAME, checkIfname(ref))];
      found = this.socket
        .request(C.RTM_GETLINK, 0, Buffer.concat([ifinfomsg(typeof ref === 'number' ? ref : 0), encodeAttrs(attrs)]), `RTM_GETLINK ${ref}`)
        .find((m) => m.type === C.RTM_NEWLINK);
    } catch (e) {
      if (e instanceof NetlinkError && (e.errnoName === 'ENODEV' || e.errnoName === 'ENOENT')) return undefined;
      throw e;
    }
    const info = found && decodeAttrs(found.payload.subarray(16)).get(C.IFLA_LINKINFO);
    const li = info && decodeAttrs(info);
    const data = li?.get(C.IFLA_INFO_DATA);
    if (!li || readStr(li.get(C.IFLA_INFO_KIND)) !== 'vxlan' || !data) return undefined;
    const d = decodeVxlanData(data);
    return { vni: d.vni, port: d.port, local: d.local ? formatIpv4(d.local.readUInt32BE(0)) : undefined, device: d.link, learning: d.learning };
  }

  /** Adds or replaces a permanent ARP entry (`ip neigh replace ... nud permanent`). */
  setNeighbour(spec: NeighbourSpec): void {
    if (spec.mac === undefined) throw new InvalidOptionError('mac', 'is needed to add a neighbour entry');
    const body = neighbourBody(C.AF_INET, this.indexOf(spec.device), C.NUD_PERMANENT, 0, ipv4Bytes(parseIpv4(spec.address, 'address')), macBytes(spec.mac));
    this.request(C.RTM_NEWNEIGH, C.NLM_F_CREATE | C.NLM_F_REPLACE, body, `RTM_NEWNEIGH ${spec.address} lladdr ${spec.mac} dev ${spec.device}`);
  }

  /** Deletes an ARP entry. `ifExists` makes a missing entry a no-op. */
  deleteNeighbour(spec: NeighbourSpec, options: { readonly ifExists?: boolean } = {}): void {
    const body = neighbourBody(C.AF_INET, this.indexOf(spec.device), 0, 0, ipv4Bytes(parseIpv4(spec.address, 'address')), undefined);
    this.requestIfExists(C.RTM_DELNEIGH, body, `RTM_DELNEIGH ${spec.address} dev ${spec.device}`, options.ifExists);
  }

  /** Adds or replaces a device's own permanent FDB entry (`bridge fdb replace MAC dev DEVICE dst IP self permanent`). */
  setFdbEntry(spec: FdbEntrySpec): void {
    if (spec.destination === undefined) throw new InvalidOptionError('destination', 'is needed to add an FDB entry');
    const body = neighbourBody(
      C.AF_BRIDGE,
      this.indexOf(spec.device),
      C.NUD_PERMANENT,
      C.NTF_SELF,
      ipv4Bytes(parseIpv4(spec.destination, 'destination')),
      macBytes(spec.mac),
    );
    this.request(C.RTM_NEWNEIGH, C.NLM_F_CREATE | C.NLM_F_REPLACE, body, `RTM_NEWNEIGH fdb ${spec.mac} dev ${spec.device} dst ${spec.destination}`);
  }

  /** Deletes a device's own FDB entry. `ifExists` makes a missing entry a no-op. */
  deleteFdbEntry(spec: FdbEntrySpec, options: { readonly ifExists?: boolean } = {}): void {
    const dst = spec.destination === undefined ? undefined : ipv4Bytes(parseIpv4(spec.destination, 'destination'));
    const body = neighbourBody(C.AF_BRIDGE, this.indexOf(spec.device), 0, C.NTF_SELF, dst, macBytes(spec.mac));
    this.requestIfExists(C.RTM_DELNEIGH, body, `RTM_DELNEIGH fdb ${spec.mac} dev ${spec.device}`, options.ifExists);
  }

  /** The forwarding-database entries of the namespace (`bridge fdb show`), or of one device. */
  fdb(device?: LinkRef): FdbEntry[] {
    const index = device === undefined ? undefined : this.indexOf(device);
    const out: FdbEntry[] = [];
    for (const m of this.socket.dump(C.RTM_GETNEIGH, ndmsg(C.AF_BRIDGE, 0), 'RTM_GETNEIGH fdb dump')) {
      if (m.type !== C.RTM_NEWNEIGH) continue;
      const n = parseNeighbour(m.payload);
      if (n.family !== C.AF_BRIDGE || (index !== undefined && n.index !== index) || !n.lladdr) continue;
      out.push({
        index: n.index,
        mac: formatMac(n.lladdr),
        destination: n.dst && n.dst.length === 4 ? formatIpv4(n.dst.readUInt32BE(0)) : undefined,
        permanent: (n.state & C.NUD_PERMANENT) !== 0,
        self: (n.flags & C.NTF_SELF) !== 0,
      });
    }
    return out;
  }

  /** Applies several link changes in one RTM_NEWLINK request. */
  setLink(ref: LinkRef, changes: LinkChanges): void {
    const index = this.indexOf(ref);
    const attrs: Attr[] = [];
    if (changes.mtu !== undefined) attrs.push(u32(C.IFLA_MTU, changes.mtu));
    if (changes.master !== undefined) attrs.push(u32(C.IFLA_MASTER, changes.master === null ? 0 : this.indexOf(changes.master)));
    if (changes.name !== undefined) attrs.push(str(C.IFLA_IFNAME, checkIfname(changes.name, 'name')));
    const fd = changes.netns?.openFd();
    try {
      if (fd !== undefined) attrs.push(u32(C.IFLA_NET_NS_FD, fd));
      const flags = changes.up === undefined ? 0 : changes.up ? C.IFF_UP : 0;
      const change = changes.up === undefined ? 0 : C.IFF_UP;
      this.request(
        C.RTM_NEWLINK,
        0,
        Buffer.concat([ifinfomsg(index, flags, change), encodeAttrs(attrs)]),
        `RTM_NEWLINK set ${ref} ${JSON.stringify({ ...changes, netns: changes.netns?.path })}`,
      );
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /**
   * Sets a bridge port's hairpin mode, so a frame may leave through the port it came in by
   * (a container reaching itself through a published port, with br_netfilter).
   */
  setHairpin(ref: LinkRef, on: boolean): void {
    const body = Buffer.concat([ifinfomsg(this.indexOf(ref), 0, 0, C.AF_BRIDGE), encodeAttrs([nested(C.IFLA_PROTINFO, [u8(C.IFLA_BRPORT_MODE, on ? 1 : 0)])])]);
    this.request(C.RTM_SETLINK, 0, body, `RTM_SETLINK hairpin ${ref}`);
  }

  /** Deletes a link (for a veth, both ends go). `ifExists` makes a missing link a no-op. */
  deleteLink(ref: LinkRef, options: { readonly ifExists?: boolean } = {}): void {
    try {
      const body = typeof ref === 'number' ? ifinfomsg(ref) : Buffer.concat([ifinfomsg(0), encodeAttrs([str(C.IFLA_IFNAME, checkIfname(ref))])]);
      this.request(C.RTM_DELLINK, 0, body, `RTM_DELLINK ${ref}`);
    } catch (e) {
      if (options.ifExists && e instanceof NetlinkError && (e.errnoName === 'ENODEV' || e.errnoName === 'ENOENT')) return;
      throw e;
    }
  }

  /** Adds an IPv4 address (`10.1.1.2/24`) to a link. */
  addAddress(ref: LinkRef, cidr: string): void {
    const { ip, prefix } = parseAddressCidr(cidr);
    const index = this.indexOf(ref);
    const attrs = [bytes(C.IFA_LOCAL, ipv4Bytes(ip)), bytes(C.IFA_ADDRESS, ipv4Bytes(ip))];
    if (prefix < 31) attrs.push(bytes(C.IFA_BROADCAST, ipv4Bytes((ip | ~maskBits(prefix)) >>> 0)));
    this.request(C.RTM_NEWADDR, C.NLM_F_CREATE | C.NLM_F_EXCL, Buffer.concat([ifaddrmsg(prefix, index), encodeAttrs(attrs)]), `RTM_NEWADDR ${cidr} on ${ref}`);
  }

  /** Removes an IPv4 address from a link. */
  deleteAddress(ref: LinkRef, cidr: string): void {
    const { ip, prefix } = parseAddressCidr(cidr);
    const attrs = [bytes(C.IFA_LOCAL, ipv4Bytes(ip))];
    this.request(C.RTM_DELADDR, 0, Buffer.concat([ifaddrmsg(prefix, this.indexOf(ref)), encodeAttrs(attrs)]), `RTM_DELADDR ${cidr} on ${ref}`);
  }

  /** Every IPv4 address of the namespace. */
  addresses(): AddressInfo[] {
    return this.socket.dump(C.RTM_GETADDR, ifaddrmsg(0, 0), 'RTM_GETADDR dump').map((m) => {
      const prefix = m.payload.readUInt8(1);
      const index = m.payload.readUInt32LE(4);
      const a = decodeAttrs(m.payload.subarray(8));
      const raw = a.get(C.IFA_LOCAL) ?? a.get(C.IFA_ADDRESS);
      const address = raw ? formatIpv4(raw.readUInt32BE(0)) : '';
      return { index, address, prefix, cidr: `${address}/${prefix}` };
    });
  }

  /** Adds an IPv4 route to the main table (`default via 10.88.0.1`). */
  addRoute(route: RouteSpec): void {
    this.request(C.RTM_NEWROUTE, C.NLM_F_CREATE | C.NLM_F_EXCL, this.routeBody(route), `RTM_NEWROUTE ${describeRoute(route)}`);
  }

  /** Deletes an IPv4 route of the main table. */
  deleteRoute(route: RouteSpec): void {
    this.request(C.RTM_DELROUTE, 0, this.routeBody(route), `RTM_DELROUTE ${describeRoute(route)}`);
  }

  /** The IPv4 routes of the main table. */
  routes(): RouteInfo[] {
    const out: RouteInfo[] = [];
    for (const m of this.socket.dump(C.RTM_GETROUTE, rtmsg(0, 0, 0), 'RTM_GETROUTE dump')) {
      const p = m.payload;
      const a = decodeAttrs(p.subarray(12));
      const table = readU32(a.get(C.RTA_TABLE)) ?? p.readUInt8(4);
      if (table !== C.RT_TABLE_MAIN || p.readUInt8(7) !== C.RTN_UNICAST) continue;
      const dstLen = p.readUInt8(1);
      const dst = a.get(C.RTA_DST);
      const gw = a.get(C.RTA_GATEWAY);
      const src = a.get(C.RTA_PREFSRC);
      out.push({
        destination: dstLen === 0 ? 'default' : `${formatIpv4(dst ? dst.readUInt32BE(0) : 0)}/${dstLen}`,
        gateway: gw ? formatIpv4(gw.readUInt32BE(0)) : undefined,
        index: readU32(a.get(C.RTA_OIF)),
        source: src ? formatIpv4(src.readUInt32BE(0)) : undefined,
        scope: p.readUInt8(6),
        onlink: (p.readUInt32LE(8) & C.RTNH_F_ONLINK) !== 0,
      });
    }
    return out;
  }

  /** The IPv4 neighbour (ARP) table. */
  neighbours(): NeighbourInfo[] {
    const body = Buffer.alloc(12);
    body.writeUInt8(C.AF_INET, 0);
    return this.socket.dump(C.RTM_GETNEIGH, body, 'RTM_GETNEIGH dump').map((m) => {
      const a = decodeAttrs(m.payload.subarray(12));
      const dst = a.get(C.NDA_DST);
      const ll = a.get(C.NDA_LLADDR);
      return {
        index: m.payload.readInt32LE(4),
        state: m.payload.readUInt16LE(8),
        address: dst && dst.length === 4 ? formatIpv4(dst.readUInt32BE(0)) : '',
        mac: ll ? formatMac(ll) : undefined,
      };
    });
  }

  /** Closes the socket. */
  close(): void {
    this.socket.close();
  }

  /** Same as {@link Rtnetlink.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  private request(type: number, flags: number, body: Buffer, operation: string): void {
    log('%s', operation);
    this.socket.request(type, flags, body, operation);
  }

  private requestIfExists(type: number, body: Buffer, operation: string, ifExists: boolean | undefined): void {
    try {
      this.request(type, 0, body, operation);
    } catch (e) {
      if (ifExists && e instanceof NetlinkError && (e.errnoName === 'ENOENT' || e.errnoName === 'ENODEV')) return;
      throw e;
    }
  }

  private routeBody(route: RouteSpec): Buffer {
    const attrs: Attr[] = [u32(C.RTA_TABLE, C.RT_TABLE_MAIN)];
    let dstLen = 0;
    if (route.destination !== 'default') {
      const s = parseSubnet(route.destination, 'destination');
      dstLen = s.prefix;
      attrs.push(bytes(C.RTA_DST, ipv4Bytes(s.network)));
    }
    if (route.gateway) attrs.push(bytes(C.RTA_GATEWAY, ipv4Bytes(parseIpv4(route.gateway, 'gateway'))));
    if (route.device !== undefined) attrs.push(u32(C.RTA_OIF, this.indexOf(route.device)));
    const scope = route.gateway ? C.RT_SCOPE_UNIVERSE : C.RT_SCOPE_LINK;
    return Buffer.concat([rtmsg(dstLen, scope, C.RTPROT_BOOT, route.onlink ? C.RTNH_F_ONLINK : 0), encodeAttrs(attrs)]);
  }
}

function describeRoute(r: RouteSpec): string {
  return `${r.destination}${r.gateway ? ` via ${r.gateway}` : ''}${r.device !== undefined ? ` dev ${r.device}` : ''}${r.onlink ? ' onlink' : ''}`;
}

/** Checks an interface name against the kernel's rules; returns it. @internal */
export function checkIfname(name: string, option = 'ifname'): string {
  if (typeof name !== 'string' || name.length === 0) throw new InvalidOptionError(option, 'must be a non-empty interface name');
  const n = Buffer.byteLength(name);
  if (n > MAX_IFNAME_BYTES) throw new InvalidOptionError(option, `"${name}" is ${n} bytes long; Linux allows at most ${MAX_IFNAME_BYTES}`);
  if (/[\s/:]/.test(name) || name === '.' || name === '..') throw new InvalidOptionError(option, `"${name}" is not a valid interface name`);
  return name;
}

function parseAddressCidr(cidr: string): { ip: number; prefix: number } {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr);
  if (!m || Number(m[2]) > 32) throw new InvalidOptionError('address', `"${cidr}" is not an IPv4 address with a prefix, like 10.1.1.2/24`);
  return { ip: parseIpv4(m[1]!), prefix: Number(m[2]) };
}

function maskBits(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

function ifaddrmsg(prefix: number, index: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(C.AF_INET, 0);
  b.writeUInt8(prefix, 1);
  b.writeUInt32LE(index, 4);
  return b;
}

function rtmsg(dstLen: number, scope: number, protocol: number, flags = 0): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(C.AF_INET, 0);
  b.writeUInt8(dstLen, 1);
  b.writeUInt8(C.RT_TABLE_MAIN, 4);
  b.writeUInt8(protocol, 5);
  b.writeUInt8(scope, 6);
  b.writeUInt8(C.RTN_UNICAST, 7);
  b.writeUInt32LE(flags, 8);
  return b;
}

function parseLink(p: Buffer): LinkInfo {
  const a = decodeAttrs(p.subarray(16));
  const info = a.get(C.IFLA_LINKINFO);
  const flags = p.readUInt32LE(8);
  const mac = a.get(C.IFLA_ADDRESS);
  return {
    index: p.readInt32LE(4),
    name: readStr(a.get(C.IFLA_IFNAME)) ?? '',
    flags,
    up: (flags & C.IFF_UP) !== 0,
    mtu: readU32(a.get(C.IFLA_MTU)),
    mac: mac && mac.length === 6 ? formatMac(mac) : undefined,
    kind: info ? readStr(decodeAttrs(info).get(C.IFLA_INFO_KIND)) : undefined,
    master: readU32(a.get(C.IFLA_MASTER)),
    link: readU32(a.get(C.IFLA_LINK)),
  };
}
