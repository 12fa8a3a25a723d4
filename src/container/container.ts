import { logger } from '../log.js';
import { AbortError, InvalidOptionError } from '../errors.js';
import type { ContainerPool, PrewarmOptions } from './prewarm.js';
import { liveStatus, RunningContainer } from './running.js';
import { prune, type PruneOptions, type PruneResult } from './prune.js';
import type { RunOptions, RunResult } from './options.js';
import { validateOptions } from './validate.js';
import type { WaitStrategy } from './wait/strategy.js';
import { StateStore } from './state/store.js';
import { ownerHelper } from '../owner/client.js';
import { fromDetachable, toDetachable } from './owner/detachable.js';
import type { DetachedStart } from '../owner/protocol.js';

import { runToCompletion, startContainer } from './start.js';

const _log = logger('ctrkit:container');
/** Waits for readiness (options.waitFor, or the published ports), removing the container if it never comes. */
async function ready(c: RunningContainer, options: RunOptions): Promise<RunningContainer> {
  let strategy: WaitStrategy | undefined = options.waitFor;
  if (!strategy && options.ports?.length) strategy = (await import('./wait/strategies.js')).Wait.forListeningPorts();
  if (!strategy) return c;
  const { waitUntilReady } = await import('./wait/run.js');
  await waitUntilReady(c, strategy, options.startupTimeout ?? 60_000, options.signal);
  return c;
}

/** Starts a detached container in this process's owner helper, and returns a handle to it. */
async function startDetached(options: RunOptions): Promise<RunningContainer> {
  await validateOptions(options);
  if (options.signal?.aborted) throw new AbortError(options.signal.reason);
  const start: DetachedStart = { options: toDetachable(options), autoRemove: options.autoRemove ?? false };
  const { id, root } = await ownerHelper().start(start);
  return Container.get(id, { stateRoot: root });
}

/** Runs a detached start inside the owner helper (see owner/helper-main.ts). @internal */
export async function startOwnedByHelper(start: DetachedStart): Promise<RunningContainer> {
  return startContainer(await fromDetachable(start.options), { detached: true, autoRemove: start.autoRemove }, false);
}

/** Options of {@link Container.list} and {@link Container.get}. */
export interface LookupOptions {
  /** The state root to look in. @defaultValue `/run/ctrkit` as root, `$XDG_RUNTIME_DIR/ctrkit` otherwise */
  readonly stateRoot?: string;
  /** {@link Container.list}: include exited (and dead) containers, like `docker ps -a`. @defaultValue false */
  readonly all?: boolean;
}

/**
 * Containers: a command in its own namespaces, on a copy-on-write root, optionally in a
 * cgroup of its own (limits, a task limit, the device allow-list), with a secure default profile (dropped capabilities, a seccomp filter,
 * no_new_privs, masked and read-only /proc paths, a minimal /dev).
 *
 * A container belongs to the process that created it: however that process ends (SIGKILL
 * included), its containers are killed and what they held is released, by one small helper
 * process per owner. `detach: true` makes one that outlives its creator instead.
 *
 * @example
 * ```ts
 * import { Container } from 'ctrkit';
 * const r = await Container.run({ command: ['sh', '-c', 'echo $$; hostname'], hostname: 'container' });
 * r.stdout; // "1\ncontainer\n"
 * ```
 */
export class Container {
  private constructor() {}

  /**
   * Starts a container and resolves once its command is running. Its stdout and stderr go
   * to its log (`logs()`, `followLogs()`, `onLog`) unless `stdio` says otherwise. With
   * resource limits, its cgroup is created first and the init joins it before its command
   * starts. Dispose the handle (`await using`) to kill and remove it.
   */
  static async start(options: RunOptions): Promise<RunningContainer> {
    if (options.detach) return ready(await startDetached(options), options);
    return ready(await startContainer(options, { detached: false, autoRemove: false }, false), options);
  }

  /**
   * Runs a container to completion and returns its exit status and captured output; nothing
   * of it remains afterwards. Setup failures throw typed errors (`InvalidOptionError`,
   * `InitError`, `CommandNotFoundError` ...) and leave nothing behind; the command's own
   * failure is reported in the result.
   */
  static async run(options: RunOptions): Promise<RunResult> {
    if (options.detach) throw new InvalidOptionError('detach', 'run waits for the container: use start({ detach: true })');
    const started = performance.now();
    return runToCompletion(await startContainer(options, { detached: false, autoRemove: false }, true), options, started);
  }

  /**
   * Prepares `count` containers ahead of their start (record, writable layer, cgroup,
   * namespaces and mounts), so that a start from the returned pool only joins the cgroup,
   * spawns into the prepared namespaces and pivots: see {@link ContainerPool}. Needs the
   * thread start path (root, cgroup v1, no user namespace, terminal, time namespace or
   * non-root user, not `CTRKIT_START_PATH=stage`): elsewhere it rejects with a
   * {@link ContainerError} `ERR_PREWARM_UNAVAILABLE` and leaves nothing behind. `command`
   * may be left out: each start names its own.
   *
   * @example
   * ```ts
   * await using pool = await Container.prewarm({ rootfs }, { count: 3 });
   * const r = await pool.run({ command: ['hostname'] });
   * ```
   */
  static async prewarm(options: RunOptions, how?: PrewarmOptions): Promise<ContainerPool> {
    return (await import('./prewarm.js')).prewarm(options, how);
  }

  /** The containers under a state root (running ones, or all with `all`), from any process. */
  static async list(options: LookupOptions = {}): Promise<RunningContainer[]> {
    const store = new StateStore(options.stateRoot);
    const records = await store.list();
    return records.filter((r) => options.all || liveStatus(r) === 'running').map((r) => new RunningContainer(store, r));
  }

  /** A container by id, unique id prefix, or name, from any process. */
  static async get(idOrName: string, options: LookupOptions = {}): Promise<RunningContainer> {
    const store = new StateStore(options.stateRoot);
    return new RunningContainer(store, await store.find(idOrName));
  }

  /**
   * Ends containers whose owner is gone and releases what they held, then removes what
   * containers of crashed callers left without a record: cgroups, writable layers.
   */
  static prune(options?: PruneOptions): Promise<PruneResult> {
    return prune(options);
  }
}
