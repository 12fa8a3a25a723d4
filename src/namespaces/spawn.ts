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
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, constants, existsSync, openSync } from 'node:fs';
import { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import { logger } from '../log.js';
import { AbortError, CtrkitError } from '../errors.js';
import { close, pidfdOpen, pidfdSendSignal, pipe } from '../sys/libc.js';
import { seqpacketPair } from '../sys/scm.js';
import { sendIdmappedMounts } from './idmapped.js';
import { O_CLOEXEC } from '../sys/constants.js';
import { ParentChannel, StageClosed } from './channel.js';
import { InitError } from './errors.js';
import { NamespaceRef } from './handle.js';
import { writeIdMaps } from './idmap.js';
import { NamespacedProcess, type ExitStatus } from './process.js';
import { allocatePty, type AllocatedPty, type TtySize } from './pty.js';
import { PtyMaster } from './pty-stream.js';
import type { InitStep } from './protocol.js';
import { NAMESPACES, type NamespaceType } from './types.js';
import { threadStartRefusal } from './fast/refusal.js';

const log = logger('ctrkit:spawn');

import type { SpawnRequest, StdioOption } from './spawn-request.js';
export type { SpawnHook, SpawnHookContext, StdioOption } from './spawn-request.js';

// The build bundles the stage into one file (rolldown.config.mjs); the unbundled one still
// works, for a checkout that was only compiled.
const STAGE = [new URL('./init/stage.bundle.js', import.meta.url), new URL('./init/stage.js', import.meta.url)]
  .map((u) => fileURLToPath(u))
  .find((p) => existsSync(p))!;
const UNSHARE_FLAGS: Partial<Record<NamespaceType, string>> = {
  user: '--user',
  pid: '--pid',
  net: '--net',
  mnt: '--mount',
  uts: '--uts',
  ipc: '--ipc',
  time: '--time',
  // cgroup: created by the stage itself, after the hook has placed it in its cgroup.
};
// The barrier: tell the parent the user namespace exists, wait until it has written the maps.
const BARRIER = 'echo \'{"t":"userns"}\' >&3 && read -r _ <&3 && exec "$@"';
// util-linux 2.38 cannot re-raise SIGKILL on itself after its child died of it; it says so and exits 1.
const UNSHARE_SIGKILL = 'sigprocmask unblock failed';

const NSENTER_FLAGS: Partial<Record<NamespaceType, string>> = {
  user: '--user',
  pid: '--pid',
  net: '--net',
  uts: '--uts',
  ipc: '--ipc',
  cgroup: '--cgroup',
  time: '--time',
  // mnt: entered by the stage, so that the node binary is still reachable when nsenter execs it.
};

/** The launcher command line: unshare(1) to create namespaces, nsenter(1) to join them. */
function launcherArgs(req: SpawnRequest): [string, string[]] {
  const stage = [process.execPath, STAGE];
  if (req.join) {
    const args = ['--target', String(req.join.target)];
    for (const ns of req.join.namespaces) {
      const flag = NSENTER_FLAGS[ns];
      if (flag) args.push(flag);
    }
    return ['nsenter', [...args, '--', ...stage]];
  }
  return ['unshare', unshareArgs(req, stage)];
}

function unshareArgs(req: SpawnRequest, stage: string[]): string[] {
  const args = ['--fork', '--kill-child'];
  for (const ns of req.config.namespaces) {
    const flag = UNSHARE_FLAGS[ns];
    if (flag) args.push(flag);
  }
  if (req.config.namespaces.includes('time')) {
    if (req.timeOffsets?.monotonic) args.push('--monotonic', String(req.timeOffsets.monotonic));
    if (req.timeOffsets?.boottime) args.push('--boottime', String(req.timeOffsets.boottime));
  }
  // --keep-caps: the barrier runs before its uid is mapped, which would cost it (and the
  // stage it execs) every capability; ambient capabilities carry them across the two execs.
  if (req.config.userns) args.push('--keep-caps', '--', '/bin/sh', '-c', BARRIER, 'ctrkit-init', ...stage);
  else args.push('--', ...stage);
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
    } else if (opt === 'ignore') {
      // Node leaves an 'ignore'd fd above 2 unopened, and the stage would then find one of
      // Node's own descriptors there: give every stream a real /dev/null.
      const fd = openSync('/dev/null', i === 0 ? 'r' : 'w');
      plan.child[i as 0 | 1 | 2] = fd;
      plan.toClose.push(fd);
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

interface ExecPipe {
  /** true: end-of-file, the exec happened (or the stage died); false: the stage reported an error. */
  readonly outcome: Promise<boolean>;
  close(): void;
}

/** Opens our own read end of the stage's close-on-exec pipe, through /proc. */
function watchExecPipe(pid: number, fd: number): ExecPipe {
  const path = `/proc/${pid}/fd/${fd}`;
  let ours: number;
  try {
    ours = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | O_CLOEXEC);
  } catch (e) {
    throw new SpawnError(`cannot open the init stage's exec pipe ${path}: ${(e as Error).message}`, e);
  }
  const sock = new Socket({ fd: ours, readable: true, writable: false });
  const outcome = new Promise<boolean>((resolve) => {
    sock.once('data', () => resolve(false));
    sock.once('end', () => resolve(true));
    sock.once('close', () => resolve(true));
    sock.once('error', () => resolve(true));
  });
  void outcome.then(() => sock.destroy());
  return { outcome, close: () => sock.destroy() };
}

/** Allocates the container's pty in the devpts instance the stage now sees at /dev/pts. */
function openPty(stagePid: number, size: TtySize | undefined): AllocatedPty {
  try {
    return allocatePty(stagePid, size);
  } catch (e) {
    throw new SpawnError(`cannot allocate the container's pseudo-terminal: ${(e as Error).message}`, e);
  }
}

/** The spawn failed outside the stage: unshare(1) missing, the process could not start. */
export class SpawnError extends CtrkitError {
  /** Always `ERR_SPAWN`. */
  declare readonly code: 'ERR_SPAWN';
  /** @internal */
  constructor(message: string, cause?: unknown) {
    super('ERR_SPAWN', message, { cause });
  }
}

/** How the launcher process ended. */
interface LauncherEnd {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly error?: Error;
}

/**
 * One spawn under way: util-linux's launcher with the stage below it, the sync channel, the
 * streams, and what the parent has opened of the stage (pidfd, exec pipe, pty). `abandon()`
 * ends it all in the right order on a failed setup.
 */
class Launch {
  readonly child: ChildProcess;
  readonly channel: ParentChannel;
  readonly plan: StdioPlan;
  readonly ended: Promise<LauncherEnd>;
  readonly abort = new AbortController();
  step: InitStep = 'start';
  pidfd = -1;
  execPipe: ExecPipe = { outcome: Promise.resolve(true), close: () => undefined };
  pty: AllocatedPty | undefined;
  /** Our end of the socket the idmapped mounts go over (fd 5 of the stage), while they have not. */
  idmapSocket = -1;
  private diagnostics = '';

  constructor(
    req: SpawnRequest,
    private readonly launcher: string,
    args: string[],
  ) {
    // With a terminal, the command's 0-2 are its slave: the launcher gets /dev/null.
    this.plan = planStdio(req.config.tty ? ['ignore', 'ignore', 'ignore'] : req.stdio);
    // Idmapped mounts cross as fds, on a socket of their own (IDMAP_FD in the stage).
    const idmap = req.config.rootfs?.idmapped?.length ? seqpacketPair() : undefined;
    try {
      const stdio: StdioOptions = [this.plan.child[0], this.plan.child[1], 'pipe', 'pipe', this.plan.child[2], ...(idmap ? [idmap[1]] : [])];
      this.child = spawn(launcher, args, { stdio, env: {} });
      if (idmap) this.idmapSocket = idmap[0];
    } catch (e) {
      if (idmap) close(idmap[0]);
      throw e;
    } finally {
      for (const fd of this.plan.toClose) closeSync(fd);
      if (idmap) close(idmap[1]);
    }
    this.child.stdio[2]!.setEncoding('utf8');
    this.child.stdio[2]!.on('data', (d: string) => {
      if (this.diagnostics.length < 65536) this.diagnostics += d;
    });
    this.ended = new Promise((resolve) => {
      this.child.once('error', (error) => resolve({ code: null, signal: null, error }));
      this.child.once('close', (code, signal) => resolve({ code, signal }));
    });
    const aborted = new Promise<never>((_, reject) => {
      const fail = () => reject(new AbortError(this.abort.signal.reason));
      if (this.abort.signal.aborted) fail();
      else this.abort.signal.addEventListener('abort', fail, { once: true });
    });
    aborted.catch(() => undefined); // observed through the channel and unlessAborted() only
    this.aborted = aborted;
    this.channel = new ParentChannel(this.child.stdio[3] as Socket, {
      argv0: req.config.argv[0]!,
      diagnostics: () => this.diagnostics,
      step: () => this.step,
      aborted,
    });
  }

  private readonly aborted: Promise<never>;

  /** How the command ended, once the launcher did. */
  get exited(): Promise<ExitStatus> {
    return this.ended.then(({ code, signal }) => exitStatusOf(code, signal, this.diagnostics));
  }

  /** Waits for `p`, unless the caller aborts first. */
  unlessAborted<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.aborted]);
  }

  /** The error to report for a stage that died without saying why. */
  async deathError(): Promise<Error> {
    const st = await this.ended;
    if (st.error) {
      const missing = (st.error as NodeJS.ErrnoException).code === 'ENOENT';
      return new SpawnError(
        missing ? `${this.launcher}(1) was not found: install util-linux` : `spawning ${this.launcher}(1) failed: ${st.error.message}`,
        st.error,
      );
    }
    const how = st.signal ? `was killed by ${st.signal}` : `exited with code ${st.code}`;
    const garbage = this.channel.garbage ? `: ${this.channel.garbage.trim()}` : '';
    return new InitError(this.step, { name: 'Error', message: `the init stage ${how} during "${this.step}"${garbage}` }, this.diagnostics);
  }

  /** Closes our end of the idmapped mounts' socket (sent, or given up). */
  closeIdmapSocket(): void {
    if (this.idmapSocket >= 0) close(this.idmapSocket);
    this.idmapSocket = -1;
  }

  /** Ends a failed setup: the stage first (unshare(1) then reaps it and exits), then our ends. */
  async abandon(): Promise<void> {
    this.execPipe.close();
    this.closeIdmapSocket();
    if (this.pidfd >= 0) {
      // Killing unshare first would orphan the stage to the system's init, which reaps when it likes.
      pidfdSendSignal(this.pidfd, 9);
      close(this.pidfd);
      this.pidfd = -1;
    } else if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL'); // --kill-child takes the stage along
    }
    await this.ended;
    if (this.pty) close(this.pty.fd);
    this.channel.destroy();
    this.plan.stdin?.destroy();
    this.plan.stdout?.destroy();
    this.plan.stderr?.destroy();
  }
}

/**
 * The protocol of ./protocol.ts from the parent's side, up to a running command: maps,
 * config, the stage's pid and the caller's hook, go, the terminal, the exec.
 */
async function handshake(l: Launch, req: SpawnRequest): Promise<{ pid: number; namespaces: Partial<Record<NamespaceType, number>> }> {
  if (req.config.userns) {
    l.step = 'maps';
    await l.channel.awaitUsernsRequest();
    await l.unlessAborted(writeIdMaps(l.child.pid!, req.uidMap ?? [], req.gidMap ?? []));
    if (l.idmapSocket >= 0) {
      // unshare(1) made the user namespace for itself: its maps are now the ones to show.
      sendIdmappedMounts(l.idmapSocket, `/proc/${l.child.pid}/ns/user`, req.config.rootfs?.idmapped ?? []);
      l.closeIdmapSocket();
    }
    l.channel.send({ t: 'maps' });
  }
  l.step = 'config';
  l.channel.send({ t: 'config', config: req.config });
  const { pid, execFd } = await l.channel.awaitPid();
  l.pidfd = pidfdOpen(pid);
  l.execPipe = watchExecPipe(pid, execFd);
  log('stage is up as host pid %d', pid);
  l.step = 'sync';
  if (req.hook) await req.hook({ pid, signal: l.abort.signal });
  if (req.alongside) await req.alongside({ pid, signal: l.abort.signal });
  if (l.abort.signal.aborted) throw new AbortError(l.abort.signal.reason);
  l.channel.send({ t: 'go' });
  if (req.config.tty) {
    l.step = 'tty';
    await l.channel.awaitTtyRequest();
    l.pty = openPty(pid, req.ttySize);
    l.channel.send({ t: 'tty', n: l.pty.n });
  }
  l.step = 'exec';
  // A byte on the exec pipe: the stage failed, and its error is on the socket.
  if (!(await l.unlessAborted(l.execPipe.outcome))) await l.channel.awaitFailure();
  return { pid, namespaces: await l.channel.awaitExec() };
}

/** The thread start path: no process of our own between the caller and the command. */
async function spawnOnThreads(req: SpawnRequest): Promise<NamespacedProcess | undefined> {
  log('start path: threads');
  const { startOnThreads, ThreadsUnavailable } = await import('./fast/threads.js');
  const plan = planStdio(req.stdio);
  const [in0, out1, err2] = plan.child;
  if (typeof in0 !== 'number' || typeof out1 !== 'number' || typeof err2 !== 'number') throw new TypeError('unplanned standard stream');
  try {
    return await startOnThreads(
      req,
      { child: [in0, out1, err2], toClose: plan.toClose },
      { stdin: plan.stdin, stdout: plan.stdout, stderr: plan.stderr, tty: null },
    );
  } catch (e) {
    plan.stdin?.destroy();
    plan.stdout?.destroy();
    plan.stderr?.destroy();
    // Prepared namespaces are the thread path's alone: no stage path to fall back on.
    if (!(e instanceof ThreadsUnavailable) || req.prepared) throw e;
    log('start path: stage (%s)', e.message);
    return undefined;
  }
}

/**
 * Starts the command described by `req` and resolves once it is running (its exec
 * succeeded), or rejects with a typed error once nothing is left of it.
 * @internal
 */
export async function spawnInNamespaces(req: SpawnRequest): Promise<NamespacedProcess> {
  if (req.signal?.aborted) throw new AbortError(req.signal.reason);
  const refusal = threadStartRefusal(req);
  if (req.prepared && refusal !== undefined) {
    const { ThreadsUnavailable } = await import('./fast/threads.js');
    throw new ThreadsUnavailable(new Error(`prepared namespaces need the thread start path (${refusal})`));
  }
  if (refusal === undefined) {
    const proc = await spawnOnThreads(req);
    if (proc) return proc;
  } else log('start path: stage (%s)', refusal);
  await req.gate; // the stage path starts nothing before it
  const [launcher, args] = launcherArgs(req);
  log('%s %o', launcher, args);
  const l = new Launch(req, launcher, args);
  const onAbort = () => l.abort.abort(req.signal?.reason);
  req.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const { pid, namespaces: inodes } = await handshake(l, req);
    const namespaces: Partial<Record<NamespaceType, NamespaceRef>> = {};
    for (const { type } of NAMESPACES) {
      const ino = inodes[type];
      if (ino !== undefined) namespaces[type] = new NamespaceRef(type, ino, `/proc/${pid}/ns/${type}`);
    }
    const masterFd = l.pty?.fd;
    l.pty = undefined; // owned by the stream from here, which closes it even if it cannot be made
    const tty = masterFd === undefined ? null : new PtyMaster(masterFd);
    const exited = l.exited;
    const proc = new NamespacedProcess({ pid, pidfd: l.pidfd, namespaces, stdin: l.plan.stdin, stdout: l.plan.stdout, stderr: l.plan.stderr, tty, exited });
    l.pidfd = -1; // owned by the handle now
    req.signal?.removeEventListener('abort', onAbort);
    if (req.signal) {
      const killOnAbort = () => proc.kill('SIGKILL');
      req.signal.addEventListener('abort', killOnAbort, { once: true });
      void exited.then(() => req.signal?.removeEventListener('abort', killOnAbort));
    }
    return proc;
  } catch (e) {
    req.signal?.removeEventListener('abort', onAbort);
    const error = e instanceof StageClosed ? await l.deathError() : e;
    log('setup failed in step %s: %s', l.step, (error as Error).message);
    await l.abandon();
    throw error;
  }
}
