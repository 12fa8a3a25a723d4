import { statSync, type Stats } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { InvalidOptionError } from '../errors.js';
import { capabilityNumbers, type Capability } from './capabilities.js';
import { currentCaller, defaultIdMaps, validateIdMap, type IdMapping } from './idmap.js';
import { DEFAULT_PATH, type StageConfig } from './init/config.js';
import type { NamespacedProcess } from './process.js';
import { checkCommand, envList } from './validate.js';
import { checkTtyOptions } from './pty.js';
import type { SeccompOption } from './seccomp-oci.js';
import { normalizeStdio, securityConfig } from './process-config.js';
import { spawnInNamespaces, type SpawnHook, type StdioOption } from './spawn.js';
import type { SpawnRequest } from './spawn-request.js';
import type { DeviceNode, IdmappedPath, MountOperation, RootMount } from './mount-plan.js';
import { normalizeNamespaces, type NamespaceType } from './types.js';

/** Options of {@link unshare}. Only `command` is required. */
export interface UnshareOptions {
  /** The program and its arguments. A name without `/` is looked up in the PATH of `env`. */
  readonly command: readonly string[];
  /**
   * The namespaces to create. Any others are shared with the caller.
   * A caller that is not root always gets a user namespace as well (rootless mode).
   * @defaultValue `['pid', 'mnt', 'uts', 'ipc', 'net', 'cgroup']`
   */
  readonly namespaces?: Iterable<NamespaceType>;
  /**
   * uid map of the new user namespace (implies `user`).
   * @defaultValue root: `0 0 65536`; others: their uid as 0, then their first /etc/subuid range from 1
   */
  readonly uidMap?: readonly IdMapping[];
  /** gid map of the new user namespace (implies `user`); defaults like `uidMap`, from /etc/subgid. */
  readonly gidMap?: readonly IdMapping[];
  /** Hostname inside (needs `uts`); at most 64 bytes. */
  readonly hostname?: string;
  /** NIS domain name inside (needs `uts`); at most 64 bytes. */
  readonly domainname?: string;
  /** Offsets in seconds of the monotonic and boot-time clocks (implies `time`). */
  readonly timeOffsets?: { readonly monotonic?: number; readonly boottime?: number };
  /**
   * Mount a fresh /proc, as `unshare --mount-proc` does, so `ps` shows only the new PID
   * namespace. Applies without `rootfs`; with one, /proc is always fresh.
   * @defaultValue true when both `pid` and `mnt` are new
   */
  readonly mountProc?: boolean;
  /**
   * A directory to use as `/`: it is bind-mounted, given /proc, a minimal /dev and a
   * read-only /sys, and entered with pivot_root (needs `mnt`).
   */
  readonly rootfs?: string;
  /** Working directory of the command (inside `rootfs` when there is one). @defaultValue `/` with a rootfs, else the caller's */
  readonly cwd?: string;
  /** Environment of the command. @defaultValue with a rootfs a standard PATH only, else the caller's environment */
  readonly env?: Readonly<Record<string, string>>;
  /** stdin, stdout, stderr: one value for all three or one each; ignored with `tty`. @defaultValue `'pipe'` */
  readonly stdio?: StdioOption | readonly [StdioOption, StdioOption, StdioOption];
  /**
   * Allocate a pseudo-terminal inside the container's own devpts instance; the command gets
   * its slave as stdin/stdout/stderr and controlling terminal; the caller gets the master as
   * `process.tty`. `stdio` is then ignored: `stdin`, `stdout` and `stderr` are null. Only
   * then does the container have a /dev/tty.
   *
   * The pty comes from the devpts mounted at /dev/pts in the command's root: the container's
   * own instance with a `rootfs` (or a target that has one); without one, the host's.
   * @defaultValue false
   */
  readonly tty?: boolean;
  /** With `tty`: the terminal's initial size. @defaultValue 0 columns, 0 rows (the kernel's) */
  readonly ttySize?: { readonly cols: number; readonly rows: number };
  /** Capabilities the command keeps, or `'all'` to leave them alone. @defaultValue `'all'` */
  readonly capabilities?: readonly Capability[] | 'all';
  /**
   * The command's ambient capabilities (each must be among `capabilities`): what a `user`
   * other than root keeps through exec (it has none otherwise). Root's exec grants the
   * bounding set whatever this says; it only shows in CapAmb then.
   */
  readonly ambientCapabilities?: readonly Capability[];
  /** The command's umask. @defaultValue 0o022 */
  readonly umask?: number;
  /** Set no_new_privs, so setuid binaries grant nothing. @defaultValue false */
  readonly noNewPrivileges?: boolean;
  /** The user the command runs as (`--user 1000:1000`). @defaultValue root (of the user namespace, if any) */
  readonly user?: { readonly uid: number; readonly gid: number; readonly groups?: readonly number[] };
  /**
   * The seccomp filter: ctrkit's `default` allow-list (Docker's profile), or none. An OCI
   * runtime-spec `linux.seccomp` object ({@link SeccompOption}, see docs/security.md) is
   * accepted as well and compiled as runc applies it.
   * @defaultValue `'unconfined'`
   */
  readonly seccomp?: SeccompOption;
  /**
   * With a rootfs: a file system to mount onto it first, inside the new mount namespace only
   * (`Container`'s copy-on-write overlay). `rootfs` is then just the (empty) mount point.
   */
  readonly rootMount?: RootMount;
  /**
   * With a rootfs, a user namespace and a root caller: host directories shown to the new user
   * namespace through idmapped mounts of themselves, attached over their own paths in the new
   * mount namespace only, before `rootMount` (the layers of a copy-on-write root and its
   * writable layer, or the rootfs itself). A file owned by uid N on disk then shows as N inside
   * whatever the maps say, and what the container's root creates there is owned by uid 0 on
   * disk: nothing is chowned. Each directory's file system must allow idmapped mounts.
   */
  readonly idmapped?: readonly IdmappedPath[];
  /** With a rootfs: mounts inside it, in order, after /proc, /dev and /sys (binds, masks, read-only paths, cgroupfs). */
  readonly mounts?: readonly MountOperation[];
  /** With a rootfs: device nodes made in its /dev (mounted without nodev then, as runc's is). */
  readonly devices?: readonly DeviceNode[];
  /** With a rootfs: its root mount read-only (the mounts on it keep their own flags). @defaultValue false */
  readonly readonlyRoot?: boolean;
  /**
   * Kernel parameters set inside the new namespaces, e.g. `{ 'net.ipv4.ip_forward': '1' }`:
   * only those that belong to a namespace created here (net.* with `net`; kernel.msg*,
   * kernel.sem, kernel.shm*, fs.mqueue.* with `ipc`; kernel.hostname and kernel.domainname with `uts`).
   */
  readonly sysctl?: Readonly<Record<string, string>>;
  /**
   * cgroup v1 `tasks` files the init joins itself before its command starts (the thread
   * that execs the command writes `0`): cheaper than moving it from outside, which waits for
   * an RCU grace period. For cgroup v2, move the init from `onNamespaces` instead.
   */
  readonly cgroupTasks?: readonly string[];
  /** Enter this process's network namespace instead of creating one (`--network container:X`). */
  readonly joinNetworkOf?: number;
  /** Runs with the host PID once the namespaces exist, before the command starts. */
  readonly onNamespaces?: SpawnHook;
  /** Cancels setup, or kills the command once it runs. */
  readonly signal?: AbortSignal;
  /**
   * How the command is started. `auto`: on two long-lived threads of this process wherever
   * that can do it (root, no user or time namespace, no terminal, a rootfs, a root user, cgroup
   * v1 or none), with no process of ctrkit's between the caller and the command; the init stage
   * otherwise. `stage`: always through util-linux unshare(1) and ctrkit's init stage, a Node
   * process per start. Both give the same isolation; `DEBUG=ctrkit:spawn` shows which one ran
   * and why. The environment variable `CTRKIT_START_PATH=stage` forces the stage everywhere.
   * @defaultValue `'auto'`
   */
  readonly startPath?: 'auto' | 'stage';
}

/** The namespaces {@link unshare} and `Container.run` create when none are named. */
export const DEFAULT_NAMESPACES: readonly NamespaceType[] = Object.freeze(['pid', 'mnt', 'uts', 'ipc', 'net', 'cgroup'] as NamespaceType[]);

const MAX_NAME_BYTES = 64; // __NEW_UTS_LEN

function checkName(option: string, value: string | undefined, namespaces: readonly NamespaceType[]): void {
  if (value === undefined) return;
  if (typeof value !== 'string') throw new InvalidOptionError(option, 'must be a string');
  const bytes = Buffer.byteLength(value);
  if (bytes > MAX_NAME_BYTES) throw new InvalidOptionError(option, `is ${bytes} bytes long; the kernel allows at most ${MAX_NAME_BYTES}`);
  if (value.includes('\0')) throw new InvalidOptionError(option, 'must not contain NUL');
  if (!namespaces.includes('uts')) throw new InvalidOptionError(option, 'needs a new uts namespace (add "uts" to namespaces)');
}

/** Checks that a rootfs exists and is a directory; returns it absolute. @internal */
export async function checkRootfs(path: string): Promise<string> {
  const abs = resolve(path);
  let st: Stats;
  try {
    st = statSync(abs); // one stat, on every start: synchronously, without a thread-pool round trip
  } catch (e) {
    throw new InvalidOptionError('rootfs', `${abs} does not exist (${(e as NodeJS.ErrnoException).code})`);
  }
  if (!st.isDirectory()) throw new InvalidOptionError('rootfs', `${abs} is not a directory`);
  return abs;
}

/** Refuses a mount plan whose targets are not absolute paths below `/`. */
function checkMounts(mounts: readonly MountOperation[]): readonly MountOperation[] {
  mounts.forEach((m, i) => {
    if (m.op === 'cgroupfs') return;
    if (!isAbsolute(m.target) || m.target === '/') throw new InvalidOptionError(`mounts[${i}].target`, `must be an absolute path below /, got "${m.target}"`);
    if (m.op === 'bind' && !isAbsolute(m.source)) throw new InvalidOptionError(`mounts[${i}].source`, `must be an absolute path, got "${m.source}"`);
  });
  return mounts;
}

function checkUmask(mask: number | undefined): number | undefined {
  if (mask !== undefined && (!Number.isInteger(mask) || mask < 0 || mask > 0o777))
    throw new InvalidOptionError('umask', `must be an integer from 0 to 0o777, got ${mask}`);
  return mask;
}

/** The ambient capabilities as numbers, checked against the user and the kept capabilities. */
function ambientOf(options: UnshareOptions): number[] | undefined {
  const ambient = options.ambientCapabilities;
  if (!ambient?.length) return undefined;
  const kept = options.capabilities === undefined || options.capabilities === 'all' ? undefined : new Set(capabilityNumbers(options.capabilities));
  const nums = capabilityNumbers(ambient, 'ambientCapabilities');
  nums.forEach((n, i) => {
    if (kept && !kept.has(n)) throw new InvalidOptionError(`ambientCapabilities[${i}]`, `${ambient[i]} is not among capabilities`);
  });
  return nums;
}

/** Refuses device nodes outside /dev or of an unknown type. */
function checkDevices(devices: readonly DeviceNode[] | undefined): readonly DeviceNode[] | undefined {
  if (!devices?.length) return undefined;
  devices.forEach((d, i) => {
    if (!d.path.startsWith('/dev/') || d.path.split('/').includes('..'))
      throw new InvalidOptionError(`devices[${i}].path`, `must be below /dev, got "${d.path}"`);
    if (!['c', 'b', 'p', 'u'].includes(d.type)) throw new InvalidOptionError(`devices[${i}].type`, `must be c, b, u or p, got "${d.type}"`);
    for (const k of ['major', 'minor'] as const) {
      if (d.type !== 'p' && (!Number.isInteger(d[k]) || d[k] < 0))
        throw new InvalidOptionError(`devices[${i}].${k}`, `must be a non-negative integer, got ${d[k]}`);
    }
  });
  return devices;
}

/** Which namespace each namespaced sysctl belongs to (as runc checks them). */
function sysctlNamespace(key: string): NamespaceType | undefined {
  if (key.startsWith('net.')) return 'net';
  if (/^(kernel\.(msgmax|msgmnb|msgmni|sem|shmall|shmmax|shmmni|shm_rmid_forced)|fs\.mqueue\.)/.test(key)) return 'ipc';
  if (key === 'kernel.hostname' || key === 'kernel.domainname') return 'uts';
  return undefined;
}

/** Refuses a sysctl that would change the host: not namespaced, or its namespace is the host's. */
function checkSysctl(sysctl: Readonly<Record<string, string>> | undefined, namespaces: readonly NamespaceType[]): Readonly<Record<string, string>> | undefined {
  if (!sysctl || Object.keys(sysctl).length === 0) return undefined;
  for (const [key, value] of Object.entries(sysctl)) {
    if (!/^[a-z0-9_]+(\.[a-zA-Z0-9_*-]+)+$/.test(key) || key.includes('..')) throw new InvalidOptionError(`sysctl.${key}`, 'is not a sysctl name');
    const ns = sysctlNamespace(key);
    if (!ns) throw new InvalidOptionError(`sysctl.${key}`, 'is not namespaced: setting it would change the host');
    if (!namespaces.includes(ns)) throw new InvalidOptionError(`sysctl.${key}`, `needs a new ${ns} namespace (it would change the host's)`);
    if (typeof value !== 'string') throw new InvalidOptionError(`sysctl.${key}`, 'must be a string');
  }
  return sysctl;
}

/** Refuses idmapped directories that cannot be: no user namespace, not root, not absolute. */
function checkIdmapped(dirs: readonly IdmappedPath[] | undefined, userns: boolean, uid: number): readonly IdmappedPath[] | undefined {
  if (!dirs?.length) return undefined;
  if (!userns) throw new InvalidOptionError('idmapped', 'needs a user namespace (its maps are what the mounts show)');
  if (uid !== 0) throw new InvalidOptionError('idmapped', 'needs root: only root of the host may idmap a mount');
  dirs.forEach((d, i) => {
    if (!isAbsolute(d.path)) throw new InvalidOptionError(`idmapped[${i}].path`, `must be an absolute path, got "${d.path}"`);
  });
  return dirs.map((d) => ({ path: resolve(d.path), readonly: d.readonly ?? false }));
}

/**
 * Runs a program in new namespaces, like `unshare(1)` but typed, and resolves once the
 * program is running.
 *
 * Setup failures reject with typed errors ({@link InvalidOptionError} before anything
 * starts, {@link InitError} naming the failed step, {@link CommandNotFoundError}), and
 * nothing is left behind when they do.
 *
 * @example
 * ```ts
 * import { unshare } from 'ctrkit/namespaces';
 * await using p = await unshare({ command: ['sh', '-c', 'echo $$'], namespaces: ['pid', 'mnt'], stdio: ['ignore', 'inherit', 'inherit'] });
 * console.log(await p.exited); // prints "1" first: the shell is PID 1 of its namespace
 * ```
 */
export async function unshare(options: UnshareOptions): Promise<NamespacedProcess> {
  return spawnInNamespaces(await unshareRequest(options));
}

/**
 * The checked spawn request of {@link unshare}'s options, without starting anything.
 * @internal
 */
export async function unshareRequest(options: UnshareOptions): Promise<SpawnRequest> {
  checkCommand(options.command);
  const caller = currentCaller();
  const wanted = new Set<string>(options.namespaces ?? DEFAULT_NAMESPACES);
  if (options.uidMap || options.gidMap || caller.uid !== 0) wanted.add('user');
  if (options.timeOffsets) wanted.add('time');
  if (options.joinNetworkOf !== undefined) wanted.delete('net');
  const namespaces = normalizeNamespaces(wanted);
  checkName('hostname', options.hostname, namespaces);
  checkName('domainname', options.domainname, namespaces);

  const userns = namespaces.includes('user');
  let uidMap: readonly IdMapping[] | undefined;
  let gidMap: readonly IdMapping[] | undefined;
  if (userns) {
    const defaults = defaultIdMaps(caller);
    uidMap = options.uidMap ?? defaults.uidMap;
    gidMap = options.gidMap ?? defaults.gidMap;
    validateIdMap(uidMap, 'uid', caller);
    validateIdMap(gidMap, 'gid', caller);
  }
  for (const [k, v] of Object.entries(options.timeOffsets ?? {})) {
    if (!Number.isInteger(v)) throw new InvalidOptionError(`timeOffsets.${k}`, 'must be an integer number of seconds');
  }

  let rootfs: StageConfig['rootfs'];
  if (options.rootfs !== undefined) {
    if (!namespaces.includes('mnt')) throw new InvalidOptionError('rootfs', 'needs a new mount namespace (add "mnt" to namespaces)');
    rootfs = {
      path: await checkRootfs(options.rootfs),
      idmapped: checkIdmapped(options.idmapped, userns, caller.uid),
      rootMount: options.rootMount,
      mounts: checkMounts(options.mounts ?? []),
      devices: checkDevices(options.devices),
      readonly: options.readonlyRoot ?? false,
    };
  } else if (options.idmapped?.length) throw new InvalidOptionError('idmapped', 'needs a rootfs');
  const cwd = options.cwd ?? (rootfs ? '/' : process.cwd());
  if (!isAbsolute(cwd)) throw new InvalidOptionError('cwd', `must be an absolute path, got "${cwd}"`);
  const env = envList(options.env ?? (rootfs ? { PATH: DEFAULT_PATH } : (process.env as Record<string, string>)));

  const ttySize = checkTtyOptions(options.tty, options.ttySize);
  const config: StageConfig = {
    mode: 'create',
    joinNetOf: options.joinNetworkOf,
    cgroupTasks: options.cgroupTasks,
    argv: options.command,
    env,
    cwd,
    namespaces,
    hostname: options.hostname,
    domainname: options.domainname,
    sysctl: checkSysctl(options.sysctl, namespaces),
    mountProc: options.mountProc ?? (namespaces.includes('pid') && namespaces.includes('mnt')),
    rootfs,
    ...securityConfig(options),
    ambient: ambientOf(options),
    umask: checkUmask(options.umask),
    userns,
    tty: options.tty ?? false,
  };
  return {
    config,
    uidMap,
    gidMap,
    timeOffsets: options.timeOffsets,
    stdio: normalizeStdio(options.stdio, 'pipe'),
    ttySize,
    hook: options.onNamespaces,
    signal: options.signal,
    startPath: options.startPath,
  };
}
