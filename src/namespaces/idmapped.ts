/**
 * The parent's half of idmapped roots: detached idmapped mounts of host directories, made
 * with the new user namespace's maps and handed to the init stage over a socket.
 *
 * Only a process with CAP_SYS_ADMIN over the directories' file system (root of the host) may
 * idmap a mount, and only the stage, inside the container's mount namespace, may attach one
 * there. overlayfs then takes the attached mounts as layers: it refuses a detached mount that
 * was made outside the mount namespace of its mounter (clone_private_mount() wants
 * CAP_SYS_ADMIN over the mount namespace the layer lives in), and overlayfs itself cannot be
 * idmapped (no FS_ALLOW_IDMAP, Linux 6.18), so the layers are, each on its own.
 * @internal
 */
import { closeSync, openSync } from 'node:fs';
import { closeFd, MOUNT_ATTR_RDONLY, mountSetattrIdmap, openTreeClone } from '../sys/mountapi.js';
import { sendFds } from '../sys/scm.js';
import { SysError } from '../sys/sys-error.js';
import { IdMapError } from './idmap.js';
import type { IdmappedPath } from './mount-plan.js';

/** Why the kernel refused an idmapped mount, in words. */
function hint(e: unknown): string {
  if (!(e instanceof SysError)) return (e as Error).message;
  switch (e.code) {
    case 'EINVAL':
      return `${e.message}: its file system cannot be idmapped (ext4, xfs, btrfs, tmpfs can; overlayfs, NFS and FUSE cannot)`;
    case 'EPERM':
      return `${e.message}: only root of the host may idmap a mount`;
    default:
      return e.message;
  }
}

/**
 * Makes a detached, idmapped (and, where asked, read-only) mount of each directory with the
 * maps of the user namespace at `usernsPath` (`/proc/PID/ns/user`), sends them in order on
 * `socket`, and closes its own copies.
 * @internal
 */
export function sendIdmappedMounts(socket: number, usernsPath: string, dirs: readonly IdmappedPath[]): void {
  const fds: number[] = [];
  let userns = -1;
  try {
    userns = openSync(usernsPath, 'r');
    for (const d of dirs) {
      try {
        const fd = openTreeClone(d.path);
        fds.push(fd);
        mountSetattrIdmap(fd, userns, d.readonly ? MOUNT_ATTR_RDONLY : 0, d.path);
      } catch (e) {
        throw new IdMapError(`idmapping ${d.path} for the container's user namespace failed: ${hint(e)}`, e);
      }
    }
    sendFds(socket, fds);
  } finally {
    for (const fd of fds) closeFd(fd);
    if (userns >= 0) closeSync(userns);
  }
}
