/**
 * Safe layer unpacking: a tar (gzip or plain) into a directory, every path resolved inside
 * it, nothing ever written through a symlink, every refusal a typed error naming the entry.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import {
  chmodSync,
  closeSync,
  constants as fsc,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { extract as tarExtract, type Headers } from 'tar-stream';
import { AbortError } from '../../errors.js';
import { logger } from '../../log.js';
import { DigestMismatchError, UnsafeLayerError } from '../errors.js';
import { openTar, type LayerCompression } from './decompress.js';
import { parseEntryName, type ParsedName } from './entry-name.js';
import { lsetxattr, makedev, mknod, S_IFBLK, S_IFCHR, S_IFIFO } from './native.js';
import { DirCache, isPlainDirPath, lstatOrNull, resolveDirInRoot } from './resolve.js';

const log = logger('ctrkit:oci');

/** Options of {@link unpackLayer}. */
export interface UnpackOptions {
  /**
   * What to do with whiteouts (`.wh.NAME`, `.wh..wh..opq`):
   * - `apply`: delete what they name from the target — for a flattened rootfs built by
   *   unpacking every layer, in order, into one directory;
   * - `overlay`: write them in overlayfs's form (a 0:0 character device; the opaque xattr) —
   *   for a layer unpacked alone into an empty directory that becomes an overlay lowerdir.
   * @defaultValue 'apply'
   */
  readonly whiteouts?: 'apply' | 'overlay';
  /** The expected `sha256:` of the uncompressed tar (the image config's diffID). */
  readonly diffID?: string;
  /** Set owners from the archive. @defaultValue true when running as root */
  readonly chown?: boolean;
  /**
   * Block and character devices: `create` them (needs CAP_MKNOD), `skip` them, or `refuse`
   * the layer. Skipped by default: a device node in an image (a host disk's major:minor)
   * is a way into the host wherever the device cgroup lets it through, and runtimes give
   * containers a /dev of their own anyway. @defaultValue 'skip'
   */
  readonly devices?: 'create' | 'skip' | 'refuse';
  /** Opaque markers as `user.overlay.opaque` (overlays mounted with userxattr). @defaultValue false */
  readonly userxattr?: boolean;
  /** Cancels the unpacking; the target is then left partly written. */
  readonly signal?: AbortSignal;
}

/** What {@link unpackLayer} did. */
export interface UnpackResult {
  /** `sha256:` of the uncompressed tar: the layer's diffID. */
  readonly diffID: string;
  /** Tar entries read (whiteouts included). */
  readonly entries: number;
  /** Bytes of uncompressed tar read. */
  readonly bytes: number;
  /** How the layer was compressed. */
  readonly compression: LayerCompression;
}

interface DeferredDir {
  readonly rel: string[];
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtime: Date;
}

/** xattrs an image may not set: they would give overlayfs meaning to a plain file or dir. */
const FORBIDDEN_XATTR = /^(trusted|user)\.overlay\./;

class Unpacker {
  private readonly dirs: DeferredDir[] = [];
  /** Paths (relative, resolved) this layer wrote: an opaque marker keeps them. */
  private readonly written = new Set<string>();
  private readonly cache = new DirCache();
  private readonly chown: boolean;
  private readonly devices: 'create' | 'skip' | 'refuse';
  private readonly whiteouts: 'apply' | 'overlay';

  constructor(
    private readonly root: string,
    private readonly options: UnpackOptions,
  ) {
    const root0 = process.getuid?.() === 0;
    this.chown = options.chown ?? root0;
    this.devices = options.devices ?? 'skip';
    this.whiteouts = options.whiteouts ?? 'apply';
  }

  // Metadata calls are synchronous on purpose: see resolve.ts. Only file data is awaited.
  async entry(header: Headers, body: AsyncIterable<Buffer>): Promise<void> {
    const name = header.name;
    const parsed = parseEntryName(name);
    if (parsed.whiteout) return this.whiteout(name, header, parsed);
    if (parsed.components.length === 0) {
      // A "/" or "./" entry (umoci insert writes one) describes the target itself: keep the
      // target's own owner and mode, which belong to whoever made it.
      if (header.type !== 'directory') throw new UnsafeLayerError(name, `a ${header.type} entry cannot replace the target directory`);
      return;
    }
    const parentRel = resolveDirInRoot(this.root, parsed.components.slice(0, -1), name, true, this.cache)!;
    const rel = [...parentRel, parsed.components.at(-1)!];
    const path = join(this.root, ...rel);
    switch (header.type) {
      case 'directory':
        return this.directory(name, header, rel, path);
      case 'file':
      case 'contiguous-file':
        this.clear(path, false);
        await this.file(header, path, body);
        break;
      case 'symlink':
        this.clear(path, false);
        symlinkSync(header.linkname ?? '', path);
        break;
      case 'link':
        this.hardlink(name, header, path);
        break;
      case 'character-device':
      case 'block-device': {
        const major = header.devmajor ?? 0;
        const minor = header.devminor ?? 0;
        if (header.type === 'character-device' && major === 0 && minor === 0) {
          throw new UnsafeLayerError(name, 'a 0:0 character device is an overlay whiteout in disguise, not an OCI one');
        }
        if (this.devices === 'refuse') throw new UnsafeLayerError(name, 'device nodes are refused (devices: "refuse")');
        if (this.devices === 'skip') {
          log('unpack: skipping device %s', name);
          return;
        }
        this.clear(path, false);
        await mknod(path, (header.type === 'block-device' ? S_IFBLK : S_IFCHR) | 0o600, makedev(major, minor));
        break;
      }
      case 'fifo':
        this.clear(path, false);
        await mknod(path, S_IFIFO | 0o600, 0n);
        break;
      default:
        log('unpack: skipping %s entry %s', header.type, name);
        return;
    }
    this.written.add(rel.join('/'));
    await this.metadata(name, header, path);
  }

  /** Removes whatever is at `path` (never following it), except a directory that stays one. */
  private clear(path: string, keepDirectory: boolean): void {
    const st = lstatOrNull(path);
    if (!st) return;
    if (st.isDirectory() && keepDirectory) return;
    this.cache.forget(); // a checked directory may be about to go (or to become a symlink)
    if (st.isDirectory()) rmSync(path, { recursive: true, force: true });
    else unlinkSync(path);
  }

  private async directory(name: string, header: Headers, rel: string[], path: string): Promise<void> {
    this.clear(path, true);
    if (!lstatOrNull(path)) mkdirSync(path, { mode: 0o700 });
    this.written.add(rel.join('/'));
    await this.xattrs(name, header, path);
    // Modes and times of directories are set at the end: a read-only mode would stop a
    // non-root unpack from filling it, and every later entry would bump its mtime.
    this.dirs.push({ rel, mode: (header.mode ?? 0o755) & 0o7777, uid: header.uid ?? 0, gid: header.gid ?? 0, mtime: header.mtime ?? new Date(0) });
  }

  private async file(header: Headers, path: string, body: AsyncIterable<Buffer>): Promise<void> {
    // O_EXCL|O_NOFOLLOW: the path was just cleared, so anything there now (a symlink above
    // all) is refused rather than written through.
    const fd = openSync(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    try {
      for await (const chunk of body) {
        for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off);
      }
      if (this.chown) fchownSync(fd, header.uid ?? 0, header.gid ?? 0);
      fchmodSync(fd, (header.mode ?? 0o644) & 0o7777); // after chown, which clears setuid bits
      const mtime = header.mtime ?? new Date(0);
      futimesSync(fd, mtime, mtime);
    } finally {
      closeSync(fd);
    }
  }

  private hardlink(name: string, header: Headers, path: string): void {
    let target: ParsedName;
    try {
      target = parseEntryName(header.linkname ?? '');
    } catch (e) {
      throw new UnsafeLayerError(
        name,
        `hardlink target "${header.linkname}" ${e instanceof UnsafeLayerError ? 'would climb out of the target' : 'is invalid'}`,
      );
    }
    if (target.whiteout || target.components.length === 0) throw new UnsafeLayerError(name, `hardlink to "${header.linkname}" names no regular file`);
    const dir = resolveDirInRoot(this.root, target.components.slice(0, -1), name, false, this.cache);
    const targetPath = dir && join(this.root, ...dir, target.components.at(-1)!);
    const st = targetPath ? lstatOrNull(targetPath) : null;
    if (!targetPath || !st) throw new UnsafeLayerError(name, `hardlink target "${header.linkname}" does not exist in the target`);
    if (!st.isFile()) throw new UnsafeLayerError(name, `hardlink target "${header.linkname}" is not a regular file`);
    if (targetPath === path) return;
    this.clear(path, false);
    linkSync(targetPath, path); // linkat without AT_SYMLINK_FOLLOW: never follows
  }

  /** Owner, mode, times and xattrs of a non-directory, without following it if it is a symlink. */
  private async metadata(name: string, header: Headers, path: string): Promise<void> {
    if (header.type === 'file' || header.type === 'contiguous-file' || header.type === 'link') {
      await this.xattrs(name, header, path);
      return; // set through the file descriptor (a hardlink shares its target's)
    }
    if (this.chown) lchownSync(path, header.uid ?? 0, header.gid ?? 0);
    // The path is the node just made, with no symlink above it: chmod cannot follow anywhere.
    if (header.type !== 'symlink') chmodSync(path, (header.mode ?? 0o644) & 0o7777);
    await this.xattrs(name, header, path);
    const mtime = header.mtime ?? new Date(0);
    lutimesSync(path, mtime, mtime);
  }

  private async xattrs(name: string, header: Headers, path: string): Promise<void> {
    // tar-stream hands PAX records over as strings, decoded as UTF-8.
    const pax = (header as Headers & { pax?: Record<string, string> }).pax ?? {};
    for (const [key, value] of Object.entries(pax)) {
      if (!key.startsWith('SCHILY.xattr.')) continue;
      const attr = key.slice('SCHILY.xattr.'.length);
      if (FORBIDDEN_XATTR.test(attr)) throw new UnsafeLayerError(name, `sets the overlay xattr "${attr}"`);
      if (!this.chown && attr.startsWith('trusted.')) continue;
      try {
        await lsetxattr(path, attr, Buffer.from(value));
      } catch (e) {
        log('unpack: xattr %s on %s not set: %s', attr, name, (e as Error).message);
      }
    }
  }

  private async whiteout(name: string, header: Headers, parsed: ParsedName): Promise<void> {
    if (header.type !== 'file' && header.type !== 'contiguous-file') {
      throw new UnsafeLayerError(name, `a whiteout must be a regular file, not a ${header.type}`);
    }
    const dir = resolveDirInRoot(this.root, parsed.components, name, this.whiteouts === 'overlay', this.cache);
    if (!dir) return; // nothing of that name here to delete
    const dirPath = join(this.root, ...dir);
    const w = parsed.whiteout!;
    if (w.kind === 'opaque') {
      if (this.whiteouts === 'overlay') {
        await lsetxattr(dirPath, `${this.options.userxattr ? 'user' : 'trusted'}.overlay.opaque`, 'y');
        return;
      }
      // Everything below that this layer did not write itself came from the layers below.
      this.cache.forget();
      const prefix = dir.length === 0 ? '' : `${dir.join('/')}/`;
      for (const child of readdirSync(dirPath)) {
        if (!this.written.has(`${prefix}${child}`)) rmSync(join(dirPath, child), { recursive: true, force: true });
      }
      return;
    }
    const victim = join(dirPath, w.name);
    if (this.whiteouts === 'apply') {
      this.cache.forget();
      rmSync(victim, { recursive: true, force: true }); // rm never follows a symlink it removes
      return;
    }
    // A whiteout only hides the layers below: a same-named entry of this layer stays.
    if (!lstatOrNull(victim)) await mknod(victim, S_IFCHR, 0n);
  }

  /** Directory modes, owners and times, deepest first, each path re-checked for symlinks. */
  finish(): void {
    for (const d of this.dirs.reverse()) {
      if (!isPlainDirPath(this.root, d.rel)) continue; // replaced later by a non-directory
      const fd = openSync(join(this.root, ...d.rel), fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
      try {
        if (this.chown) fchownSync(fd, d.uid, d.gid);
        fchmodSync(fd, d.mode);
        futimesSync(fd, d.mtime, d.mtime);
      } finally {
        closeSync(fd);
      }
    }
  }
}

/**
 * Unpacks an image layer (a path or a stream; gzip or plain tar) into `targetDir`, which
 * must exist. Files, directories, symlinks, hardlinks, devices, fifos, modes, owners, mtimes
 * and xattrs are kept; whiteouts are applied or written in overlay form (see
 * {@link UnpackOptions.whiteouts}).
 *
 * Safe against hostile layers: every path is resolved inside the target without following a
 * symlink out of it, nothing is written through a symlink, a hardlink must name a regular
 * file inside the target, and `..`, invalid whiteouts and overlay markers in disguise are
 * refused. Absolute names are taken as relative to the target.
 *
 * @throws {@link UnsafeLayerError} (`ERR_UNSAFE_LAYER`) naming the refused entry
 * @throws {@link DigestMismatchError} when `diffID` is given and differs
 */
export async function unpackLayer(layer: string | NodeJS.ReadableStream, targetDir: string, options: UnpackOptions = {}): Promise<UnpackResult> {
  const { signal } = options;
  if (signal?.aborted) throw new AbortError(signal.reason);
  const { tar, compression } = await openTar(layer);
  const hash = createHash('sha256');
  let bytes = 0;
  const extract = tarExtract();
  const onAbort = (): void => {
    tar.destroy(new AbortError(signal?.reason));
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const feeding = (async () => {
    for await (const chunk of tar) {
      const b = chunk as Buffer;
      hash.update(b);
      bytes += b.length;
      if (!extract.write(b)) await once(extract, 'drain');
    }
    // Go's archive/tar writer, unclosed, leaves out the last file's padding and the two
    // zero blocks that end an archive (umoci's layers do); GNU tar reads such archives, so
    // the parser gets the missing zeros here — after the hash, which is of the real bytes.
    extract.end(Buffer.alloc(((512 - (bytes % 512)) % 512) + 1024));
  })().catch((e: unknown) => {
    extract.destroy(e as Error);
  });
  const unpacker = new Unpacker(targetDir, options);
  let entries = 0;
  try {
    for await (const entry of extract) {
      entries++;
      try {
        await unpacker.entry(entry.header, entry as unknown as AsyncIterable<Buffer>);
      } finally {
        entry.resume(); // drain what the entry did not read, so the next header comes
      }
    }
    await feeding;
    unpacker.finish();
  } catch (e) {
    tar.destroy();
    if (signal?.aborted) throw new AbortError(signal.reason);
    throw e;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  const diffID = `sha256:${hash.digest('hex')}`;
  if (options.diffID !== undefined && options.diffID !== diffID) throw new DigestMismatchError('layer diffID', options.diffID, diffID);
  return { diffID, entries, bytes, compression };
}
