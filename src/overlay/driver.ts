/**
 * Choosing a storage driver for a place on disk, as Docker does at daemon start: overlay
 * when the filesystem can hold an overlay upper, else the copy driver. See docs/overlay.md.
 */
import { stat, statfs } from 'node:fs/promises';
import { OverlayError } from './errors.js';
import { filesystemName, notAnUpperBecause } from './fs-types.js';
import { overlaySupported } from './supported.js';
import { upperProbeFailure } from './probe.js';
import type { StorageDriver } from './diff.js';
import { checkAbort } from './tree.js';
import { inUserNamespace } from './userns.js';
import { subvolumeProbeFailure } from './btrfs-probe.js';
import { logger } from '../log.js';

const logDriver = logger('ctrkit:overlay');

/** Options of {@link chooseDriver}. */
export interface ChooseDriverOptions {
  /** The directory where upper and work dirs (or copies) would be created. It must exist. */
  readonly dir: string;
  /** Probe `user.overlay.*` markers instead of `trusted.`. @defaultValue {@link inUserNamespace}() */
  readonly userxattr?: boolean;
  /** Cancels the probe. */
  readonly signal?: AbortSignal;
}

/** Which driver to use, and why. */
export interface DriverChoice {
  /** `btrfs` on btrfs, else `overlay`, or `copy` when overlay cannot work there. */
  readonly driver: StorageDriver;
  /** The filesystem type of `dir`, e.g. `ext4`, `tmpfs`, `overlay`. */
  readonly filesystem: string;
  /** Why this driver: the first obstacle found, or what makes overlay fit. */
  readonly reason: string;
}

/**
 * Decides between the btrfs, overlay and copy drivers for writable layers kept in `dir`:
 *
 * 0. `dir` is on btrfs and a subvolume can be created there → btrfs (snapshots, as Docker
 *    picks on btrfs);
 * 1. the kernel has no overlayfs → copy;
 * 2. `dir`'s filesystem is one overlayfs refuses or cannot mark (an overlay itself — the
 *    nested case —, NFS/CIFS/9p, ramfs, vfat, read-only filesystems) → copy;
 * 3. a probe in `dir` cannot create a whiteout (0:0 character device) or set the opaque
 *    xattr → copy;
 * 4. otherwise overlay.
 *
 * The probe creates and removes one scratch directory in `dir` (a few syscalls).
 */
export async function chooseDriver(options: ChooseDriverOptions): Promise<DriverChoice> {
  checkAbort(options.signal);
  const dir = options.dir;
  const st = await stat(dir).catch(() => null);
  if (!st?.isDirectory())
    throw new OverlayError('ERR_OVERLAY_PATH_MISSING', `${dir} does not exist or is not a directory: create it before choosing a driver for it`, { path: dir });
  const magic = (await statfs(dir)).type >>> 0;
  const filesystem = filesystemName(magic);
  if (filesystem === 'btrfs') {
    const failure = subvolumeProbeFailure(dir);
    if (!failure) return { driver: 'btrfs', filesystem, reason: `${dir} is on btrfs: a snapshot of a base subvolume per container` };
    logDriver('btrfs at %s, but no subvolume could be created there (%s): not the btrfs driver', dir, failure);
  }
  if (!(await overlaySupported())) return { driver: 'copy', filesystem, reason: 'the kernel has no overlayfs' };
  const against = notAnUpperBecause(magic);
  if (against) return { driver: 'copy', filesystem, reason: `${dir} is on ${filesystem}: ${against}` };
  checkAbort(options.signal);
  const userxattr = options.userxattr ?? inUserNamespace();
  const failure = upperProbeFailure(dir, userxattr);
  if (failure) return { driver: 'copy', filesystem, reason: `${filesystem} at ${dir}: ${failure}` };
  return { driver: 'overlay', filesystem, reason: `${filesystem} holds whiteouts and ${userxattr ? 'user' : 'trusted'}.overlay.* xattrs` };
}
