/**
 * Path resolution that cannot leave the container's root.
 *
 * A rootfs is untrusted: `proc` may be a symlink to `/etc`, `dev` a symlink to `../../`.
 * Every mount destination is therefore opened with openat2(RESOLVE_IN_ROOT), which resolves
 * `..` and symlinks as if the rootfs were `/`, and the mount is made on
 * `/proc/self/fd/N` — the object that was checked, not a path that could be swapped in
 * between (CVE-2021-30465).
 * @internal
 */
import { constants } from 'node:os';
import { O_CLOEXEC, O_DIRECTORY, O_PATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, O_CREAT, O_EXCL, O_WRONLY, O_NOFOLLOW } from '../../sys/constants.js';
import { close, mkdirat, openat, openat2, openat2IfExists } from '../../sys/libc.js';
import { SysError } from '../../sys/sys-error.js';

const RESOLVE = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

/** The `/proc/self/fd/N` path of an fd, for mount(2). */
export function fdPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

function parts(path: string): string[] {
  return path.split('/').filter((p) => p !== '' && p !== '.');
}

/** Opens an existing path inside the root as O_PATH; returns -1 if it does not exist. */
export function openInRoot(rootFd: number, path: string, shown: string, directory = false): number {
  const rel = parts(path).join('/') || '.';
  return openat2IfExists(rootFd, rel, O_PATH | O_CLOEXEC | (directory ? O_DIRECTORY : 0), RESOLVE, shown);
}

/**
 * Opens a directory inside the root, creating missing components (mode 0755). Each prefix is
 * resolved from the root, so symlinks mean what they would mean inside the container.
 */
export function mkdirInRoot(rootFd: number, path: string, shown: string, mode = 0o755): number {
  // Mostly it is there already (/proc, /dev, /sys of an image): one resolution, not one per component.
  const existing = openInRoot(rootFd, path, shown, true);
  if (existing >= 0) return existing;
  const segs = parts(path);
  let parent = openat2(rootFd, '.', O_PATH | O_CLOEXEC | O_DIRECTORY, RESOLVE, shown);
  try {
    for (let i = 0; i < segs.length; i++) {
      const prefix = segs.slice(0, i + 1).join('/');
      let fd = openInRoot(rootFd, prefix, shown, true);
      if (fd < 0) {
        try {
          mkdirat(parent, segs[i]!, mode, shown);
        } catch (err) {
          // Lost a race with another creator, or a dangling symlink: openat2 below decides.
          if (!(err instanceof SysError) || err.code !== 'EEXIST') throw err;
        }
        fd = openInRoot(rootFd, prefix, shown, true);
        if (fd < 0) {
          // mkdirat said EEXIST yet nothing resolves there: a dangling symlink. Refuse it
          // rather than guess where it should lead (runc refuses a symlinked /proc too).
          throw new SysError('mkdir', constants.errno.ELOOP, shown, `/${prefix} in the rootfs is a symlink to nothing inside the rootfs`);
        }
      }
      close(parent);
      parent = fd;
    }
    const result = parent;
    parent = -1;
    return result;
  } finally {
    if (parent >= 0) close(parent);
  }
}

/**
 * Creates a directory in a directory we own (a fresh tmpfs this thread just mounted, where
 * nothing can be a symlink) and opens it O_PATH: two calls, where {@link mkdirInRoot} resolves
 * every component from the root.
 */
export function mkdirOwn(dirFd: number, name: string, shown: string, mode = 0o755): number {
  mkdirat(dirFd, name, mode, shown);
  return openat(dirFd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, shown);
}

/** Creates an empty regular file in a directory we own (a fresh tmpfs) and opens it O_PATH. */
export function touchAt(dirFd: number, name: string, shown: string): number {
  const fd = openat(dirFd, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0o666, shown);
  close(fd);
  return openat(dirFd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0, shown);
}
