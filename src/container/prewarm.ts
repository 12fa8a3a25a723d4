/**
 * Warm starts: containers prepared ahead of their start (`Container.prewarm`). Each holds its
 * record (status 'creating'), writable layer, /etc files, cgroup, and its namespaces and
 * mounts, built on the thread start path's builder thread and kept as fds of this process;
 * a start then only joins the cgroup, makes the PID namespace, spawns into the prepared
 * namespaces and finishes the root (/proc, masks, pivot_root).
 */
import { logger } from '../log.js';
import { InvalidOptionError } from '../errors.js';
import { threadStartRefusal } from '../namespaces/fast/refusal.js';
import type { PreparedNamespaces } from '../namespaces/spawn-request.js';
import { unshareRequest } from '../namespaces/unshare.js';
import { undoParts } from './local.js';
import { ContainerError } from './errors.js';
import type { RunOptions, RunResult } from './options.js';
import type { RunningContainer } from './running.js';
import { launchContainer, prepareContainer, runToCompletion, type PreparedContainer } from './start.js';
import { matchKey, registerPool, type PoolEntry, type Prewarmed } from './prewarm-registry.js';

const log = logger('ctrkit:container');
const noop = (): void => undefined;

/** Options of {@link Container.prewarm}. */
export interface PrewarmOptions {
  /** How many containers to keep prepared. @defaultValue 1 */
  readonly count?: number;
  /** Prepare a new one in the background each time one is taken, until closed. @defaultValue true */
  readonly refill?: boolean;
}

/**
 * What a start from a pool may still choose: the command (default: the pool's, or the
 * image's), environment variables added to the pool's, the working directory, and the
 * start's own streams, input, timeouts, signal and callbacks. Everything else (root,
 * hostname, namespaces, limits, security profile, network) is the pool's.
 */
export type PoolRunOptions = Pick<
  RunOptions,
  'command' | 'env' | 'cwd' | 'input' | 'stdio' | 'timeout' | 'maxBuffer' | 'signal' | 'onLog' | 'onNamespaces' | 'waitFor' | 'startupTimeout' | 'log'
>;

/** Releases a prepared container that will not start: namespaces, cgroup, layer, /etc files, record. */
async function release(w: Prewarmed): Promise<void> {
  w.namespaces.close();
  await undoParts(w.container.parts);
  await w.container.store.remove(w.container.id, w.container.options.name).catch(() => undefined);
}

/**
 * Containers prepared ahead of their start, from {@link Container.prewarm}. `run()` and
 * `start()` take one (or, with none ready, start one the usual way); `Container.run` and
 * `Container.start` take one too when their options equal the pool's but for the per-run
 * ones of {@link PoolRunOptions} (and hold only plain data). `close()` (or `await using`)
 * releases every container not taken; were this process to die first, its owner helper
 * releases them, as any container of a dead owner.
 */
export class ContainerPool implements AsyncDisposable {
  private readonly ready: Prewarmed[] = [];
  private readonly pending = new Set<Promise<void>>();
  private closed = false;
  private readonly entry: PoolEntry;
  /** The last error of a background refill, if any. */
  lastError: Error | undefined;

  /** @internal */
  constructor(
    private readonly options: RunOptions,
    /** How many containers the pool keeps prepared. */
    readonly count: number,
    private readonly refill: boolean,
  ) {
    const key = matchKey(options);
    this.entry = { key: key ?? '', take: () => (key === undefined ? undefined : this.take()) };
  }

  /** How many prepared containers are ready now. */
  get size(): number {
    return this.ready.length;
  }

  /** @internal Prepares `count` containers; rejects (after releasing them) if one fails. */
  async fill(): Promise<void> {
    try {
      for (let i = 0; i < this.count; i++) this.ready.push(await prepareOne(this.options));
    } catch (e) {
      await this.close();
      throw e;
    }
    registerPool(this.entry, true);
  }

  /** A ready container, owned by the caller from here; a refill starts behind it. */
  private take(): Prewarmed | undefined {
    if (this.closed) return undefined;
    const w = this.ready.shift();
    if (!w || !this.refill) return w;
    // The refill's build would queue on the start threads ahead of this start: it begins
    // once this start is over.
    return { ...w, launched: (start) => void start.then(noop, noop).then(() => this.refillOne()) };
  }

  private refillOne(): void {
    if (this.closed) return;
    const p: Promise<void> = prepareOne(this.options).then(
      async (w) => {
        if (this.closed) await release(w);
        else this.ready.push(w);
      },
      (e: unknown) => {
        this.lastError = e as Error;
        log('refilling a prewarmed pool: %s', (e as Error).message);
      },
    );
    const tracked = p.finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }

  /** Starts a container from the pool and waits for it like {@link Container.run}. */
  async run(options: PoolRunOptions = {}): Promise<RunResult> {
    const started = performance.now();
    return runToCompletion(await this.launch(options, true), { ...this.options, ...options }, started);
  }

  /** Starts a container from the pool like {@link Container.start}. */
  async start(options: PoolRunOptions = {}): Promise<RunningContainer> {
    return this.launch(options, false);
  }

  private async launch(options: PoolRunOptions, capture: boolean): Promise<RunningContainer> {
    if (this.closed) throw new ContainerError('ERR_PREWARM_UNAVAILABLE', 'the pool is closed');
    const merged: RunOptions = { ...this.options, ...options, env: this.options.env || options.env ? { ...this.options.env, ...options.env } : undefined };
    const w = this.take();
    const overrides = { command: options.command, env: options.env, cwd: options.cwd };
    if (w) {
      const start = launchContainer(w.container, merged, capture, w.namespaces, overrides);
      w.launched?.(start);
      return start;
    }
    // None ready: a cold start with the same options.
    return launchContainer(await prepareContainer(merged, { detached: false, autoRemove: false }), merged, capture);
  }

  /** Releases every container not taken (those being prepared too, once they are). Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    registerPool(this.entry, false);
    const all = this.ready.splice(0);
    await Promise.all(all.map(release));
    await Promise.all(this.pending);
  }

  /** {@link ContainerPool.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** One container prepared and its namespaces built; released if the build fails. */
async function prepareOne(options: RunOptions): Promise<Prewarmed> {
  const container: PreparedContainer = await prepareContainer(options, { detached: false, autoRemove: false }, true);
  let namespaces: PreparedNamespaces | undefined;
  try {
    // The request of the later start, with a command that is never run if there is none yet.
    const u = container.unshareOptions;
    const req = await unshareRequest({ ...u, command: u.command.length ? u.command : ['/bin/true'], stdio: ['ignore', 'ignore', 'ignore'] });
    const refusal = threadStartRefusal(req);
    if (refusal !== undefined) throw unavailable(refusal);
    const { prebuildOnThreads, ThreadsUnavailable } = await import('../namespaces/fast/threads.js');
    try {
      namespaces = await prebuildOnThreads(req.config);
    } catch (e) {
      if (e instanceof ThreadsUnavailable) throw unavailable(e.message, e);
      throw e;
    }
    return { container, namespaces };
  } catch (e) {
    namespaces?.close();
    await undoParts(container.parts);
    await container.store.remove(container.id, options.name).catch(() => undefined);
    throw e;
  }
}

function unavailable(why: string, cause?: unknown): ContainerError {
  return new ContainerError('ERR_PREWARM_UNAVAILABLE', `prewarm needs the thread start path, which these options or this host cannot take: ${why}`, { cause });
}

/** {@link Container.prewarm}. @internal */
export async function prewarm(options: RunOptions, how: PrewarmOptions = {}): Promise<ContainerPool> {
  const count = how.count ?? 1;
  if (!Number.isInteger(count) || count < 1) throw new InvalidOptionError('count', `must be a positive integer, got ${count}`);
  if (options.detach) throw new InvalidOptionError('detach', 'a prewarmed container belongs to its pool, not to the owner helper');
  if (options.name !== undefined) throw new InvalidOptionError('name', 'the containers of a pool cannot share one name');
  if (options.tty) throw unavailable('a terminal');
  const pool = new ContainerPool(options, count, how.refill ?? true);
  await pool.fill();
  return pool;
}
