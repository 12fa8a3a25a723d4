import { logger } from '../log.js';
import { AbortError, InvalidOptionError } from '../errors.js';
import {
  DEFAULT_CAPABILITIES, DEFAULT_NAMESPACES, DEFAULT_PATH, unshare, type NamespacedProcess, type StdioOption, type UnshareOptions,
} from '../namespaces/index.js';
import { validateIdMap } from '../namespaces/idmap.js';
import { collect } from './output.js';
import { cgroupFor, hasLimits } from './limits.js';
import { RunningContainer } from './running.js';
import { prepareEtcFiles, type EtcFiles } from './etc-files.js';
import type { NetworkAttachment } from '../network/index.js';
import { prune, type PruneOptions, type PruneResult } from './prune.js';
import { defaultStateDir, prepareWritableRoot, type WritableRoot } from './writable-root.js';
import type { RunOptions, RunResult } from './options.js';
import { resolveRootSource, type RootSource } from './root-source.js';
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from './security.js';

const log = logger('ctrkit:container');
const MAX_BUFFER = 64 * 1024 * 1024;

function stdioOf(options: RunOptions): readonly [StdioOption, StdioOption, StdioOption] {
  const s = options.stdio;
  if (s === undefined) return [options.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'];
  return typeof s === 'object' ? s : [s, s, s];
}

async function toUnshareOptions(options: RunOptions, source: RootSource): Promise<UnshareOptions & { command: readonly string[] }> {
  const privileged = options.privileged ?? false;
  const hostname = options.hostname ?? source.hostname ?? 'container';
  if (!source.command?.length) throw new InvalidOptionError('command', 'nothing to run: give a command (the image or bundle names none)');
  if (options.uidMap) validateIdMap(options.uidMap, 'uid');
  if (options.gidMap) validateIdMap(options.gidMap, 'gid');
  if (source.lower.length > 1 && options.overlay === false) throw new InvalidOptionError('overlay', 'several layers need the copy-on-write root');
  return {
    command: source.command,
    namespaces: options.namespaces ?? DEFAULT_NAMESPACES,
    uidMap: options.uidMap,
    gidMap: options.gidMap,
    hostname: (options.namespaces ?? DEFAULT_NAMESPACES).includes('uts') ? hostname : undefined,
    rootfs: source.lower[0],
    cwd: source.cwd ?? '/',
    env: { PATH: DEFAULT_PATH, HOSTNAME: hostname, HOME: '/root', ...source.env, ...options.env },
    user: source.user,
    stdio: stdioOf(options),
    capabilities: privileged ? 'all' : (options.capabilities ?? DEFAULT_CAPABILITIES),
    noNewPrivileges: options.noNewPrivileges ?? !privileged,
    seccomp: options.seccomp ?? (privileged ? 'unconfined' : 'default'),
    maskedPaths: privileged ? [] : (options.maskedPaths ?? DEFAULT_MASKED_PATHS),
    readonlyPaths: privileged ? [] : (options.readonlyPaths ?? DEFAULT_READONLY_PATHS),
    devices: options.devices,
    mountCgroups: true,
    signal: options.signal,
  };
}

let sequence = 0;

/** The host ids that root inside maps to, when explicit maps move it away from the caller. */
function remappedRoot(options: RunOptions): { uid: number; gid: number } | undefined {
  // Only root can give directories away; a rootless caller's root inside is itself.
  if ((!options.uidMap && !options.gidMap) || process.getuid?.() !== 0) return undefined;
  const outside = (map: RunOptions['uidMap'], own: number) => {
    const m = map?.find((e) => e.inside <= 0 && e.inside + e.count > 0);
    return m ? m.outside - m.inside : own;
  };
  return { uid: outside(options.uidMap, process.getuid?.() ?? 0), gid: outside(options.gidMap, process.getgid?.() ?? 0) };
}

/**
 * A container: a command in its own namespaces, on a copy-on-write root, optionally in a
 * cgroup with limits, with a secure default profile (dropped capabilities, a seccomp filter,
 * no_new_privs, masked and read-only /proc paths, a minimal /dev).
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
   * Starts a container and resolves once its command is running, with the streams of
   * whatever `stdio` was `'pipe'`. With resource limits, the container's cgroup is created
   * first and the init joins it before its command starts; it is removed when the
   * container ends. Dispose the handle (`await using`) to kill it.
   */
  static async start(options: RunOptions): Promise<RunningContainer> {
    const source = await resolveRootSource(options);
    const spawnOptions = await toUnshareOptions(options, source);
    const id = `ctk-${process.pid}-${++sequence}`;
    const cgroup = hasLimits(options) ? cgroupFor(id, options) : undefined;
    const keepLayer = options.keepLayer ?? false;
    const network = options.network ?? 'none';
    const mode = typeof network === 'object' ? 'container' : network;
    const hostname = spawnOptions.hostname ?? 'container';
    if (options.ports?.length && mode !== 'bridge' && mode !== 'cni') {
      throw new InvalidOptionError('ports', `ports need bridge or cni networking, not "${mode}"`);
    }
    // The network block is loaded only for containers that use it.
    const network$ = mode === 'bridge' || mode === 'cni' ? await import('../network/connect.js') : undefined;
    if (options.ports?.length) {
      const { parsePortMapping } = await import('../network/ports.js');
      options.ports.forEach(parsePortMapping);
    }
    let root: WritableRoot | undefined;
    let etc: EtcFiles | undefined;
    let net: NetworkAttachment | undefined;
    try {
      if (options.overlay !== false) {
        root = await prepareWritableRoot(source.lower, options.stateDir ?? defaultStateDir(), keepLayer, remappedRoot(options), options.signal);
      }
      // /etc/hosts, /etc/hostname and /etc/resolv.conf, bound in; rewritten once the address is known.
      etc = await prepareEtcFiles(root?.layer.dir, options.stateDir ?? defaultStateDir(), hostname, mode === 'host');
      if (cgroup) await cgroup.create();
      const proc = await unshare({
        ...spawnOptions,
        namespaces: mode === 'host' ? spawnOptions.namespaces && [...spawnOptions.namespaces].filter((n) => n !== 'net') : spawnOptions.namespaces,
        joinNetworkOf: typeof network === 'object' ? (typeof network.container === 'number' ? network.container : network.container.pid) : undefined,
        rootfs: root?.rootfs ?? spawnOptions.rootfs,
        rootfsOverlay: root?.overlay,
        binds: [...(options.binds ?? []), ...etc.binds],
        onNamespaces: async (ctx) => {
          // Race-free: the init joins the cgroup before anything of the user's runs, and
          // before it creates its cgroup namespace, which is then rooted here.
          if (cgroup) await cgroup.addProcess(ctx.pid);
          await root?.recordContainer(ctx.pid);
          if (mode === 'bridge' || mode === 'cni') {
            net = await network$!.connectContainer({ pid: ctx.pid, mode, bridge: options.bridge, cni: options.cni, ports: options.ports, containerId: id, signal: ctx.signal });
            await etc!.write(net.address);
          }
          await options.onNamespaces?.(ctx);
        },
      });
      if (options.input !== undefined && proc.stdin) proc.stdin.end(options.input);
      return new RunningContainer(proc, { command: spawnOptions.command, cgroup, root, etc, network: net }, keepLayer, {
        capabilities: spawnOptions.capabilities ?? 'all',
        noNewPrivileges: spawnOptions.noNewPrivileges ?? false,
        seccomp: spawnOptions.seccomp ?? 'unconfined',
      });
    } catch (e) {
      // Reverse order of creation: network, cgroup, /etc files, writable layer.
      const undo = (what: string, p: Promise<unknown> | undefined) => p?.catch((err: unknown) => log('undoing %s after a failed start: %s', what, (err as Error).message));
      await undo('the network', net?.detach());
      await undo('the cgroup', cgroup?.remove());
      await undo('the /etc files', etc?.dispose());
      await undo('the writable layer', root?.dispose());
      throw e;
    }
  }

  /**
   * Removes what containers of crashed callers left: cgroups whose creator is gone and that
   * hold no process, writable layers whose creator and container are both gone.
   */
  static prune(options?: PruneOptions): Promise<PruneResult> {
    return prune(options);
  }

  /**
   * Runs a container to completion and returns its exit status and captured output.
   * Setup failures throw typed errors (`InvalidOptionError`, `InitError`,
   * `CommandNotFoundError` ...) and leave nothing behind; the command's own failure is
   * reported in the result.
   */
  static async run(options: RunOptions): Promise<RunResult> {
    const started = performance.now();
    const proc = await Container.start(options);
    const max = options.maxBuffer ?? MAX_BUFFER;
    const out = collect(proc.stdout, max);
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
      const status = await proc.exited;
      const [o, e] = await Promise.all([out, err]);
      log('container %d exited %o', proc.pid, status);
      if (options.signal?.aborted && !timedOut) throw new AbortError(options.signal.reason);
      return {
        exitCode: status.exitCode,
        signal: status.signal,
        stdout: o.text,
        stderr: e.text,
        oomKilled: status.oomKilled,
        stats: status.stats,
        layer: status.layer,
        address: proc.network?.address,
        timedOut,
        truncated: o.truncated || e.truncated,
        command: proc.command,
        pid: proc.pid,
        durationMs: performance.now() - started,
      };
    } finally {
      if (timer) clearTimeout(timer);
    }
  }
}
