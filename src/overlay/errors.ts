import { CtrkitError } from '../errors.js';
import { errnoNumber } from '../sys/errno.js';

/**
 * Why an overlay could not be mounted or unmounted. Stable: callers may branch on it.
 *
 * - `ERR_OVERLAY_LOWER_MISSING` — a lower directory does not exist.
 * - `ERR_OVERLAY_PATH_MISSING` — the upper, work or target directory does not exist.
 * - `ERR_OVERLAY_NOT_A_DIRECTORY` — a layer, work or target path is not a directory.
 * - `ERR_OVERLAY_UPPER_UNSUPPORTED` — the upper's filesystem cannot be an overlay upper
 *   (it is itself an overlay, or cannot hold whiteouts or the opaque xattr, or is remote).
 * - `ERR_OVERLAY_WORK_OTHER_MOUNT` — the work dir is not on the same mount as the upper.
 * - `ERR_OVERLAY_OVERLAPPING` — the work dir and the upper dir are inside one another.
 * - `ERR_OVERLAY_TARGET_MOUNTED` — the target is already a mount point.
 * - `ERR_OVERLAY_TOO_MANY_LAYERS` — more lowers than the kernel stacks (500), or than fit
 *   the one-page option string of the legacy mount(2) path.
 * - `ERR_OVERLAY_PERMISSION` — the caller may not mount (needs CAP_SYS_ADMIN over its mount namespace).
 * - `ERR_OVERLAY_NOT_SUPPORTED` — the kernel has no overlayfs.
 * - `ERR_OVERLAY_MOUNT` — the kernel refused the mount for another reason (see `kernelMessage` and dmesg).
 * - `ERR_OVERLAY_BUSY` — unmount refused: something uses the mount or another mount covers it.
 * - `ERR_OVERLAY_UNMOUNT` — unmount failed for another reason.
 */
export type OverlayErrorCode =
  | 'ERR_OVERLAY_LOWER_MISSING'
  | 'ERR_OVERLAY_PATH_MISSING'
  | 'ERR_OVERLAY_NOT_A_DIRECTORY'
  | 'ERR_OVERLAY_UPPER_UNSUPPORTED'
  | 'ERR_OVERLAY_WORK_OTHER_MOUNT'
  | 'ERR_OVERLAY_OVERLAPPING'
  | 'ERR_OVERLAY_TARGET_MOUNTED'
  | 'ERR_OVERLAY_TOO_MANY_LAYERS'
  | 'ERR_OVERLAY_PERMISSION'
  | 'ERR_OVERLAY_NOT_SUPPORTED'
  | 'ERR_OVERLAY_MOUNT'
  | 'ERR_OVERLAY_BUSY'
  | 'ERR_OVERLAY_UNMOUNT';

/** Details an {@link OverlayError} carries besides its message. */
export interface OverlayErrorDetails {
  /** The path the failure is about (a lower, the upper, the target ...). */
  readonly path?: string | undefined;
  /** The errno name when a system call failed, e.g. `EINVAL`; the error's `errno` is its number. */
  readonly errnoName?: string | undefined;
  /** What the kernel said through the filesystem context, when it said anything. */
  readonly kernelMessage?: string | undefined;
  /** The underlying error. */
  readonly cause?: unknown;
}

/**
 * An overlay could not be mounted or unmounted. The message says what failed, on which
 * path, and the likely cause; nothing is left mounted when a mount fails.
 *
 * @example
 * `OverlayError: lower /srv/layers/3 does not exist (ERR_OVERLAY_LOWER_MISSING)`
 */
export class OverlayError extends CtrkitError {
  /** Why it failed; see {@link OverlayErrorCode}. */
  declare readonly code: OverlayErrorCode;
  /** The path the failure is about, when there is one. */
  readonly path: string | undefined;
  /** The errno number when a system call failed, e.g. 22 for EINVAL. */
  readonly errno: number | undefined;
  /** The errno name when a system call failed, e.g. `EINVAL`. */
  readonly errnoName: string | undefined;
  /** The kernel's own explanation, when the filesystem context gave one. */
  readonly kernelMessage: string | undefined;

  /**
   * @param code - why it failed
   * @param message - what failed, on what, and the likely cause
   * @param details - the path, errno, kernel message and cause
   */
  constructor(code: OverlayErrorCode, message: string, details: OverlayErrorDetails = {}) {
    const kernel = details.kernelMessage ? ` [kernel: ${details.kernelMessage}]` : '';
    super(code, `${message}${kernel}`, { cause: details.cause });
    this.path = details.path;
    this.errnoName = details.errnoName;
    this.errno = details.errnoName === undefined ? undefined : errnoNumber(details.errnoName);
    this.kernelMessage = details.kernelMessage || undefined;
  }
}

/**
 * Why a layer could not be read, written or converted. Stable: callers may branch on it.
 *
 * - `ERR_LAYER_NOT_FOUND` — the upper or layer directory does not exist.
 * - `ERR_LAYER_REDIRECT` — the upper holds a renamed lower directory (`overlay.redirect`,
 *   from redirect_dir=on), whose content lives in the lower; it cannot be expressed as a diff.
 * - `ERR_LAYER_METACOPY_ORIGIN` — a metadata-only copy-up whose data is in none of the lowers.
 * - `ERR_LAYER_UNSAFE_PATH` — a path would leave the layer (`..`, an absolute whiteout name).
 * - `ERR_LAYER_TARGET_NOT_EMPTY` — the copy driver's target already holds files.
 * - `ERR_LAYER_IO` — reading the tree or writing the archive failed.
 */
export type LayerErrorCode =
  | 'ERR_LAYER_NOT_FOUND'
  | 'ERR_LAYER_REDIRECT'
  | 'ERR_LAYER_METACOPY_ORIGIN'
  | 'ERR_LAYER_UNSAFE_PATH'
  | 'ERR_LAYER_TARGET_NOT_EMPTY'
  | 'ERR_LAYER_IO';

/** A layer (an upper dir, a copy, an archive) could not be read, written or converted. */
export class LayerError extends CtrkitError {
  /** Why it failed; see {@link LayerErrorCode}. */
  declare readonly code: LayerErrorCode;
  /** The path inside or of the layer the failure is about. */
  readonly path: string | undefined;

  /**
   * @param code - why it failed
   * @param message - what failed, on what, and the likely cause
   * @param path - the path concerned
   * @param cause - the underlying error
   */
  constructor(code: LayerErrorCode, message: string, path?: string, cause?: unknown) {
    super(code, message, { cause });
    this.path = path;
  }
}
