/**
 * Mounts the caller's root file system (a copy-on-write overlay, for Container) onto the new
 * root's directory, from parameters alone: the stage knows nothing of the file system.
 * @internal
 */
import { mount } from '../../sys/libc.js';
import { closeFd, fsconfigCreate, fsconfigFlag, fsconfigString, fsmount, fsopen, moveMount } from '../../sys/mountapi.js';
import { SysError } from '../../sys/sys-error.js';
import type { RootMount } from '../mount-plan.js';

/**
 * fsopen, one fsconfig per parameter, fsmount, move_mount; a kernel that refuses a parameter
 * (EINVAL: overlay's `lowerdir+` before Linux 6.8) gets the classic option string instead.
 */
export function mountRootFs(m: RootMount, target: string): void {
  let fd = -1;
  let configured = false;
  try {
    fd = fsopen(m.fstype);
    fsconfigString(fd, 'source', m.source);
    for (const [key, value] of m.params) {
      if (value === undefined) fsconfigFlag(fd, key);
      else fsconfigString(fd, key, value);
    }
    configured = true;
    fsconfigCreate(fd, target);
    // Detached until move_mount; if that fails, closing the fd drops the mount.
    const mnt = fsmount(fd, 0, target);
    try {
      moveMount(mnt, target);
    } finally {
      closeFd(mnt);
    }
  } catch (e) {
    if (configured || m.fallbackData === undefined || !(e instanceof SysError) || e.code !== 'EINVAL') throw e;
    mount(m.source, target, m.fstype, 0, m.fallbackData);
  } finally {
    if (fd >= 0) closeFd(fd);
  }
}
