/**
 * The spawn core: starts a command in new namespaces from a multi-threaded Node process.
 *
 * Node cannot fork, and unshare(CLONE_NEWUSER) is refused to a multi-threaded process, so
 * the namespaces are made by util-linux `unshare --fork`, which then runs ctrkit's init stage
 * (a Node script, ./init/stage.ts) as PID 1 inside them. The stage and this module speak the
 * typed protocol of ./protocol.ts over a socketpair; between the stage's `pid` and the
 * parent's `go`, the caller's hook runs with the container's host PID, before anything of the
 * user's runs. With a user namespace, a shell barrier holds the stage until the parent has
 * written the uid/gid maps, since a process exec'd without a mapping loses its capabilities.
 * @internal
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import createDebug from 'debug';
import { AbortError, CtrkitError } from '../errors.js';
import { close, pidfdOpen, pipe } from '../sys/libc.js';
import { ParentChannel } from './channel.js';
import { initErrorFrom, InitError } from './errors.js';
import { NamespaceRef } from './handle.js';
import { writeIdMaps, type IdMapping } from './idmap.js';
import type { StageConfig } from './init/config.js';
import { NamespacedProcess, type ExitStatus } from './process.js';
import type { InitStep, StageMessage } from './protocol.js';
import { NAMESPACES, type NamespaceType } from './types.js';

const log = createDebug('ctrkit:spawn');

/** Where one of the command's standard streams goes. */
export type StdioOption = 'pipe' | 'inherit' | 'ignore' | number;

/** What the spawn hook is told. */
export interface SpawnHookContext {
  /** The container's init as the caller's /proc sees it; its namespaces exist, its command has not started. */
  readonly pid: number;
  /** Aborted when the caller's signal aborts. */
  readonly signal: AbortSignal;
}

/**
 * Runs after the namespaces exist and before the command starts: the place to put the
 * PID into a cgroup or move a network interface into its namespace. If it throws, the
 * process is killed and the error is rethrown to the caller.
 */
export type SpawnHook = (ctx: SpawnHookContext) => void | Promise<void>;

/** A fully checked spawn request. @internal */
export interface SpawnRequest {
  readonly config: StageConfig;
  readonly uidMap?: readonly IdMapping[] | undefined;
  readonly gidMap?: readonly IdMapping[] | undefined;
  readonly timeOffsets?: { readonly monotonic?: number | undefined; readonly boottime?: number | undefined } | undefined;
  readonly stdio: readonly [StdioOption, StdioOption, StdioOption];
  readonly hook?: SpawnHook | undefined;
  readonly signal?: AbortSignal | undefined;
}

const STAGE = fileURLToPath(new URL('./init/stage.js', import.meta.url));
const UNSHARE_FLAGS: Partial<Record<NamespaceType, string>> = {
  user: '--user', pid: '--pid', net: '--net', mnt: '--mount', uts: '--uts', ipc: '--ipc', time: '--time',
  // cgroup: created by the stage itself, after the hook has placed it in its cgroup.
};
// The barrier: tell the parent the user namespace exists, wait until it has written the maps.
const BARRIER = 'echo \'{"t":"userns"}\' >&3 && read -r _ <&3 && exec "$@"';
// util-linux 2.38 cannot re-raise SIGKILL on itself after its child died of it; it says so and exits 1.
const UNSHARE_SIGKILL = 'sigprocmask unblock failed';

function unshareArgs(req: SpawnRequest): string[] {
  const args = ['--fork', '--kill-child'];
  for (const ns of req.config.namespaces) {
    const flag = UNSHARE_FLAGS[ns];
    if (flag) args.push(flag);
  }
  if (req.config.namespaces.includes('time')) {
    if (req.timeOffsets?.monotonic) args.push('--monotonic', String(req.timeOffsets.monotonic));
    if (req.timeOffsets?.boottime) args.push('--boottime', String(req.timeOffsets.boottime));
  }
  args.push('--');
  const stage = [process.execPath, STAGE];
  if (req.config.userns) args.push('/bin/sh', '-c', BARRIER, 'ctrkit-init', ...stage);
  else args.push(...stage);
  return args;
}

interface StdioPlan {
  /** What the child gets at 0, 1 and 4 (its real stderr). */
  child: [StdioOption | 'ignore', StdioOption | 'ignore', StdioOption | 'ignore'];
  /** Our ends, wrapped as streams. */
  stdin: Writable | null;
  stdout: Readable | null;
  stderr: Readable | null;
  /** Child ends to close in the parent once spawned. */
  toClose: number[];
}

/**
 * Node's 'pipe' stdio are UNIX sockets, and `echo > /dev/stderr` fails on a socket (ENXIO):
 * containers get real pipes, made here.
 */
function planStdio(stdio: SpawnRequest['stdio']): StdioPlan {
  const plan: StdioPlan = { child: ['ignore', 'ignore', 'ignore'], stdin: null, stdout: null, stderr: null, toClose: [] };
  stdio.forEach((opt, i) => {
    if (opt === 'pipe') {
      const [r, w] = pipe();
      if (i === 0) {
        plan.child[0] = r;
        plan.toClose.push(r);
        plan.stdin = new Socket({ fd: w, readable: false, writable: true });
      } else {
        plan.child[i as 1 | 2] = w;
        plan.toClose.push(w);
        const s = new Socket({ fd: r, readable: true, writable: false });
        if (i === 1) plan.stdout = s;
        else plan.stderr = s;
      }
    } else if (opt === 'inherit') {
      plan.child[i as 0 | 1 | 2] = i;
    } else {
      plan.child[i as 0 | 1 | 2] = opt;
    }
  });
  return plan;
}

function exitStatusOf(code: number | null, signal: NodeJS.Signals | null, diagnostics: string): ExitStatus {
  if (signal) return { exitCode: null, signal };
  if (code === 1 && diagnostics.includes(UNSHARE_SIGKILL)) return { exitCode: null, signal: 'SIGKILL' };
  return { exitCode: code ?? 0, signal: null };
}

/** The spawn failed outside the stage: unshare(1) missing, the process could not start. */
export class SpawnError extends CtrkitError {
  /** @internal */
  constructor(message: string, cause?: unknown) {
    super('ERR_SPAWN', message, { cause });
  }
}

/**
 * Starts the command described by `req` and resolves once it is running (its exec
 * succeeded), or rejects with a typed error once nothing is left of it.
 * @internal
 */
export async function spawnInNamespaces(req: SpawnRequest): Promise<NamespacedProcess> {
  req.signal?.throwIfAborted();
  const argv0 = req.config.argv[0]!;
  const plan = planStdio(req.stdio);
  const args = unshareArgs(req);
  log('unshare %o', args);
  let child: ChildProcess;
  try {
    child = spawn('unshare', args, {
      stdio: [plan.child[0], plan.child[1], 'pipe', 'pipe', plan.child[2]],
      env: {},
      // Keep our own handles from holding the event loop open for a detached caller.
      windowsHide: true,
    });
  } finally {
    for (const fd of plan.toClose) closeSync(fd);
  }
  let diagnostics = '';
  child.stdio[2]!.setEncoding('utf8');
  child.stdio[2]!.on('data', (d: string) => {
    if (diagnostics.length < 65536) diagnostics += d;
  });
  const channel = new ParentChannel(child.stdio[3] as Socket);
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  const exited: Promise<ExitStatus> = closed.then(({ code, signal }) => exitStatusOf(code, signal, diagnostics));

  let step: InitStep = 'start';
  let pidfd = -1;
  const abort = new AbortController();
  const onAbort = () => abort.abort(req.signal?.reason);
  req.signal?.addEventListener('abort', onAbort, { once: true });

  const killAndWait = async (): Promise<void> => {
    if (pidfd >= 0) close(pidfd);
    pidfd = -1;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); // --kill-child takes the stage along
    await closed;
    channel.destroy();
    plan.stdin?.destroy();
    plan.stdout?.destroy();
    plan.stderr?.destroy();
  };

  /** The next message, or a failure: the stage died, reported an error, or we were aborted. */
  const expect = async <T extends StageMessage['t']>(t: T): Promise<Extract<StageMessage, { t: T }> | null> => {
    const aborted = new Promise<'aborted'>((resolve) => {
      if (abort.signal.aborted) resolve('aborted');
      abort.signal.addEventListener('abort', () => resolve('aborted'), { once: true });
    });
    const m = await Promise.race([channel.next(), aborted]);
    if (m === 'aborted') throw new AbortError(abort.signal.reason);
    if (m === null) return null;
    if (m.t === 'error') throw initErrorFrom(m.step, m.error, argv0, diagnostics);
    if (m.t !== t) throw new InitError(step, { name: 'Error', message: `protocol error: expected "${t}", received "${m.t}"` }, diagnostics);
    return m as Extract<StageMessage, { t: T }>;
  };
  const died = async (): Promise<never> => {
    const st = await closed;
    if (st.error) {
      const missing = (st.error as NodeJS.ErrnoException).code === 'ENOENT';
      throw new SpawnError(missing ? 'unshare(1) was not found: install util-linux' : `spawning unshare(1) failed: ${st.error.message}`, st.error);
    }
    const how = st.signal ? `was killed by ${st.signal}` : `exited with code ${st.code}`;
    throw new InitError(step, { name: 'Error', message: `the init stage ${how} during "${step}"${channel.garbage ? `: ${channel.garbage.trim()}` : ''}` }, diagnostics);
  };

  try {
    if (req.config.userns) {
      step = 'maps';
      if (!(await expect('userns'))) await died();
      await writeIdMaps(child.pid!, req.uidMap ?? [], req.gidMap ?? []);
      channel.send({ t: 'maps' });
    }
    step = 'config';
    channel.send({ t: 'config', config: req.config });
    const hello = await expect('pid');
    if (!hello) return await died();
    const pid = hello.pid;
    pidfd = pidfdOpen(pid);
    log('stage is up as host pid %d', pid);
    step = 'sync';
    if (req.hook) await req.hook({ pid, signal: abort.signal });
    abort.signal.throwIfAborted();
    channel.send({ t: 'go' });
    step = 'exec';
    const ready = await expect('exec');
    if (!ready) return await died();
    // The socket closes when execve succeeds; an error message arrives instead when it fails.
    const after = await expect('exec');
    if (after) throw new InitError('exec', { name: 'Error', message: 'protocol error: a second "exec"' }, diagnostics);
    const namespaces: Partial<Record<NamespaceType, NamespaceRef>> = {};
    for (const { type } of NAMESPACES) {
      const ino = ready.namespaces[type];
      if (ino !== undefined) namespaces[type] = new NamespaceRef(type, ino, `/proc/${pid}/ns/${type}`);
    }
    const proc = new NamespacedProcess({ pid, pidfd, namespaces, stdin: plan.stdin, stdout: plan.stdout, stderr: plan.stderr, exited });
    pidfd = -1; // owned by the handle now
    req.signal?.removeEventListener('abort', onAbort);
    if (req.signal) {
      const killOnAbort = () => proc.kill('SIGKILL');
      req.signal.addEventListener('abort', killOnAbort, { once: true });
      void exited.then(() => req.signal?.removeEventListener('abort', killOnAbort));
    }
    return proc;
  } catch (e) {
    req.signal?.removeEventListener('abort', onAbort);
    log('setup failed in step %s: %s', step, (e as Error).message);
    await killAndWait();
    throw e;
  }
}
