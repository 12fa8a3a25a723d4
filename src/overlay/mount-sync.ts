/**
 * Mounting and unmounting, synchronously: the form an init stage needs (it runs as a
 * straight line of synchronous steps inside the container's new mount namespace), and
 * what the async `Overlay.mount` is built on.
 */
import { logger } from '../log.js';
import { umount2 } from '../sys/libc.js';
import { mountFacts } from '../sys/mountapi.js';
import { MNT_DETACH, UMOUNT_NOFOLLOW } from '../sys/constants.js';
import { SysError } from '../sys/sys-error.js';
import { OverlayError } from './errors.js';
import { lowerdirPlusSupported, mountViaFsconfig, mountViaOptionString } from './kernel-mount.js';
import { preflight } from './preflight.js';
import { resolveSpec, type OverlayMountApi, type OverlaySpec, type ResolvedSpec } from './spec.js';
import { inUserNamespace } from './userns.js';

const log = logger('ctrkit:overlay');

/** What {@link mountOverlaySync} mounted. */
export interface MountedOverlay {
  /** The merged directory (absolute, normalised). */
  readonly target: string;
  /** The lowers, topmost first, absolute and normalised. */
  readonly lower: readonly string[];
  /** The upper, when the overlay is writable. */
  readonly upper: string | undefined;
  /** The work dir, when the overlay is writable. */
  readonly work: string | undefined;
  /** Whether overlay markers are `user.overlay.*`. */
  readonly userxattr: boolean;
  /** Which kernel interface mounted it. */
  readonly api: OverlayMountApi;
  /** The mount's id (as in /proc/self/mountinfo), to recognise it at unmount time. */
  readonly mountId: number;
}

/** Mounts a spec that passed {@link preflight}: picks the kernel interface, mounts, records the id. @internal */
export function mountChecked(spec: ResolvedSpec): MountedOverlay {
  const api: OverlayMountApi = spec.api === 'auto' ? (lowerdirPlusSupported() ? 'fsconfig' : 'legacy') : spec.api;
  if (api === 'fsconfig') mountViaFsconfig(spec);
  else mountViaOptionString(spec);
  const mountId = Number(mountFacts(spec.target).mountId);
  log('mounted overlay %d on %s via %s: %d lower(s)%s', mountId, spec.target, api, spec.lower.length, spec.upper ? `, upper ${spec.upper}` : ', read-only');
  return { target: spec.target, lower: spec.lower, upper: spec.upper, work: spec.work, userxattr: spec.userxattr, api, mountId };
}

/**
 * Mounts an overlay onto `spec.target`, synchronously. For ctrkit's init stage (inside
 * the container's new mount namespace, possibly as root of a user namespace) and anyone
 * else who cannot await.
 *
 * Contract:
 * - Paths must be absolute; `upper`, `work`, `target` and every lower must already exist
 *   (nothing is created). `target` must not be a mount point.
 * - Checks the spec and the paths first (typed {@link OverlayError} naming the cause, or
 *   `InvalidOptionError` for a malformed spec), then mounts with fsconfig `lowerdir+` when
 *   the kernel has it, else mount(2). A failure leaves nothing mounted.
 * - `userxattr` defaults to {@link inUserNamespace}(). It does not probe the upper's
 *   filesystem for whiteout support (the caller chose it, with {@link chooseDriver}).
 * - Mount flags are none (no nosuid/nodev/ro): the container's policy is applied by the caller.
 *
 * @returns what was mounted, including the mount id
 * @throws {@link OverlayError} or `InvalidOptionError`; never a bare errno
 */
export function mountOverlaySync(spec: OverlaySpec): MountedOverlay {
  const resolved = resolveSpec(spec, inUserNamespace);
  preflight(resolved);
  return mountChecked(resolved);
}

/** Options of {@link unmountOverlaySync}. */
export interface UnmountOptions {
  /**
   * Detach lazily (MNT_DETACH): the mount disappears from the tree now and is freed when
   * the last user lets go. Without it, a busy mount is an error.
   * @defaultValue false
   */
  readonly detach?: boolean;
}

/**
 * Unmounts the overlay at `target`, synchronously.
 * @throws {@link OverlayError} `ERR_OVERLAY_BUSY` when it is in use (and not `detach`),
 * `ERR_OVERLAY_UNMOUNT` when `target` is not a mount point or unmount fails otherwise
 */
export function unmountOverlaySync(target: string, options: UnmountOptions = {}): void {
  try {
    umount2(target, UMOUNT_NOFOLLOW | (options.detach ? MNT_DETACH : 0));
  } catch (e) {
    if (!(e instanceof SysError)) throw e;
    if (e.code === 'EBUSY') {
      throw new OverlayError(
        'ERR_OVERLAY_BUSY',
        `cannot unmount ${target}: it is busy (a process has a file open or its cwd below it); close those, or unmount with { detach: true }`,
        { path: target, errnoName: e.code, cause: e },
      );
    }
    const why = e.code === 'EINVAL' ? ' (it is not a mount point)' : '';
    throw new OverlayError('ERR_OVERLAY_UNMOUNT', `cannot unmount ${target}: ${e.code}${why}`, { path: target, errnoName: e.code, cause: e });
  }
  log('unmounted %s%s', target, options.detach ? ' (detached)' : '');
}
