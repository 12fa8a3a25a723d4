import type { Duplex, Readable, Writable } from 'node:stream';
import { constants } from 'node:os';
import type { Cgroup, CgroupStats } from '../cgroups/index.js';
import { InvalidOptionError } from '../errors.js';
import {
  nsenter,
  NamespaceRef,
  NAMESPACES,
  type Capability,
  type NamespacedProcess,
  type NamespaceType,
  type SeccompProfile,
  type StdioOption,
} from '../namespaces/index.js';
import type { NetworkAttachment } from '../network/index.js';
import { ContainerError } from './errors.js';
import type { ContainerExit, LocalContainer } from './local.js';
import type { LogLine, ReadLogsOptions } from './logs/index.js';
import { collect } from './output.js';
import { killContainer, releaseRecord, signalIdentity } from './state/release.js';
import type { ContainerRecord, ContainerStatus } from './state/record.js';
import type { StateStore } from './state/store.js';
import { shortId } from './state/ids.js';
import { isAlive } from '../sys/liveness.js';
import { signalNumber } from './validate.js';
import type { CopyToOptions } from './copy.js';
import type { HealthState } from './health.js';

export type { ContainerExit } from './local.js';

/** Options of {@link RunningContainer.exec} and {@link RunningContainer.execStream}. */
export interface ExecOptions {
  /** The program and its arguments, looked up in the container's PATH. */
  readonly command: readonly string[];
  /** Environment variables, added to (and overriding) the container's. */
  readonly env?: Readonly<Record<string, string>>;
  /** Working directory inside the container. @defaultValue the container's */
  readonly cwd?: string;
  /** The user to run as. @defaultValue the container's */
  readonly user?: { readonly uid: number; readonly gid: number; readonly groups?: readonly number[] };
  /** A pseudo-terminal for the program ({@link RunningContainer.execStream}; `docker exec -t`): its `tty` stream. */
  readonly tty?: boolean;
  /** The terminal's first window size, with `tty`. */
  readonly ttySize?: { readonly cols: number; readonly rows: number };
  /** stdin, stdout, stderr of {@link RunningContainer.execStream}. @defaultValue `'pipe'` */
  readonly stdio?: StdioOption | readonly [StdioOption, StdioOption, StdioOption];
  /** Written to the program's stdin, which is then closed ({@link RunningContainer.exec}). */
  readonly input?: string | Uint8Array;
  /** Kill the program after this many milliseconds ({@link RunningContainer.exec}). */
  readonly timeout?: number;
  /** Most bytes of stdout and of stderr kept ({@link RunningContainer.exec}). @defaultValue 64 MiB */
  readonly maxBuffer?: number;
  /** Cancels setup, or kills the program once it runs. */
  readonly signal?: AbortSignal;
}

/** What {@link RunningContainer.exec} resolves to, like execa's result. A non-zero exit is a result. */
export interface ExecResult {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly command: readonly string[];
  readonly timedOut: boolean;
  readonly durationMs: number;
}

/** Options of {@link RunningContainer.logs}. */
export interface LogsOptions extends ReadLogsOptions {
  /** Prefix each line with its RFC 3339 time (`docker logs -t`). */
  readonly timestamps?: boolean;
}

/** What {@link RunningContainer.inspect} tells: the container's record, as other processes see it. */
export interface ContainerInfo {
  readonly id: string;
  readonly name: string | undefined;
  readonly status: ContainerStatus;
  readonly pid: number | undefined;
  readonly created: Date;
  readonly startedAt: Date | undefined;
  readonly finishedAt: Date | undefined;
  readonly exitCode: number | null | undefined;
  readonly signal: string | null | undefined;
  readonly oomKilled: boolean | undefined;
  readonly command: readonly string[];
  readonly image: string | undefined;
  readonly hostname: string;
  readonly detached: boolean;
  /** The PID of the process that owns it (its creator, or the owner helper of a detached one). */
  readonly ownerPid: number;
  readonly address: string | undefined;
  readonly ports: readonly {
    readonly hostIp?: string | undefined;
    readonly hostPort: number;
    readonly containerPort: number;
    readonly protocol: 'tcp' | 'udp';
  }[];
  readonly stopSignal: string;
  readonly logPath: string | undefined;
  readonly cgroup: { readonly version: 1 | 2; readonly path: string } | undefined;
  readonly stateDir: string;
  /** The health check's state, when the container has a health check. */
  readonly health: HealthState | undefined;
  /** The named network it is on, when it is on one. */
  readonly networkName: string | undefined;
  /** With `userns: 'auto'`: the host uids and gids its ids 0.. map to (`size` of them). */
  readonly userns: { readonly uid: number; readonly gid: number; readonly size: number } | undefined;
}

const MAX_BUFFER = 64 * 1024 * 1024;

/** The status a reader should believe: a record whose owner and init are both gone is `dead`. @internal */
export function liveStatus(r: ContainerRecord, frozen = false): ContainerStatus {
  if (r.status === 'exited') return 'exited';
  const initAlive = r.init !== undefined && isAlive(r.init);
  if (r.status === 'running' && initAlive) return frozen ? 'paused' : 'running';
  if (!isAlive(r.owner)) return 'dead';
  return r.status === 'running' ? 'running' : 'creating';
}

/**
 * A container: from {@link Container.start} (this process owns it, or, detached, its owner
 * helper runs it) or from {@link Container.get} (any container, from any process). The
 * methods are the same either way; streams (`stdout` ...) exist only on the handle of the
 * process that started an owned container.
 */
export class RunningContainer implements AsyncDisposable {
  /** The container's id: 64 hex digits. */
  readonly id: string;
  /** Its unique name, when it was given one. */
  readonly name: string | undefined;
  /** The command the container runs (after an image's entrypoint and cmd were applied). */
  readonly command: readonly string[];
  /** True for a container that outlives its creator. */
  readonly detached: boolean;
  /** The directory holding its record and log. */
  readonly stateDir: string;
  /** The state root it was created under. */
  readonly stateRoot: string;

  private record: ContainerRecord;
  private readonly store: StateStore;
  private readonly local: LocalContainer | undefined;
  private remoteExit: Promise<ContainerExit> | undefined;

  /** @internal */
  constructor(store: StateStore, record: ContainerRecord, local?: LocalContainer) {
    this.store = store;
    this.record = record;
    this.local = local;
    this.id = record.id;
    this.name = record.name;
    this.command = record.command;
    this.detached = record.detached;
    this.stateDir = store.dirOf(record.id);
    this.stateRoot = store.root;
  }

  /** @internal */
  setRecord(r: ContainerRecord): void {
    this.record = r;
  }

  /** @internal */
  currentRecord(): ContainerRecord {
    return this.record;
  }

  /** The init's PID on the host. */
  get pid(): number {
    return this.record.init?.pid ?? 0;
  }

  /** The init process, on the handle of the process that started the (owned) container. */
  get process(): NamespacedProcess | undefined {
    return this.local?.process;
  }

  /** The namespaces of the container, by type. */
  get namespaces(): Readonly<Partial<Record<NamespaceType, NamespaceRef>>> {
    if (this.local) return this.local.process.namespaces;
    const out: Partial<Record<NamespaceType, NamespaceRef>> = {};
    for (const { type } of NAMESPACES) {
      try {
        out[type] = NamespaceRef.ofProcess(this.pid, type);
      } catch {
        // gone, or a namespace type this kernel lacks
      }
    }
    return out;
  }

  /** stdin, when it is a pipe (the starting process's handle only). */
  get stdin(): Writable | null {
    return this.local?.process.stdin ?? null;
  }

  /** stdout, when `stdio` made it a pipe (otherwise it goes to the log). */
  get stdout(): Readable | null {
    return this.local && !this.local.parts.log ? this.local.process.stdout : null;
  }

  /** stderr, when `stdio` made it a pipe (otherwise it goes to the log). */
  get stderr(): Readable | null {
    return this.local && !this.local.parts.log ? this.local.process.stderr : null;
  }

  /** The container's terminal (with `tty: true`), on the starting process's handle: write input, read the screen. */
  get tty(): Duplex | null {
    return this.local?.tty ?? null;
  }

  /** Sets the terminal's window size (with `tty: true`); the command gets SIGWINCH. */
  resize(cols: number, rows: number): void {
    this.local?.process.resize(cols, rows);
  }

  /** The network attachment (address, gateway, ports) on the starting process's handle. */
  get network(): NetworkAttachment | undefined {
    return this.local?.parts.network;
  }

  /** The container's IPv4 address, with bridge, cni or pasta networking. */
  get address(): string | undefined {
    return this.record.resources.network?.address;
  }

  /** The container's cgroup, when it has one. */
  get cgroup(): Cgroup | undefined {
    return this.local?.parts.cgroup;
  }

  /** Where to connect to its published ports: the host address they were published on. */
  get host(): string {
    const ip = this.record.resources.network?.ports.find((p) => p.hostIp !== undefined)?.hostIp;
    return ip === undefined || ip === '0.0.0.0' ? '127.0.0.1' : ip;
  }

  /**
   * The host port a container port was published on (`ports: ['8080:80']` → `mappedPort(80)`
   * is 8080).
   */
  mappedPort(containerPort: number, protocol: 'tcp' | 'udp' = 'tcp'): number {
    const p = this.record.resources.network?.ports.find((m) => m.containerPort === containerPort && m.protocol === protocol);
    if (!p) throw new ContainerError('ERR_NO_SUCH_CONTAINER', `container ${shortId(this.id)} publishes no ${protocol} port ${containerPort}`);
    return p.hostPort;
  }

  private async fresh(): Promise<ContainerRecord> {
    if (this.local) return this.record;
    const r = await this.store.read(this.id);
    if (r) this.record = r;
    return this.record;
  }

  private async frozen(): Promise<boolean> {
    const cg = this.record.resources.cgroup;
    if (!cg) return false;
    const { readFile } = await import('node:fs/promises');
    const { detectCgroupLayout } = await import('../cgroups/index.js');
    const layout = await detectCgroupLayout();
    const file =
      cg.version === 2
        ? layout.mounts.find((m) => m.version === 2)?.path
        : layout.mounts.find((m) => m.version === 1 && m.controllers.includes('freezer'))?.path;
    if (!file) return false;
    const state = await readFile(`${file}/${cg.path}/${cg.version === 2 ? 'cgroup.freeze' : 'freezer.state'}`, 'utf8').catch(() => '');
    return state.trim() === '1' || state.trim() === 'FROZEN';
  }

  /** The container's state right now: `running`, `paused`, `exited` ... */
  async status(): Promise<ContainerStatus> {
    const r = await this.fresh();
    return liveStatus(r, r.status === 'running' && (await this.frozen()));
  }

  /** The container's record: status, pid, exit, network, ports, log path ... */
  async inspect(): Promise<ContainerInfo> {
    const r = await this.fresh();
    const date = (s: string | undefined) => (s === undefined ? undefined : new Date(s));
    return {
      id: r.id,
      name: r.name,
      status: await this.status(),
      pid: r.init?.pid,
      created: new Date(r.created),
      startedAt: date(r.startedAt),
      finishedAt: date(r.finishedAt),
      exitCode: r.exitCode,
      signal: r.signal,
      oomKilled: r.oomKilled,
      command: r.command,
      image: r.image,
      hostname: r.hostname,
      detached: r.detached,
      ownerPid: r.owner.pid,
      address: r.resources.network?.address,
      ports: r.resources.network?.ports ?? [],
      stopSignal: r.stopSignal,
      logPath: r.log?.path,
      cgroup: r.resources.cgroup,
      stateDir: this.stateDir,
      health: r.health,
      networkName: r.resources.network?.named?.name,
      userns: r.resources.userns,
    };
  }

  /**
   * The container's output so far, as `docker logs` prints it (while it runs and after it
   * exited). `tail`, `since`, `until` and `streams` select lines.
   */
  async logs(options: LogsOptions = {}): Promise<string> {
    const r = await this.fresh();
    if (!r.log)
      throw new ContainerError('ERR_NO_SUCH_CONTAINER', `container ${shortId(this.id)} has no log: its stdout and stderr were not logged (stdio was given)`);
    const { readLogLines, formatLogLines } = await import('./logs/index.js');
    return formatLogLines(await readLogLines(r.log.path, options), { timestamps: options.timestamps });
  }

  /**
   * The container's output line by line: what was logged so far (honouring `tail` and
   * `since`), then new lines as they come, until the container exited and all was read,
   * or `signal` aborts (`docker logs -f`).
   */
  async *followLogs(options: ReadLogsOptions & { readonly signal?: AbortSignal } = {}): AsyncGenerator<LogLine> {
    const r = await this.fresh();
    if (!r.log) throw new ContainerError('ERR_NO_SUCH_CONTAINER', `container ${shortId(this.id)} has no log: its stdout and stderr were not logged`);
    const { followLogLines } = await import('./logs/index.js');
    let ended = false;
    void this.wait().then(() => {
      ended = true;
    });
    yield* followLogLines(r.log.path, { ...options, done: () => ended });
  }

  /**
   * Runs a program in the container (`docker exec`): its namespaces, root, cgroup and
   * security profile, its user, environment and working directory unless told otherwise;
   * resolves with the exit and the output, like execa. A non-zero exit is a result.
   */
  async exec(options: ExecOptions): Promise<ExecResult> {
    if (options.tty) throw new InvalidOptionError('tty', 'exec collects output: use execStream for a terminal');
    const started = performance.now();
    const stdin = options.input !== undefined ? 'pipe' : 'ignore';
    const p = await this.execStream({ ...options, stdio: [stdin, 'pipe', 'pipe'] });
    if (options.input !== undefined) p.stdin?.end(options.input);
    const max = options.maxBuffer ?? MAX_BUFFER;
    const out = collect(p.stdout, max);
    const err = collect(p.stderr, max);
    let timedOut = false;
    const timer = options.timeout
      ? setTimeout(() => {
          timedOut = true;
          p.kill('SIGKILL');
        }, options.timeout)
      : undefined;
    try {
      const st = await p.exited;
      const [o, e] = await Promise.all([out, err]);
      return {
        exitCode: st.exitCode,
        signal: st.signal,
        stdout: o.text,
        stderr: e.text,
        command: options.command,
        timedOut,
        durationMs: performance.now() - started,
      };
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  /** Like {@link RunningContainer.exec}, but resolves once the program runs, with its streams. */
  async execStream(options: ExecOptions): Promise<NamespacedProcess> {
    const r = await this.fresh();
    if (liveStatus(r) !== 'running') throw new ContainerError('ERR_CONTAINER_NOT_RUNNING', `container ${shortId(this.id)} is not running`);
    const cg = r.resources.cgroup;
    const cgroup = this.local?.parts.cgroup ?? (cg ? await openCgroup(cg) : undefined);
    const p = r.process;
    const user = options.user ?? p.user;
    return nsenter({
      target: this.pid,
      command: options.command,
      env: { ...p.env, ...options.env },
      cwd: options.cwd ?? p.cwd,
      user: user === undefined ? undefined : { uid: user.uid, gid: user.gid, groups: user.groups ? [...user.groups] : undefined },
      stdio: options.tty ? undefined : (options.stdio ?? 'pipe'),
      tty: options.tty,
      ttySize: options.ttySize,
      capabilities: p.capabilities === 'all' ? 'all' : (p.capabilities as Capability[]),
      noNewPrivileges: p.noNewPrivileges,
      seccomp: p.seccomp as SeccompProfile,
      onNamespaces: cgroup ? ({ pid }) => cgroup.addProcess(pid) : undefined,
      signal: options.signal,
    });
  }

  /** Resource usage right now (memory, CPU, IO, pids), when the container has a cgroup. */
  async stats(): Promise<CgroupStats | undefined> {
    if (this.local) return this.local.parts.cgroup?.stats();
    const cg = (await this.fresh()).resources.cgroup;
    return cg ? (await openCgroup(cg)).stats() : undefined;
  }

  private async needCgroup(verb: string): Promise<Cgroup> {
    if (this.local?.parts.cgroup) return this.local.parts.cgroup;
    const cg = (await this.fresh()).resources.cgroup;
    if (!cg) throw new ContainerError('ERR_NO_CGROUP', `${verb} needs the container's cgroup, and it has none (it was started by an older ctrkit)`);
    return openCgroup(cg);
  }

  /** Freezes every process of the container (the cgroup freezer). */
  async pause(): Promise<void> {
    await (await this.needCgroup('pause')).freeze();
  }

  /** Thaws a paused container. */
  async resume(): Promise<void> {
    await (await this.needCgroup('resume')).thaw();
  }

  /**
   * Sends a signal to the container's init. With a PID namespace the init is its PID 1: the
   * kernel delivers only signals it handles (or SIGKILL, which ends the whole namespace).
   * @returns false when the container was not running
   */
  kill(signal: NodeJS.Signals | number = 'SIGKILL'): Promise<boolean> {
    const n = signalNumber('signal', signal);
    if (this.local) return Promise.resolve(this.local.process.kill(n));
    const init = this.record.init;
    return init ? signalIdentity(init, n) : Promise.resolve(false);
  }

  /**
   * Stops the container like `docker stop`: its stop signal (the image's `StopSignal`, else
   * SIGTERM), then SIGKILL once `timeout` ms passed; resolves with the exit.
   */
  async stop(options: { readonly timeout?: number; readonly signal?: NodeJS.Signals } = {}): Promise<ContainerExit> {
    const timeout = options.timeout ?? 10_000;
    if (!(timeout >= 0)) throw new InvalidOptionError('timeout', 'must be a number of milliseconds');
    const r = await this.fresh();
    const exited = this.wait();
    if (liveStatus(r) === 'running') {
      await this.kill(options.signal ?? (r.stopSignal as NodeJS.Signals));
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), timeout);
      });
      if ((await Promise.race([exited, grace])) === 'late') await this.kill('SIGKILL');
      clearTimeout(timer);
    }
    return exited;
  }

  /** Resolves with the exit once the container ended (and released what it held). */
  wait(): Promise<ContainerExit> {
    if (this.local) return this.local.exited;
    this.remoteExit ??= this.pollExit();
    return this.remoteExit;
  }

  /** Settles when the container has exited; the same as {@link RunningContainer.wait}. */
  get exited(): Promise<ContainerExit> {
    return this.wait();
  }

  private async pollExit(): Promise<ContainerExit> {
    for (;;) {
      const r = await this.store.read(this.id);
      if (r) this.record = r;
      const status = liveStatus(this.record);
      if (!r || status === 'exited' || status === 'dead') {
        const rec = this.record;
        const sig = rec.signal ?? null;
        return {
          exitCode: rec.exitCode ?? null,
          signal: (sig as NodeJS.Signals | null) ?? (rec.exitCode == null ? 'SIGKILL' : null),
          oomKilled: rec.oomKilled ?? false,
          stats: undefined,
          layer: undefined,
        };
      }
      await new Promise((res) => setTimeout(res, 25));
    }
  }

  /** Copies a host file or directory, or a tar stream, into the container (`docker cp SRC CONTAINER:DST`). */
  async copyTo(source: string | NodeJS.ReadableStream, containerPath: string, options: CopyToOptions = {}): Promise<void> {
    const r = await this.fresh();
    if (liveStatus(r) !== 'running') throw new ContainerError('ERR_CONTAINER_NOT_RUNNING', `container ${shortId(this.id)} is not running`);
    const { copyToContainer } = await import('./copy.js');
    await copyToContainer(this.pid, source, containerPath, options);
  }

  /** A tar stream of a path in the container (`docker cp CONTAINER:PATH -`). */
  async copyFrom(containerPath: string, options: { readonly signal?: AbortSignal } = {}): Promise<Readable> {
    const r = await this.fresh();
    if (liveStatus(r) !== 'running') throw new ContainerError('ERR_CONTAINER_NOT_RUNNING', `container ${shortId(this.id)} is not running`);
    const { copyFromContainer } = await import('./copy.js');
    return copyFromContainer(this.pid, containerPath, options);
  }

  /** An owned container removed as soon as it ends (Container.run): its exit is not recorded first. @internal */
  removeOnExit(): void {
    if (this.local) this.local.recordExit = false;
  }

  /**
   * Removes the container: its record and log (and, if it still runs, with `force`, first
   * kills it and releases what it holds), like `docker rm [-f]`.
   */
  async remove(options: { readonly force?: boolean } = {}): Promise<void> {
    const r = await this.fresh();
    const status = liveStatus(r, false);
    if (status === 'running' || status === 'creating') {
      if (!options.force)
        throw new ContainerError('ERR_CONTAINER_RUNNING', `container ${shortId(this.id)} is running: stop it first, or remove it with { force: true }`);
      if (this.local) {
        this.local.process.kill('SIGKILL');
        await this.local.exited;
      } else {
        await killContainer(r);
        await this.wait(); // its owner records the exit and releases what it held
      }
    } else if (status === 'dead') {
      await releaseRecord(this.store, r, { removeRecord: true });
      return;
    } else if (this.local) {
      await this.local.exited;
    }
    await this.store.remove(this.id, this.name);
  }

  /**
   * An owned container is killed and removed when its handle is disposed (`await using`).
   * A detached one is left running: it outlives its handles by design.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.detached) return;
    await this.remove({ force: true });
  }
}

async function openCgroup(cg: { readonly version: 1 | 2; readonly path: string }): Promise<Cgroup> {
  const { Cgroup: C } = await import('../cgroups/index.js');
  return (cg.version === 2 ? C.v2(cg.path) : C.v1(cg.path)).open();
}

/** Signal names by number, for records written by other processes. @internal */
export function signalName(n: number): NodeJS.Signals | undefined {
  return Object.entries(constants.signals).find(([, v]) => v === n)?.[0] as NodeJS.Signals | undefined;
}
