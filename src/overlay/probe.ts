/**
 * The probe behind {@link chooseDriver} and `Overlay.mount`: can this directory's
 * filesystem hold what an overlay upper must hold?
 *
 * overlayfs itself mounts happily on an upper that cannot store its markers (it logs
 * "failed to set xattr on upper" and carries on); the failure comes later, when a
 * container deletes a lower file or replaces a lower directory. So the probe does
 * exactly those two things, in a scratch directory: create a whiteout (a 0:0 character
 * device) and set the opaque xattr, then remove both.
 * @internal
 */
import { mkdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { lsetxattr, mknodat } from '../sys/libc.js';
import { AT_FDCWD, S_IFCHR } from '../sys/constants.js';
import { SysError } from '../sys/sys-error.js';
import { opaqueXattrName } from './markers.js';

/**
 * Returns why `dir`'s filesystem cannot hold whiteouts or opaque markers, or null when it
 * can. Not cached: it costs a few syscalls, and a cache keyed by st_dev would be wrong —
 * anonymous device numbers (tmpfs, ramfs) are reused after an unmount.
 */
export function upperProbeFailure(dir: string, userxattr: boolean): string | null {
  const scratch = join(dir, `.ctk-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  const whiteout = join(scratch, 'whiteout');
  mkdirSync(scratch, { mode: 0o700 });
  try {
    try {
      mknodat(AT_FDCWD, whiteout, S_IFCHR, 0n);
    } catch (e) {
      return `it cannot create a whiteout (mknod of a 0:0 character device failed: ${(e as SysError).code})`;
    }
    unlinkSync(whiteout);
    const name = opaqueXattrName(userxattr);
    try {
      lsetxattr(scratch, name, 'y');
    } catch (e) {
      const code = e instanceof SysError ? e.code : String(e);
      return `it cannot store the opaque marker ${name} (${code}${code === 'EPERM' && !userxattr ? '; trusted xattrs need CAP_SYS_ADMIN — use userxattr in a user namespace' : ''})`;
    }
    return null;
  } finally {
    rmdirSync(scratch);
  }
}
