import { CtrkitError } from '../errors.js';

/** The codes of {@link ContainerError}. */
export type ContainerErrorCode =
  | 'ERR_NO_SUCH_CONTAINER'
  | 'ERR_AMBIGUOUS_ID'
  | 'ERR_NAME_IN_USE'
  | 'ERR_CONTAINER_NOT_RUNNING'
  | 'ERR_CONTAINER_RUNNING'
  | 'ERR_NO_CGROUP'
  /** `userns: 'auto'`: no subordinate id range is delegated to `ctrkit`, or every one is in use. */
  | 'ERR_USERNS_RANGE'
  /** `Container.prewarm`: the options or the host need the stage start path (no user namespace, terminal, cgroup v2 ...), or the pool is closed. */
  | 'ERR_PREWARM_UNAVAILABLE';

/**
 * A lifecycle operation that cannot be done on this container: it does not exist, its name
 * is taken, it is not running (or still is), the owner helper failed, no id range is free
 * for `userns: 'auto'` ...
 */
export class ContainerError extends CtrkitError {
  /** What failed; see {@link ContainerErrorCode}. */
  declare readonly code: ContainerErrorCode;

  /** @internal */
  constructor(code: ContainerErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Why a copy into or out of a container failed. */
export type CopyErrorReason = 'not-found' | 'not-a-directory' | 'unsafe-entry' | 'overwrite' | 'container-gone' | 'unreadable' | 'io';

/** A copy into or out of a container that was refused or failed. `code` is `ERR_COPY`. */
export class CopyError extends CtrkitError {
  /** Always `ERR_COPY`. */
  declare readonly code: 'ERR_COPY';
  /** What went wrong; see {@link CopyErrorReason}. */
  readonly reason: CopyErrorReason;
  /** The path or tar entry concerned, as the caller named it. */
  readonly path: string;

  /**
   * @param reason - what went wrong
   * @param path - the path or tar entry concerned
   * @param message - why, in words
   * @param cause - the underlying error
   */
  constructor(reason: CopyErrorReason, path: string, message: string, cause?: unknown) {
    super('ERR_COPY', `${path}: ${message}`, { cause });
    this.reason = reason;
    this.path = path;
  }
}
