import { CtrkitError } from '../errors.js';

/** The codes of {@link ContainerError}. */
export type ContainerErrorCode =
  | 'ERR_NO_SUCH_CONTAINER' | 'ERR_AMBIGUOUS_ID' | 'ERR_NAME_IN_USE' | 'ERR_CONTAINER_NOT_RUNNING' | 'ERR_CONTAINER_RUNNING'
  | 'ERR_NO_CGROUP' | 'ERR_OWNER_HELPER' | 'ERR_NOT_DETACHABLE';

/**
 * A lifecycle operation that cannot be done on this container: it does not exist, its name
 * is taken, it is not running (or still is), the owner helper failed ...
 */
export class ContainerError extends CtrkitError {
  declare readonly code: ContainerErrorCode;

  /** @internal */
  constructor(code: ContainerErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
