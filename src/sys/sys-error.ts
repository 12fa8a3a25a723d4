import type { constants } from 'node:os';
import { CtrkitError } from '../errors.js';
import { errnoName } from './errno.js';

/**
 * The `code` of a {@link SysError}: the errno's symbolic name (`EPERM`, `ENOENT` ...), or
 * `E` and the number for a value Node has no name for.
 */
export type ErrnoCode = keyof typeof constants.errno | `E${number}`;

/**
 * A system call failed. Shaped like Node's own system errors: `code` is the errno name
 * (`EPERM`), `errno` its number, `syscall` the call, `path` the file it acted on.
 *
 * @example
 * ```ts
 * try { ... } catch (e) { if (e instanceof SysError && e.code === 'EPERM') ... }
 * ```
 */
export class SysError extends CtrkitError {
  /** The errno name, as for Node's own system errors. */
  declare readonly code: ErrnoCode;
  /** The errno value, e.g. 1 for EPERM. */
  readonly errno: number;
  /** The errno name, e.g. `EPERM` (the same as `code`; named as on every other ctrkit error that carries an errno). */
  readonly errnoName: ErrnoCode;
  /** The failing system call, e.g. `mount`, `pivot_root`. */
  readonly syscall: string;
  /** The path the call acted on, when there is one. */
  readonly path: string | undefined;

  /**
   * @param syscall - the failing call
   * @param errno - the errno it returned
   * @param path - the path it acted on
   * @param hint - a short explanation of the likely cause, added to the message
   */
  constructor(syscall: string, errno: number, path?: string, hint?: string) {
    const name = errnoName(errno) as ErrnoCode;
    const on = path === undefined ? '' : ` on ${path}`;
    super(name, `${syscall}${on}: ${name}${hint ? ` (${hint})` : ''}`);
    this.errno = errno;
    this.errnoName = name;
    this.syscall = syscall;
    this.path = path;
  }
}
