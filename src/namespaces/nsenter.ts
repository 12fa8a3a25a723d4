import { isAbsolute } from 'node:path';
import { InvalidOptionError } from '../errors.js';
import type { Capability } from './capabilities.js';
import { NamespaceRef } from './handle.js';
import type { NamespacedProcess } from './process.js';
import { spawnInNamespaces, type SpawnHook, type StdioOption } from './spawn.js';
import { checkCommand, envList } from './validate.js';
import { checkTtyOptions } from './pty.js';
import type { SeccompOption } from './seccomp-oci.js';
import { normalizeStdio, securityConfig } from './process-config.js';
import { NAMESPACES, normalizeNamespaces, type NamespaceType } from './types.js';
import { DEFAULT_PATH } from './init/config.js';

/** Options of {@link nsenter}. */
export interface NsenterOptions {
  /** The process whose namespaces to enter (a host PID, e.g. a container's `pid`). */
  readonly target: number;
  /** The program and its arguments; looked up in the PATH of `env` inside the target's root. */
  readonly command: readonly string[];
  /**
   * Which of the target's namespaces to enter. Those the caller already shares are skipped.
   * Entering `mnt` also enters the target's root directory.
   * @defaultValue all eight
   */
  readonly namespaces?: Iterable<NamespaceType>;
  /** Working directory, inside the target's root when `mnt` is entered. @defaultValue `/` */
  readonly cwd?: string;
  /** Environment of the command. @defaultValue a standard PATH only */
  readonly env?: Readonly<Record<string, string>>;
  /** stdin, stdout, stderr; ignored with `tty`. @defaultValue `'pipe'` */
  readonly stdio?: StdioOption | readonly [StdioOption, StdioOption, StdioOption];
  /**
   * Allocate a pseudo-terminal inside the container's own devpts instance; the command gets
   * its slave as stdin/stdout/stderr and controlling terminal; the caller gets the master as
   * `process.tty`. `stdio` is then ignored: `stdin`, `stdout` and `stderr` are null. The
   * target's /dev/tty is used as it is (a container started without a tty has none).
   *
   * The pty comes from the devpts mounted at /dev/pts in the command's root: the container's
   * own instance with a `rootfs` (or a target that has one); without one, the host's.
   * @defaultValue false
   */
  readonly tty?: boolean;
  /** With `tty`: the terminal's initial size. @defaultValue 0 columns, 0 rows (the kernel's) */
  readonly ttySize?: { readonly cols: number; readonly rows: number };
  /** The user the command runs as (ids as the target's user namespace sees them). @defaultValue root */
  readonly user?: { readonly uid: number; readonly gid: number; readonly groups?: readonly number[] };
  /** Capabilities the command keeps, or `'all'`. @defaultValue `'all'` */
  readonly capabilities?: readonly Capability[] | 'all';
  /** Set no_new_privs. @defaultValue false */
  readonly noNewPrivileges?: boolean;
  /** The seccomp filter: a profile name or an OCI `linux.seccomp` object. @defaultValue `'unconfined'` */
  readonly seccomp?: SeccompOption;
  /** Runs with the new process's host PID before its command starts (e.g. to join a cgroup). */
  readonly onNamespaces?: SpawnHook;
  /** Cancels setup, or kills the command once it runs. */
  readonly signal?: AbortSignal;
}

/**
 * Runs a program inside the namespaces of an existing process, like `nsenter(1)`: the basis
 * of `docker exec`. Resolves once the program is running; setup failures reject with the
 * same typed errors as {@link unshare}.
 *
 * @example
 * ```ts
 * await using c = await unshare({ command: ['sleep', '60'], rootfs });
 * await using e = await nsenter({ target: c.pid, command: ['hostname'], stdio: ['ignore', 'inherit', 'inherit'] });
 * await e.exited;
 * ```
 */
export async function nsenter(options: NsenterOptions): Promise<NamespacedProcess> {
  checkCommand(options.command);
  const target = options.target;
  if (!Number.isInteger(target) || target <= 0) throw new InvalidOptionError('target', `must be a PID, got ${String(target)}`);
  const wanted = normalizeNamespaces(options.namespaces ?? NAMESPACES.map((n) => n.type));
  // Entering a namespace we are already in is an error for some types (user): skip those.
  const join: NamespaceType[] = [];
  for (const type of wanted) {
    let theirs: NamespaceRef;
    try {
      theirs = NamespaceRef.ofProcess(target, type);
    } catch (e) {
      throw new InvalidOptionError('target', `cannot read the namespaces of process ${target}: ${(e as Error).message}`);
    }
    if (!theirs.sameAs(NamespaceRef.host(type))) join.push(type);
  }
  const cwd = options.cwd ?? '/';
  if (!isAbsolute(cwd)) throw new InvalidOptionError('cwd', `must be an absolute path, got "${cwd}"`);
  const ttySize = checkTtyOptions(options.tty, options.ttySize);
  return spawnInNamespaces({
    config: {
      mode: 'join',
      argv: options.command,
      env: envList(options.env ?? { PATH: DEFAULT_PATH }),
      cwd,
      namespaces: join,
      joinMountOf: join.includes('mnt') ? target : undefined,
      mountProc: false,
      ...securityConfig(options),
      userns: false,
      tty: options.tty ?? false,
    },
    join: { target, namespaces: join },
    stdio: normalizeStdio(options.stdio, 'pipe'),
    ttySize,
    hook: options.onNamespaces,
    signal: options.signal,
  });
}
