/**
 * Netlink attributes (struct rtattr / nlattr): a 4-byte header (length, type) and a payload
 * padded to 4 bytes, nested by putting attributes inside an attribute's payload.
 * @internal
 */

/** An attribute to encode: raw bytes, or nested attributes. @internal */
export interface Attr {
  readonly type: number;
  readonly value: Buffer | readonly Attr[];
}

const NLA_F_NESTED = 0x8000;
const align4 = (n: number) => (n + 3) & ~3;

/** Encodes attributes back to back, each padded to 4 bytes. @internal */
export function encodeAttrs(attrs: readonly Attr[]): Buffer {
  const parts: Buffer[] = [];
  for (const a of attrs) {
    const payload = Buffer.isBuffer(a.value) ? a.value : encodeAttrs(a.value);
    const head = Buffer.alloc(4);
    head.writeUInt16LE(4 + payload.length, 0);
    head.writeUInt16LE(a.type, 2);
    parts.push(head, payload, Buffer.alloc(align4(payload.length) - payload.length));
  }
  return Buffer.concat(parts);
}

/** Decodes attributes into a map of type → payload (the last one wins; NLA_F_NESTED stripped). @internal */
export function decodeAttrs(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    const type = buf.readUInt16LE(off + 2) & ~NLA_F_NESTED;
    if (len < 4 || off + len > buf.length) break;
    out.set(type, buf.subarray(off + 4, off + len));
    off += align4(len);
  }
  return out;
}

/** A nested attribute (with NLA_F_NESTED set, as newer kernels expect). @internal */
export const nested = (type: number, value: readonly Attr[]): Attr => ({ type: type | NLA_F_NESTED, value });
/** A NUL-terminated string attribute. @internal */
export const str = (type: number, s: string): Attr => ({ type, value: Buffer.from(`${s}\0`) });
/** A u32 attribute (host order, little-endian on x86_64 and arm64). @internal */
export const u32 = (type: number, n: number): Attr => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0, 0);
  return { type, value: b };
};
/** A u8 attribute. @internal */
export const u8 = (type: number, n: number): Attr => ({ type, value: Buffer.from([n & 0xff]) });
/** Raw bytes. @internal */
export const bytes = (type: number, b: Buffer): Attr => ({ type, value: b });

/** Reads a NUL-terminated string payload. @internal */
export const readStr = (b: Buffer | undefined): string | undefined => (b ? b.toString('latin1').replace(/\0.*$/s, '') : undefined);
/** Reads a u32 payload. @internal */
export const readU32 = (b: Buffer | undefined): number | undefined => (b && b.length >= 4 ? b.readUInt32LE(0) : undefined);
