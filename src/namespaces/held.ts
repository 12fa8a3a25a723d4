/**
 * Starts that outlive the process that made them: a container's init left waiting at the
 * barrier for another process to release it (an OCI runtime's `create`, then `start`), and
 * processes started inside a running container's namespaces (`exec`). Both run on the thread
 * start path (./fast/threads.ts), so the process started is a direct child of the caller and
 * passes to the caller's subreaper when the caller ends: nothing of ctrkit's stays between
 * them, which is what a containerd shim, waiting on its children, relies on. The release of a
 * held init is in ./release.ts (it needs nothing else).
 * @internal
 */
import { AT_FDCWD, O_CLOEXEC, O_DIRECTORY, O_PATH } from '../sys/constants.js';
import { close, openat } from '../sys/libc.js';
import { InvalidOptionError } from '../errors.js';
import { threadStartRefusal } from './fast/refusal.js';
import type { StageConfig } from './init/config.js';
import { lookupCommandIn } from './init/exec.js';
import type { SpawnRequest } from './spawn-request.js';
import { allocatePty, type TtySize } from './pty.js';
import type { NamespaceType } from './types.js';
import { unshareRequest, type UnshareOptions } from './unshare.js';

/** The standard streams a held start gives its command: the caller's own 0, 1 and 2. */
const OWN_STDIO = { child: [0, 1, 2] as [number, number, number], toClose: [] };

/**
 * Starts the threads {@link createHeld} will use for `options` now, while the caller makes the
 * container's cgroup: their start-up overlaps that work. Never throws (createHeld reports).
 */
export async function warmHeld(options: UnshareOptions): Promise<void> {
  try {
    const req = await unshareRequest({ ...options, stdio: 'inherit' });
    // The cgroup is not made yet: its tasks files are the start's business, not the threads'.
    const withCgroup = { ...req.config, tty: false, cgroupTasks: req.config.cgroupTasks ?? ['(made before the start)'] };
    if (threadStartRefusal({ ...req, config: withCgroup, startPath: 'auto' })) return;
    const { prestartThreads } = await import('./fast/threads.js');
    prestartThreads(req.config);
  } catch {
    // createHeld says what is wrong
  }
}

/** What an OCI runtime's container has beyond unshare()'s options. */
export interface HeldExtras {
  /** Namespaces (among the container's) entered from these paths instead of made new. */
  readonly joinPaths?: StageConfig['joinPaths'];
  /** The propagation of the container's mounts once pivoted (MS_* flags). */
  readonly propagation?: number | undefined;
  /**
   * This whole process stands in the container's cgroup already (a cgroup v2 host, where a
   * thread cannot join one alone): no `cgroupTasks` to join, and the cgroup namespace the
   * spawner makes is rooted where it stands.
   */
  readonly cgroupJoined?: boolean | undefined;
}

/**
 * Builds the container `options` describe (its namespaces of `joinPaths`' types entered from
 * those paths instead of made new) and leaves its init waiting on `fifo` (a FIFO that exists)
 * before its command runs: it goes on once any process opens `fifo` for writing
 * (releaseHeld in ./release.ts). The hook runs first, with the init's PID. Resolves with that
 * PID and, with `tty`, the master of the terminal the init opens once released (pts/0 of the
 * container's own devpts).
 * Afterwards this process can start nothing else and must end with `exitNow`.
 * Throws InvalidOptionError for what only the init stage could do (the thread start path's refusals).
 */
export async function createHeld(options: UnshareOptions, fifo: string, extra: HeldExtras = {}): Promise<{ pid: number; terminal?: number }> {
  const asked = await unshareRequest({ ...options, stdio: 'inherit' });
  const { joinPaths, propagation } = extra;
  // An OCI runtime's mounts, in config.json's order (/proc first), as runc makes them.
  const rootfs = asked.config.rootfs && { ...asked.config.rootfs, inOrder: true, propagation };
  for (const type of Object.keys(joinPaths ?? {}) as NamespaceType[]) {
    if (!asked.config.namespaces.includes(type)) throw new InvalidOptionError(`joinPaths.${type}`, `names a namespace the container does not have (${type})`);
  }
  const req: SpawnRequest = { ...asked, config: { ...asked.config, rootfs, joinPaths } };
  // A terminal is no refusal here: a held start opens the container's first pty once released.
  // Nor is a cgroup this process joined itself.
  const joined = extra.cgroupJoined ? { cgroupTasks: ['(joined by this process)'] } : {};
  const refusal = threadStartRefusal({ ...req, config: { ...req.config, tty: false, ...joined }, startPath: 'auto' });
  if (refusal) throw new InvalidOptionError('process', `cannot be started and left waiting here: ${refusal}`);
  const { holdOnThreads } = await import('./fast/threads.js');
  return holdOnThreads(req, OWN_STDIO, fifo);
}

/**
 * Ends this process's start-path threads and removes their park cgroups: for a short-lived
 * process that started something with {@link execJoined} and is about to exit (an idle
 * process does it by itself after a while).
 */
export async function endStartThreads(): Promise<void> {
  // A start that just failed is counted as pending until its queue settles, a turn later.
  await new Promise((resolve) => setImmediate(resolve));
  const { stopStartThreads } = await import('./fast/threads.js');
  await stopStartThreads();
}

/** What {@link execJoined} starts inside a running container. */
export interface JoinedProcess {
  /** The container's init, host PID. */
  readonly target: number;
  /** Its v1 `tasks` files (the process joins its cgroups). */
  readonly cgroupTasks: readonly string[];
  /** The command, environment, cwd and privileges; `namespaces` lists those to enter. */
  readonly config: Pick<
    StageConfig,
    'argv' | 'env' | 'cwd' | 'capabilities' | 'ambient' | 'umask' | 'noNewPrivileges' | 'seccomp' | 'seccompFlags' | 'user' | 'namespaces'
  >;
  /** The fds that become its 0, 1 and 2. @defaultValue this process's own */
  readonly stdio?: readonly [number, number, number];
  /** This whole process stands in the container's cgroup already (cgroup v2): `cgroupTasks` is empty. */
  readonly cgroupJoined?: boolean | undefined;
  /** Give it a terminal of the container's devpts instead (its master is returned), of this size. */
  readonly terminal?: { readonly size?: TtySize | undefined } | undefined;
}

/**
 * Starts a process in a running container (its namespaces, cgroups, root), as a direct child
 * of this process. The command is looked up in the container's root. Resolves with its PID
 * and a pidfd once it exec'd; a command that does not exist rejects with SysError(execve, ENOENT).
 */
export async function execJoined(p: JoinedProcess): Promise<{ pid: number; pidfd: number; terminal?: number }> {
  const c = p.config;
  const config: StageConfig = {
    ...c,
    mode: 'create',
    mountProc: false,
    userns: false,
    tty: false,
  };
  const refusal = threadStartRefusal({
    config: {
      ...config,
      rootfs: { path: '/', mounts: [] },
      cgroupTasks: p.cgroupJoined ? ['(joined by this process)'] : p.cgroupTasks,
      namespaces: ['mnt', 'pid'],
    },
    stdio: ['inherit', 'inherit', 'inherit'],
  });
  if (refusal) throw new InvalidOptionError('process', `cannot be started in the container here: ${refusal}`);
  const root = openat(AT_FDCWD, `/proc/${p.target}/root`, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
  let path: string;
  try {
    path = lookupCommandIn(root, c.argv[0]!, c.env, c.cwd);
  } finally {
    close(root);
  }
  const { execOnThreads } = await import('./fast/threads.js');
  // A terminal: a new pty of the container's devpts, whose number is known before the spawn.
  const pty = p.terminal ? allocatePty(p.target, p.terminal.size) : undefined;
  try {
    const started = await execOnThreads(
      { target: p.target, cgroupTasks: p.cgroupTasks, config, path, terminal: pty && `/dev/pts/${pty.n}` },
      { child: [...(p.stdio ?? [0, 1, 2])] as [number, number, number], toClose: [] },
    );
    return { ...started, terminal: pty?.fd };
  } catch (e) {
    if (pty) close(pty.fd);
    throw e;
  }
}
