/**
 * Checks made before asking the kernel, because overlayfs reports most refusals only to
 * dmesg: the caller would get a bare EINVAL or ENOENT. Each check names the path and the
 * cause. Cheap (a stat, a statfs or a statx per path) and synchronous, so an init stage
 * can afford them. The kernel's own checks still run; these only make the common
 * mistakes legible.
 * @internal
 */
import { realpathSync, statSync, statfsSync, type Stats } from 'node:fs';
import { mountFacts } from '../sys/mountapi.js';
import { OverlayError } from './errors.js';
import { filesystemName, notAnUpperBecause } from './fs-types.js';
import type { ResolvedSpec } from './spec.js';

function statOrThrow(path: string, role: string, missing: 'ERR_OVERLAY_LOWER_MISSING' | 'ERR_OVERLAY_PATH_MISSING'): Stats {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new OverlayError(missing, `${role} ${path} does not exist`, { path, errnoName: code, cause: e });
    }
    if (code === 'EACCES' || code === 'EPERM') {
      throw new OverlayError(
        'ERR_OVERLAY_PERMISSION',
        `${role} ${path} cannot be reached (${code}): the mounting process needs search permission on every directory above it`,
        { path, errnoName: code, cause: e },
      );
    }
    throw new OverlayError('ERR_OVERLAY_MOUNT', `${role} ${path}: stat failed (${code})`, { path, errnoName: code, cause: e });
  }
  if (!st.isDirectory()) {
    throw new OverlayError('ERR_OVERLAY_NOT_A_DIRECTORY', `${role} ${path} is not a directory`, { path });
  }
  return st;
}

function filesystemOf(path: string): { magic: number; name: string } {
  const magic = statfsSync(path).type >>> 0;
  return { magic, name: filesystemName(magic) };
}

/** True when `inner` is `outer` or lies below it. */
function within(inner: string, outer: string): boolean {
  return inner === outer || inner.startsWith(outer.endsWith('/') ? outer : `${outer}/`);
}

function checkUpperAndWork(upper: string, work: string): void {
  statOrThrow(upper, 'upper', 'ERR_OVERLAY_PATH_MISSING');
  statOrThrow(work, 'work dir', 'ERR_OVERLAY_PATH_MISSING');
  const fs = filesystemOf(upper);
  const against = notAnUpperBecause(fs.magic);
  if (against) {
    throw new OverlayError(
      'ERR_OVERLAY_UPPER_UNSUPPORTED',
      `upper ${upper} is on ${fs.name}, which cannot hold an overlay upper: ${against}. Put the upper on ext4, xfs, btrfs or tmpfs, or use the copy driver (chooseDriver)`,
      { path: upper },
    );
  }
  const realUpper = realpathSync(upper);
  const realWork = realpathSync(work);
  if (within(realUpper, realWork) || within(realWork, realUpper)) {
    throw new OverlayError(
      'ERR_OVERLAY_OVERLAPPING',
      `work dir ${work} and upper ${upper} overlap: overlayfs needs them to be separate directories (siblings, typically)`,
      { path: work },
    );
  }
  if (mountFacts(upper).mountId !== mountFacts(work).mountId) {
    const workFs = filesystemOf(work);
    throw new OverlayError(
      'ERR_OVERLAY_WORK_OTHER_MOUNT',
      `work dir ${work} (${workFs.name}) is not on the same mount as upper ${upper} (${fs.name}): overlayfs moves files from work into upper with rename(2), which cannot cross mounts. Put both in one directory`,
      { path: work },
    );
  }
}

/** Throws ERR_OVERLAY_LOWER_MISSING or ERR_OVERLAY_NOT_A_DIRECTORY for the first unusable lower. */
export function checkLowers(spec: ResolvedSpec): void {
  for (const [i, l] of spec.lower.entries()) statOrThrow(l, spec.lower.length > 1 ? `lower[${i}]` : 'lower', 'ERR_OVERLAY_LOWER_MISSING');
}

/** Throws an {@link OverlayError} naming the first thing that would make the mount fail. */
export function preflight(spec: ResolvedSpec): void {
  checkLowers(spec);
  if (spec.upper !== undefined && spec.work !== undefined) checkUpperAndWork(spec.upper, spec.work);
  statOrThrow(spec.target, 'target', 'ERR_OVERLAY_PATH_MISSING');
  if (mountFacts(spec.target).isMountRoot) {
    throw new OverlayError(
      'ERR_OVERLAY_TARGET_MOUNTED',
      `target ${spec.target} is already a mount point: an overlay there would hide that mount, and unmounting one would be ambiguous. Unmount it first or choose another directory`,
      { path: spec.target },
    );
  }
}
