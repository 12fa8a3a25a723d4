/**
 * Can this process make (and remove) btrfs subvolumes in a directory? Creating one needs
 * write access there; removing one needs CAP_SYS_ADMIN or `user_subvol_rm_allowed` (or,
 * from Linux 4.18, rmdir of an empty one). The probe tries both.
 * @internal
 */
import { rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { createSubvolume, destroySubvolume } from '../sys/btrfs.js';

/** Why subvolumes cannot be used in `dir`, or undefined when they can. @internal */
export function subvolumeProbeFailure(dir: string): string | undefined {
  const probe = join(dir, `.ctk-probe-subvolume-${process.pid}`);
  try {
    createSubvolume(probe);
  } catch (e) {
    return (e as Error).message;
  }
  try {
    destroySubvolume(probe);
  } catch {
    try {
      rmdirSync(probe); // an empty subvolume, on kernels that allow it
    } catch (e) {
      return `a subvolume was created but could not be removed: ${(e as Error).message}`;
    }
  }
  return undefined;
}
