/**
 * Path resolution confined to a root, done in JavaScript one component at a time with lstat
 * (what openat2's RESOLVE_IN_ROOT does in the kernel): a symlink met on the way is read and
 * its target resolved lexically inside the root — an absolute target starts again at the
 * root, and a `..` that would climb above it is refused as an escape. The result is a path
 * with no symlink in it, so the caller's open/mkdir/link never follows one.
 *
 * The calls are synchronous: each is a microsecond-scale syscall, and a layer of thousands
 * of entries spent most of its time waiting for the thread pool to run them one by one.
 * @internal
 */
import { lstatSync, mkdirSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { UnsafeLayerError } from '../errors.js';

/** Linux's own limit on symlinks followed in one lookup (ELOOP). */
const MAX_SYMLINK_HOPS = 40;

/** lstat, or null when nothing is there. */
export function lstatOrNull(path: string): Stats | null {
  try {
    // Without throwIfNoEntry, every miss costs an Error with its stack trace: most of an lstat.
    return lstatSync(path, { throwIfNoEntry: false }) ?? null;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw e;
  }
}

/**
 * Directories (symlink-free relative paths) known to be real directories. This is the
 * cache every symlink CVE of the unpackers was about (node-tar CVE-2021-32803): it is only
 * sound because its owner {@link DirCache.forget}s everything the moment anything in the
 * target is removed or replaced — the only way a checked directory can become a symlink,
 * as the unpacker is the target's only writer.
 */
export class DirCache {
  private readonly known = new Set<string>();
  /** How many times {@link DirCache.forget} was called: 0 means nothing in the target was ever removed or replaced. */
  forgotten = 0;
  has(rel: string): boolean {
    return this.known.has(rel);
  }
  add(rel: string): void {
    this.known.add(rel);
  }
  /** Called before any removal or replacement in the target. */
  forget(): void {
    this.known.clear();
    this.forgotten++;
  }
}

/**
 * Resolves `components` (a directory path below `root`) to real, symlink-free components
 * below `root`. Missing directories are created (mode 0755, like tar) when `create`, else
 * the result is null.
 * @param entry - the tar entry this is for, named in any refusal
 */
export function resolveDirInRoot(root: string, components: readonly string[], entry: string, create: boolean, cache?: DirCache): string[] | null {
  // The common case, one lookup: the whole path is a directory met before (so is every prefix).
  if (components.length === 0 || (cache?.has(components.join('/')) && !components.some((c) => c === '' || c === '.' || c === '..'))) {
    return [...components];
  }
  const resolved: string[] = [];
  const pending = [...components];
  let hops = 0;
  while (pending.length > 0) {
    const c = pending.shift()!;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (resolved.length === 0) throw new UnsafeLayerError(entry, 'a symlink on its path points outside the target');
      resolved.pop();
      continue;
    }
    const rel = resolved.length === 0 ? c : `${resolved.join('/')}/${c}`;
    if (cache?.has(rel)) {
      resolved.push(c);
      continue;
    }
    const here = join(root, rel);
    const st = lstatOrNull(here);
    if (!st) {
      if (!create) return null;
      mkdirSync(here, { mode: 0o755 });
      resolved.push(c);
      cache?.add(rel);
      continue;
    }
    if (st.isSymbolicLink()) {
      if (++hops > MAX_SYMLINK_HOPS) throw new UnsafeLayerError(entry, 'too many levels of symlinks on its path');
      const target = readlinkSync(here);
      if (target.startsWith('/')) resolved.length = 0; // absolute: from the root, as inside the container
      pending.unshift(...target.split('/'));
      continue;
    }
    if (!st.isDirectory()) throw new UnsafeLayerError(entry, `"${rel}" on its path is not a directory`);
    resolved.push(c);
    cache?.add(rel);
  }
  return resolved;
}

/**
 * True when every component of `rel` below `root` is a real directory (no symlink): checked
 * right before deferred work (directory modes and times) touches a path recorded earlier.
 */
export function isPlainDirPath(root: string, rel: readonly string[]): boolean {
  for (let i = 1; i <= rel.length; i++) {
    const st = lstatOrNull(join(root, ...rel.slice(0, i)));
    if (!st?.isDirectory()) return false;
  }
  return true;
}
