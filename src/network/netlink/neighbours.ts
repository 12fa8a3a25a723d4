/**
 * The wire forms behind `ip link add type vxlan`, `ip neigh` and `bridge fdb`: the
 * IFLA_INFO_DATA of a vxlan link and struct ndmsg with its NDA_* attributes. Kept apart from
 * rtnetlink.ts so that file stays about the requests, not their byte layouts.
 * @internal
 */
import { InvalidOptionError } from '../../errors.js';
import { bytes, decodeAttrs, encodeAttrs, u32, u8, type Attr } from './attributes.js';
import * as C from './constants.js';

/** `aa:bb:cc:dd:ee:ff` → 6 bytes. @internal */
export function macBytes(mac: string, option = 'mac'): Buffer {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) throw new InvalidOptionError(option, `"${mac}" is not a MAC address like 02:42:0a:f4:01:00`);
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

/** 6 bytes → `aa:bb:cc:dd:ee:ff`. @internal */
export function formatMac(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** struct ndmsg (12 bytes): family, pad, ifindex, state, flags, type. @internal */
export function ndmsg(family: number, index: number, state = 0, flags = 0): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(family, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt16LE(state, 8);
  b.writeUInt8(flags, 10);
  return b;
}

/** The fields of a vxlan link's IFLA_INFO_DATA that ctrkit sets and reads. @internal */
export interface VxlanData {
  readonly vni: number;
  readonly port: number;
  /** Underlay source address as 4 bytes, or undefined. */
  readonly local: Buffer | undefined;
  /** Index of the underlay link, or undefined. */
  readonly link: number | undefined;
  readonly learning: boolean;
  readonly ttl: number | undefined;
}

/** Encodes IFLA_INFO_DATA for kind "vxlan". @internal */
export function encodeVxlanData(d: VxlanData): Attr[] {
  // The UDP port is the one attribute in network byte order (a __be16 in the kernel).
  const port = Buffer.alloc(2);
  port.writeUInt16BE(d.port, 0);
  const attrs: Attr[] = [u32(C.IFLA_VXLAN_ID, d.vni), bytes(C.IFLA_VXLAN_PORT, port), u8(C.IFLA_VXLAN_LEARNING, d.learning ? 1 : 0)];
  if (d.local) attrs.push(bytes(C.IFLA_VXLAN_LOCAL, d.local));
  if (d.link !== undefined) attrs.push(u32(C.IFLA_VXLAN_LINK, d.link));
  if (d.ttl !== undefined) attrs.push(u8(C.IFLA_VXLAN_TTL, d.ttl));
  return attrs;
}

/** Decodes a vxlan link's IFLA_INFO_DATA payload. @internal */
export function decodeVxlanData(payload: Buffer): VxlanData {
  const a = decodeAttrs(payload);
  const port = a.get(C.IFLA_VXLAN_PORT);
  const local = a.get(C.IFLA_VXLAN_LOCAL);
  const link = a.get(C.IFLA_VXLAN_LINK);
  const ttl = a.get(C.IFLA_VXLAN_TTL);
  const link32 = link && link.length >= 4 ? link.readUInt32LE(0) : 0;
  return {
    vni: a.get(C.IFLA_VXLAN_ID)?.readUInt32LE(0) ?? 0,
    port: port && port.length >= 2 ? port.readUInt16BE(0) : 0,
    local: local && local.length === 4 ? local : undefined,
    link: link32 === 0 ? undefined : link32,
    learning: (a.get(C.IFLA_VXLAN_LEARNING)?.readUInt8(0) ?? 0) !== 0,
    ttl: ttl && ttl.length >= 1 ? ttl.readUInt8(0) : undefined,
  };
}

/** One parsed RTM_NEWNEIGH (either family). @internal */
export interface RawNeighbour {
  readonly family: number;
  readonly index: number;
  readonly state: number;
  readonly flags: number;
  /** NDA_DST: an IPv4 address as 4 bytes. */
  readonly dst: Buffer | undefined;
  /** NDA_LLADDR. */
  readonly lladdr: Buffer | undefined;
}

/** Parses the payload of an RTM_NEWNEIGH message. @internal */
export function parseNeighbour(p: Buffer): RawNeighbour {
  const a = decodeAttrs(p.subarray(12));
  return {
    family: p.readUInt8(0),
    index: p.readInt32LE(4),
    state: p.readUInt16LE(8),
    flags: p.readUInt8(10),
    dst: a.get(C.NDA_DST),
    lladdr: a.get(C.NDA_LLADDR),
  };
}

/** An ndmsg with NDA_DST and, when given, NDA_LLADDR. @internal */
export function neighbourBody(family: number, index: number, state: number, flags: number, dst: Buffer | undefined, lladdr: Buffer | undefined): Buffer {
  const attrs: Attr[] = [];
  if (dst) attrs.push(bytes(C.NDA_DST, dst));
  if (lladdr) attrs.push(bytes(C.NDA_LLADDR, lladdr));
  return Buffer.concat([ndmsg(family, index, state, flags), encodeAttrs(attrs)]);
}
