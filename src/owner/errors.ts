import { CtrkitError } from '../errors.js';

/** The owner helper could not be started, or ended: containers cannot be owned or detached. */
export class OwnerHelperError extends CtrkitError {
  declare readonly code: 'ERR_OWNER_HELPER';

  /** @internal */
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_OWNER_HELPER', message, options);
  }
}
