import { CtrkitError } from '../errors.js';
import { errnoNumber } from '../sys/errno.js';
import type { InitStep, WireError } from './protocol.js';

/** The codes of {@link InitError} and its subclasses. */
export type InitErrorCode = 'ERR_INIT_STEP' | 'ERR_COMMAND_NOT_FOUND' | 'ERR_COMMAND_NOT_EXECUTABLE';

/** The codes of the other errors of `ctrkit/namespaces`: {@link SpawnError}, {@link IdMapError}, {@link NamespaceError}. */
export type NamespacesErrorCode = InitErrorCode | 'ERR_SPAWN' | 'ERR_ID_MAP' | 'ERR_NAMESPACE';

/**
 * A step of the container's setup failed: the in-namespace init stage reported it, or died
 * before it could. Nothing is left running when this is thrown.
 *
 * @example
 * `InitError: [pivot-root] pivot_root on /srv/rootfs: EINVAL (the new root must be a mount point ...)`
 */
export class InitError extends CtrkitError {
  /** Which kind of failure; see {@link InitErrorCode}. */
  declare readonly code: InitErrorCode;
  /** The setup step that failed. */
  readonly step: InitStep;
  /** The failing system call, when one failed. */
  readonly syscall: string | undefined;
  /** The errno number (1 for EPERM), when a system call failed. */
  readonly errno: number | undefined;
  /** The errno name (`EPERM`), when a system call failed. */
  readonly errnoName: string | undefined;
  /** The path involved, when there is one. */
  readonly path: string | undefined;
  /** What the setup machinery printed (util-linux unshare, the stage's own crash output). */
  readonly diagnostics: string;

  /** @internal */
  constructor(step: InitStep, wire: WireError, diagnostics = '', code: InitErrorCode = 'ERR_INIT_STEP') {
    const diag = diagnostics.trim();
    super(code, `[${step}] ${wire.message}${diag ? `\n${diag}` : ''}`);
    this.step = step;
    this.syscall = wire.syscall;
    // The stage sends Node's shape: `code` the errno name, `errno` negative for Node's own fs
    // errors and positive for a SysError. The name is the reliable half.
    const name = wire.code !== undefined && /^E[A-Z0-9]+$/.test(wire.code) ? wire.code : undefined;
    this.errnoName = name;
    this.errno = name === undefined ? undefined : (errnoNumber(name) ?? (wire.errno === undefined ? undefined : Math.abs(wire.errno)));
    this.path = wire.path;
    this.diagnostics = diag;
  }
}

/** The command does not exist in the container (not on its PATH, or the file is missing). */
export class CommandNotFoundError extends InitError {
  /** The command as given. */
  readonly command: string;
  /** @internal */
  constructor(command: string, step: InitStep, wire: WireError, diagnostics = '') {
    super(step, wire, diagnostics, 'ERR_COMMAND_NOT_FOUND');
    this.command = command;
  }
}

/** The command exists but cannot be executed (not executable, wrong format, a directory). */
export class CommandNotExecutableError extends InitError {
  /** The command as given. */
  readonly command: string;
  /** @internal */
  constructor(command: string, step: InitStep, wire: WireError, diagnostics = '') {
    super(step, wire, diagnostics, 'ERR_COMMAND_NOT_EXECUTABLE');
    this.command = command;
  }
}

/** @internal */
export function initErrorFrom(step: InitStep, wire: WireError, command: string, diagnostics: string): InitError {
  if (step === 'lookup' || step === 'exec') {
    if (wire.code === 'ENOENT') return new CommandNotFoundError(command, step, wire, diagnostics);
    if (wire.code === 'EACCES' || wire.code === 'ENOEXEC' || wire.code === 'EISDIR' || wire.code === 'ENOTDIR') {
      return new CommandNotExecutableError(command, step, wire, diagnostics);
    }
  }
  return new InitError(step, wire, diagnostics);
}
