/**
 * The thread start path: containers started without a Node process of their own.
 *
 * Namespace membership, the root directory (after unshare(CLONE_FS)), capabilities,
 * no_new_privs, a seccomp filter and cgroup v1 membership all belong to a thread, and a child
 * spawned from a thread inherits that thread's. So two long-lived threads of the caller's
 * process do what unshare(1) and the init stage do per container on the stage path:
 *
 * 1. a spawner thread (one per security profile) joins the container's v1 cgroups and makes
 *    a PID and a cgroup namespace for its children;
 * 2. the builder thread makes the mount, UTS, IPC and network namespaces for itself and
 *    builds the root in them (everything but /proc);
 * 3. the spawner enters the builder's namespaces and posix_spawns the command, whose file
 *    actions are the barrier: it opens FIFO 1 (the builder, blocked on the other end, learns
 *    its PID, mounts its /proc and pivots, which moves it into the new root), then blocks
 *    opening FIFO 2 while the caller's hook runs with its PID; the main thread opens FIFO 2,
 *    the command execs, and both threads return to the host's namespaces.
 *
 * The command is a direct child of the caller's process: nothing sits in between, nothing
 * per container stays on the host. What the path cannot do (user namespaces, a terminal,
 * a non-root user, a time namespace, joining another container's network, cgroup v2 where a
 * thread cannot join a cgroup alone) goes to the stage path: see threadStartRefusal().
 * @internal
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants as fsConstants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmdirSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { rm } from 'node:fs/promises';
import { constants as osConstants, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { AbortError } from '../../errors.js';
import { logger } from '../../log.js';
import { close, pidfdOpen, pidfdSendSignal } from '../../sys/libc.js';
import { mkfifo, namespaceSyscalls, watchPidfd, type ChildExit } from '../../sys/spawn.js';
import { initErrorFrom, InitError } from '../errors.js';
import { allocatePty } from '../pty.js';
import { NamespaceRef } from '../handle.js';
import type { StageConfig } from '../init/config.js';
import { NamespacedProcess, type ExitStatus } from '../process.js';
import type { InitStep } from '../protocol.js';
import { withNamespaceKey } from '../seccomp.js';
import type { PreparedNamespaces, SpawnRequest } from '../spawn-request.js';
import { NAMESPACES, type NamespaceType } from '../types.js';
import type { EnterRequest, PreparedFds, SpawnerData, SpawnerProfile, ThreadReply, ThreadRequest } from './protocol.js';
import { namespaceInodes, threadChildren } from './thread-home.js';
import { setDeleter } from './deferred-delete.js';
import { BARRIER_TIMEOUT_MS, newHandoff, ready } from './handoff.js';

const log = logger('ctrkit:spawn');

/** How long threads stay without a start before they end. */
const IDLE_MS = 2000;

/** How long discarded trees wait for a start to take them along before a request of their own. */
const TRASH_DELAY_MS = 50;

/** A tree to delete, and what settles its promise. */
interface Trash {
  readonly path: string;
  readonly done: () => void;
}

function settle(trash: readonly Trash[]): void {
  for (const t of trash) t.done();
}

/** One worker thread and its replies, in order. */
class ThreadHandle {
  readonly worker: Worker;
  tid = 0;
  private readonly waiting: Array<(r: ThreadReply) => void> = [];
  readonly ready: Promise<void>;
  dead = false;

  constructor(file: URL, workerData: unknown) {
    // No execArgv of the caller's: `--input-type`, `--eval` and loaders are not for these threads.
    this.worker = new Worker(file, { workerData, execArgv: [], stdout: false, stderr: false });
    this.ready = new Promise((resolve, reject) => {
      this.waiting.push((r) => {
        if (r.ok && r.pid) {
          this.tid = r.pid;
          resolve();
        } else reject(new InitError(r.ok ? 'start' : r.step, r.ok ? { name: 'Error', message: 'no thread id' } : r.error, ''));
      });
    });
    this.ready.catch(() => undefined);
    this.worker.on('message', (r: ThreadReply) => {
      this.waiting.shift()?.(r);
      // Only a thread that owes a reply keeps the caller alive; an idle one never does.
      if (this.waiting.length === 0) this.worker.unref();
    });
    const die = (why: string) => {
      this.dead = true;
      for (const w of this.waiting.splice(0)) w({ ok: false, step: 'start', error: { name: 'Error', message: `a start-path thread ended: ${why}` } });
    };
    this.worker.on('error', (e) => die(e.message));
    this.worker.on('exit', (code) => die(`exit code ${code}`));
  }

  /** Sends a request; resolves with the thread's reply. */
  request(req: ThreadRequest): Promise<ThreadReply> {
    return new Promise((resolve) => {
      if (this.dead) {
        resolve({ ok: false, step: 'start', error: { name: 'Error', message: 'a start-path thread ended' } });
        return;
      }
      this.waiting.push(resolve);
      this.worker.ref();
      this.worker.postMessage(req);
    });
  }

  terminate(): void {
    this.dead = true;
    void this.worker.terminate();
  }
}

/** The threads of this process and the order they serve starts in (one at a time). */
class ThreadStarter {
  private builder: ThreadHandle | undefined;
  private readonly spawners = new Map<string, ThreadHandle>();
  private readonly key: [bigint, bigint] = [randomBytes(8).readBigUInt64LE(), randomBytes(8).readBigUInt64LE()];
  private queue: Promise<unknown> = Promise.resolve();
  private fifoDir: string | undefined;
  private fifoCount = 0;
  /** FIFO pairs of starts that went through: nobody holds them open any more (the command closed them before its exec). */
  readonly spareFifos: Array<[string, string]> = [];

  /** A start was handed over (holdOnThreads): a spawner of this process waits in posix_spawn for good. */
  handedOver = false;
  /** Park directories this process made. */
  readonly parks = new Set<string>();
  /** The start under way, if any (one at a time). */
  current: ThreadStart | undefined;
  /** Host PIDs of the commands started here (the spawners' other children are not ours to end). */
  readonly started = new Set<number>();

  constructor() {
    // An exit in the middle of a start would wait forever for the threads, which sit in
    // system calls that only the command's process can end (the builder opening FIFO 1, the
    // spawner in posix_spawn): end that process and open both FIFOs first.
    process.once('exit', () => this.current?.emergency(this.started));
    setDeleter((path) => this.deleteLater(path));
  }

  /** Trees to delete (see ./deferred-delete.ts) not handed to the builder yet. */
  private trash: Trash[] = [];
  /** Those handed over with the last start: deleted once the builder answers its next request. */
  private deleting: Trash[] = [];
  private trashTimer: NodeJS.Timeout | undefined;

  private deleteLater(path: string): Promise<void> | undefined {
    if (!this.builder || this.builder.dead || this.handedOver) return undefined;
    return new Promise<void>((done) => {
      this.trash.push({ path, done });
      this.flushSoon();
    });
  }

  /** Unless a start takes the trash along within a moment: a request of its own, between starts. */
  private flushSoon(): void {
    this.trashTimer ??= setTimeout(() => {
      this.trashTimer = undefined;
      void this.serialize(() => this.flushTrash(), true);
    }, TRASH_DELAY_MS);
  }

  /**
   * The trash for the builder's next request, and what settles what it was handed before
   * (after a start's reply it deletes what came with the start: done by its next answer).
   */
  handTrash(): { paths: string[]; earlierDone: () => void } {
    clearTimeout(this.trashTimer);
    this.trashTimer = undefined;
    const earlier = this.deleting;
    this.deleting = this.trash;
    this.trash = [];
    return { paths: this.deleting.map((t) => t.path), earlierDone: () => settle(earlier) };
  }

  /** The builder answered a start: what it was handed before is gone; what came with the start goes next. */
  answered(earlierDone: () => void): void {
    earlierDone();
    if (this.deleting.length) this.flushSoon(); // settled by its next answer
  }

  /** A request of the builder's own for the trash; everything handed over is gone once it answers. */
  private async flushTrash(): Promise<void> {
    const builder = this.builder;
    if (!builder || builder.dead) return this.deleteHere();
    const { paths, earlierDone } = this.handTrash();
    const r = await builder.request({ t: 'delete', trash: paths });
    earlierDone(); // deleted after the start that took it, before this request
    // A builder that ended meanwhile may not have got to it: deleted here then.
    if (r.ok) settle(this.deleting.splice(0));
    else this.deleteHere();
  }

  /** Without a builder to hand it to (it ended, or was replaced): this thread deletes what is left. */
  private deleteHere(): void {
    for (const t of [...this.deleting.splice(0), ...this.trash.splice(0)])
      void rm(t.path, { recursive: true, force: true })
        .catch(() => undefined)
        .finally(t.done);
  }
  private idle: NodeJS.Timeout | undefined;
  private pending = 0;

  /** Runs `fn` once every earlier start is done. */
  serialize<T>(fn: () => Promise<T>, chore = false): Promise<T> {
    clearTimeout(this.idle);
    this.pending++;
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    void this.queue.then(() => {
      // Idle threads go after a while, and the parks with them: nothing of ours stays in
      // cgroupfs while nothing starts. The next start pays for new threads (~30 ms). A chore
      // (deleting what was discarded) does not put that off.
      if (!chore) this.idleAt = Date.now() + IDLE_MS;
      if (--this.pending === 0) this.idle = setTimeout(() => void this.stop(), Math.max(0, this.idleAt - Date.now())).unref();
    });
    return run;
  }
  /** When the threads go, unless a start comes first (IDLE_MS after the last one). */
  private idleAt = 0;

  /** Ends the threads (none is mid-start) and removes this process's parks. */
  async stop(): Promise<void> {
    // After a held start a spawner waits in posix_spawn until another process releases the
    // init: terminating it would wait as long. Such a process ends with _exit instead.
    if (this.pending > 0 || this.handedOver) return;
    const builder = this.builder;
    const threads = [this.builder, ...this.spawners.values()].filter((t): t is ThreadHandle => t !== undefined);
    this.builder = undefined;
    this.spawners.clear();
    // Their fds are this process's (the builder's spare network namespace, the spawners'
    // park files): a `home` request closes them before the threads end. The builder deletes
    // all the trash it was given first (again what it may have deleted: rm -f).
    clearTimeout(this.trashTimer);
    this.trashTimer = undefined;
    this.deleting = [...this.deleting, ...this.trash.splice(0)];
    const paths = this.deleting.map((t) => t.path);
    let answered = false;
    await Promise.all(
      threads
        .filter((t) => !t.dead)
        .map(async (t) => {
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            t.request({ t: 'home', trash: t === builder ? paths : undefined }).then(() => {
              if (t === builder) answered = true;
            }),
            new Promise((r) => (timer = setTimeout(r, 1000))),
          ]);
          clearTimeout(timer);
        }),
    );
    await Promise.all(threads.map((t) => t.worker.terminate()));
    if (answered) settle(this.deleting.splice(0));
    this.deleteHere();
    this.removeParks();
  }

  async builderThread(): Promise<ThreadHandle> {
    if (!this.builder || this.builder.dead) this.builder = new ThreadHandle(new URL('./builder.js', import.meta.url), undefined);
    await this.builder.ready;
    return this.builder;
  }

  async spawnerThread(profile: SpawnerProfile): Promise<ThreadHandle> {
    const id = JSON.stringify(profile);
    let s = this.spawners.get(id);
    if (!s || s.dead) {
      const data: SpawnerData = {
        profile: {
          ...profile,
          seccomp: profile.seccomp && withNamespaceKey(Buffer.from(profile.seccomp, 'base64'), this.key, namespaceSyscalls()).toString('base64'),
        },
        key: [String(this.key[0]), String(this.key[1])],
      };
      s = new ThreadHandle(new URL('./spawner.js', import.meta.url), data);
      this.spawners.set(id, s);
      // A handful of profiles at most in practice; a caller cycling through many pays a thread each.
      if (this.spawners.size > 8) {
        const [oldest, t] = this.spawners.entries().next().value as [string, ThreadHandle];
        this.spawners.delete(oldest);
        t.terminate();
      }
    }
    await s.ready;
    return s;
  }

  /** The builder and the spawner of `req`'s profile, or ThreadsUnavailable (the fds of `stdio` closed). */
  async threadsFor(req: SpawnRequest, stdio: ThreadStdio): Promise<[ThreadHandle, ThreadHandle]> {
    try {
      return await Promise.all([this.builderThread(), this.spawnerThread(profileOf(req.config))]);
    } catch (e) {
      this.reset();
      for (const fd of stdio.toClose) closeSync(fd);
      throw new ThreadsUnavailable(e);
    }
  }

  /** Removes this process's parks now (no thread of ours may be in them). */
  removeParks(): void {
    for (const dir of this.parks) {
      try {
        rmdirSync(dir);
        this.parks.delete(dir);
      } catch {
        // the owner helper or prune removes it
      }
    }
  }

  /**
   * Two FIFO paths in this process's private directory: a pair an earlier start finished
   * with, or a fresh one (making and deleting two FIFOs is four file system updates a start).
   */
  fifos(): [string, string] {
    const reused = this.spareFifos.pop();
    if (reused) return reused;
    if (!this.fifoDir) {
      this.fifoDir = mkdtempSync(join(tmpdir(), 'ctrkit-start-'));
      const dir = this.fifoDir;
      process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    }
    const n = this.fifoCount++;
    const pair: [string, string] = [join(this.fifoDir, `${n}.a`), join(this.fifoDir, `${n}.b`)];
    for (const p of pair) mkfifo(p);
    return pair;
  }

  /** Replaces both kinds of thread after a start that left them in an unknown state. */
  reset(): void {
    this.deleteHere(); // what the old builder was handed may not be gone
    this.builder?.terminate();
    this.builder = undefined;
    for (const s of this.spawners.values()) s.terminate();
    this.spawners.clear();
  }
}

let starter: ThreadStarter | undefined;
/** Why this process's thread path cannot work, once a start found out. */
let threadPathBroken: string | undefined;

/**
 * Ends this process's start-path threads now and removes their parks (what an idle process
 * does by itself after a while). For a process about to exit that started containers.
 * @internal
 */
export async function stopStartThreads(): Promise<void> {
  await starter?.stop();
}

/** The threads could not be started: the caller takes the stage path instead. @internal */
export class ThreadsUnavailable extends Error {
  /** Recognized without loading this module (see launchContainer in ../../container/start.ts). */
  readonly threadsUnavailable = true;
  constructor(cause: unknown) {
    super(`the start-path threads are unavailable: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

/** Where a spawner waits between containers: a cgroup of ours beside the container's, per hierarchy. */
function parkTasksOf(cgroupTasks: readonly string[], parks: Set<string>): string[] {
  return cgroupTasks.map((tasks) => {
    const parent = dirname(dirname(tasks));
    const park = join(parent, `ctkpark-${process.pid}`);
    if (parks.has(park)) return join(park, 'tasks'); // made by an earlier start (stop() forgets what it removes)
    parks.add(park);
    if (!existsSync(park)) {
      try {
        mkdirSync(park);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      // cpuset refuses tasks until cpus and mems are set.
      for (const f of ['cpuset.cpus', 'cpuset.mems']) {
        if (existsSync(join(park, f)) && readFileSync(join(park, f), 'utf8').trim() === '') writeFileSync(join(park, f), readFileSync(join(parent, f)));
      }
    }
    return join(park, 'tasks');
  });
}

function profileOf(config: StageConfig): SpawnerProfile {
  const all = Array.from({ length: Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8')) + 1 }, (_, i) => i);
  return {
    capabilities: config.capabilities ?? all,
    noNewPrivileges: config.noNewPrivileges,
    seccomp: config.seccomp,
    seccompFlags: config.seccompFlags,
    groups: config.user?.groups,
    uid: config.user?.uid,
    ambient: config.ambient,
    umask: config.umask,
    gid: config.user?.gid,
  };
}

function statusOf(exit: ChildExit): ExitStatus {
  if (exit.signal === null) return { exitCode: exit.exitCode ?? 0, signal: null };
  const name = Object.entries(osConstants.signals).find(([, n]) => n === exit.signal)?.[0] as NodeJS.Signals | undefined;
  return { exitCode: null, signal: name ?? 'SIGKILL' };
}

function fail(r: Extract<ThreadReply, { ok: false }>, argv0: string): Error {
  return initErrorFrom(r.step, r.error, argv0, '');
}

/** Rejects after the barrier timeout, naming the step. */
function timeout<T>(p: Promise<T>, step: InitStep): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new InitError(step, { name: 'Error', message: `the thread start path timed out after ${BARRIER_TIMEOUT_MS} ms in "${step}"` }, '')),
      BARRIER_TIMEOUT_MS,
    );
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Opens a FIFO's write end without blocking: ENXIO when nobody waits on its read end. */
function poke(fifo: string): void {
  try {
    closeSync(openSync(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK));
  } catch {
    // nobody was waiting
  }
}

/** The streams and what to close, as the stage path plans them. */
export interface ThreadStdio {
  /** The fds that become the command's 0, 1 and 2. */
  readonly child: readonly [number, number, number];
  /** Closed in the parent once the command runs (or failed to). */
  readonly toClose: readonly number[];
}

/**
 * Starts `req` on the thread path; resolves once the command runs, or rejects with a typed
 * error once nothing is left of it. The caller checked {@link threadStartRefusal} first.
 * @internal
 */
export function startOnThreads(req: SpawnRequest, stdio: ThreadStdio, parts: ProcessParts): Promise<NamespacedProcess> {
  if (threadPathBroken) {
    for (const fd of stdio.toClose) closeSync(fd);
    return Promise.reject(new ThreadsUnavailable(new Error(threadPathBroken)));
  }
  starter ??= new ThreadStarter();
  const s = starter;
  return s.serialize(() => startOne(s, req, stdio, parts));
}

/**
 * Builds a container's namespaces and root ahead of time on the builder thread (all but /proc:
 * the PID namespace needs its process), kept as fds of this process until a start given them
 * as `prepared` uses them or {@link PreparedNamespaces.close} drops them. `config` is the
 * request of the later start (its command may still change). Rejects with ThreadsUnavailable
 * where the threads cannot run, else with the typed error of the failed step.
 * @internal
 */
export function prebuildOnThreads(config: StageConfig): Promise<PreparedNamespaces> {
  if (threadPathBroken) return Promise.reject(new ThreadsUnavailable(new Error(threadPathBroken)));
  starter ??= new ThreadStarter();
  const s = starter;
  return s.serialize(async () => {
    let builder: ThreadHandle;
    try {
      builder = await s.builderThread();
    } catch (e) {
      s.reset();
      throw new ThreadsUnavailable(e);
    }
    const parkTasks = parkTasksOf(config.cgroupTasks ?? [], s.parks);
    const r = await timeout(builder.request({ t: 'prebuild', config, parkTasks }), 'rootfs').catch((e: unknown) => {
      s.reset(); // a builder that did not answer in time: in an unknown state
      throw e;
    });
    if (!r.ok) {
      if (r.step === 'start') throw new ThreadsUnavailable(new Error(r.error.message));
      throw fail(r, config.argv[0] ?? '');
    }
    return preparedFrom(r.fds ?? {});
  });
}

function preparedFrom(fds: PreparedFds): PreparedNamespaces {
  let open = true;
  return {
    fds,
    close() {
      if (!open) return;
      open = false;
      for (const fd of Object.values(fds)) close(fd);
    },
  };
}

type ProcessParts = Omit<ConstructorParameters<typeof NamespacedProcess>[0], 'pid' | 'pidfd' | 'namespaces' | 'exited'>;

async function startOne(s: ThreadStarter, req: SpawnRequest, stdio: ThreadStdio, parts: ProcessParts): Promise<NamespacedProcess> {
  if (req.signal?.aborted) throw new AbortError(req.signal.reason);
  const threads = await s.threadsFor(req, stdio);
  const start = new ThreadStart(s, req, threads[0], threads[1], stdio);
  s.current = start;
  let done = false;
  try {
    const pid = await start.toBarrier();
    // The process holds the prepared namespaces now. Closed while it does: were it to end
    // first, the last of these fds would take the whole mount tree down with it (about 0.5 ms
    // of unmounting on this thread).
    req.prepared?.close();
    const namespaces = start.namespaces(pid);
    await start.release(pid);
    s.started.add(pid);
    done = true;
    return running(pid, start.takePidfd(), namespaces, parts, req, () => s.started.delete(pid));
  } catch (e) {
    await start.abandon();
    if (e instanceof ThreadsUnavailable || (e instanceof InitError && /timed out/.test(e.message))) s.reset();
    throw e;
  } finally {
    s.current = undefined;
    start.close(done);
    // The container's processes hold its namespaces now (or nothing does, and they end).
    req.prepared?.close();
  }
}

/**
 * Starts `req` up to the barrier and leaves it there, waiting on `fifo` (a FIFO the caller
 * made) until some process opens that for writing (see releaseHeld in ../held.ts): an OCI
 * runtime's `create`, whose process ends while the container's init waits for `start`.
 * Resolves with the init's PID once the hook ran. The spawner thread stays blocked in
 * posix_spawn for good, so this process can start nothing more and must end with `_exit`
 * (a normal exit would wait for that thread); the init, its child, then passes to the
 * nearest subreaper. The parks are removed before that: nothing of this process stays in
 * them (the spawner sits in the container's cgroups).
 * @internal
 */
export function holdOnThreads(req: SpawnRequest, stdio: ThreadStdio, fifo: string): Promise<{ pid: number; terminal?: number }> {
  if (threadPathBroken) return Promise.reject(new ThreadsUnavailable(new Error(threadPathBroken)));
  starter ??= new ThreadStarter();
  const s = starter;
  return s.serialize(async () => {
    const [builder, spawner] = await s.threadsFor(req, stdio);
    // A terminal: the first pty of the container's own devpts instance, pts/0, which the init
    // opens once released (the instance exists only once it has arrived).
    const start = new ThreadStart(s, req, builder, spawner, stdio, fifo, req.config.tty ? '/dev/pts/0' : undefined);
    s.current = start;
    let terminal: number | undefined;
    try {
      const pid = await start.toBarrier();
      if (req.config.tty) {
        const pty = allocatePty(pid, req.ttySize);
        terminal = pty.fd;
        if (pty.n !== 0) throw new InitError('tty', { name: 'Error', message: `the container's first pty is pts/${pty.n}, not pts/0` });
      }
      const { hook, signal } = req;
      if (hook) await hook({ pid, signal: signal ?? new AbortController().signal });
      if (signal?.aborted) throw new AbortError(signal.reason);
      threadPathBroken = 'this process handed a start over (its spawner waits in posix_spawn)';
      s.handedOver = true;
      s.removeParks();
      return { pid, terminal };
    } catch (e) {
      if (terminal !== undefined) close(terminal);
      await start.abandon();
      throw e;
    } finally {
      s.current = undefined;
      start.close();
    }
  });
}

/**
 * Starts the builder and the spawner thread a start of `config` will use, without waiting:
 * a caller with other work to do first (a cgroup to make) overlaps their start-up (~30 ms of
 * module loading each) with it. Errors are left for the start itself to report.
 * @internal
 */
export function prestartThreads(config: StageConfig): void {
  if (threadPathBroken) return;
  starter ??= new ThreadStarter();
  void Promise.all([starter.builderThread(), starter.spawnerThread(profileOf(config))]).catch(() => undefined);
}

/** An exec into a running container on a spawner thread (see {@link execOnThreads}). @internal */
export interface JoinSpawn {
  /** The container's init (host PID): its namespaces and cgroup namespace are entered. */
  readonly target: number;
  /** The container's v1 `tasks` files, joined first. */
  readonly cgroupTasks: readonly string[];
  /** Capabilities, no_new_privs, seccomp and user of the process (the profile its spawner carries). */
  readonly config: StageConfig;
  /** The command's resolved path inside the container. */
  readonly path: string;
  /** A pty slave's path inside the container, opened as the command's 0, 1, 2 and controlling terminal. */
  readonly terminal?: string | undefined;
}

/**
 * Starts a process inside a running container's namespaces and cgroups, as a direct child of
 * this process with nothing in between: a spawner thread joins the cgroups, enters the target's
 * cgroup and PID namespaces (for its children) and its mount, UTS, IPC and network namespaces,
 * and posix_spawns. Resolves with the PID and a pidfd once the exec succeeded.
 * @internal
 */
export function execOnThreads(req: JoinSpawn, stdio: ThreadStdio): Promise<{ pid: number; pidfd: number }> {
  if (threadPathBroken) return Promise.reject(new ThreadsUnavailable(new Error(threadPathBroken)));
  starter ??= new ThreadStarter();
  const s = starter;
  return s.serialize(async () => {
    try {
      return await execOne(s, req, stdio);
    } finally {
      for (const fd of stdio.toClose) closeSync(fd);
    }
  });
}

async function execOne(s: ThreadStarter, req: JoinSpawn, stdio: ThreadStdio): Promise<{ pid: number; pidfd: number }> {
  const c = req.config;
  let spawner: ThreadHandle;
  try {
    spawner = await s.spawnerThread(profileOf(c));
  } catch (e) {
    s.reset();
    throw new ThreadsUnavailable(e);
  }
  const nsFds: Record<string, number> = {};
  const types = (['mnt', 'uts', 'ipc', 'net'] as const).filter((t) => c.namespaces.includes(t));
  try {
    // Opened before the spawner leaves home: a container gone meanwhile fails here, cleanly.
    for (const t of types) nsFds[t] = openSync(`/proc/${req.target}/ns/${t}`, 'r');
    const parkTasks = parkTasksOf(req.cgroupTasks, s.parks);
    const entered = await timeout(spawner.request({ t: 'enter', cgroupTasks: req.cgroupTasks, parkTasks, cgroupns: false, joinOf: req.target }), 'cgroupns');
    if (!entered.ok) throw fail(entered, c.argv[0] ?? '');
    const r = await timeout(
      spawner.request({
        t: 'spawn',
        builderTid: 0,
        namespaces: types,
        nsFds,
        path: req.path,
        argv: c.argv,
        env: c.env,
        cwd: c.cwd,
        stdio: stdio.child,
        terminal: req.terminal,
      }),
      'exec',
    );
    if (!r.ok || r.pid === undefined) throw fail(r as Extract<ThreadReply, { ok: false }>, c.argv[0] ?? '');
    return { pid: r.pid, pidfd: pidfdOpen(r.pid) };
  } finally {
    for (const fd of Object.values(nsFds)) closeSync(fd);
  }
}

/**
 * A caller still preparing (SpawnRequest.gate): both threads go as far as they can without it,
 * and the handoff's ready cell opens (or fails) once it settled. Rejects like the gate.
 */
function gateOf(gate: Promise<void> | undefined, handoff: SharedArrayBuffer): Promise<void> | undefined {
  const opened = gate?.then(
    () => ready(handoff, true),
    (e: unknown) => {
      ready(handoff, false);
      throw e;
    },
  );
  opened?.catch(() => undefined); // reported by the start that failed of it
  return opened;
}

/** The spawner's first step of a start: the cgroups, then new (or named, or prepared) PID and cgroup namespaces. */
function enterRequest(
  c: StageConfig,
  cgroupTasks: readonly string[],
  parkTasks: readonly string[],
  prepared: PreparedFds | undefined,
): Omit<EnterRequest, 't'> {
  return {
    cgroupTasks,
    parkTasks,
    cgroupns: c.namespaces.includes('cgroup'),
    cgroupnsFd: prepared?.cgroup,
    joinPaths: c.joinPaths && { pid: c.joinPaths.pid, cgroup: c.joinPaths.cgroup },
  };
}

/** One start on the threads, step by step, with what it holds until the end. */
class ThreadStart {
  private readonly fifos: [string, string];
  private readonly argv0: string;
  private pidfd = -1;
  /** The builder let the process go (BuilderStartRequest.release): its writer on FIFO 2, open until the exec. */
  private released = -1;
  /** And the process's namespaces, as the builder saw them before letting it go. */
  private namespaceInodes: Readonly<Record<string, number>> | undefined;

  /** The process's namespaces: read now, or (a process the builder let go, which may be over by now) as the builder read them. */
  namespaces(pid: number): Partial<Record<NamespaceType, NamespaceRef>> {
    const inodes = this.namespaceInodes ?? namespaceInodes(pid);
    const namespaces: Partial<Record<NamespaceType, NamespaceRef>> = {};
    for (const { type } of NAMESPACES) {
      const ino = inodes[type];
      if (ino !== undefined) namespaces[type] = new NamespaceRef(type, ino, `/proc/${pid}/ns/${type}`);
    }
    return namespaces;
  }
  private spawned: Promise<ThreadReply> | undefined;
  private readonly t0 = performance.now();
  private t: number[] = [];

  constructor(
    private readonly s: ThreadStarter,
    private readonly req: SpawnRequest,
    private readonly builder: ThreadHandle,
    private readonly spawner: ThreadHandle,
    private readonly stdio: ThreadStdio,
    /** A FIFO of the caller's in place of the second: the process waits there for whoever opens it, in any process. */
    private readonly holdAt?: string,
    /** A pty slave inside the container the process opens as 0, 1 and 2 once released. */
    private readonly terminal?: string,
  ) {
    this.fifos = s.fifos();
    if (holdAt) {
      unlinkSync(this.fifos[1]);
      this.fifos[1] = holdAt;
    }
    this.argv0 = req.config.argv[0]!;
  }

  /** Nothing of the caller's holds the command back (SpawnRequest.alongside): the builder releases it. */
  private get releasedByBuilder(): boolean {
    return this.req.hook === undefined && this.req.alongside !== undefined && this.holdAt === undefined;
  }

  /**
   * cgroup and PID namespace, the root, the spawn: resolves with the PID waiting at the barrier.
   * Both threads get their whole part at once and meet through shared memory (./handoff.ts):
   * the spawner enters while the builder builds, and spawns the moment the root is built.
   */
  async toBarrier(): Promise<number> {
    const c = this.req.config;
    const cgroupTasks = c.cgroupTasks ?? [];
    const parkTasks = parkTasksOf(cgroupTasks, this.s.parks);
    const prepared = this.req.prepared?.fds;
    // The spawner's children now (it spawns nothing before the handoff): ours is the one that is new at the barrier.
    const earlier = threadChildren(this.spawner.tid);
    const handoff = newHandoff();
    const gate = gateOf(this.req.gate, handoff);
    const gated = gate !== undefined;
    const spawned = this.spawner.request({
      t: 'start',
      gated,
      enter: enterRequest(c, cgroupTasks, parkTasks, prepared),
      spawn: {
        builderTid: this.builder.tid,
        namespaces: (['mnt', 'uts', 'ipc', 'net'] as const).filter((t) => c.namespaces.includes(t)),
        nsFds: prepared,
        argv: c.argv,
        env: c.env,
        cwd: c.cwd,
        stdio: this.stdio.child,
        fifos: this.fifos,
        terminal: this.terminal,
      },
      handoff,
    });
    const trash = this.s.handTrash(); // deleted by the builder after its reply
    const building = this.builder.request({
      t: 'start',
      config: c,
      spawnerTid: this.spawner.tid,
      fifo: this.fifos[0],
      handoff,
      mntFd: prepared?.mnt,
      earlier,
      trash: trash.paths,
      gated,
      release: this.releasedByBuilder ? this.fifos[1] : undefined,
    });
    this.spawned = spawned;
    // A spawner that fails before its child opened FIFO 1 would leave the builder waiting
    // there: a writer held open until the builder answered lets it go (whenever it gets there).
    let arriving = true;
    let unblock = -1;
    void spawned.then((r) => {
      if (!r.ok && arriving) unblock = openSync(this.fifos[0], fsConstants.O_RDWR | fsConstants.O_NONBLOCK);
    });
    const arrived = await timeout(building, 'sync').finally(() => {
      arriving = false;
      if (unblock >= 0) closeSync(unblock);
      this.s.answered(trash.earlierDone);
    });
    const pid = arrived.pid;
    if (arrived.ok && arrived.released !== undefined) {
      this.released = arrived.released;
      this.namespaceInodes = arrived.namespaces;
    }
    if (pid !== undefined) this.pidfd = pidfdOpen(pid);
    if (!arrived.ok && arrived.step === 'proc' && arrived.error.code === 'EINVAL') {
      // A kernel whose procfs has no pidns= option (older than 2025's): this process takes
      // the stage path from now on.
      threadPathBroken = 'procfs has no pidns= mount option';
      throw new ThreadsUnavailable(new Error(threadPathBroken));
    }
    if (!arrived.ok) throw await this.failure(arrived, spawned, gate);
    if (pid === undefined) throw new InitError('sync', { name: 'Error', message: 'the builder thread named no process' }, '');
    if (this.req.signal?.aborted) throw new AbortError(this.req.signal.reason); // abandon() ends the process
    this.t.push(performance.now());
    return pid;
  }

  /** The error of a start whose builder failed (`arrived`). */
  private async failure(arrived: Extract<ThreadReply, { ok: false }>, spawned: Promise<ThreadReply>, gate: Promise<void> | undefined): Promise<Error> {
    // The process waits at the barrier: its error is the builder's (abandon() ends it).
    if (arrived.pid !== undefined) return fail(arrived, this.argv0);
    // It never got there: the failure of whichever thread failed first. The other one gave
    // up because of it (a HandoffError), or found no process at the barrier. Both gave up
    // when the caller's preparations failed: theirs is the error (thrown here).
    const r = await timeout(spawned, 'exec');
    await gate;
    if (r.ok) return fail(arrived, this.argv0);
    // A thread that ended (it could not get home last time): the stage path takes over.
    if (r.step === 'start') return new ThreadsUnavailable(new Error(r.error.message));
    return fail(r.error.name === 'HandoffError' ? arrived : r, this.argv0);
  }

  /**
   * The caller's hook, then the barrier opens and the command execs; `alongside` runs before
   * the barrier opens too, or, when the builder opened it already, while the command execs.
   */
  async release(pid: number): Promise<void> {
    const { hook, alongside } = this.req;
    const signal = this.req.signal ?? new AbortController().signal;
    let release = this.released;
    this.released = -1;
    try {
      if (release < 0) {
        if (hook) await hook({ pid, signal });
        if (alongside) await alongside({ pid, signal });
        if (signal.aborted) throw new AbortError(signal.reason);
        this.t.push(performance.now());
        // The command's process opens FIFO 2 for reading: it goes on (and execs) once a writer
        // is there. O_RDWR never blocks and stays a writer until closed, so a process that has
        // not reached that open yet finds it too (a non-blocking O_WRONLY open would fail with
        // ENXIO then, and the wake-up would be lost).
        release = openSync(this.fifos[1], fsConstants.O_RDWR | fsConstants.O_NONBLOCK);
      } else {
        this.t.push(performance.now());
        await alongside?.({ pid, signal });
        if (signal.aborted) throw new AbortError(signal.reason);
      }
    } catch (e) {
      if (release >= 0) close(release); // the process was let go: abandon() ends it
      throw e;
    }
    const done = await timeout(this.spawned!, 'exec').finally(() => close(release));
    if (!done.ok) {
      // posix_spawn reaped the child whose exec failed.
      close(this.pidfd);
      this.pidfd = -1;
      throw fail(done, this.argv0);
    }
    const ms = [...this.t, performance.now()].map((x) => (x - this.t0).toFixed(1));
    log('thread start of pid %d, ms from its start: %s at the barrier, %s hook done, %s exec', pid, ...ms);
  }

  /** The pidfd, owned by the caller from here. */
  takePidfd(): number {
    const fd = this.pidfd;
    this.pidfd = -1;
    return fd;
  }

  /** After a failure: the command's process killed and reaped, the threads released. */
  async abandon(): Promise<void> {
    if (this.released >= 0) close(this.released);
    this.released = -1;
    if (this.pidfd >= 0) {
      const fd = this.pidfd;
      this.pidfd = -1;
      pidfdSendSignal(fd, 9);
      poke(this.fifos[1]);
      await this.spawned;
      await new Promise<void>((resolve) => watchPidfd(fd, () => resolve()));
      close(fd);
    } else if (this.spawned) {
      poke(this.fifos[0]);
      poke(this.fifos[1]);
      await Promise.race([this.spawned, new Promise((r) => setTimeout(r, 1000))]);
    }
  }

  /** At exit, synchronously: the command's process killed (by PID: it has none of ours yet), the FIFOs opened. */
  emergency(started: ReadonlySet<number>): void {
    try {
      for (const pid of threadChildren(this.spawner.tid)) {
        if (!started.has(pid)) process.kill(pid, 'SIGKILL');
      }
    } catch {
      // the spawner is gone already
    }
    poke(this.fifos[0]);
    poke(this.fifos[1]);
  }

  /** Its FIFOs deleted, or (`reuse`: a start that went through, nobody holds them open) kept for the next start. */
  close(reuse = false): void {
    if (reuse && !this.holdAt && this.s.spareFifos.length < 4) this.s.spareFifos.push(this.fifos);
    else for (const f of this.fifos) if (f !== this.holdAt) unlinkSync(f);
    for (const fd of this.stdio.toClose) closeSync(fd);
  }
}

function running(
  pid: number,
  pidfd: number,
  namespaces: Partial<Record<NamespaceType, NamespaceRef>>,
  parts: ProcessParts,
  req: SpawnRequest,
  onExit: () => void,
): NamespacedProcess {
  const exited = new Promise<ExitStatus>((resolve) =>
    watchPidfd(pidfd, (exit) => {
      onExit();
      resolve(statusOf(exit));
    }),
  );
  const proc = new NamespacedProcess({ ...parts, pid, pidfd, namespaces, exited });
  if (req.signal) {
    const killOnAbort = () => proc.kill('SIGKILL');
    req.signal.addEventListener('abort', killOnAbort, { once: true });
    void exited.then(() => req.signal?.removeEventListener('abort', killOnAbort));
  }
  return proc;
}
