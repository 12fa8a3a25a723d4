/**
 * A container's start in two parts: prepare (record, layer, /etc files, cgroup) and launch
 * (the process, the hook, the handle), shared by `Container.start`/`run` and the prewarmed pools.
 * @internal
 */
import { resolve } from 'node:path';
import { logger } from '../log.js';
import { AbortError, InvalidOptionError } from '../errors.js';
import {
  DEFAULT_CAPABILITIES,
  DEFAULT_NAMESPACES,
  DEFAULT_PATH,
  unshare,
  type IdmappedPath,
  type StdioOption,
  type UnshareOptions,
} from '../namespaces/index.js';
import { identify, selfIdentity } from '../sys/liveness.js';
import { spawnInNamespaces } from '../namespaces/spawn.js';
import { unshareRequest } from '../namespaces/unshare.js';
import type { PreparedNamespaces, SpawnRequest } from '../namespaces/spawn-request.js';
import { takePrewarmed } from './prewarm-registry.js';
import { ContainerError } from './errors.js';
import { collect } from './output.js';
import { hasLimits } from './limits.js';
import { mountPlan } from './mount-plan.js';
import type { CgroupV1 } from '../cgroups/index.js';
import { RunningContainer } from './running.js';
import { planEtcFiles } from './etc-files.js';
import { defaultStateDir, prepareWritableRoot } from './writable-root.js';
import { sweepTrash } from './layer-trash.js';
import type { HealthcheckOptions, RunOptions, RunResult } from './options.js';
import { resolveRootSource, type RootSource } from './root-source.js';
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from './security.js';
import { LocalContainer, undoParts, type ContainerParts } from './local.js';
import { namedNetwork, networkMode, parseExtraHosts, validateOptions } from './validate.js';
import { newContainerId } from './state/ids.js';
import { StateStore } from './state/store.js';
import type { ContainerRecord, NetworkRecord } from './state/record.js';
import { isHelper, ownerHelper } from '../owner/client.js';
import { parsePortMapping } from '../network/ports.js';

const log = logger('ctrkit:container');
const MAX_BUFFER = 64 * 1024 * 1024;
const LOG_FILE = 'container.log';

type Stdio3 = [StdioOption, StdioOption, StdioOption];

/** The streams as the spawn gets them, and which of stdout/stderr go to the log. */
function stdioOf(options: RunOptions, captureByDefault: boolean): { stdio: Stdio3; logged: boolean } {
  const s = options.stdio;
  const given: (StdioOption | undefined)[] = s === undefined ? [undefined, undefined, undefined] : typeof s === 'object' ? [...s] : [s, s, s];
  const stdin = given[0] ?? (options.input !== undefined ? 'pipe' : 'ignore');
  if (given[1] !== undefined || given[2] !== undefined || captureByDefault) {
    return { stdio: [stdin, given[1] ?? 'pipe', given[2] ?? 'pipe'], logged: false };
  }
  return { stdio: [stdin, 'pipe', 'pipe'], logged: true };
}

function toUnshareOptions(
  options: RunOptions,
  source: RootSource,
  init: string | undefined,
  commandLater = false,
): UnshareOptions & { command: readonly string[] } {
  const privileged = options.privileged ?? false;
  const hostname = options.hostname ?? source.hostname ?? 'container';
  if (!source.command?.length && !commandLater) throw new InvalidOptionError('command', 'nothing to run: give a command (the image or bundle names none)');
  if (source.lower.length > 1 && options.overlay === false) throw new InvalidOptionError('overlay', 'several layers need the copy-on-write root');
  const namespaces = options.namespaces ?? DEFAULT_NAMESPACES;
  return {
    // With an init, it is PID 1 and the command its child: `--` ends tini's own options.
    command: !source.command?.length ? [] : init ? ['/dev/init', '--', ...source.command] : source.command,
    namespaces,
    uidMap: options.uidMap,
    gidMap: options.gidMap,
    hostname: namespaces.includes('uts') ? hostname : undefined,
    rootfs: source.lower[0],
    cwd: source.cwd ?? '/',
    env: { PATH: DEFAULT_PATH, HOSTNAME: hostname, HOME: '/root', ...source.env, ...options.env },
    user: source.user,
    capabilities: privileged ? 'all' : (options.capabilities ?? DEFAULT_CAPABILITIES),
    noNewPrivileges: options.noNewPrivileges ?? !privileged,
    seccomp: options.seccomp ?? (privileged ? 'unconfined' : 'default'),
    tty: options.tty,
    ttySize: options.ttySize,
    signal: options.signal,
    startPath: options.startPath,
  };
}

/** The container's mount plan: its root, cgroupfs, masks, read-only paths, devices and binds. */
function containerPlan(
  options: RunOptions,
  parts: ContainerParts,
  spawnOptions: UnshareOptions,
  init: string | undefined,
  userns: boolean,
  idmapped: readonly IdmappedPath[],
): ReturnType<typeof mountPlan> {
  const privileged = options.privileged ?? false;
  return mountPlan({
    overlay: parts.root?.overlay,
    userns,
    idmapped,
    cgroupns: [...(spawnOptions.namespaces ?? [])].includes('cgroup'),
    maskedPaths: privileged ? [] : (options.maskedPaths ?? DEFAULT_MASKED_PATHS),
    readonlyPaths: privileged ? [] : (options.readonlyPaths ?? DEFAULT_READONLY_PATHS),
    devices: options.devices ?? [],
    binds: [
      ...(options.binds ?? []).map((b) => ({ ...b, source: resolve(b.source) })),
      ...(parts.etc?.binds ?? []),
      ...(init ? [{ source: init, target: '/dev/init', readonly: true }] : []),
    ],
  });
}

/**
 * Whether root inside is another uid outside than the root caller (`userns: 'auto'`, or maps
 * that move it): its root filesystem is then shown to it through idmapped mounts.
 */
function remapsRoot(options: RunOptions): boolean {
  // Only root can idmap; a rootless caller's root inside is itself.
  if (process.getuid?.() !== 0) return false;
  if (options.userns === 'auto') return true;
  const moved = (map: RunOptions['uidMap']) => {
    const m = map?.find((e) => e.inside <= 0 && e.inside + e.count > 0);
    return m !== undefined && m.outside - m.inside !== 0;
  };
  return moved(options.uidMap) || moved(options.gidMap);
}

/** Whether the container gets a user namespace, and what it sees through idmapped mounts then. */
function userNamespaceOf(options: RunOptions, spawnOptions: UnshareOptions, parts: ContainerParts): { userns: boolean; idmapped: readonly IdmappedPath[] } {
  const userns =
    process.getuid?.() !== 0 ||
    options.uidMap !== undefined ||
    options.gidMap !== undefined ||
    parts.userns !== undefined ||
    [...(spawnOptions.namespaces ?? [])].includes('user');
  // The layers and the writable layer, or (overlay: false) the rootfs itself.
  const idmapped = remapsRoot(options) ? (parts.root?.idmapped ?? [{ path: spawnOptions.rootfs! }]) : [];
  return { userns, idmapped };
}

/** What the record keeps of a container's network, for other processes and for release. */
function networkRecord(net: NonNullable<ContainerParts['network']>, named: ReturnType<typeof namedNetwork>, options: RunOptions): NetworkRecord {
  // A bridge made from options (the default `ctk0` included) goes with its last container.
  const ownBridge = !named && !(options.bridge !== undefined && 'attach' in options.bridge);
  const att = net.bridge;
  const ports = (att?.ports ?? net.pasta?.ports ?? net.ports.map(parsePortMapping)).map((p) => ({
    hostIp: p.hostIp,
    hostPort: p.hostPort,
    containerPort: p.containerPort,
    protocol: p.protocol,
  }));
  return {
    mode: net.mode === 'cni' || net.mode === 'pasta' ? net.mode : 'bridge',
    pasta: net.pasta?.process,
    address: net.address,
    bridge: att && {
      name: att.bridge,
      subnet: att.subnetCidr,
      gateway: att.gateway,
      netns: att.hostNetnsPath,
      stateDir: att.stateDir,
      hostIfname: att.hostIfname,
      leaseOwner: att.leaseOwner,
      removeWhenUnused: ownBridge,
    },
    named: named && { name: named.name, stateDir: named.stateDir },
    ports,
  };
}

/** How a container is owned. @internal */
export interface Ownership {
  readonly detached: boolean;
  readonly autoRemove: boolean;
}

/**
 * A container made up to its start: its record (status 'creating'), writable layer, /etc
 * files and cgroup exist; its process does not. Shared by {@link startContainer} and the
 * prewarmed pools (./prewarm.ts). @internal
 */
export interface PreparedContainer {
  readonly id: string;
  readonly options: RunOptions;
  readonly source: RootSource;
  readonly init: string | undefined;
  readonly spawnOptions: ReturnType<typeof toUnshareOptions>;
  readonly store: StateStore;
  readonly parts: ContainerParts;
  record: ContainerRecord;
  /** What {@link unshare} is given, but the streams and the hook. */
  readonly unshareOptions: UnshareOptions & { command: readonly string[] };
  /** Prepared `early`: settles once the files, the cgroup and the record exist (the start's gate). */
  readonly ready?: Promise<void> | undefined;
}

/**
 * The part of a start before the container's process: every option is checked before
 * anything is made; whatever was made is released if a later step fails.
 * @internal
 */
export async function prepareContainer(options: RunOptions, how: Ownership, commandLater = false, early = false): Promise<PreparedContainer> {
  const id = newContainerId();
  const { cgroup: cgroupHandle, init } = await validateOptions(options, `ctk-${id}`);
  const source = await resolveRootSource(options);
  const spawnOptions = toUnshareOptions(options, source, init, commandLater);
  const store = new StateStore(options.stateRoot);
  sweepTrash(store.root); // once per process: records a killed process was deleting
  const owner = selfIdentity();
  // Before anything exists: were we to die from here on, the helper releases it all. Its
  // acknowledgement is awaited before the container's process exists (below): a message
  // still in our socket when we die would be lost, and a process waiting at the thread
  // path's barrier has nobody else to end it.
  const stateDir = options.stateDir ?? defaultStateDir();
  // (And the trash of its discarded layers in `stateDir`, should we die before it is deleted.)
  const watched = isHelper() ? Promise.resolve() : ownerHelper().watch(store.root, stateDir);
  watched.catch(() => undefined); // awaited below
  const mode = networkMode(options);
  const network = options.network ?? 'none';
  const hostname = spawnOptions.hostname ?? 'container';
  const keepLayer = options.keepLayer ?? false;
  const user = spawnOptions.user;
  let record: ContainerRecord = {
    version: 1,
    id,
    name: options.name,
    created: new Date().toISOString(),
    owner,
    detached: how.detached,
    autoRemove: how.autoRemove,
    status: 'creating',
    init: undefined,
    startedAt: undefined,
    finishedAt: undefined,
    exitCode: undefined,
    signal: undefined,
    oomKilled: undefined,
    command: source.command ?? [],
    image: options.image,
    hostname,
    stopSignal: options.stopSignal ?? source.stopSignal ?? 'SIGTERM',
    process: {
      env: spawnOptions.env ?? {},
      cwd: spawnOptions.cwd ?? '/',
      user: user && { uid: user.uid, gid: user.gid, groups: user.groups },
      capabilities: spawnOptions.capabilities ?? 'all',
      noNewPrivileges: spawnOptions.noNewPrivileges ?? false,
      seccomp: spawnOptions.seccomp ?? 'unconfined',
      tty: options.tty ?? false,
    },
    resources: { cgroup: undefined, layerDir: undefined, keepLayer, etcDir: undefined, network: undefined },
    log: undefined,
  };
  // A name is taken before anything is made (a name in use fails the start at once); an unnamed
  // container's record is first written once its parts exist: the record written before them
  // named none of them, so it helped nobody release them.
  const named = options.name !== undefined;
  if (named) await store.create(record);
  const parts: ContainerParts = { cgroup: undefined, root: undefined, etc: undefined, network: undefined, membership: undefined, log: undefined };
  let ready: Promise<void> | undefined;
  try {
    if (options.userns === 'auto') parts.userns = await (await import('./userns.js')).allocateUserns(id, options.signal);
    record = { ...record, resources: { ...record.resources, userns: parts.userns?.range } };
    if (options.overlay !== false) parts.root = await prepareWritableRoot(source.lower, stateDir, keepLayer, options.signal, options.storageDriver);
    // /etc/hosts, /etc/hostname and /etc/resolv.conf, bound in; rewritten once the address is
    // known. Their paths now, the files below.
    const etc = planEtcFiles(parts.root?.layer.dir, stateDir, hostname, mode === 'host', parseExtraHosts(options.extraHosts));
    parts.etc = etc;
    // Root gives every container a cgroup of its own; an unprivileged caller only when it
    // asked for limits (cgroupfs is root's unless a subtree was delegated to it).
    const cgroup = process.getuid?.() === 0 || hasLimits(options) ? cgroupHandle : undefined;
    record = {
      ...record,
      resources: { ...record.resources, cgroup: cgroup && { version: cgroup.version, path: cgroup.path }, layerDir: parts.root?.layer.dir, etcDir: etc.dir },
    };
    const { userns, idmapped } = userNamespaceOf(options, spawnOptions, parts);
    const selfJoin = cgroup?.version === 1 && !userns;
    const plan = containerPlan(options, parts, spawnOptions, init, userns, idmapped);
    // What the container's process waits for: the /etc files, the cgroup, the record and the
    // owner helper's watch. With `early` they are made while the thread start path builds
    // the namespaces and the root (the launch passes them on as the start's gate).
    const rest = async (): Promise<void> => {
      await etc.write(undefined);
      if (cgroup) {
        await cgroup.create();
        parts.cgroup = cgroup;
      }
      await (named ? store.write(record) : store.create(record));
      await watched;
    };
    if (early) {
      // After the launch has handed the start to the threads (it gets there without leaving
      // this tick): made here meanwhile, not before.
      ready = new Promise<void>((go) => setImmediate(go)).then(rest);
      ready.catch(() => undefined); // awaited by the launch
    } else await rest();
    const unshareOptions: UnshareOptions & { command: readonly string[] } = {
      ...spawnOptions,
      uidMap: parts.userns?.uidMap ?? spawnOptions.uidMap,
      gidMap: parts.userns?.gidMap ?? spawnOptions.gidMap,
      idmapped: plan.idmapped,
      namespaces: mode === 'host' ? spawnOptions.namespaces && [...spawnOptions.namespaces].filter((n) => n !== 'net') : spawnOptions.namespaces,
      joinNetworkOf:
        typeof network === 'object' && 'container' in network ? (typeof network.container === 'number' ? network.container : network.container.pid) : undefined,
      rootfs: parts.root?.rootfs ?? spawnOptions.rootfs,
      rootMount: plan.rootMount,
      mounts: plan.mounts,
      // v1: the init joins its cgroup itself, 10-20 ms cheaper than a move from here (not
      // from a user namespace, whose root may not write the host's cgroup files).
      cgroupTasks: selfJoin ? (cgroup as CgroupV1).plannedTaskFiles() : undefined,
      // v2 has no per-thread membership: the thread start path could not root the cgroup
      // namespace at the container's cgroup, so the init stage starts it (moved in the hook).
      startPath: cgroup?.version === 2 ? 'stage' : spawnOptions.startPath,
    };
    return { id, options, source, init, spawnOptions, store, parts, record, unshareOptions, ready };
  } catch (e) {
    await ready?.catch(() => undefined); // nothing is undone while it is still being made
    await undoParts(parts);
    await store.remove(id, options.name).catch(() => undefined);
    throw e;
  }
}

/** What a launch of a prepared container may still change: the command, its environment and cwd. @internal */
export interface LaunchOverrides {
  readonly command?: readonly string[] | undefined;
  readonly env?: Readonly<Record<string, string>> | undefined;
  readonly cwd?: string | undefined;
}

/**
 * The part of a start from the container's process on: streams and log, the spawn (in
 * `prepared` namespaces when given, else new ones), the hook (cgroup, network, record
 * 'running'), the handle. `options` are the start's own (for a pool: the pool's and the
 * run's). On failure everything of the container is released, `prepared` closed.
 * @internal
 */
export async function launchContainer(
  p: PreparedContainer,
  options: RunOptions,
  captureByDefault: boolean,
  prepared?: PreparedNamespaces,
  overrides: LaunchOverrides = {},
): Promise<RunningContainer> {
  const { id, store, parts, init } = p;
  const { stdio, logged } = stdioOf(options, captureByDefault);
  const mode = networkMode(options);
  const named = namedNetwork(options);
  const hostname = p.record.hostname;
  const command = overrides.command ? (init ? ['/dev/init', '--', ...overrides.command] : overrides.command) : p.unshareOptions.command;
  const env = overrides.env ? { ...p.unshareOptions.env, ...overrides.env } : p.unshareOptions.env;
  const cwd = overrides.cwd ?? p.unshareOptions.cwd;
  let record: ContainerRecord = {
    ...p.record,
    command: overrides.command ?? p.record.command,
    process: { ...p.record.process, env: env ?? {}, cwd: cwd ?? '/' },
    log: logged
      ? { path: `${store.dirOf(id)}/${LOG_FILE}`, maxSize: options.log?.maxSize ?? 8 * 1024 * 1024, maxFiles: options.log?.maxFiles ?? 2 }
      : undefined,
  };
  p.record = record;
  let handle: RunningContainer | undefined;
  try {
    const network$ = mode === 'bridge' || mode === 'cni' || mode === 'pasta' ? await import('../network/connect.js') : undefined;
    if (record.log) parts.log = await openLog(p, record.log, options.onLog);
    const selfJoin = p.unshareOptions.cgroupTasks !== undefined;
    const unshareOptions: UnshareOptions = {
      ...p.unshareOptions,
      command,
      env,
      cwd,
      signal: options.signal,
      stdio,
      onNamespaces: async (ctx) => {
        // Race-free: the init joins the cgroup before anything of the user's runs, and
        // before it creates its cgroup namespace, which is then rooted here.
        if (parts.cgroup && !selfJoin) await parts.cgroup.addProcess(ctx.pid);
        record = { ...record, status: 'running', init: identify(ctx.pid), startedAt: new Date().toISOString() };
        await parts.root?.recordContainer(ctx.pid);
        parts.userns?.recordInit(ctx.pid);
        if (network$) {
          parts.network = await network$.connectContainer({
            pid: ctx.pid,
            mode: mode as 'bridge' | 'cni' | 'pasta',
            bridge: named?.bridge ?? options.bridge,
            cni: options.cni,
            pasta: options.pasta,
            ports: options.ports,
            containerId: id,
            defaultRoute: named ? !named.internal : undefined,
            signal: ctx.signal,
          });
          record = { ...record, resources: { ...record.resources, network: networkRecord(parts.network, named, options) } };
          await parts.etc!.write(parts.network.address, named?.nameServers());
          if (named && parts.network.address)
            await (await import('./network-membership.js')).joinNetwork(named, parts, {
              id,
              hostname,
              name: options.name,
              aliases: options.aliases ?? [],
              address: parts.network.address,
              pid: ctx.pid,
            });
        }
        await store.write(record);
        await options.onNamespaces?.(ctx);
      },
    };
    // A container prepared early: its files, cgroup and record are still being made, and the
    // start waits for them only where it must (see SpawnRequest.gate).
    const request = recordsAlongside(await unshareRequest(unshareOptions), !network$ && !options.onNamespaces && (!parts.cgroup || selfJoin) && !parts.userns);
    const proc = await spawnInNamespaces(prepared ? { ...request, prepared } : { ...request, gate: p.ready });
    if (options.input !== undefined) proc.stdin?.end(options.input);
    const local = new LocalContainer(
      proc,
      parts,
      store,
      () => record,
      (r) => {
        record = r;
        handle?.setRecord(r);
      },
      { stdout: proc.tty ?? proc.stdout, stderr: proc.tty ? null : proc.stderr },
    );
    handle = new RunningContainer(store, record, local);
    const healthcheck = options.healthcheck ?? p.source.healthcheck;
    if (healthcheck)
      await monitorHealth(
        handle,
        healthcheck,
        store,
        () => record,
        (r) => {
          record = r;
          handle?.setRecord(r);
        },
      );
    log('container %s runs as pid %d', id, proc.pid);
    return handle;
  } catch (e) {
    prepared?.close();
    await p.ready?.catch(() => undefined); // nothing is undone while it is still being made
    await undoParts(parts);
    await store.remove(id, p.options.name).catch(() => undefined);
    if (prepared && (e as { threadsUnavailable?: boolean })?.threadsUnavailable)
      throw new ContainerError('ERR_PREWARM_UNAVAILABLE', `a prewarmed container needs the thread start path: ${(e as Error).message}`, { cause: e });
    throw e;
  }
}

/**
 * With nothing to do before the command runs but the records (`recordsOnly`: no network to
 * connect, no onNamespaces of the caller's, a cgroup the process joins itself, no user
 * namespace), the hook runs alongside: the thread path lets the command go at once.
 */
function recordsAlongside(request: SpawnRequest, recordsOnly: boolean): SpawnRequest {
  return recordsOnly ? { ...request, hook: undefined, alongside: request.hook } : request;
}

/** The container's log, in its record's directory (made by then: see PreparedContainer.ready). */
async function openLog(p: PreparedContainer, log: NonNullable<ContainerRecord['log']>, onLog: RunOptions['onLog']): Promise<ContainerParts['log']> {
  await p.ready;
  const { LogWriter } = await import('./logs/index.js');
  const writer = LogWriter.open(log.path, { maxSize: log.maxSize, maxFiles: log.maxFiles });
  if (onLog) writer.subscribe(onLog);
  return writer;
}

/**
 * Starts a container owned by this process (or, inside the owner helper, a detached one).
 * Every option is checked before anything is made; whatever was made is released if a
 * later step fails.
 */
export async function startContainer(options: RunOptions, how: Ownership, captureByDefault: boolean): Promise<RunningContainer> {
  const pooled = how.detached ? undefined : takePrewarmed(options);
  if (pooled) {
    const start = launchContainer(pooled.container, options, captureByDefault, pooled.namespaces, commandOf(options));
    pooled.launched?.(start);
    return start;
  }
  return launchContainer(await prepareContainer(options, how, false, true), options, captureByDefault);
}

/** The per-start part of `options` a prewarmed container takes. */
function commandOf(options: RunOptions): LaunchOverrides {
  return { command: options.command, env: options.env, cwd: options.cwd };
}

/** Runs the health check while the container runs, recording every new state. */
async function monitorHealth(
  c: RunningContainer,
  h: HealthcheckOptions,
  store: StateStore,
  get: () => ContainerRecord,
  set: (r: ContainerRecord) => void,
): Promise<void> {
  const { startHealthMonitor } = await import('./health.js');
  let ended = false;
  const monitor = startHealthMonitor(c, h, (health) => {
    if (ended) return;
    const r = { ...get(), health };
    set(r);
    void store.write(r).catch((e: unknown) => log('recording the health of %s: %s', r.id, (e as Error).message));
  });
  // Stopped as soon as the process ends: the exit record must be the last word.
  void c.process?.exited.finally(() => {
    ended = true;
    monitor.stop();
  });
}

/** Waits for a started container like {@link Container.run}: its result, then its removal. @internal */
export async function runToCompletion(c: RunningContainer, options: RunOptions, started: number): Promise<RunResult> {
  c.removeOnExit(); // its record goes with it below
  const proc = c.process!;
  const max = options.maxBuffer ?? MAX_BUFFER;
  const out = collect(proc.tty ?? proc.stdout, max);
  const err = collect(proc.stderr, max);
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  if (options.timeout !== undefined && options.timeout > 0) {
    timer = setTimeout(() => {
      timedOut = true;
      proc.kill('SIGKILL');
    }, options.timeout);
  }
  try {
    const status = await c.wait();
    const [o, e] = await Promise.all([out, err]);
    log('container %s exited %o', c.id, status);
    if (options.signal?.aborted && !timedOut) throw new AbortError(options.signal.reason);
    return {
      exitCode: status.exitCode,
      signal: status.signal,
      stdout: o.text,
      stderr: e.text,
      oomKilled: status.oomKilled,
      stats: status.stats,
      layer: status.layer,
      address: c.address,
      timedOut,
      truncated: o.truncated || e.truncated,
      command: c.command,
      pid: c.pid,
      durationMs: performance.now() - started,
    };
  } finally {
    if (timer) clearTimeout(timer);
    await c.remove({ force: true }).catch((e: unknown) => log('removing %s: %s', c.id, (e as Error).message));
  }
}
