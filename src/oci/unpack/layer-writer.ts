/**
 * The unpacker: a tar (gzip or plain) into a directory, every path resolved inside it,
 * nothing ever written through a symlink, every refusal a typed error naming the entry.
 *
 * Bytes are pushed through ({@link LayerWriter}): the decompressor runs in the thread pool,
 * and the tar parser, the diffID hash and the file system calls run synchronously on the
 * bytes as they come out, so a layer can be unpacked while it downloads. Per file: one
 * open(O_CREAT|O_EXCL|O_NOFOLLOW) (which also proves nothing was there: no lstat first), the
 * writes, futimens and close; fchown and fchmod only where the new file's owner and mode
 * differ from what creating it gave.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  constants as fsc,
  fchmodSync,
  fchownSync,
  fstatSync,
  futimesSync,
  lchownSync,
  chmodSync,
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
import { resolve } from 'node:path';
import { finished } from 'node:stream/promises';
import type { Transform } from 'node:stream';
import { AbortError } from '../../errors.js';
import { logger } from '../../log.js';
import { DigestMismatchError, UnsafeLayerError } from '../errors.js';
import { decompressor, type LayerCompression, SNIFF_BYTES, sniff } from './decompress.js';
import { parseEntryName, type ParsedName } from './entry-name.js';
import { type Libc, libcIfLoaded, loadLibc, makedev, mknodWith, S_IFBLK, S_IFCHR, S_IFIFO } from './native.js';
import { DirCache, isPlainDirPath, lstatOrNull, resolveDirInRoot } from './resolve.js';
import { type TarData, type TarHeader, TarParser } from './tar.js';

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
  /**
   * Opaque markers as `user.overlay.opaque` (overlays mounted with userxattr); `'both'`: as
   * `trusted.overlay.opaque` and `user.overlay.opaque`, for a lower that overlays with and
   * without a user namespace share (root's image store). @defaultValue false
   */
  readonly userxattr?: boolean | 'both';
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
  readonly rel: string;
  /** The mode mkdir was given, or -1 when the directory was there already. */
  readonly created: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtime: number;
}

/** xattrs an image may not set: they would give overlayfs meaning to a plain file or dir. */
const FORBIDDEN_XATTR = /^(trusted|user)\.overlay\./;
const O_NEW_FILE = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW;

function isEexist(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === 'EEXIST';
}

/**
 * What creating a file in a fresh target gives, learnt once from a probe file: the owner (the
 * caller's, or the directory's group under setgid) and the permission bits that survive the
 * umask or a default ACL. Every directory below is made by the unpacker, so inherits the same.
 */
interface Creation {
  readonly uid: number;
  readonly gid: number;
  /** Permission bits a file created with mode 0777 ends up with. */
  readonly perms: number;
}

function probeCreation(root: string): Creation {
  const probe = `${root}/.ctk-unpack-probe-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const fd = openSync(probe, O_NEW_FILE, 0o777);
  try {
    const st = fstatSync(fd);
    return { uid: st.uid, gid: st.gid, perms: st.mode & 0o777 };
  } finally {
    closeSync(fd);
    unlinkSync(probe);
  }
}

class Unpacker {
  private readonly dirs: DeferredDir[] = [];
  /** Paths (relative, resolved) this layer wrote: an opaque marker keeps them (whiteouts: apply only). */
  private readonly written = new Set<string>();
  private readonly cache = new DirCache();
  private readonly chown: boolean;
  private readonly devices: 'create' | 'skip' | 'refuse';
  private readonly whiteouts: 'apply' | 'overlay';
  /** `root/`, to which resolved relative paths are appended. */
  private readonly prefix: string;
  /** Set when the target was empty: new files' owner and modes are known without asking. */
  private readonly creation: Creation | undefined;
  /** The regular file being written. */
  private fd = -1;
  /** Set by {@link Unpacker.close}: from then on nothing touches the target. */
  private closed = false;
  private current: { name: string; header: TarHeader; path: string } | undefined;
  /** The sink of regular files' data (one object: writes go to `fd`). */
  private readonly sink: TarData = {
    write: (buf, start, end) => {
      if (this.closed) throw new AbortError();
      for (let off = start; off < end; ) off += writeSync(this.fd, buf, off, end - off);
    },
    end: () => this.endFile(),
  };

  constructor(
    private readonly root: string,
    private readonly options: UnpackOptions,
  ) {
    const root0 = process.getuid?.() === 0;
    this.chown = options.chown ?? root0;
    this.devices = options.devices ?? 'skip';
    this.whiteouts = options.whiteouts ?? 'apply';
    this.prefix = root.endsWith('/') ? root : `${root}/`;
    this.creation = readdirSync(root).length === 0 ? probeCreation(root) : undefined;
  }

  /** Runs `fn` with the libc bindings, now if they are loaded, else once they are. */
  private withLibc(fn: (c: Libc) => void): Promise<void> | undefined {
    const c = libcIfLoaded();
    if (c) {
      fn(c);
      return undefined;
    }
    return loadLibc().then((loaded) => {
      if (this.closed) throw new AbortError(); // closed while the bindings loaded
      fn(loaded);
    });
  }

  /** Whether a node made with `created` permission bits needs fchown/fchmod to match the header. */
  private needsChown(uid: number, gid: number): boolean {
    return this.chown && (this.creation === undefined || this.creation.uid !== uid || this.creation.gid !== gid);
  }
  /** Whether a node made with mode `created` (-1: not made here) needs fchmod to get `mode`. */
  private needsChmod(mode: number, created: number): boolean {
    // Special bits are set by chmod only (and chown clears setuid/setgid).
    return this.creation === undefined || created < 0 || (mode & ~0o777) !== 0 || (created & this.creation.perms) !== mode;
  }

  /** The visitor the tar parser calls: metadata calls are synchronous on purpose (see resolve.ts). */
  readonly entry = (header: TarHeader): TarData | undefined | Promise<TarData | undefined> => {
    if (this.closed) throw new AbortError();
    const name = header.name;
    const parsed = parseEntryName(name);
    if (parsed.whiteout) return undef(this.whiteout(name, header, parsed));
    if (parsed.components.length === 0) {
      // A "/" or "./" entry (umoci insert writes one) describes the target itself: keep the
      // target's own owner and mode, which belong to whoever made it.
      if (header.type !== 'directory') throw new UnsafeLayerError(name, `a ${header.type} entry cannot replace the target directory`);
      return undefined;
    }
    const { components } = parsed;
    const parentRel = components.length === 1 ? [] : resolveDirInRoot(this.root, components.slice(0, -1), name, true, this.cache)!;
    const base = components[components.length - 1]!;
    const rel = parentRel.length === 0 ? base : `${parentRel.join('/')}/${base}`;
    const path = this.prefix + rel;
    switch (header.type) {
      case 'directory':
        return undef(this.directory(name, header, rel, path));
      case 'file':
      case 'contiguous-file':
        this.openFile(name, header, rel, path);
        return this.sink;
      case 'symlink':
        this.create(path, () => symlinkSync(header.linkname, path));
        break;
      case 'link':
        if (!this.hardlink(name, header, path)) return undefined;
        break;
      case 'character-device':
      case 'block-device':
      case 'fifo':
        return undef(this.special(name, header, rel, path));
      default:
        log('unpack: skipping %s entry %s (type %s)', header.type, name, JSON.stringify(header.flag));
        return undefined;
    }
    if (this.whiteouts === 'apply') this.written.add(rel);
    return undef(this.metadata(name, header, path));
  };

  /** Runs `make`; if something is in the way (EEXIST), removes it and runs `make` again. */
  private create<T>(path: string, make: () => T): T {
    try {
      return make();
    } catch (e) {
      if (!isEexist(e)) throw e;
    }
    this.clear(path, false);
    return make();
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

  private directory(name: string, header: TarHeader, rel: string, path: string): Promise<void> | undefined {
    // Made owner-writable: the final mode is set at the end (a read-only one would stop a
    // non-root unpack from filling it), as are the times (every later entry would bump them).
    const mode = header.mode & 0o7777;
    let created = (mode & 0o777) | 0o700;
    try {
      mkdirSync(path, created);
    } catch (e) {
      if (!isEexist(e)) throw e;
      this.clear(path, true);
      if (lstatOrNull(path)) created = -1;
      else mkdirSync(path, created);
    }
    this.cache.add(rel);
    if (this.whiteouts === 'apply') this.written.add(rel);
    this.dirs.push({ rel, created, mode, uid: header.uid, gid: header.gid, mtime: header.mtime });
    return this.xattrs(name, header, path);
  }

  private openFile(name: string, header: TarHeader, rel: string, path: string): void {
    // O_EXCL|O_NOFOLLOW: anything already there (a symlink above all) makes the open fail
    // rather than be written through; it is then removed and the file made anew.
    this.fd = this.create(path, () => openSync(path, O_NEW_FILE, header.mode & 0o777));
    this.current = { name, header, path };
    if (this.whiteouts === 'apply') this.written.add(rel);
  }

  private endFile(): Promise<void> | undefined {
    if (this.closed) throw new AbortError();
    const { fd } = this;
    const { name, header, path } = this.current!;
    this.fd = -1;
    this.current = undefined;
    try {
      const mode = header.mode & 0o7777;
      const chown = this.needsChown(header.uid, header.gid);
      if (chown) fchownSync(fd, header.uid, header.gid);
      if (chown || this.needsChmod(mode, mode & 0o777)) fchmodSync(fd, mode); // after chown, which clears setuid bits
      futimesSync(fd, header.mtime, header.mtime);
    } finally {
      closeSync(fd);
    }
    return this.xattrs(name, header, path);
  }

  /** Stops for good (a failed or cancelled unpack): closes the file being written; anything still pending fails instead of touching the target. */
  close(): void {
    this.closed = true;
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  /** Returns false when the link was not made because it names itself. */
  private hardlink(name: string, header: TarHeader, path: string): boolean {
    let target: ParsedName;
    try {
      target = parseEntryName(header.linkname);
    } catch (e) {
      throw new UnsafeLayerError(
        name,
        `hardlink target "${header.linkname}" ${e instanceof UnsafeLayerError ? 'would climb out of the target' : 'is invalid'}`,
      );
    }
    if (target.whiteout || target.components.length === 0) throw new UnsafeLayerError(name, `hardlink to "${header.linkname}" names no regular file`);
    const dir = resolveDirInRoot(this.root, target.components.slice(0, -1), name, false, this.cache);
    const targetPath = dir && this.prefix + [...dir, target.components.at(-1)!].join('/');
    const st = targetPath ? lstatOrNull(targetPath) : null;
    if (!targetPath || !st) throw new UnsafeLayerError(name, `hardlink target "${header.linkname}" does not exist in the target`);
    if (!st.isFile()) throw new UnsafeLayerError(name, `hardlink target "${header.linkname}" is not a regular file`);
    if (targetPath === path) return false;
    this.create(path, () => linkSync(targetPath, path)); // linkat without AT_SYMLINK_FOLLOW: never follows
    return true;
  }

  private special(name: string, header: TarHeader, rel: string, path: string): Promise<void> | undefined {
    let mode = S_IFIFO;
    let dev = 0n;
    if (header.type !== 'fifo') {
      const major = header.devmajor;
      const minor = header.devminor;
      if (header.type === 'character-device' && major === 0 && minor === 0) {
        throw new UnsafeLayerError(name, 'a 0:0 character device is an overlay whiteout in disguise, not an OCI one');
      }
      if (this.devices === 'refuse') throw new UnsafeLayerError(name, 'device nodes are refused (devices: "refuse")');
      if (this.devices === 'skip') {
        log('unpack: skipping device %s', name);
        return undefined;
      }
      mode = header.type === 'block-device' ? S_IFBLK : S_IFCHR;
      dev = makedev(major, minor);
    }
    return chain(
      this.withLibc((c) => {
        this.clear(path, false);
        mknodWith(c, path, mode | 0o600, dev);
        if (this.whiteouts === 'apply') this.written.add(rel);
      }),
      () => this.metadata(name, header, path),
    );
  }

  /** Owner, mode, times and xattrs of a symlink, device or fifo (files: see endFile), never following it. */
  private metadata(name: string, header: TarHeader, path: string): Promise<void> | undefined {
    if (header.type === 'link') return this.xattrs(name, header, path); // a hardlink shares its target's
    if (this.needsChown(header.uid, header.gid)) lchownSync(path, header.uid, header.gid);
    // The path is the node just made, with no symlink above it: chmod cannot follow anywhere.
    if (header.type !== 'symlink') chmodSync(path, header.mode & 0o7777);
    return chain(this.xattrs(name, header, path), () => lutimesSync(path, header.mtime, header.mtime));
  }

  private xattrs(name: string, header: TarHeader, path: string): Promise<void> | undefined {
    if (!header.xattrs) return undefined;
    const wanted: [string, Buffer][] = [];
    for (const [attr, value] of header.xattrs) {
      if (FORBIDDEN_XATTR.test(attr)) throw new UnsafeLayerError(name, `sets the overlay xattr "${attr}"`);
      if (!this.chown && attr.startsWith('trusted.')) continue;
      wanted.push([attr, value]);
    }
    if (wanted.length === 0) return undefined;
    return this.withLibc((c) => {
      for (const [attr, value] of wanted) {
        try {
          c.lsetxattr(path, attr, value);
        } catch (e) {
          log('unpack: xattr %s on %s not set: %s', attr, name, (e as Error).message);
        }
      }
    });
  }

  private whiteout(name: string, header: TarHeader, parsed: ParsedName): Promise<void> | undefined {
    if (header.type !== 'file' && header.type !== 'contiguous-file') {
      throw new UnsafeLayerError(name, `a whiteout must be a regular file, not a ${header.type}`);
    }
    const dir = resolveDirInRoot(this.root, parsed.components, name, this.whiteouts === 'overlay', this.cache);
    if (!dir) return undefined; // nothing of that name here to delete
    const dirPath = dir.length === 0 ? this.root : this.prefix + dir.join('/');
    const w = parsed.whiteout!;
    if (w.kind === 'opaque') {
      if (this.whiteouts === 'overlay') {
        const u = this.options.userxattr;
        return this.withLibc((c) => {
          for (const ns of u === 'both' ? ['trusted', 'user'] : [u ? 'user' : 'trusted']) c.lsetxattr(dirPath, `${ns}.overlay.opaque`, 'y');
        });
      }
      // Everything below that this layer did not write itself came from the layers below.
      this.cache.forget();
      const prefix = dir.length === 0 ? '' : `${dir.join('/')}/`;
      for (const child of readdirSync(dirPath)) {
        if (!this.written.has(`${prefix}${child}`)) rmSync(`${dirPath}/${child}`, { recursive: true, force: true });
      }
      return undefined;
    }
    const victim = `${dirPath}/${w.name}`;
    if (this.whiteouts === 'apply') {
      this.cache.forget();
      rmSync(victim, { recursive: true, force: true }); // rm never follows a symlink it removes
      return undefined;
    }
    // A whiteout only hides the layers below: a same-named entry of this layer stays.
    if (lstatOrNull(victim)) return undefined;
    return this.withLibc((c) => mknodWith(c, victim, S_IFCHR, 0n));
  }

  /** Directory modes, owners and times, deepest first, each path re-checked for symlinks. */
  finish(): void {
    // Nothing removed or replaced since a directory was made: it is still that directory.
    const untouched = this.cache.forgotten === 0;
    for (const d of this.dirs.reverse()) {
      if (!untouched && !isPlainDirPath(this.root, d.rel.split('/'))) continue; // replaced later by a non-directory
      const fd = openSync(this.prefix + d.rel, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
      try {
        const chown = this.needsChown(d.uid, d.gid);
        if (chown) fchownSync(fd, d.uid, d.gid);
        if (chown || this.needsChmod(d.mode, d.created)) fchmodSync(fd, d.mode);
        futimesSync(fd, d.mtime, d.mtime);
      } finally {
        closeSync(fd);
      }
    }
  }
}

/** `p`, then `next` (now if `p` is undefined): synchronous unless something had to wait. */
function chain(p: Promise<void> | undefined, next: () => Promise<void> | undefined | void): Promise<void> | undefined {
  if (p) return p.then(() => next() ?? undefined);
  return next() ?? undefined;
}

/** A visitor result with no data wanted. */
function undef(p: Promise<void> | undefined): Promise<undefined> | undefined {
  return p ? p.then(() => undefined) : undefined;
}

/**
 * A layer being unpacked from bytes pushed in order ({@link LayerWriter.write}), compressed
 * or not: the first bytes say which. Decompression runs in the thread pool; hashing (the
 * diffID), tar parsing and the file system calls run on the bytes as they come out. Call
 * {@link LayerWriter.end} after the last byte, or {@link LayerWriter.destroy} to give up.
 * @internal
 */
export class LayerWriter {
  private readonly hash = createHash('sha256');
  private bytes = 0;
  private compression: LayerCompression | undefined;
  private head: Buffer[] = [];
  private headBytes = 0;
  private inflater: Transform | undefined;
  /** The first error of the inflater's consumer. */
  private failure: { error: unknown } | undefined;
  private readonly parser: TarParser;
  private readonly unpacker: Unpacker;

  constructor(
    targetDir: string,
    private readonly options: UnpackOptions = {},
  ) {
    this.unpacker = new Unpacker(resolve(targetDir), options);
    this.parser = new TarParser(this.unpacker.entry);
  }

  /** The uncompressed tar bytes: hashed, parsed, unpacked. */
  private tar(chunk: Buffer): Promise<void> | undefined {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    return this.parser.write(chunk);
  }

  private start(head: Buffer): Promise<void> | undefined {
    this.compression = sniff(head);
    if (this.compression === 'none') return this.tar(head);
    const z = decompressor(this.compression);
    this.inflater = z;
    z.on('data', (out: Buffer) => {
      if (this.failure) return;
      try {
        const p = this.tar(out);
        if (p) {
          z.pause();
          p.then(
            () => z.resume(),
            (e: unknown) => this.fail(e),
          );
        }
      } catch (e) {
        this.fail(e);
      }
    });
    z.on('error', (e) => this.fail(e));
    return this.compress(head);
  }

  private fail(e: unknown): void {
    this.failure ??= { error: e };
    this.inflater?.destroy(e as Error);
  }

  private compress(chunk: Buffer): Promise<void> | undefined {
    const z = this.inflater!;
    if (this.failure) throw this.failure.error;
    if (z.write(chunk)) return undefined;
    return new Promise<void>((resolvePromise, reject) => {
      const done = (): void => {
        z.off('drain', done);
        z.off('close', done);
        if (this.failure) reject(this.failure.error);
        else resolvePromise();
      };
      z.on('drain', done);
      z.on('close', done);
    });
  }

  /** Takes the layer's next bytes. Wait for the promise before writing more. */
  write(chunk: Buffer): Promise<void> | undefined {
    if (chunk.length === 0) return undefined;
    if (this.compression === undefined) {
      this.head.push(chunk);
      this.headBytes += chunk.length;
      if (this.headBytes < SNIFF_BYTES) return undefined;
      const head = this.head.length === 1 ? chunk : Buffer.concat(this.head);
      this.head = [];
      return this.start(head);
    }
    if (this.inflater) return this.compress(chunk);
    return this.tar(chunk);
  }

  /** The last byte was written: finishes the unpacking and checks the diffID. */
  async end(): Promise<UnpackResult> {
    if (this.compression === undefined) await this.start(Buffer.concat(this.head));
    const z = this.inflater;
    if (z) {
      z.end();
      try {
        await finished(z);
      } catch (e) {
        throw this.failure?.error ?? e;
      }
      if (this.failure) throw this.failure.error;
    }
    this.parser.end();
    this.unpacker.finish();
    const diffID = `sha256:${this.hash.digest('hex')}`;
    if (this.options.diffID !== undefined && this.options.diffID !== diffID) throw new DigestMismatchError('layer diffID', this.options.diffID, diffID);
    return { diffID, entries: this.parser.entries, bytes: this.bytes, compression: this.compression ?? 'none' };
  }

  /**
   * Gives up: stops the decompressor, closes the file being written; nothing touches the target
   * any more once this returns (what was pending fails). The target stays as it is.
   */
  destroy(): Promise<void> {
    this.failure ??= { error: new AbortError() };
    this.inflater?.destroy();
    this.unpacker.close();
    return Promise.resolve();
  }
}
