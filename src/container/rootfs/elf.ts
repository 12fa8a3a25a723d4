/**
 * A minimal ELF reader: just enough of the program headers and the dynamic section to
 * know which loader and which shared libraries a binary needs, so the default rootfs can
 * be assembled without running `ldd` (which executes the binary's loader, and cannot be
 * trusted on a binary of unknown origin).
 *
 * Only the headers and the few ranges they point to are read, never the whole file.
 * @internal
 */
import { open, type FileHandle } from 'node:fs/promises';
import { CtrkitError } from '../../errors.js';

/** What {@link readElf} learns about an ELF file. */
export interface ElfInfo {
  /** The program interpreter (dynamic loader) from `PT_INTERP`, e.g. `/lib64/ld-linux-x86-64.so.2`. */
  interpreter?: string;
  /** The `DT_NEEDED` entries, in file order, e.g. `['libc.so.6']`. */
  needed: string[];
  /** The `DT_RPATH` directories, split on `:`, unexpanded (`$ORIGIN` is kept as is). */
  rpath: string[];
  /** The `DT_RUNPATH` directories, split on `:`, unexpanded. */
  runpath: string[];
  /** The `DT_SONAME`, when the file is a shared library that declares one. */
  soname?: string;
  /** True when the file needs neither an interpreter nor any shared library. */
  static: boolean;
  /** 32 or 64, from `EI_CLASS`: a loader only accepts libraries of its own class. */
  elfClass: 32 | 64;
  /** `e_machine`, e.g. 62 for x86-64 and 183 for AArch64. */
  machine: number;
}

/** An ELF file that ctrkit cannot read: big-endian, unknown class, truncated or inconsistent. */
export class ElfFormatError extends CtrkitError {
  /** Always `ERR_ELF_FORMAT`. */
  declare readonly code: 'ERR_ELF_FORMAT';
  /** The file that was being read. */
  readonly path: string;

  /**
   * @param path - the file that was being read
   * @param message - what is wrong with it
   */
  constructor(path: string, message: string) {
    super('ERR_ELF_FORMAT', `${path}: ${message}`);
    this.path = path;
  }
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_STRSZ = 10;
const DT_SONAME = 14;
const DT_RPATH = 15;
const DT_RUNPATH = 29;
const WANTED_TAGS = new Set([DT_NEEDED, DT_STRTAB, DT_STRSZ, DT_SONAME, DT_RPATH, DT_RUNPATH]);
/** e_phnum's escape value: the real count is in section header 0's sh_info. */
const PN_XNUM = 0xffff;

// Caps that keep a hostile or corrupt file from making us allocate gigabytes.
const MAX_PHNUM = 4096;
const MAX_INTERP = 4096;
const MAX_DYNAMIC = 1 << 20;
const MAX_STRTAB = 4 << 20;

/** The width-dependent parts of the format, so one code path serves both classes. */
interface Layout {
  readonly elfClass: 32 | 64;
  /** Reads an unsigned word of the class's size (Elf32_Addr/Off or Elf64_Addr/Off). */
  word(b: Buffer, at: number): number;
  readonly phdrSize: number;
  /** Offsets in a program header. */
  readonly ph: { offset: number; vaddr: number; filesz: number };
  readonly dynSize: number;
}

interface Segment {
  type: number;
  offset: number;
  vaddr: number;
  filesz: number;
}

/**
 * Reads the loader and library requirements of an ELF file.
 *
 * @param path - the file to read (symlinks are followed)
 * @returns the file's {@link ElfInfo}, or `null` when it is not ELF at all (a shell script,
 *   a text file, anything shorter than the ELF magic)
 * @throws {@link ElfFormatError} when it starts with the ELF magic but is big-endian, of an
 *   unknown class, truncated or inconsistent; file-system errors (ENOENT, EISDIR ...) as is
 */
export async function readElf(path: string): Promise<ElfInfo | null> {
  const fh = await open(path, 'r');
  try {
    return await readOpen(fh, path);
  } finally {
    await fh.close();
  }
}

async function readOpen(fh: FileHandle, path: string): Promise<ElfInfo | null> {
  const ident = Buffer.alloc(64);
  const { bytesRead } = await fh.read(ident, 0, 64, 0);
  if (bytesRead < 4 || ident.readUInt32BE(0) !== 0x7f454c46) return null;
  const fail: (why: string) => never = (why) => {
    throw new ElfFormatError(path, why);
  };
  if (bytesRead < 16) fail('truncated ELF identification');
  const cls = ident[4];
  const data = ident[5];
  if (data === 2) fail('big-endian ELF is not supported');
  if (data !== 1) fail(`unknown ELF data encoding ${String(data)}`);
  if (cls !== 1 && cls !== 2) fail(`unknown ELF class ${String(cls)}`);
  const L: Layout = cls === 2 ? layout64(path) : layout32;
  const ehdrSize = L.elfClass === 64 ? 64 : 52;
  if (bytesRead < ehdrSize) fail('truncated ELF header');

  const machine = ident.readUInt16LE(18);
  const phoff = L.word(ident, L.elfClass === 64 ? 32 : 28);
  const phentsize = ident.readUInt16LE(L.elfClass === 64 ? 54 : 42);
  let phnum = ident.readUInt16LE(L.elfClass === 64 ? 56 : 44);
  if (phnum === PN_XNUM) phnum = await extendedPhnum(fh, ident, L, fail);
  if (phnum > MAX_PHNUM) fail(`implausible program header count ${phnum}`);
  if (phnum > 0 && phentsize < L.phdrSize) fail(`program header entry size ${phentsize} is too small`);

  const phdrs = await readExact(fh, phoff, phnum * phentsize, 'program headers', fail);
  const segments: Segment[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = i * phentsize;
    segments.push({
      type: phdrs.readUInt32LE(at),
      offset: L.word(phdrs, at + L.ph.offset),
      vaddr: L.word(phdrs, at + L.ph.vaddr),
      filesz: L.word(phdrs, at + L.ph.filesz),
    });
  }

  const info: ElfInfo = { needed: [], rpath: [], runpath: [], static: true, elfClass: L.elfClass, machine };

  const interp = segments.find((s) => s.type === PT_INTERP);
  if (interp) {
    if (interp.filesz > MAX_INTERP) fail('PT_INTERP is too long');
    const raw = await readExact(fh, interp.offset, interp.filesz, 'PT_INTERP', fail);
    const end = raw.indexOf(0);
    const value = raw.toString('utf8', 0, end === -1 ? raw.length : end);
    if (value === '') fail('PT_INTERP is empty');
    info.interpreter = value;
  }

  const dynamic = segments.find((s) => s.type === PT_DYNAMIC);
  if (dynamic) await readDynamic(fh, dynamic, segments, L, info, fail);

  info.static = info.interpreter === undefined && info.needed.length === 0;
  return info;
}

async function readDynamic(fh: FileHandle, dynamic: Segment, segments: Segment[], L: Layout, info: ElfInfo, fail: (why: string) => never): Promise<void> {
  if (dynamic.filesz > MAX_DYNAMIC) fail('PT_DYNAMIC is implausibly large');
  const dyn = await readExact(fh, dynamic.offset, dynamic.filesz, 'PT_DYNAMIC', fail);
  // The string offsets are only meaningful once DT_STRTAB is known, which may come later.
  const needed: number[] = [];
  const rpath: number[] = [];
  const runpath: number[] = [];
  let soname: number | undefined;
  let strtab: number | undefined;
  let strsz: number | undefined;
  const half = L.dynSize / 2;
  for (let at = 0; at + L.dynSize <= dyn.length; at += L.dynSize) {
    // d_tag is signed; every tag we care about is small and positive, and the others
    // (OS- and processor-specific ones included) are skipped.
    const tag = L.elfClass === 64 ? Number(dyn.readBigInt64LE(at)) : dyn.readInt32LE(at);
    if (tag === DT_NULL) break;
    if (!WANTED_TAGS.has(tag)) continue;
    // Only convert the values we use: other tags may hold values that do not fit a double.
    const val = L.word(dyn, at + half);
    if (tag === DT_NEEDED) needed.push(val);
    else if (tag === DT_RPATH) rpath.push(val);
    else if (tag === DT_RUNPATH) runpath.push(val);
    else if (tag === DT_SONAME) soname = val;
    else if (tag === DT_STRTAB) strtab = val;
    else if (tag === DT_STRSZ) strsz = val;
  }
  if (needed.length + rpath.length + runpath.length === 0 && soname === undefined) return;
  if (strtab === undefined) fail('PT_DYNAMIC has string references but no DT_STRTAB');

  // DT_STRTAB is a virtual address: the loader maps it, we have to find it in the file.
  const load = segments.find((s) => s.type === PT_LOAD && strtab >= s.vaddr && strtab < s.vaddr + s.filesz);
  if (!load) fail(`DT_STRTAB 0x${strtab.toString(16)} is in no PT_LOAD segment`);
  const fileOffset = load.offset + (strtab - load.vaddr);
  const available = load.filesz - (strtab - load.vaddr);
  const size = Math.min(strsz ?? available, available, MAX_STRTAB);
  const strings = await readExact(fh, fileOffset, size, 'DT_STRTAB', fail);
  const str = (off: number): string => {
    if (off >= strings.length) fail(`string offset ${off} is outside DT_STRTAB`);
    const end = strings.indexOf(0, off);
    if (end === -1) fail(`unterminated string at DT_STRTAB+${off}`);
    return strings.toString('utf8', off, end);
  };
  // Empty entries would mean "the current directory" to glibc; a rootfs has no use for that.
  const dirs = (offs: number[]): string[] => offs.flatMap((o) => str(o).split(':')).filter((d) => d !== '');
  info.needed = needed.map(str);
  info.rpath = dirs(rpath);
  info.runpath = dirs(runpath);
  if (soname !== undefined) info.soname = str(soname);
}

/** Reads the true program header count from section header 0, for files with >= 0xffff of them. */
async function extendedPhnum(fh: FileHandle, ehdr: Buffer, L: Layout, fail: (why: string) => never): Promise<number> {
  const shoff = L.word(ehdr, L.elfClass === 64 ? 40 : 32);
  const infoAt = L.elfClass === 64 ? 44 : 28;
  const sh0 = await readExact(fh, shoff, infoAt + 4, 'section header 0', fail);
  return sh0.readUInt32LE(infoAt);
}

async function readExact(fh: FileHandle, position: number, length: number, what: string, fail: (why: string) => never): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) fail(`truncated: ${what} at offset ${position} (${length} bytes) runs past the end of the file`);
    done += bytesRead;
  }
  return buf;
}

function layout64(path: string): Layout {
  return {
    elfClass: 64,
    word(b, at) {
      const v = b.readBigUInt64LE(at);
      // Offsets and addresses beyond 2^53 are not something a real binary has.
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfFormatError(path, `value 0x${v.toString(16)} is out of range`);
      return Number(v);
    },
    phdrSize: 56,
    ph: { offset: 8, vaddr: 16, filesz: 32 },
    dynSize: 16,
  };
}

const layout32: Layout = {
  elfClass: 32,
  word: (b, at) => b.readUInt32LE(at),
  phdrSize: 32,
  ph: { offset: 4, vaddr: 8, filesz: 16 },
  dynSize: 8,
};
