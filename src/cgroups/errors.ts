import { CtrkitError } from '../errors.js';

/**
 * A cgroup operation failed. `file` is the cgroupfs file or directory involved, `value`
 * what was written (for writes), so the message reads like
 * `CgroupError: memory.max: invalid value "512x" (expected bytes or k/m/g suffix)`.
 */
export class CgroupError extends CtrkitError {
  /** The cgroupfs path involved, when there is one. */
  readonly file: string | undefined;
  /** The value that was being written, when there is one. */
  readonly value: string | undefined;

  /** @internal */
  constructor(code: string, message: string, details: { file?: string; value?: string; cause?: unknown } = {}) {
    super(code, message, { cause: details.cause });
    this.file = details.file;
    this.value = details.value;
  }
}

/** A limit was given in a form ctrkit or the kernel does not accept. `code` is `ERR_CGROUP_VALUE`. */
export class CgroupValueError extends CgroupError {
  /** @internal */
  constructor(file: string, value: unknown, expected: string) {
    super('ERR_CGROUP_VALUE', `${file}: invalid value ${JSON.stringify(value)} (expected ${expected})`, { file, value: String(value) });
  }
}

/**
 * A controller the request needs is not available where the cgroup lives: not mounted, bound
 * to the other cgroup version (a hybrid host), or not delegated. `code` is `ERR_CGROUP_CONTROLLER`.
 */
export class ControllerUnavailableError extends CgroupError {
  /** The controller, e.g. `memory`. */
  readonly controller: string;
  /** @internal */
  constructor(controller: string, why: string) {
    super('ERR_CGROUP_CONTROLLER', `cgroup controller "${controller}" is not available: ${why}`);
    this.controller = controller;
  }
}
