/**
 * The stage's half of idmapped roots (see ../idmapped.ts): the idmapped mounts the parent
 * made arrive on {@link IDMAP_FD} and are attached over the very directories they show, in
 * this mount namespace only. Everything mounted from those paths afterwards (the overlay's
 * layers, the rootfs bind) sees files with the container's ids; the attachments themselves
 * go with the old root at pivot_root.
 * @internal
 */
import { close } from '../../sys/libc.js';
import { moveMount } from '../../sys/mountapi.js';
import { receiveFds } from '../../sys/scm.js';
import { SysError } from '../../sys/sys-error.js';
import type { IdmappedPath } from '../mount-plan.js';
import { IDMAP_FD } from './config.js';

/** Receives one idmapped mount per directory and attaches each over its own path. */
export function attachIdmappedMounts(dirs: readonly IdmappedPath[]): void {
  let fds: number[] = [];
  try {
    fds = receiveFds(IDMAP_FD, dirs.length);
    dirs.forEach((d, i) => {
      try {
        moveMount(fds[i]!, d.path);
      } catch (e) {
        // The lookup runs as the container's root, an unprivileged uid outside.
        if (e instanceof SysError && e.code === 'EACCES')
          throw new SysError(
            e.syscall,
            e.errno,
            d.path,
            "the container's root, another uid outside, must be able to reach it: every parent directory searchable by others (o+x)",
          );
        throw e;
      }
    });
  } finally {
    for (const fd of fds) close(fd);
    close(IDMAP_FD);
  }
}
