/**
 * `docker cp` for running containers: host files, directories or a tar stream into a
 * container, and a tar stream of a path out of it.
 *
 * The container's processes own its filesystem and may plant symlinks (`/evil -> /`) or swap
 * a directory for one while a copy runs. No path is therefore ever handed to the kernel as a
 * string through the container's tree: the container's root is opened once as a directory
 * fd (`/proc/PID/root`), every path below it is resolved with openat2(RESOLVE_IN_ROOT) — a
 * symlink to `/` means the container's `/` — and the tar entries below the destination with
 * openat2(RESOLVE_BENEATH), so an entry cannot leave the destination at all. Writes then
 * act on a single name in a pinned directory (`/proc/self/fd/N/name`, O_NOFOLLOW, O_EXCL),
 * where the kernel follows no symlink of the container's.
 */
import { once } from 'node:events';
import {
  chmodSync,
  constants as fsc,
  fchmodSync,
  fchownSync,
  fstatSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  readdirSync,
  readlinkSync,
  rmdirSync,
  statfsSync,
  unlinkSync,
  writeSync,
  type BigIntStats,
  type Stats,
} from 'node:fs';
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import { basename, join, posix, resolve as resolveHost } from 'node:path';
import { Readable } from 'node:stream';
import { extract as tarExtract, pack as tarPack, type Headers, type Pack } from 'tar-stream';
import { AbortError, CtrkitError } from '../errors.js';
import { CopyError } from './errors.js';
import { logger } from '../log.js';
import {
  AT_FDCWD,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOFOLLOW,
  O_PATH,
  O_RDONLY,
  O_WRONLY,
  RESOLVE_BENEATH,
  RESOLVE_IN_ROOT,
  RESOLVE_NO_MAGICLINKS,
  S_IFIFO,
} from '../sys/constants.js';
import { close, mkdirat, mknodat, openat, openat2, pidfdOpen, pidfdSendSignal, symlinkat } from '../sys/libc.js';
import { SysError } from '../sys/sys-error.js';

const log = logger('ctrkit:copy');

/** Options of `RunningContainer.copyTo`. */
export interface CopyToOptions {
  /** Cancels the copy; what was written so far stays. */
  readonly signal?: AbortSignal;
  /**
   * Refuse to replace an existing directory with a non-directory or the other way round
   * (Docker's `noOverwriteDirNonDir`, which `docker cp` always sets). When false, such a
   * directory is removed, without following any symlink in it. @defaultValue true
   */
  readonly noOverwriteDirNonDir?: boolean;
}

/** Options of `RunningContainer.copyFrom`. */
export interface CopyFromOptions {
  /** Cancels the copy: the stream is destroyed with an {@link AbortError}. */
  readonly signal?: AbortSignal;
}

/**
 * Why a copy was refused or failed (`code` is always `ERR_COPY`):
 * - `not-found` — the path (in the container, or the host source) does not exist;
 * - `not-a-directory` — a directory was needed (the destination of a tar stream, a path with a trailing `/`, a parent);
 * - `unsafe-entry` — a tar entry that would leave the destination: `..`, an absolute name, a path through a symlink that leads out, a hardlink to outside;
 * - `overwrite` — a directory would replace a non-directory or the other way round;
 * - `container-gone` — the process is not running (any more);
 * - `unreadable` — a file in the container could not be read whole (a pseudo file that refuses reads, a file that shrank);
 * - `io` — any other failure of the filesystem, with the system error as `cause`.
 */

// ---------------------------------------------------------------------------------------
// fd-relative helpers
// ---------------------------------------------------------------------------------------

/** Resolution inside the container: `/` and `..` stop at its root; /proc magic links are refused. */
const IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
/** Resolution of tar entries: anything that would leave the destination fails with EXDEV. */
const BENEATH = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;

/** The path of an fd, or of one name inside a directory fd: the kernel follows no symlink to get there. */
function fdPath(fd: number, name?: string): string {
  return name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`;
}

function sysCode(e: unknown): string | undefined {
  return e instanceof SysError || (e instanceof Error && 'code' in e) ? String((e as { code: unknown }).code) : undefined;
}

/**
 * openat2 that retries EAGAIN: the kernel returns it when a rename or mount raced the
 * lookup under RESOLVE_IN_ROOT/BENEATH, rather than risk a wrong answer.
 */
function open2(dirfd: number, rel: string, flags: number, resolve: number, shown: string): number {
  for (let attempt = 0; ; attempt++) {
    try {
      return openat2(dirfd, rel === '' ? '.' : rel, flags | O_CLOEXEC, resolve, shown);
    } catch (e) {
      if (sysCode(e) !== 'EAGAIN' || attempt >= 32) throw e;
    }
  }
}

/** lstat of one name in a directory fd, or null when nothing is there. */
function lstatAt(dirfd: number, name: string): Stats | null {
  return lstatSync(fdPath(dirfd, name), { throwIfNoEntry: false }) ?? null;
}

/** Runs `fn` with an fd that is closed afterwards, whatever happens. */
async function withFd<T>(fd: number, fn: (fd: number) => T | Promise<T>): Promise<T> {
  try {
    return await fn(fd);
  } finally {
    close(fd);
  }
}

/** A path inside the container, normalized lexically (as `docker cp` does) from its `/`. */
function containerRel(path: string): string {
  return posix.resolve('/', path).slice(1);
}

// ---------------------------------------------------------------------------------------
// The container's root
// ---------------------------------------------------------------------------------------

/**
 * Opens the root of process `pid` as an O_PATH directory fd. The process is pinned with a
 * pidfd first and checked alive after the open, so a PID reused in between cannot hand us
 * another process's root.
 */
function openContainerRoot(pid: number): number {
  const shown = `container ${pid}`;
  let pidfd: number;
  try {
    pidfd = pidfdOpen(pid);
  } catch (e) {
    throw new CopyError('container-gone', shown, 'no such process', e);
  }
  try {
    let root: number;
    try {
      root = openat(AT_FDCWD, `/proc/${pid}/root`, O_PATH | O_DIRECTORY | O_CLOEXEC);
    } catch (e) {
      throw new CopyError('container-gone', shown, `cannot open its root: ${sysCode(e) ?? String(e)}`, e);
    }
    if (!pidfdSendSignal(pidfd, 0)) {
      close(root);
      throw new CopyError('container-gone', shown, 'the process exited');
    }
    return root;
  } finally {
    close(pidfd);
  }
}

/** Opens `rel` inside the container root (symlinks followed, in the container); -1 when it does not exist. */
function openInContainer(root: number, rel: string, flags: number, shown: string): number {
  try {
    return open2(root, rel, flags, IN_ROOT, shown);
  } catch (e) {
    const code = sysCode(e);
    if (code === 'ENOENT') return -1;
    if (code === 'ENOTDIR') throw new CopyError('not-a-directory', shown, 'a component of the path is not a directory', e);
    if (code === 'ELOOP') throw new CopyError('not-found', shown, 'too many levels of symlinks, or a /proc magic link', e);
    throw new CopyError('io', shown, `cannot open: ${code ?? String(e)}`, e);
  }
}

// ---------------------------------------------------------------------------------------
// copyToContainer
// ---------------------------------------------------------------------------------------

/** Where an archive is extracted: a pinned directory and, for a host source, the name to give it. */
interface Destination {
  readonly dirFd: number;
  readonly name: string | undefined;
}

/**
 * Decides where a host file or directory goes, like `docker cp`: into `containerPath` under
 * its own basename when that is an existing directory (symlinks followed inside the
 * container), else as `containerPath` itself, whose parent must exist.
 */
function hostDestination(root: number, containerPath: string, sourceIsDir: boolean): Destination {
  const rel = containerRel(containerPath);
  const fd = openInContainer(root, rel, O_PATH, containerPath);
  if (fd >= 0) {
    if (fstatSync(fd).isDirectory()) return { dirFd: fd, name: undefined };
    close(fd);
    if (sourceIsDir) throw new CopyError('overwrite', containerPath, 'cannot copy a directory over a non-directory');
  }
  if (/\/\.?$/.test(containerPath)) throw new CopyError('not-a-directory', containerPath, 'the destination directory does not exist');
  const parent = openInContainer(root, posix.dirname(`/${rel}`).slice(1), O_PATH | O_DIRECTORY, containerPath);
  if (parent < 0) throw new CopyError('not-found', containerPath, 'the parent directory does not exist in the container');
  // An existing non-directory (or a symlink to one, or a dangling one) is replaced by name:
  // the copy never writes through a symlink of the container's.
  return { dirFd: parent, name: posix.basename(`/${rel}`) };
}

/** The existing directory a tar stream is extracted into. */
function streamDestination(root: number, containerPath: string): Destination {
  const fd = openInContainer(root, containerRel(containerPath), O_PATH, containerPath);
  if (fd < 0) throw new CopyError('not-found', containerPath, 'the destination directory does not exist in the container');
  if (!fstatSync(fd).isDirectory()) {
    close(fd);
    throw new CopyError('not-a-directory', containerPath, 'a tar stream can only be extracted into a directory');
  }
  return { dirFd: fd, name: undefined };
}

/**
 * Copies a host file or directory, or a tar stream, into the running container whose init
 * is `pid` (as the host sees it), like `docker cp`:
 *
 * - a host path (`source` a string; a symlink is copied as a symlink): when `containerPath`
 *   is an existing directory it goes inside under its basename, otherwise it is created as
 *   `containerPath` (whose parent must exist) — an existing file there is replaced;
 * - a tar stream: extracted into `containerPath`, which must be a directory.
 *
 * Every path is resolved inside the container's root (a symlink to `/` means the
 * container's `/`), and nothing is ever written through a symlink: tar entries with `..`,
 * absolute names, a symlink on their path that leads out of the destination, or a hardlink
 * to anything outside it are refused with a {@link CopyError} (`unsafe-entry`); entries
 * before the refused one stay written. Device nodes in a tar are skipped (a host disk's
 * major:minor has no business in a container); fifos are created, sockets never appear in
 * a tar. Owners are kept from the tar or the host file when running as root (they are host
 * ids: a container with a user namespace would see them through its map, which is not
 * translated here — copying into such containers is out of scope). Extended attributes in
 * the tar are not applied.
 *
 * @param pid - the container's init process, as the host sees it
 * @param source - a host path, or a readable tar stream (plain, not compressed)
 * @param containerPath - the destination inside the container (relative paths start at its `/`)
 * @param options - cancellation, and whether a directory may replace a non-directory or the other way round
 * @throws {@link CopyError} (`ERR_COPY`) with a {@link CopyErrorReason}
 * @throws {@link AbortError} when `options.signal` aborts
 */
export async function copyToContainer(
  pid: number,
  source: string | NodeJS.ReadableStream | Readable,
  containerPath: string,
  options: CopyToOptions = {},
): Promise<void> {
  const { signal } = options;
  if (signal?.aborted) throw new AbortError(signal.reason);
  let tar: AsyncIterable<unknown>;
  let dest: Destination;
  const root = openContainerRoot(pid);
  try {
    if (typeof source === 'string') {
      const st = await lstat(source).catch((e: unknown) => {
        throw new CopyError('not-found', source, `cannot read the host source: ${sysCode(e) ?? String(e)}`, e);
      });
      dest = hostDestination(root, containerPath, st.isDirectory());
      // The host's `/` has no basename: its contents go into the destination directory.
      const name = dest.name ?? (basename(resolveHost(source)) || '.');
      tar = packHostPath(source, name, signal);
    } else {
      dest = streamDestination(root, containerPath);
      // Node streams and tar-stream's own (streamx) are async iterables; an old-style
      // stream is wrapped into one.
      tar = Symbol.asyncIterator in source ? (source as AsyncIterable<unknown>) : new Readable().wrap(source);
    }
  } finally {
    close(root); // the destination fd pins what is needed from here on
  }
  await withFd(dest.dirFd, (fd) => extractInto(fd, tar, options.noOverwriteDirNonDir ?? true, signal));
}

/** A tar stream of a host path, its entries named `name/...` (the host is trusted; symlinks are not followed). */
function packHostPath(source: string, name: string, signal: AbortSignal | undefined): Pack {
  const pack = tarPack();
  pack.on('error', () => undefined); // reaches the extractor through the pack's iterator
  const links = new Map<string, string>();
  void (async () => {
    await addHostEntry(pack, source, name, links, signal);
    pack.finalize();
  })().catch((e: unknown) => pack.destroy(e as Error));
  return pack;
}

async function addHostEntry(pack: Pack, path: string, name: string, links: Map<string, string>, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) throw new AbortError(signal.reason);
  const st = await lstat(path, { bigint: true });
  const header = baseHeader(name, st);
  if (st.isDirectory()) {
    await addEntry(pack, { ...header, name: `${name}/`, type: 'directory' });
    for (const child of (await readdir(path)).sort()) await addHostEntry(pack, join(path, child), `${name}/${child}`, links, signal);
    return;
  }
  if (st.isFile()) {
    const first = hardlinkOf(links, st, name);
    if (first !== undefined) return addEntry(pack, { ...header, type: 'link', linkname: first, size: 0 });
    const size = Number(st.size);
    const fh = await open(path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    try {
      return await addEntry(pack, { ...header, type: 'file', size }, size > 0 ? fh.createReadStream({ autoClose: false, end: size - 1 }) : undefined);
    } finally {
      await fh.close();
    }
  }
  const special = specialHeader(st, name, () => readlink(path));
  if (special) await addEntry(pack, { ...header, ...(await special) });
}

// ---------------------------------------------------------------------------------------
// Extraction into a pinned directory
// ---------------------------------------------------------------------------------------

interface DeferredDir {
  readonly rel: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtime: Date;
}

/**
 * The components of a tar entry name below the destination. Absolute names and `..` are
 * refused rather than cleaned: a copy has no business naming its way up, and refusing is
 * never wrong about where `a/../../x` leads.
 */
function entryComponents(name: string): string[] {
  if (name.includes('\0')) throw new CopyError('unsafe-entry', name, 'the name holds a NUL byte');
  if (name.startsWith('/')) throw new CopyError('unsafe-entry', name, 'absolute entry names are refused');
  const parts = name.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.includes('..')) throw new CopyError('unsafe-entry', name, '".." would climb out of the destination');
  return parts;
}

/** A number from a PAX record (large ids), else from the ustar header. */
function paxNumber(header: Headers, key: 'uid' | 'gid'): number {
  const pax = (header as Headers & { pax?: Record<string, string> }).pax;
  const v = pax?.[key];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : (header[key] ?? 0);
}

/** Writes tar entries into one directory of the container, each through pinned directory fds. */
class Extractor {
  private readonly dirs: DeferredDir[] = [];
  private readonly chown = process.getuid?.() === 0;

  constructor(
    private readonly destFd: number,
    private readonly noOverwriteDirNonDir: boolean,
  ) {}

  async entry(header: Headers, body: AsyncIterable<Buffer>): Promise<void> {
    const components = entryComponents(header.name);
    if (components.length === 0) {
      // A "./" entry describes the destination itself, which keeps its own owner and mode.
      if (header.type !== 'directory') throw new CopyError('unsafe-entry', header.name, `a ${header.type} cannot replace the destination directory`);
      return;
    }
    try {
      const parent = this.parentDir(components.slice(0, -1), header.name);
      await withFd(parent, (p) => this.write(p, components.at(-1)!, components.join('/'), header, body));
    } catch (e) {
      if (e instanceof CtrkitError && !(e instanceof SysError)) throw e;
      throw new CopyError('io', header.name, `cannot write: ${sysCode(e) ?? String(e)}`, e);
    }
  }

  private async write(p: number, name: string, rel: string, header: Headers, body: AsyncIterable<Buffer>): Promise<void> {
    switch (header.type) {
      case 'directory':
        return this.directory(p, name, rel, header);
      case 'file':
      case 'contiguous-file':
      case null:
      case undefined:
        this.clear(p, name, header.name);
        return this.file(p, name, header, body);
      case 'symlink':
        this.clear(p, name, header.name);
        symlinkat(header.linkname ?? '', p, name, header.name);
        return this.nodeMetadata(p, name, header);
      case 'link':
        return this.hardlink(p, name, header);
      case 'fifo':
        this.clear(p, name, header.name);
        mknodat(p, name, S_IFIFO | 0o600, 0n, header.name);
        chmodFifoAt(p, name, (header.mode ?? 0o644) & 0o7777, header.name);
        return this.nodeMetadata(p, name, header);
      default:
        log('copy: skipping %s entry %s', header.type, header.name);
    }
  }

  /**
   * Opens (creating what is missing, mode 0755 like tar) the directory holding an entry.
   * Every prefix is resolved from the destination with RESOLVE_BENEATH, so a symlink of the
   * container's or of the archive's can lead around inside it but never out.
   */
  private parentDir(components: readonly string[], entry: string): number {
    let fd = open2(this.destFd, '.', O_PATH | O_DIRECTORY, BENEATH, entry);
    try {
      for (let i = 0; i < components.length; i++) {
        const prefix = components.slice(0, i + 1).join('/');
        let next = this.openBeneath(prefix, entry);
        if (next < 0) {
          try {
            mkdirat(fd, components[i]!, 0o755, entry);
          } catch (e) {
            if (sysCode(e) !== 'EEXIST') throw e; // EEXIST: a dangling symlink, or a racing creator
          }
          next = this.openBeneath(prefix, entry);
          if (next < 0) throw new CopyError('unsafe-entry', entry, `"${prefix}" on its path is a symlink to nothing inside the destination`);
        }
        close(fd);
        fd = next;
      }
      const result = fd;
      fd = -1;
      return result;
    } finally {
      if (fd >= 0) close(fd);
    }
  }

  /** O_PATH fd of a directory below the destination, or -1 when it does not exist. */
  private openBeneath(rel: string, entry: string): number {
    try {
      return open2(this.destFd, rel, O_PATH | O_DIRECTORY, BENEATH, entry);
    } catch (e) {
      const code = sysCode(e);
      if (code === 'ENOENT') return -1;
      if (code === 'EXDEV') throw new CopyError('unsafe-entry', entry, `a symlink on its path ("${rel}") leads outside the destination`, e);
      if (code === 'ELOOP') throw new CopyError('unsafe-entry', entry, `too many symlinks, or a magic link, on its path ("${rel}")`, e);
      if (code === 'ENOTDIR') throw new CopyError('unsafe-entry', entry, `"${rel}" on its path is not a directory`, e);
      throw e;
    }
  }

  /** Makes way for a new entry: removes what is there (never following it) unless a directory must stay. */
  private clear(p: number, name: string, entry: string, keepDirectory = false): void {
    const st = lstatAt(p, name);
    if (!st) return;
    if (st.isDirectory()) {
      if (keepDirectory) return;
      if (this.noOverwriteDirNonDir) throw new CopyError('overwrite', entry, 'would replace a directory with a non-directory');
      removeTreeAt(p, name);
      return;
    }
    if (keepDirectory && this.noOverwriteDirNonDir) throw new CopyError('overwrite', entry, 'would replace a non-directory with a directory');
    unlinkSync(fdPath(p, name));
  }

  private directory(p: number, name: string, rel: string, header: Headers): void {
    if (this.isDirectorySymlink(p, name, rel, header.name)) return;
    this.clear(p, name, header.name, true);
    if (!lstatAt(p, name)) mkdirat(p, name, 0o700, header.name);
    // Modes, owners and times of directories are set at the end: every later entry would
    // bump the mtime, and a read-only mode would stop the directory being filled.
    this.dirs.push({
      rel,
      mode: (header.mode ?? 0o755) & 0o7777,
      uid: paxNumber(header, 'uid'),
      gid: paxNumber(header, 'gid'),
      mtime: header.mtime ?? new Date(0),
    });
  }

  /**
   * True when `name` is a symlink to a directory inside the destination (`lib -> usr/lib`):
   * kept, as GNU tar's --keep-directory-symlink does, so a tar of a merged-/usr tree can be
   * copied into one. The entries below then go through it, still beneath the destination.
   */
  private isDirectorySymlink(p: number, name: string, rel: string, entry: string): boolean {
    if (!lstatAt(p, name)?.isSymbolicLink()) return false;
    try {
      const fd = this.openBeneath(rel, entry);
      if (fd < 0) return false;
      close(fd);
      return true;
    } catch {
      return false; // leads out, or to a non-directory: treated as the non-directory it is
    }
  }

  private async file(p: number, name: string, header: Headers, body: AsyncIterable<Buffer>): Promise<void> {
    // O_EXCL|O_NOFOLLOW: the name was just cleared, so whatever the container put there
    // since (a symlink above all) makes this fail instead of being written through.
    const fd = openat(p, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600, header.name);
    await withFd(fd, async () => {
      for await (const chunk of body) {
        for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off);
      }
      if (this.chown) fchownSync(fd, paxNumber(header, 'uid'), paxNumber(header, 'gid'));
      fchmodSync(fd, (header.mode ?? 0o644) & 0o7777); // after chown, which clears setuid bits
      const mtime = header.mtime ?? new Date(0);
      futimesSync(fd, mtime, mtime);
    });
  }

  private async hardlink(p: number, name: string, header: Headers): Promise<void> {
    const linkname = header.linkname ?? '';
    let target: string[];
    try {
      target = entryComponents(linkname);
    } catch (e) {
      throw new CopyError('unsafe-entry', header.name, `hardlink target "${linkname}" would leave the destination`, e);
    }
    if (target.length === 0) throw new CopyError('unsafe-entry', header.name, 'a hardlink to the destination directory itself');
    const tp = this.openBeneath(target.slice(0, -1).join('/'), header.name);
    if (tp < 0) throw new CopyError('unsafe-entry', header.name, `hardlink target "${linkname}" does not exist in the destination`);
    await withFd(tp, () => {
      const tname = target.at(-1)!;
      const st = lstatAt(tp, tname);
      if (!st?.isFile()) throw new CopyError('unsafe-entry', header.name, `hardlink target "${linkname}" is not a regular file in the destination`);
      const here = lstatAt(p, name);
      if (here && here.ino === st.ino && here.dev === st.dev) return;
      this.clear(p, name, header.name);
      linkSync(fdPath(tp, tname), fdPath(p, name)); // linkat without AT_SYMLINK_FOLLOW: never follows
    });
  }

  /** Owner and times of a symlink or fifo, on the name itself (l* calls follow nothing). */
  private nodeMetadata(p: number, name: string, header: Headers): void {
    const path = fdPath(p, name);
    if (this.chown) lchownSync(path, paxNumber(header, 'uid'), paxNumber(header, 'gid'));
    const mtime = header.mtime ?? new Date(0);
    lutimesSync(path, mtime, mtime);
  }

  /** Directory modes, owners and times, deepest first, each re-resolved beneath the destination. */
  finish(): void {
    for (const d of this.dirs.reverse()) {
      let fd: number;
      try {
        fd = open2(this.destFd, d.rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, BENEATH, d.rel);
      } catch (e) {
        log('copy: directory %s gone or replaced before its mode was set: %s', d.rel, (e as Error).message);
        continue;
      }
      try {
        if (this.chown) fchownSync(fd, d.uid, d.gid);
        fchmodSync(fd, d.mode);
        futimesSync(fd, d.mtime, d.mtime);
      } finally {
        close(fd);
      }
    }
  }
}

/**
 * chmod of a fifo just made, by name: opened O_PATH|O_NOFOLLOW, checked, then changed through
 * /proc/self/fd/N, which acts on the inode the fd holds (fchmod refuses O_PATH fds, and
 * opening a fifo for real could block).
 */
function chmodFifoAt(p: number, name: string, mode: number, entry: string): void {
  const fd = openat(p, name, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0, entry);
  try {
    if (fstatSync(fd).isFIFO()) chmodSync(fdPath(fd), mode);
  } finally {
    close(fd);
  }
}

/**
 * Removes a name and, if it is a directory, everything below it, walking directory fds
 * opened with O_NOFOLLOW: a directory the container swaps for a symlink mid-way makes the
 * open fail instead of sending the removal elsewhere.
 */
function removeTreeAt(p: number, name: string): void {
  const st = lstatAt(p, name);
  if (!st) return;
  if (!st.isDirectory()) {
    unlinkSync(fdPath(p, name));
    return;
  }
  const d = openat(p, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, name);
  try {
    for (const child of readdirSync(fdPath(d))) removeTreeAt(d, child);
  } finally {
    close(d);
  }
  rmdirSync(fdPath(p, name));
}

/** Feeds a tar stream to the extractor, entry by entry. */
async function extractInto(destFd: number, tar: AsyncIterable<unknown>, noOverwriteDirNonDir: boolean, signal: AbortSignal | undefined): Promise<void> {
  const extract = tarExtract();
  const destroyInput = (e?: Error): void => {
    const s = tar as { destroy?: (e?: Error) => void };
    if (typeof s.destroy === 'function') s.destroy(e);
  };
  const onAbort = (): void => {
    extract.destroy(new AbortError(signal?.reason));
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const feeding = (async () => {
    for await (const chunk of tar) {
      if (!extract.write(chunk as Buffer)) await once(extract, 'drain');
    }
    extract.end();
  })().catch((e: unknown) => {
    extract.destroy(e as Error);
  });
  const extractor = new Extractor(destFd, noOverwriteDirNonDir);
  try {
    for await (const entry of extract) {
      try {
        await extractor.entry(entry.header, entry as AsyncIterable<Buffer>);
      } finally {
        entry.resume(); // drain what the entry did not read, so the next header comes
      }
    }
    await feeding;
    extractor.finish();
  } catch (e) {
    destroyInput();
    if (signal?.aborted) throw new AbortError(signal.reason);
    throw e;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

// ---------------------------------------------------------------------------------------
// Tar headers, shared by both directions
// ---------------------------------------------------------------------------------------

/** The largest id a ustar header field holds (6 octal digits); larger ones go in a PAX record. */
const USTAR_ID_MAX = 0o777777;

function baseHeader(name: string, st: BigIntStats): Headers & { pax?: Record<string, string> } {
  const [uid, gid] = [Number(st.uid), Number(st.gid)];
  const big = uid > USTAR_ID_MAX || gid > USTAR_ID_MAX;
  return { name, mode: Number(st.mode & 0o7777n), uid, gid, mtime: st.mtime, ...(big ? { pax: { uid: String(uid), gid: String(gid) } } : {}) };
}

/** Major and minor of a Linux dev_t (glibc's gnu_dev_major/minor bit layout). */
function deviceNumbers(d: bigint): { devmajor: number; devminor: number } {
  return {
    devmajor: Number(((d & 0xfff00n) >> 8n) | ((d & 0xfffff00000000000n) >> 32n)),
    devminor: Number((d & 0xffn) | ((d & 0xffffff00000n) >> 12n)),
  };
}

/** The header part of a symlink, device or fifo (never opened); null for a socket, which a tar cannot hold. */
function specialHeader(st: BigIntStats, name: string, readLink: () => Promise<string> | string): Promise<Partial<Headers>> | null {
  if (st.isSymbolicLink()) return Promise.resolve(readLink()).then((linkname) => ({ type: 'symlink' as const, linkname }));
  if (st.isCharacterDevice() || st.isBlockDevice()) {
    return Promise.resolve({ type: st.isCharacterDevice() ? ('character-device' as const) : ('block-device' as const), ...deviceNumbers(st.rdev) });
  }
  if (st.isFIFO()) return Promise.resolve({ type: 'fifo' as const });
  log('copy: skipping socket %s (a tar cannot hold one)', name);
  return null;
}

/** The first entry name of a multiply-linked file, or undefined (and remembered) for its first sighting. */
function hardlinkOf(links: Map<string, string>, st: BigIntStats, name: string): string | undefined {
  if (st.nlink <= 1n) return undefined;
  const key = `${st.dev}:${st.ino}`;
  const first = links.get(key);
  if (first === undefined) links.set(key, name);
  return first;
}

/** Adds one entry and resolves once tar-stream has taken all of it. */
async function addEntry(pack: Pack, header: Headers, data?: AsyncIterable<unknown> | Iterable<unknown>): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
    sink.on('error', reject); // a pack destroyed mid-entry fails the entry, not the process
    if (data === undefined) {
      if (header.type === 'file') sink.end(); // an empty regular file
      return;
    }
    void (async () => {
      try {
        for await (const chunk of data) {
          if (!sink.write(chunk as Buffer)) await once(sink, 'drain');
        }
        sink.end();
      } catch (e) {
        sink.destroy(e as Error);
        reject(e);
      }
    })();
  });
}

// ---------------------------------------------------------------------------------------
// copyFromContainer
// ---------------------------------------------------------------------------------------

/**
 * Filesystems whose files report a size that is not their content's (0 in /proc, 4096 in
 * /sys): their files are read whole first and archived with the length actually read.
 */
const PSEUDO_FS = new Set([
  0x9fa0, // proc
  0x62656572, // sysfs
  0x63677270, // cgroup2
  0x27e0eb, // cgroup
  0x64626720, // debugfs
  0x74726163, // tracefs
  0x73636673, // securityfs
  0x62656570, // configfs
  0xde5e81e4, // efivarfs
]);
/** The most of a pseudo file read into memory. */
const PSEUDO_MAX = 16 * 1024 * 1024;

/** Walks a tree of the container through O_PATH fds and writes it into a tar pack. */
class ContainerArchiver {
  private readonly links = new Map<string, string>();

  constructor(
    private readonly pack: Pack,
    private readonly signal: AbortSignal | undefined,
  ) {}

  private check(): void {
    if (this.signal?.aborted) throw new AbortError(this.signal.reason);
    if (this.pack.destroyed) throw new AbortError('the stream was destroyed');
  }

  /** Archives `name` of directory `dirFd` as `entryName`; a name that vanished meanwhile is skipped. */
  async addChild(dirFd: number, name: string, entryName: string): Promise<void> {
    let fd: number;
    try {
      fd = openat(dirFd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0, entryName);
    } catch (e) {
      if (sysCode(e) === 'ENOENT') return log('copy: %s vanished while being archived', entryName);
      throw new CopyError('io', entryName, `cannot open: ${sysCode(e) ?? String(e)}`, e);
    }
    // The link's text is read by name: a swap in between yields another link's text (never
    // followed, so harmless), or an error that must still be a CopyError.
    const readLink = () => {
      try {
        return readlinkSync(fdPath(dirFd, name));
      } catch (e) {
        throw new CopyError('unreadable', entryName, `cannot read the symlink: ${sysCode(e) ?? String(e)}`, e);
      }
    };
    await withFd(fd, (f) => this.add(f, entryName, readLink));
  }

  /**
   * Archives the object an O_PATH fd holds. Its type comes from fstat of that fd, so a swap
   * after the open changes nothing: a directory is listed through its fd, a file's content
   * read by reopening the fd itself, a symlink is recorded, never followed.
   */
  async add(fd: number, entryName: string, readLink: () => string): Promise<void> {
    this.check();
    const st = fstatSync(fd, { bigint: true });
    const header = baseHeader(entryName, st);
    if (st.isDirectory()) return this.directory(fd, header);
    if (st.isFile()) return this.file(fd, st, header);
    const special = specialHeader(st, entryName, readLink);
    if (special) await addEntry(this.pack, { ...header, ...(await special) });
  }

  private async directory(fd: number, header: Headers): Promise<void> {
    await addEntry(this.pack, { ...header, name: `${header.name}/`, type: 'directory' });
    let children: string[];
    try {
      children = readdirSync(fdPath(fd)).sort();
    } catch (e) {
      throw new CopyError('unreadable', header.name, `cannot list the directory: ${sysCode(e) ?? String(e)}`, e);
    }
    for (const child of children) await this.addChild(fd, child, `${header.name}/${child}`);
  }

  private async file(fd: number, st: BigIntStats, header: Headers): Promise<void> {
    const first = hardlinkOf(this.links, st, header.name);
    if (first !== undefined) return addEntry(this.pack, { ...header, type: 'link', linkname: first, size: 0 });
    // Reopening /proc/self/fd/N opens the very inode the O_PATH fd holds. O_NONBLOCK: a
    // pseudo file that would wait (a kmsg, a trace pipe) says EAGAIN instead of hanging.
    const fh = await open(fdPath(fd), fsc.O_RDONLY | fsc.O_NONBLOCK).catch((e: unknown) => {
      throw new CopyError('unreadable', header.name, `cannot open: ${sysCode(e) ?? String(e)}`, e);
    });
    try {
      if (PSEUDO_FS.has(statfsSync(fdPath(fd)).type)) {
        const data = await readAll(fh, header.name);
        return await addEntry(this.pack, { ...header, type: 'file', size: data.length }, data.length ? [data] : undefined);
      }
      const size = Number(st.size);
      await addEntry(this.pack, { ...header, type: 'file', size }, size ? readExactly(fh, size, header.name) : undefined);
    } finally {
      await fh.close();
    }
  }
}

type FileHandle = Awaited<ReturnType<typeof open>>;

/** The whole content of a pseudo file, read until EOF (bounded). */
async function readAll(fh: FileHandle, entry: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const buf = Buffer.alloc(65536);
    const { bytesRead } = await fh.read(buf, 0, buf.length, null).catch((e: unknown) => {
      throw new CopyError('unreadable', entry, `cannot read: ${sysCode(e) ?? String(e)}`, e);
    });
    if (bytesRead === 0) return Buffer.concat(chunks, total);
    chunks.push(buf.subarray(0, bytesRead));
    total += bytesRead;
    if (total > PSEUDO_MAX) throw new CopyError('unreadable', entry, `a pseudo file larger than ${PSEUDO_MAX} bytes`);
  }
}

/** Exactly `size` bytes of a file (the size its header announced): a file that shrank is an error. */
async function* readExactly(fh: FileHandle, size: number, entry: string): AsyncGenerator<Buffer> {
  let left = size;
  while (left > 0) {
    const buf = Buffer.alloc(Math.min(left, 65536));
    const { bytesRead } = await fh.read(buf, 0, buf.length, null).catch((e: unknown) => {
      throw new CopyError('unreadable', entry, `cannot read: ${sysCode(e) ?? String(e)}`, e);
    });
    if (bytesRead === 0) throw new CopyError('unreadable', entry, `the file shrank while being read (${left} of ${size} bytes missing)`);
    left -= bytesRead;
    yield buf.subarray(0, bytesRead);
  }
}

/** What copyFrom archives: an O_PATH fd of the object, its entry name, and how to read it as a symlink. */
interface Source {
  readonly fd: number;
  readonly entryName: string;
  readonly readLink: () => string;
}

/**
 * Resolves the source inside the container: the parent with symlinks followed (in the
 * container), the last component not followed — a symlink is archived as a symlink — except
 * with a trailing `/`, which asks for the directory a symlink leads to (as with `docker cp`).
 */
function resolveSource(root: number, containerPath: string): Source {
  const rel = containerRel(containerPath);
  if (rel === '' || /\/\.?$/.test(containerPath)) {
    const fd = openInContainer(root, rel, O_PATH | O_DIRECTORY, containerPath);
    if (fd < 0) throw new CopyError('not-found', containerPath, 'no such directory in the container');
    return { fd, entryName: rel === '' ? '.' : posix.basename(`/${rel}`), readLink: () => '' };
  }
  const parent = openInContainer(root, posix.dirname(`/${rel}`).slice(1), O_PATH | O_DIRECTORY, containerPath);
  if (parent < 0) throw new CopyError('not-found', containerPath, 'no such file or directory in the container');
  const name = posix.basename(`/${rel}`);
  try {
    const fd = openat(parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0, containerPath);
    const target = ((): string => {
      try {
        return readlinkSync(fdPath(parent, name));
      } catch {
        return ''; // not a symlink; only used when fstat says it is one
      }
    })();
    return { fd, entryName: name, readLink: () => target };
  } catch (e) {
    if (sysCode(e) === 'ENOENT') throw new CopyError('not-found', containerPath, 'no such file or directory in the container', e);
    throw new CopyError('io', containerPath, `cannot open: ${sysCode(e) ?? String(e)}`, e);
  } finally {
    close(parent);
  }
}

/**
 * A tar stream of `containerPath` inside the running container whose init is `pid` (as the
 * host sees it), like `docker cp CONTAINER:PATH -`: a directory's entries are prefixed with
 * its basename (`.` for `/`), a file or symlink is a single entry.
 *
 * Symlinks are archived as symlinks, never followed (a trailing `/` on `containerPath`
 * follows the last one, as with `docker cp`); the path's parents are resolved inside the
 * container's root. Files are read by reopening the O_PATH fd that was checked, so a
 * concurrent symlink swap cannot make it read a host file. The container's mounts are
 * seen as it sees them; files of /proc, /sys and cgroupfs are read whole (their stat size
 * is not their length), opened non-blocking so nothing hangs, and one that refuses to be
 * read ends the stream with a {@link CopyError} (`unreadable`). Devices and fifos are
 * archived as headers only, never opened; sockets are skipped. Owners are the host's ids
 * (user-namespaced containers are out of scope).
 *
 * The path is resolved before this returns: a missing path or a stopped container throws
 * here; later failures are emitted as the stream's `error`.
 *
 * @param pid - the container's init process, as the host sees it
 * @param containerPath - the path inside the container (relative paths start at its `/`)
 * @param options - cancellation
 * @returns a plain (uncompressed) tar stream
 * @throws {@link CopyError} (`not-found`, `not-a-directory`, `container-gone`) synchronously
 */
export function copyFromContainer(pid: number, containerPath: string, options: CopyFromOptions = {}): Readable {
  const { signal } = options;
  if (signal?.aborted) throw new AbortError(signal.reason);
  const root = openContainerRoot(pid);
  let source: Source;
  try {
    source = resolveSource(root, containerPath);
  } finally {
    close(root);
  }
  const pack = tarPack();
  // Failures reach the caller through `out`; Readable.from hands its destroy error to the
  // pack's iterator, which re-emits it on the pack, where nobody listens.
  pack.on('error', () => undefined);
  const out = Readable.from(pack, { objectMode: false });
  const onAbort = (): void => {
    out.destroy(new AbortError(signal?.reason));
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  out.once('close', () => {
    signal?.removeEventListener('abort', onAbort);
    if (!pack.destroyed) pack.destroy();
  });
  const archiver = new ContainerArchiver(pack, signal);
  void withFd(source.fd, (fd) => archiver.add(fd, source.entryName, source.readLink))
    .then(() => pack.finalize())
    .catch((e: unknown) => {
      if (!out.destroyed) out.destroy(e as Error);
      if (!pack.destroyed) pack.destroy();
    });
  return out;
}
