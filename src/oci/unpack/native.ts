/**
 * The few system calls unpacking needs that Node lacks — mknod for devices, fifos and
 * overlay whiteouts, and l*xattr — loaded on first use, so that importing `ctrkit/oci`
 * never loads the FFI layer.
 * @internal
 */

/** File type bits of st_mode (Linux). */
export const S_IFIFO = 0o010000;
/** Character device. */
export const S_IFCHR = 0o020000;
/** Block device. */
export const S_IFBLK = 0o060000;
const AT_FDCWD = -100;

/** The libc bindings (src/sys/libc.ts). */
export type Libc = typeof import('../../sys/libc.js');
let libc: Promise<Libc> | undefined;
let loaded: Libc | undefined;

/** Loads the libc bindings (once). */
export function loadLibc(): Promise<Libc> {
  libc ??= import('../../sys/libc.js').then((m) => (loaded = m));
  return libc;
}

/** The libc bindings if already loaded, for synchronous callers; else undefined (call {@link loadLibc}). */
export function libcIfLoaded(): Libc | undefined {
  return loaded;
}

/** glibc's makedev: the dev_t of a major and minor number. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/** mknod(2) at an absolute path whose components hold no symlink. */
export function mknodWith(c: Libc, path: string, mode: number, dev: bigint): void {
  c.mknodat(AT_FDCWD, path, mode, dev, path);
}

/** mknod(2) at an absolute path whose components hold no symlink. */
export async function mknod(path: string, mode: number, dev: bigint): Promise<void> {
  mknodWith(await loadLibc(), path, mode, dev);
}

/** lsetxattr(2): sets an extended attribute without following a final symlink. */
export async function lsetxattr(path: string, name: string, value: Buffer | string): Promise<void> {
  (await loadLibc()).lsetxattr(path, name, value);
}
