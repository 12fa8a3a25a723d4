/**
 * overlayfs's on-disk markers, synchronous: a whiteout is a character device 0:0; an
 * opaque directory carries `trusted.overlay.opaque=y` (or `user.overlay.opaque=y` when
 * mounted with userxattr). A metadata-only copy-up carries `overlay.metacopy`, and a
 * renamed directory `overlay.redirect`.
 *
 * Not exported from `ctrkit/overlay`, but not marked internal either: this comment leads the
 * first import, and with `stripInternal` a statement whose leading comments mention the
 * internal tag is dropped from the .d.ts — the import of Stats with it, which
 * `whiteouts.d.ts` needs through this file's declarations.
 */
import type { BigIntStats, Stats } from 'node:fs';
import { lgetxattr, lsetxattr, mknodat } from '../sys/libc.js';
import { AT_FDCWD, S_IFCHR } from '../sys/constants.js';

/** The overlay xattrs the layer tools read. */
export type OverlayXattr = 'opaque' | 'metacopy' | 'redirect' | 'origin';

/** `trusted.overlay.opaque` or `user.overlay.opaque`. */
export function opaqueXattrName(userxattr: boolean): string {
  return `${userxattr ? 'user' : 'trusted'}.overlay.opaque`;
}

/** True for a whiteout: a character device with device number 0:0. */
export function isWhiteoutStats(st: Stats | BigIntStats): boolean {
  return st.isCharacterDevice() && Number(st.rdev) === 0;
}

/**
 * Reads `trusted.overlay.<name>` and/or `user.overlay.<name>`: only the one namespace when
 * `userxattr` is given, else trusted first, then user (a tool reading a layer may not know
 * how it was mounted). Null when absent.
 */
export function readOverlayXattr(path: string, name: OverlayXattr, userxattr?: boolean): Buffer | null {
  if (userxattr !== true) {
    const v = lgetxattr(path, `trusted.overlay.${name}`);
    if (v !== null || userxattr === false) return v;
  }
  return lgetxattr(path, `user.overlay.${name}`);
}

/**
 * True when the directory is opaque: its value is `y`. (Linux 6.7 also writes `x`, which
 * means "holds whiteouts for a nested overlay", not opaque.)
 */
export function isOpaqueSync(dir: string, userxattr?: boolean): boolean {
  return readOverlayXattr(dir, 'opaque', userxattr)?.toString() === 'y';
}

/** Creates a whiteout (character device 0:0, mode 0, like overlayfs's own). */
export function createWhiteoutSync(path: string): void {
  mknodat(AT_FDCWD, path, S_IFCHR, 0n, path);
}

/** Marks a directory opaque, hiding everything below it in lower layers. */
export function markOpaqueSync(dir: string, userxattr: boolean): void {
  lsetxattr(dir, opaqueXattrName(userxattr), 'y');
}
