/**
 * The root of every error ctrkit throws.
 *
 * Each subclass carries a stable, machine-readable {@link CtrkitError.code} so callers can
 * branch on it without parsing messages, and the message says what failed, on what, and
 * (where it can) what to do about it.
 */
export class CtrkitError extends Error {
  /** A stable identifier of the kind of failure, e.g. `ERR_INIT_STEP` or `EPERM`. */
  readonly code: string;

  /**
   * @param code - stable identifier of the failure
   * @param message - a human-readable explanation
   * @param options - `cause` for the underlying error
   */
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * An option value that ctrkit refuses before touching the kernel: an unknown namespace
 * name, a hostname over 64 bytes, a relative cwd, a uid map the caller may not use ...
 */
export class InvalidOptionError extends CtrkitError {
  /** Always `ERR_INVALID_OPTION`. */
  declare readonly code: 'ERR_INVALID_OPTION';
  /** The option that was refused, e.g. `hostname` or `uidMap[1]`. */
  readonly option: string;

  /**
   * @param option - the name of the refused option
   * @param message - why it was refused and what is expected
   */
  constructor(option: string, message: string) {
    super('ERR_INVALID_OPTION', `${option}: ${message}`);
    this.option = option;
  }
}

/** The operation was cancelled through its `AbortSignal`. */
export class AbortError extends CtrkitError {
  /** Always `ABORT_ERR`. */
  declare readonly code: 'ABORT_ERR';
  /** @param reason - the signal's reason */
  constructor(reason?: unknown) {
    super('ABORT_ERR', 'The operation was aborted', { cause: reason });
  }
}
