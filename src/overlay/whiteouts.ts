/**
 * Whiteouts and opaque directories as first-class helpers: create, detect, list. These are
 * overlayfs's on-disk form (see ./oci-whiteouts.ts for the OCI tar form and conversions).
 */
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { createWhiteoutSync, isOpaqueSync, isWhiteoutStats, markOpaqueSync } from './markers.js';
import { walk } from './tree.js';
import { inUserNamespace } from './userns.js';

export { isWhiteoutStats };

/** Options of the opaque-marker helpers. */
export interface MarkerOptions {
  /**
   * `user.overlay.opaque` (true) or `trusted.overlay.opaque` (false). For reading, undefined
   * accepts either; for writing it means {@link inUserNamespace}().
   */
  readonly userxattr?: boolean;
}

/** A marker found by {@link listWhiteouts}. */
export interface WhiteoutEntry {
  /** The path it applies to, from the layer root, e.g. `/etc/motd`. */
  readonly path: string;
  /** `whiteout`: the path is deleted. `opaque`: the directory hides its lower content. */
  readonly kind: 'whiteout' | 'opaque';
}

/**
 * Creates a whiteout at `path`: a character device 0:0 that deletes `path` from every
 * lower layer when this directory is an overlay upper or lower. Needs root, or root of a
 * user namespace (Linux 5.8+ allows whiteout devices there).
 */
export async function createWhiteout(path: string): Promise<void> {
  createWhiteoutSync(path);
}

/** True when `path` is a whiteout (a character device 0:0). */
export async function isWhiteout(path: string): Promise<boolean> {
  try {
    return isWhiteoutStats(await lstat(path));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/** Marks directory `dir` opaque: in an overlay, nothing of the lower layers' `dir` shows through. */
export async function markOpaque(dir: string, options: MarkerOptions = {}): Promise<void> {
  markOpaqueSync(dir, options.userxattr ?? inUserNamespace());
}

/** True when directory `dir` carries the opaque marker (`trusted.` or `user.overlay.opaque=y`). */
export async function isOpaque(dir: string, options: MarkerOptions = {}): Promise<boolean> {
  return isOpaqueSync(dir, options.userxattr);
}

/**
 * Every whiteout and opaque directory in a layer directory (an upper, or an overlay-form
 * lower), sorted by path. The layer root itself is listed as `/` when it is opaque.
 */
export async function listWhiteouts(dir: string, options: MarkerOptions & { readonly signal?: AbortSignal } = {}): Promise<WhiteoutEntry[]> {
  const found: WhiteoutEntry[] = isOpaqueSync(dir, options.userxattr) ? [{ path: '/', kind: 'opaque' }] : [];
  await walk(
    dir,
    (rel, st) => {
      if (isWhiteoutStats(st)) found.push({ path: `/${rel}`, kind: 'whiteout' });
      else if (st.isDirectory() && isOpaqueSync(join(dir, rel), options.userxattr)) found.push({ path: `/${rel}`, kind: 'opaque' });
    },
    options.signal,
  );
  return found;
}
