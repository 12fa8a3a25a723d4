/**
 * The two ways of handing an overlay to the kernel, and which one this kernel takes.
 *
 * - fsconfig (Linux 6.8+ for `lowerdir+`): one call per layer, so the layer count is only
 *   bounded by overlayfs's own stack limit, and the kernel's error text can be read back.
 * - mount(2) with the classic option string: one page at most (4095 bytes). When the plain
 *   paths do not fit, each lower is opened and passed as the short `/proc/self/fd/N`
 *   (the kernel resolves the magic link to the directory that was opened), which fits
 *   some 200 layers.
 * @internal
 */
import { logger } from '../log.js';
import { mount, openat } from '../sys/libc.js';
import { FsContextError, closeFd, fsconfigCreate, fsconfigFlag, fsconfigString, fsmount, fsopen, moveMount } from '../sys/mountapi.js';
import { SysError } from '../sys/sys-error.js';
import { AT_FDCWD, O_CLOEXEC, O_DIRECTORY, O_PATH } from '../sys/constants.js';
import { OverlayError } from './errors.js';
import { escapeForOptionString, escapeUpperForFsconfig } from './escape.js';
import type { ResolvedSpec } from './spec.js';

const log = logger('ctrkit:overlay');

/** The most a mount(2) data string can hold: one page, NUL included. */
const OPTION_STRING_MAX = 4095;

let lowerdirPlus: boolean | undefined;

/**
 * Whether this kernel takes `lowerdir+` through fsconfig (asked once per process: an
 * fsopen and one fsconfig on a context that is then closed, so nothing is mounted).
 * Throws ERR_OVERLAY_NOT_SUPPORTED when the kernel has no overlayfs at all.
 */
export function lowerdirPlusSupported(): boolean {
  if (lowerdirPlus !== undefined) return lowerdirPlus;
  let fd: number;
  try {
    fd = fsopen('overlay');
  } catch (e) {
    const code = e instanceof SysError ? e.code : '';
    if (code === 'ENODEV')
      throw new OverlayError('ERR_OVERLAY_NOT_SUPPORTED', 'this kernel has no overlayfs (not in /proc/filesystems; try modprobe overlay)', {
        errnoName: 'ENODEV',
        cause: e,
      });
    if (code === 'ENOSYS') return (lowerdirPlus = false); // before Linux 5.2: no new mount API at all
    // EPERM: not allowed to mount here. Either API would be refused; let the mount say so.
    return true;
  }
  try {
    fsconfigString(fd, 'lowerdir+', '/');
    lowerdirPlus = true;
  } catch (e) {
    if (!(e instanceof SysError) || e.code !== 'EINVAL') throw e;
    log('kernel refuses lowerdir+ (%s): using the legacy option string', e.message);
    lowerdirPlus = false;
  } finally {
    closeFd(fd);
  }
  return lowerdirPlus;
}

/** Turns a kernel refusal into an OverlayError that names the likely cause. */
function refusal(e: unknown, spec: ResolvedSpec): OverlayError {
  if (e instanceof OverlayError) return e;
  if (!(e instanceof SysError))
    return new OverlayError('ERR_OVERLAY_MOUNT', `mounting the overlay on ${spec.target} failed: ${String(e)}`, { path: spec.target, cause: e });
  const kernelMessage = e instanceof FsContextError ? e.kernelMessage : undefined;
  const details = { errnoName: e.code, kernelMessage, cause: e };
  const on = e.path ?? spec.target;
  if (e.code === 'EPERM') {
    return new OverlayError(
      'ERR_OVERLAY_PERMISSION',
      `mounting an overlay on ${spec.target} was refused (EPERM): it needs CAP_SYS_ADMIN over the mount namespace — run as root, or as root of a user namespace that owns a new mount namespace`,
      { ...details, path: spec.target },
    );
  }
  if (e.code === 'ENODEV') return new OverlayError('ERR_OVERLAY_NOT_SUPPORTED', 'this kernel has no overlayfs', details);
  if (e.code === 'ENOENT') {
    const lower = spec.lower.includes(on);
    return new OverlayError(
      lower ? 'ERR_OVERLAY_LOWER_MISSING' : 'ERR_OVERLAY_PATH_MISSING',
      `${lower ? 'lower' : 'path'} ${on} does not exist (${e.syscall})`,
      { ...details, path: on },
    );
  }
  if (e.code === 'EROFS') {
    return new OverlayError('ERR_OVERLAY_UPPER_UNSUPPORTED', `upper ${spec.upper ?? on} is on a read-only mount`, { ...details, path: spec.upper ?? on });
  }
  if (e.code === 'EBUSY') {
    return new OverlayError(
      'ERR_OVERLAY_BUSY',
      `upper ${spec.upper ?? '?'} or work dir ${spec.work ?? '?'} is already the upper or work dir of another overlay mount (overlayfs allows one user at a time)`,
      { ...details, path: spec.upper },
    );
  }
  if (e.code === 'ELOOP') {
    return new OverlayError('ERR_OVERLAY_OVERLAPPING', `the layers of the overlay on ${spec.target} overlap (one is inside another)`, { ...details, path: on });
  }
  return new OverlayError(
    'ERR_OVERLAY_MOUNT',
    `${e.syscall} for the overlay on ${spec.target} failed with ${e.code}${kernelMessage ? '' : ' (overlayfs logs the reason to the kernel log: dmesg | grep overlayfs)'}`,
    { ...details, path: on },
  );
}

/** Mounts through fsopen/fsconfig/fsmount/move_mount. A failure leaves nothing mounted. */
export function mountViaFsconfig(spec: ResolvedSpec): void {
  let fd = -1;
  try {
    fd = fsopen('overlay');
    fsconfigString(fd, 'source', spec.source);
    for (const l of spec.lower) fsconfigString(fd, 'lowerdir+', l); // verbatim: see escape.ts
    if (spec.upper !== undefined && spec.work !== undefined) {
      fsconfigString(fd, 'upperdir', escapeUpperForFsconfig(spec.upper), spec.upper);
      fsconfigString(fd, 'workdir', escapeUpperForFsconfig(spec.work), spec.work);
    }
    if (spec.userxattr) fsconfigFlag(fd, 'userxattr');
    if (spec.metacopy !== undefined) fsconfigString(fd, 'metacopy', spec.metacopy ? 'on' : 'off');
    fsconfigCreate(fd, spec.target);
    // Detached until move_mount; if that fails, closing the fd drops the mount.
    const mnt = fsmount(fd, 0, spec.target);
    try {
      moveMount(mnt, spec.target);
    } finally {
      closeFd(mnt);
    }
  } catch (e) {
    throw refusal(e, spec);
  } finally {
    closeFd(fd);
  }
}

function optionString(spec: ResolvedSpec, lowers: readonly string[]): string {
  const opts = [`lowerdir=${lowers.map(escapeForOptionString).join(':')}`];
  if (spec.upper !== undefined && spec.work !== undefined) {
    opts.push(`upperdir=${escapeForOptionString(spec.upper)}`, `workdir=${escapeForOptionString(spec.work)}`);
  }
  if (spec.userxattr) opts.push('userxattr');
  if (spec.metacopy !== undefined) opts.push(`metacopy=${spec.metacopy ? 'on' : 'off'}`);
  return opts.join(',');
}

/** Mounts through mount(2) and the classic option string. */
export function mountViaOptionString(spec: ResolvedSpec): void {
  let data = optionString(spec, spec.lower);
  const fds: number[] = [];
  try {
    if (Buffer.byteLength(data) > OPTION_STRING_MAX) {
      for (const l of spec.lower) fds.push(openat(AT_FDCWD, l, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, l));
      data = optionString(
        spec,
        fds.map((fd) => `/proc/self/fd/${fd}`),
      );
      log('option string too long for %d lowers: passing them as /proc/self/fd paths (%d bytes)', spec.lower.length, Buffer.byteLength(data));
      if (Buffer.byteLength(data) > OPTION_STRING_MAX) {
        throw new OverlayError(
          'ERR_OVERLAY_TOO_MANY_LAYERS',
          `${spec.lower.length} lowers do not fit the ${OPTION_STRING_MAX}-byte option string of mount(2), even as /proc/self/fd paths; this kernel lacks lowerdir+ (Linux 6.8+): flatten some layers`,
          { path: spec.target },
        );
      }
    }
    mount(spec.source, spec.target, 'overlay', 0, data);
  } catch (e) {
    throw refusal(e, spec);
  } finally {
    for (const fd of fds) closeFd(fd);
  }
}
