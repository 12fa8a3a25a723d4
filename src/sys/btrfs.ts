/**
 * The btrfs subvolume ioctls the btrfs storage driver needs, from <linux/btrfs.h>: create
 * a subvolume, snapshot one, destroy one. Each acts on a name inside a parent directory
 * given as an open fd, as the kernel's interface does.
 * @internal
 */
import { closeSync, constants, openSync, statfsSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { ioctl } from './libc.js';
import { SysError } from './sys-error.js';

const BTRFS_SUPER_MAGIC = 0x9123683e;
/** The inode number of every subvolume's root directory (BTRFS_FIRST_FREE_OBJECTID). */
const SUBVOLUME_ROOT_INO = 256;
/** Both argument structs are 4096 bytes: _IOW(0x94, nr, 4096) = 0x5000_9400 | nr. */
const IOW_4096 = (nr: number) => (0x40000000 | (4096 << 16) | (0x94 << 8) | nr) >>> 0;
const BTRFS_IOC_SUBVOL_CREATE = IOW_4096(14); // struct btrfs_ioctl_vol_args
const BTRFS_IOC_SNAP_DESTROY = IOW_4096(15); // struct btrfs_ioctl_vol_args
const BTRFS_IOC_SNAP_CREATE_V2 = IOW_4096(23); // struct btrfs_ioctl_vol_args_v2
const BTRFS_SUBVOL_RDONLY = 1n << 1n;
const VOL_NAME_MAX = 4087; // char name[4088], NUL-terminated
const V2_NAME_OFFSET = 56; // __s64 fd; __u64 transid; __u64 flags; __u64 unused[4];
const V2_NAME_MAX = 4039;

/** True when `path` is on a btrfs filesystem. @internal */
export function isOnBtrfs(path: string): boolean {
  return statfsSync(path).type >>> 0 === BTRFS_SUPER_MAGIC;
}

/** True when `path` is the root of a btrfs subvolume (or snapshot). @internal */
export function isSubvolume(path: string): boolean {
  try {
    return isOnBtrfs(path) && statSync(path).ino === SUBVOLUME_ROOT_INO;
  } catch {
    return false;
  }
}

function withDir<T>(dir: string, f: (fd: number) => T): T {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    return f(fd);
  } finally {
    closeSync(fd);
  }
}

function volArgs(fd: number, name: string, path: string): Buffer {
  const bytes = Buffer.from(name);
  if (bytes.length > VOL_NAME_MAX || name.includes('/'))
    throw new SysError('btrfs ioctl', 36 /* ENAMETOOLONG */, path, 'a subvolume name is one path component');
  const b = Buffer.alloc(4096);
  b.writeBigInt64LE(BigInt(fd), 0);
  bytes.copy(b, 8);
  return b;
}

function named(call: string, path: string, f: () => void): void {
  try {
    f();
  } catch (e) {
    if (e instanceof SysError) throw new SysError(call, e.errno, path);
    throw e;
  }
}

/** BTRFS_IOC_SUBVOL_CREATE: a new, empty subvolume at `path` (its parent must exist). @internal */
export function createSubvolume(path: string): void {
  withDir(dirname(path), (parent) => named('BTRFS_IOC_SUBVOL_CREATE', path, () => ioctl(parent, BTRFS_IOC_SUBVOL_CREATE, volArgs(0, basename(path), path))));
}

/**
 * BTRFS_IOC_SNAP_CREATE_V2: `target` becomes a copy-on-write snapshot of the subvolume
 * `source` (constant time: no data is copied). `readonly` makes it immutable.
 * @internal
 */
export function snapshotSubvolume(source: string, target: string, readonly = false): void {
  withDir(source, (src) =>
    withDir(dirname(target), (parent) => {
      const name = Buffer.from(basename(target));
      if (name.length > V2_NAME_MAX) throw new SysError('BTRFS_IOC_SNAP_CREATE_V2', 36, target);
      const b = Buffer.alloc(4096);
      b.writeBigInt64LE(BigInt(src), 0);
      b.writeBigUInt64LE(readonly ? BTRFS_SUBVOL_RDONLY : 0n, 16);
      name.copy(b, V2_NAME_OFFSET);
      named('BTRFS_IOC_SNAP_CREATE_V2', target, () => ioctl(parent, BTRFS_IOC_SNAP_CREATE_V2, b));
    }),
  );
}

/**
 * BTRFS_IOC_SNAP_DESTROY: deletes the subvolume at `path` with everything in it, in one call
 * (needs CAP_SYS_ADMIN, or the user_subvol_rm_allowed mount option).
 * @internal
 */
export function destroySubvolume(path: string): void {
  withDir(dirname(path), (parent) => named('BTRFS_IOC_SNAP_DESTROY', path, () => ioctl(parent, BTRFS_IOC_SNAP_DESTROY, volArgs(0, basename(path), path))));
}
