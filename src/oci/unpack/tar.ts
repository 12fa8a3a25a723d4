/**
 * A push parser for tar archives (ustar, GNU and PAX), synchronous: bytes go in as they
 * arrive (`write`), headers and file data come out to a visitor in the same call, file data as
 * slices of the chunk it arrived in (no copies). Only a visitor that needs to wait (to load the
 * FFI layer) makes `write` return a promise. What it accepts follows Go's archive/tar, which
 * wrote most of the layers there are: header-only types (links, devices, directories, fifos)
 * have no data whatever their size field says, global PAX headers are skipped, and the archive
 * ends at two zero blocks (what follows is not read). A malformed header is a typed error.
 * @internal
 */
import { UnsafeLayerError } from '../errors.js';

const BLOCK = 512;
/** PAX and GNU long-name records larger than this are refused (a memory bomb otherwise). */
const MAX_META = 1024 * 1024;

/** The type of an entry, named as tar-stream names them; `unknown` for the rest (skipped). */
export type TarEntryType = 'file' | 'link' | 'symlink' | 'character-device' | 'block-device' | 'directory' | 'fifo' | 'contiguous-file' | 'unknown';

/** One entry's header, with its PAX and GNU long-name records applied. */
export interface TarHeader {
  readonly name: string;
  readonly type: TarEntryType;
  /** The raw type flag, for messages about unknown types. */
  readonly flag: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Bytes of data that follow (0 for header-only types). */
  readonly size: number;
  /** Modification time in seconds since the epoch (fractional from PAX). */
  readonly mtime: number;
  readonly linkname: string;
  readonly devmajor: number;
  readonly devminor: number;
  /** `SCHILY.xattr.*` PAX records: attribute name → raw value bytes. */
  readonly xattrs: ReadonlyMap<string, Buffer> | undefined;
}

/** Where an entry's data goes: called with slices of the input, then once at the end. */
export interface TarData {
  write(buf: Buffer, start: number, end: number): void;
  end(): void | Promise<void>;
}

/** Receives the entries: returns where the data goes (undefined: skip it), or a promise of it. */
export type TarVisitor = (header: TarHeader) => TarData | undefined | Promise<TarData | undefined>;

const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'character-device',
  '4': 'block-device',
  '5': 'directory',
  '6': 'fifo',
  '7': 'contiguous-file',
};

function malformed(at: number, why: string): UnsafeLayerError {
  return new UnsafeLayerError(`<tar header at byte ${at}>`, why);
}

/** A NUL-terminated string field. */
function str(b: Buffer, off: number, len: number): string {
  let end = off;
  const max = off + len;
  while (end < max && b[end] !== 0) end++;
  return b.toString('utf8', off, end);
}

/** A numeric field: octal ASCII (space/NUL padded), or GNU base-256 when the high bit is set. */
function num(b: Buffer, off: number, len: number): number {
  const first = b[off]!;
  if (first & 0x80) {
    const negative = first === 0xff;
    let v = 0;
    for (let i = off + 1; i < off + len; i++) v = v * 256 + (negative ? 0xff - b[i]! : b[i]!);
    return negative ? -(v + 1) : v + (first & 0x7f) * 256 ** (len - 1);
  }
  let i = off;
  const end = off + len;
  while (i < end && (b[i] === 0x20 || b[i] === 0x30)) i++;
  let v = 0;
  for (; i < end; i++) {
    const c = b[i]!;
    if (c < 0x30 || c > 0x37) break;
    v = v * 8 + (c - 0x30);
  }
  return v;
}

function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

/** The header checksum: unsigned, or signed as some old tars wrote it. */
function checksumOk(b: Buffer): boolean {
  const stored = num(b, 148, 8);
  let sum = 256; // the checksum field itself counts as eight spaces
  let high = 0; // bytes over 127, which the signed sum counts 256 lower
  for (let i = 0; i < 148; i++) {
    const c = b[i]!;
    sum += c;
    if (c > 127) high++;
  }
  for (let i = 156; i < BLOCK; i++) {
    const c = b[i]!;
    sum += c;
    if (c > 127) high++;
  }
  return stored === sum || stored === sum - 256 * high;
}

/** PAX records (`LEN KEY=VALUE\n`): strings for the fields, raw bytes for xattrs. */
function parsePax(buf: Buffer, at: number): { fields: Map<string, string>; xattrs: Map<string, Buffer> } {
  const fields = new Map<string, string>();
  const xattrs = new Map<string, Buffer>();
  let pos = 0;
  while (pos < buf.length) {
    if (buf[pos] === 0) break; // NUL padding
    const space = buf.indexOf(0x20, pos);
    const len = space < 0 ? Number.NaN : Number(buf.toString('latin1', pos, space));
    if (!Number.isInteger(len) || len <= space - pos + 1 || pos + len > buf.length || buf[pos + len - 1] !== 0x0a) {
      throw malformed(at, 'a malformed PAX record');
    }
    const eq = buf.indexOf(0x3d, space + 1);
    if (eq < 0 || eq >= pos + len - 1) throw malformed(at, 'a PAX record without "="');
    const key = buf.toString('utf8', space + 1, eq);
    if (key.startsWith('SCHILY.xattr.')) xattrs.set(key.slice('SCHILY.xattr.'.length), Buffer.from(buf.subarray(eq + 1, pos + len - 1)));
    else fields.set(key, buf.toString('utf8', eq + 1, pos + len - 1));
    pos += len;
  }
  return { fields, xattrs };
}

type Meta = { kind: 'pax' | 'long-name' | 'long-link'; buf: Buffer; fill: number };

/** The parser. Feed it with {@link TarParser.write}, awaiting any promise it returns; then call {@link TarParser.end}. */
export class TarParser {
  private readonly headerBuf = Buffer.allocUnsafe(BLOCK);
  private headerFill = 0;
  /** Data bytes of the current entry still to come. */
  private remaining = 0;
  /** Padding bytes after the current entry's data still to skip. */
  private padding = 0;
  private data: TarData | undefined;
  private meta: Meta | undefined;
  private pax: ReturnType<typeof parsePax> | undefined;
  private longName: string | undefined;
  private longLink: string | undefined;
  private zeroBlocks = 0;
  private done = false;
  /** Offset of the next byte in the archive. */
  private offset = 0;
  /** Entries passed to the visitor. */
  entries = 0;

  constructor(private readonly visit: TarVisitor) {}

  /** Parses `chunk`. When this returns a promise, wait for it before the next call. */
  write(chunk: Buffer): Promise<void> | undefined {
    return this.run(chunk, 0);
  }

  /** The input ended: an archive cut inside a header or an entry's data is refused. */
  end(): void {
    if (this.done) return;
    // The padding of the last entry and the closing zero blocks may be missing (Go writers that
    // were not closed); a header or data cut short may not.
    if (this.headerFill > 0 || this.remaining > 0) throw malformed(this.offset, 'the archive ends inside an entry');
    if (this.pax || this.longName !== undefined || this.longLink !== undefined)
      throw malformed(this.offset, 'the archive ends after a PAX or long-name header');
  }

  private run(chunk: Buffer, pos: number): Promise<void> | undefined {
    const len = chunk.length;
    while (pos < len && !this.done) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, len - pos);
        if (this.data) this.data.write(chunk, pos, pos + n);
        else if (this.meta) {
          chunk.copy(this.meta.buf, this.meta.fill, pos, pos + n);
          this.meta.fill += n;
        }
        pos += n;
        this.offset += n;
        this.remaining -= n;
        if (this.remaining === 0) {
          const p = this.endData();
          if (p) return p.then(() => this.run(chunk, pos));
        }
        continue;
      }
      if (this.padding > 0) {
        const n = Math.min(this.padding, len - pos);
        pos += n;
        this.offset += n;
        this.padding -= n;
        continue;
      }
      let block: Buffer;
      if (this.headerFill === 0 && len - pos >= BLOCK) {
        block = chunk.subarray(pos, pos + BLOCK);
        pos += BLOCK;
      } else {
        const n = Math.min(BLOCK - this.headerFill, len - pos);
        chunk.copy(this.headerBuf, this.headerFill, pos, pos + n);
        this.headerFill += n;
        pos += n;
        if (this.headerFill < BLOCK) {
          this.offset += n;
          continue;
        }
        this.headerFill = 0;
        this.offset -= BLOCK - n; // counted below as a whole block
        block = this.headerBuf;
      }
      const at = this.offset;
      this.offset += BLOCK;
      const p = this.header(block, at);
      if (p) return p.then(() => this.run(chunk, pos));
    }
    return undefined;
  }

  private endData(): Promise<void> | undefined {
    const { data, meta } = this;
    this.data = undefined;
    this.meta = undefined;
    if (meta) {
      const at = this.offset;
      if (meta.kind === 'pax') this.pax = parsePax(meta.buf, at);
      else if (meta.kind === 'long-name') this.longName = str(meta.buf, 0, meta.buf.length);
      else this.longLink = str(meta.buf, 0, meta.buf.length);
      return undefined;
    }
    const p = data?.end();
    return p instanceof Promise ? p : undefined;
  }

  private startData(data: TarData | undefined, size: number): Promise<void> | undefined {
    this.data = data;
    this.remaining = size;
    this.padding = (BLOCK - (size % BLOCK)) % BLOCK;
    return size === 0 ? this.endData() : undefined;
  }

  private header(block: Buffer, at: number): Promise<void> | undefined {
    if (isZeroBlock(block)) {
      if (++this.zeroBlocks >= 2) this.done = true;
      return undefined;
    }
    this.zeroBlocks = 0;
    if (!checksumOk(block)) throw malformed(at, 'a header checksum that does not match (not a tar archive, or a corrupt one)');
    const magic = block.toString('latin1', 257, 263);
    const ustar = magic === 'ustar\0';
    if (!ustar && magic !== 'ustar ' && magic !== '\0\0\0\0\0\0') throw malformed(at, 'a header of an unknown tar format');
    const flag = String.fromCharCode(block[156]!);
    const size = num(block, 124, 12);
    if (size < 0 || !Number.isSafeInteger(size)) throw malformed(at, `an impossible size (${size})`);
    if (flag === 'x' || flag === 'L' || flag === 'K') {
      if (size > MAX_META) throw malformed(at, `a ${flag === 'x' ? 'PAX' : 'long-name'} record of ${size} bytes`);
      this.meta = { kind: flag === 'x' ? 'pax' : flag === 'L' ? 'long-name' : 'long-link', buf: Buffer.alloc(size), fill: 0 };
      return this.startData(undefined, size);
    }
    if (flag === 'g') return this.startData(undefined, size); // global PAX records: skipped, as Go does
    const header = this.entryHeader(block, at, flag, size, ustar);
    this.entries++;
    const dataSize = header.size;
    const r = this.visit(header);
    if (r instanceof Promise) return r.then((d) => this.startData(d, dataSize));
    return this.startData(r, dataSize);
  }

  /** An entry's header, with the PAX and GNU long-name records that came before it applied. */
  private entryHeader(block: Buffer, at: number, flag: string, headerSize: number, ustar: boolean): TarHeader {
    let size = headerSize;
    let name = str(block, 0, 100);
    if (ustar && block[345] !== 0) name = `${str(block, 345, 155)}/${name}`;
    let type: TarEntryType = TYPES[flag] ?? 'unknown';
    if (flag === '\0' && name.endsWith('/')) type = 'directory'; // pre-POSIX tars marked directories so (Go's rule)
    let linkname = block[157] === 0 ? '' : str(block, 157, 100);
    let uid = num(block, 108, 8);
    let gid = num(block, 116, 8);
    let mtime = num(block, 136, 12);
    let xattrs: Map<string, Buffer> | undefined;
    const pax = this.pax;
    if (pax) {
      const f = pax.fields;
      name = f.get('path') ?? name;
      linkname = f.get('linkpath') ?? linkname;
      const int = (key: string, v: number): number => {
        const s = f.get(key);
        if (s === undefined) return v;
        const n = Number(s);
        if (!Number.isFinite(n)) throw malformed(at, `PAX ${key}="${s}" is not a number`);
        return n;
      };
      size = int('size', size);
      uid = int('uid', uid);
      gid = int('gid', gid);
      mtime = int('mtime', mtime);
      if (!Number.isSafeInteger(size) || size < 0) throw malformed(at, `an impossible size (${size})`);
      if (pax.xattrs.size > 0) xattrs = pax.xattrs;
      this.pax = undefined;
    }
    if (this.longName !== undefined) name = this.longName;
    if (this.longLink !== undefined) linkname = this.longLink;
    this.longName = undefined;
    this.longLink = undefined;
    const hasData = type === 'file' || type === 'contiguous-file' || type === 'unknown';
    return {
      name,
      type,
      flag,
      mode: num(block, 100, 8),
      uid,
      gid,
      size: hasData ? size : 0,
      mtime,
      linkname,
      devmajor: num(block, 329, 8),
      devminor: num(block, 337, 8),
      xattrs,
    };
  }
}
