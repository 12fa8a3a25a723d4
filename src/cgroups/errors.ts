import { CtrkitError } from '../errors.js';
import { errnoNumber } from '../sys/errno.js';

/** The codes of {@link CgroupError} and its subclasses. */
export type CgroupErrorCode =
  | 'ERR_CGROUP_VALUE'
  | 'ERR_CGROUP_CONTROLLER'
  | 'ERR_CGROUP_DEVICES'
  | 'ERR_CGROUP_BUSY'
  | 'ERR_CGROUP_CREATE'
  | 'ERR_CGROUP_EXISTS'
  | 'ERR_CGROUP_NOT_FOUND'
  | 'ERR_CGROUP_NOT_OWNED'
  | 'ERR_CGROUP_NOT_DELEGATED'
  | 'ERR_CGROUP_READ'
  | 'ERR_CGROUP_REMOVE'
  | 'ERR_CGROUP_TIMEOUT'
  | 'ERR_CGROUP_WRITE';

/**
 * A cgroup operation failed. `file` is the cgroupfs file or directory involved, `value`
 * what was written (for writes), so the message reads like
 * `CgroupError: memory.max: invalid value "512x" (expected bytes or k/m/g suffix)`.
 */
export class CgroupError extends CtrkitError {
  /** Which kind of failure; see {@link CgroupErrorCode}. */
  declare readonly code: CgroupErrorCode;
  /** The cgroupfs path involved, when there is one. */
  readonly file: string | undefined;
  /** The value that was being written, when there is one. */
  readonly value: string | undefined;

  /** @internal */
  constructor(code: CgroupErrorCode, message: string, details: { file?: string; value?: string; cause?: unknown } = {}) {
    super(code, message, { cause: details.cause });
    this.file = details.file;
    this.value = details.value;
  }
}

/** A limit was given in a form ctrkit or the kernel does not accept. `code` is `ERR_CGROUP_VALUE`. */
export class CgroupValueError extends CgroupError {
  /** Always `ERR_CGROUP_VALUE`. */
  declare readonly code: 'ERR_CGROUP_VALUE';
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
  /** Always `ERR_CGROUP_CONTROLLER`. */
  declare readonly code: 'ERR_CGROUP_CONTROLLER';
  /** The controller, e.g. `memory`. */
  readonly controller: string;
  /** @internal */
  constructor(controller: string, why: string) {
    super('ERR_CGROUP_CONTROLLER', `cgroup controller "${controller}" is not available: ${why}`);
    this.controller = controller;
  }
}

/**
 * An unprivileged caller asked for resource limits, and no cgroup it may manage is there to
 * hold the container's: cgroup v2 without a subtree delegated to the caller (its own cgroup,
 * from /proc/self/cgroup, or that cgroup's parent, is not writable by it), or cgroup v1,
 * which has no delegation at all. The message names what to configure. `code` is
 * `ERR_CGROUP_NOT_DELEGATED`.
 */
export class CgroupDelegationError extends CgroupError {
  /** Always `ERR_CGROUP_NOT_DELEGATED`. */
  declare readonly code: 'ERR_CGROUP_NOT_DELEGATED';
  /** The hierarchy that would hold the container's cgroup. */
  readonly version: 1 | 2;
  /** v2: the caller's own cgroup, as /proc/self/cgroup names it (`/user.slice/...`). */
  readonly cgroup: string | undefined;
  /** @internal */
  constructor(version: 1 | 2, message: string, details: { cgroup?: string; file?: string; cause?: unknown } = {}) {
    super('ERR_CGROUP_NOT_DELEGATED', message, { file: details.file, cause: details.cause });
    this.version = version;
    this.cgroup = details.cgroup;
  }
}

/**
 * The cgroup v2 device filter (an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE) could not
 * be loaded, attached, listed or detached. `code` is `ERR_CGROUP_DEVICES`; `file` is the
 * cgroup directory.
 */
export class DeviceProgramError extends CgroupError {
  /** Always `ERR_CGROUP_DEVICES`. */
  declare readonly code: 'ERR_CGROUP_DEVICES';
  /** What failed: opening the cgroup, loading the program, attaching, listing or detaching. */
  readonly step: 'open' | 'load' | 'attach' | 'query' | 'detach';
  /** The errno number the kernel returned (1 for EPERM), when it returned one. */
  readonly errno: number | undefined;
  /** The errno name the kernel returned (`EPERM`, `EINVAL` ...), when it returned one. */
  readonly errnoName: string | undefined;
  /** For a refused load: the verifier's log, which says which instruction it refused and why. */
  readonly verifierLog: string | undefined;

  /** @internal */
  constructor(
    step: DeviceProgramError['step'],
    dir: string,
    why: string,
    details: { cause?: unknown; errnoName?: string | undefined; verifierLog?: string } = {},
  ) {
    super('ERR_CGROUP_DEVICES', `${dir}: device program (${step}): ${why}`, { file: dir, cause: details.cause });
    this.step = step;
    this.errnoName = details.errnoName;
    this.errno = details.errnoName === undefined ? undefined : errnoNumber(details.errnoName);
    this.verifierLog = details.verifierLog;
  }
}
