/**
 * A bundle's config.json (OCI runtime-spec) read, checked and turned into what ctrkit's
 * building blocks take: unshare()'s options, the cgroup, the rlimits and hooks. What the
 * runtime cannot honour is refused by name (ERR_RUNTIME_UNSUPPORTED), never silently dropped.
 * @internal
 */
import { existsSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { cgroupHierarchies } from '../cgroups/mount-hierarchies.js';
import type { Capability, DeviceNode, NamespaceType, UnshareOptions } from '../namespaces/index.js';
import { cgroupPathOf } from './cgroup.js';
import { badConfig, unsupported } from './errors.js';
import { cgroupfsOperation, mountPlan, PROPAGATION, type OciMount } from './mounts.js';
import type { Hook } from './state.js';

/** The parts of config.json this runtime reads (the runtime-spec's names). */
export interface OciSpec {
  readonly ociVersion?: string;
  readonly root?: { readonly path?: string; readonly readonly?: boolean };
  readonly process?: OciProcess;
  readonly hostname?: string;
  readonly domainname?: string;
  readonly mounts?: readonly OciMount[];
  readonly hooks?: Readonly<Record<string, readonly Hook[]>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly linux?: OciLinux;
}

/** config.json's `process`, and what `exec --process` reads. */
export interface OciProcess {
  readonly terminal?: boolean;
  readonly consoleSize?: { readonly height: number; readonly width: number };
  readonly user?: {
    readonly uid?: number;
    readonly gid?: number;
    readonly umask?: number;
    readonly additionalGids?: readonly number[];
    readonly username?: string;
  };
  readonly args?: readonly string[];
  readonly commandLine?: string;
  readonly env?: readonly string[];
  readonly cwd?: string;
  readonly capabilities?: Readonly<Record<'bounding' | 'effective' | 'inheritable' | 'permitted' | 'ambient', readonly string[] | undefined>>;
  readonly rlimits?: readonly { readonly type: string; readonly soft: number; readonly hard: number }[];
  readonly noNewPrivileges?: boolean;
  readonly apparmorProfile?: string;
  readonly oomScoreAdj?: number;
  readonly selinuxLabel?: string;
  readonly ioPriority?: unknown;
  readonly scheduler?: unknown;
  readonly execCPUAffinity?: unknown;
}

/** config.json's `linux`. */
export interface OciLinux {
  readonly namespaces?: readonly { readonly type: string; readonly path?: string }[];
  readonly uidMappings?: readonly unknown[];
  readonly gidMappings?: readonly unknown[];
  readonly timeOffsets?: Readonly<Record<string, unknown>>;
  readonly devices?: readonly {
    readonly path: string;
    readonly type: string;
    readonly major?: number;
    readonly minor?: number;
    readonly fileMode?: number;
    readonly uid?: number;
    readonly gid?: number;
  }[];
  readonly cgroupsPath?: string;
  readonly resources?: Readonly<Record<string, unknown>>;
  readonly sysctl?: Readonly<Record<string, string>>;
  readonly seccomp?: Readonly<Record<string, unknown>>;
  readonly rootfsPropagation?: string;
  readonly maskedPaths?: readonly string[];
  readonly readonlyPaths?: readonly string[];
  readonly mountLabel?: string;
  readonly intelRdt?: unknown;
  readonly personality?: { readonly domain?: string; readonly flags?: readonly string[] };
}

/** Reads `BUNDLE/config.json`; a missing or malformed one is a typed error naming it. */
export function loadSpec(bundle: string): OciSpec {
  const file = join(bundle, 'config.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw badConfig(file, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file (is --bundle right?)' : (e as Error).message);
  }
  let spec: unknown;
  try {
    spec = JSON.parse(text);
  } catch (e) {
    throw badConfig(file, `not JSON: ${(e as Error).message}`);
  }
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw badConfig(file, 'must hold a JSON object');
  const s = spec as OciSpec;
  if (typeof s.ociVersion !== 'string' || !/^1\.\d+\.\d+/.test(s.ociVersion))
    throw badConfig('ociVersion', `must be a 1.x version, got ${JSON.stringify(s.ociVersion)}`);
  return s;
}

const SPEC_NAMESPACE: Readonly<Record<string, NamespaceType>> = {
  pid: 'pid',
  network: 'net',
  mount: 'mnt',
  ipc: 'ipc',
  uts: 'uts',
  user: 'user',
  cgroup: 'cgroup',
  time: 'time',
};

const RLIMITS = [
  'CPU',
  'FSIZE',
  'DATA',
  'STACK',
  'CORE',
  'RSS',
  'NPROC',
  'NOFILE',
  'MEMLOCK',
  'AS',
  'LOCKS',
  'SIGPENDING',
  'MSGQUEUE',
  'NICE',
  'RTPRIO',
  'RTTIME',
];

/** An rlimit to set on the init with prlimit(2). */
export interface Rlimit {
  readonly resource: number;
  readonly soft: bigint;
  readonly hard: bigint;
}

/** What `create` does, worked out from config.json before anything is made. */
export interface CreatePlan {
  /** unshare()'s options, without the hook and the cgroup (create adds them). */
  readonly options: UnshareOptions;
  readonly rootfs: string;
  readonly cgroupPath: string;
  readonly resources: Readonly<Record<string, unknown>> | undefined;
  readonly rlimits: readonly Rlimit[];
  readonly oomScoreAdj: number | undefined;
  readonly namespaces: readonly NamespaceType[];
  /** Those of `namespaces` entered from a path (linux.namespaces[].path). */
  readonly joinPaths: Readonly<Partial<Record<NamespaceType, string>>>;
  /** linux.rootfsPropagation as MS_* flags. */
  readonly propagation: number | undefined;
}

/** The 64-bit value of an rlimit from JSON (a large number such as 2^64-1 arrives rounded). */
function limit(v: unknown, field: string): bigint {
  if (typeof v !== 'number' || v < 0 || !Number.isFinite(v)) throw badConfig(field, `must be a non-negative number, got ${JSON.stringify(v)}`);
  return v >= 2 ** 63 ? 0xffffffffffffffffn : BigInt(Math.floor(v));
}

/** config.json's rlimits, checked. */
export function rlimitsOf(p: OciProcess): Rlimit[] {
  return (p.rlimits ?? []).map((r, i) => {
    const resource = RLIMITS.indexOf(String(r.type).replace(/^RLIMIT_/, ''));
    if (!String(r.type).startsWith('RLIMIT_') || resource < 0) throw badConfig(`process.rlimits[${i}].type`, `unknown rlimit "${r.type}"`);
    const soft = limit(r.soft, `process.rlimits[${i}].soft`);
    const hard = limit(r.hard, `process.rlimits[${i}].hard`);
    if (soft > hard) throw badConfig(`process.rlimits[${i}]`, 'soft is above hard');
    return { resource, soft, hard };
  });
}

/**
 * Where each rlimit is set: on the init from outside (prlimit once it exists) when it runs as
 * root, as we do; a process of another uid refuses that without CAP_SYS_RESOURCE (which root
 * lacks on some hosts), so for it those that cannot hurt this short-lived Node process are set
 * on it before the spawn, and the child inherits them. The others (address space, stack, data,
 * processes, CPU time, file size) would break this process: prlimit is tried, and refused.
 */
export function splitRlimits(rlimits: readonly Rlimit[], uid: number): { own: Rlimit[]; init: Rlimit[] } {
  const safe = new Set([4, 7, 8, 10, 11, 12, 13, 14, 15]); // CORE NOFILE MEMLOCK LOCKS SIGPENDING MSGQUEUE NICE RTPRIO RTTIME
  if (uid === 0) return { own: [], init: [...rlimits] };
  return { own: rlimits.filter((r) => safe.has(r.resource)), init: rlimits.filter((r) => !safe.has(r.resource)) };
}

/** The capabilities a process keeps: its bounding set (for root, exec grants the bounding set). */
export function capabilitiesOf(p: OciProcess): Capability[] {
  const c = p.capabilities;
  const names = c ? (c.bounding ?? [...new Set([...(c.effective ?? []), ...(c.permitted ?? [])])]) : [];
  return names.map((n) => String(n).replace(/^CAP_/i, '').toUpperCase() as Capability);
}

/** KEY=VALUE strings as unshare()'s env record (a later duplicate wins, as in execve's view). */
export function envRecord(env: readonly string[] | undefined, field: string): Record<string, string> {
  const out: Record<string, string> = {};
  (env ?? []).forEach((e, i) => {
    const eq = typeof e === 'string' ? e.indexOf('=') : -1;
    if (eq <= 0) throw badConfig(`${field}[${i}]`, `must be KEY=VALUE, got ${JSON.stringify(e)}`);
    out[e.slice(0, eq)] = e.slice(eq + 1);
  });
  return out;
}

/** Whether SELinux is on: without it, labels mean nothing and are ignored (with a warning), as crun does. */
function selinuxEnabled(): boolean {
  return existsSync('/sys/fs/selinux/enforce');
}

/** What config.json asks for that is ignored on this host, for the log. */
export function ignoredFields(spec: OciSpec): string[] {
  const out: string[] = [];
  if (!selinuxEnabled()) {
    if (spec.process?.selinuxLabel) out.push('process.selinuxLabel: ignored (SELinux is not enabled on this host)');
    if (spec.linux?.mountLabel) out.push('linux.mountLabel: ignored (SELinux is not enabled on this host)');
  }
  return out;
}

/** Refuses process fields that have no equivalent here. */
export function checkProcess(p: OciProcess, field: string): void {
  if (!Array.isArray(p.args) || p.args.length === 0) throw badConfig(`${field}.args`, 'must list the command and its arguments');
  if (p.cwd !== undefined && !isAbsolute(p.cwd)) throw badConfig(`${field}.cwd`, `must be absolute, got "${p.cwd}"`);
  if (p.commandLine !== undefined) throw unsupported(`${field}.commandLine`, 'is for Windows');
  if (p.apparmorProfile) throw unsupported(`${field}.apparmorProfile`, 'AppArmor is not supported by this runtime (the profile would not be applied)');
  if (p.selinuxLabel && selinuxEnabled())
    throw unsupported(`${field}.selinuxLabel`, 'SELinux is not supported by this runtime (the label would not be applied)');
  if (p.ioPriority !== undefined) throw unsupported(`${field}.ioPriority`, 'is not supported by this runtime');
  if (p.scheduler !== undefined) throw unsupported(`${field}.scheduler`, 'is not supported by this runtime');
  if (p.execCPUAffinity !== undefined) throw unsupported(`${field}.execCPUAffinity`, 'is not supported by this runtime');
  const u = p.user ?? {};
  for (const k of ['uid', 'gid'] as const) {
    const v = u[k];
    if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > 0xfffffffe))
      throw badConfig(`${field}.user.${k}`, `must be a uid/gid number, got ${JSON.stringify(v)}`);
  }
}

/** The ambient capabilities of a process (those in its bounding set: the kernel raises no others). */
export function ambientOf(p: OciProcess): Capability[] | undefined {
  const bounding = new Set(capabilitiesOf(p));
  const ambient = (p.capabilities?.ambient ?? []).map((n) => String(n).replace(/^CAP_/i, '').toUpperCase() as Capability).filter((c) => bounding.has(c));
  return ambient.length ? ambient : undefined;
}

/** The process's user as unshare() takes it. */
export function userOf(p: OciProcess): { uid: number; gid: number; groups: number[] } {
  return { uid: p.user?.uid ?? 0, gid: p.user?.gid ?? 0, groups: [...(p.user?.additionalGids ?? [])] };
}

/**
 * The devices of linux.devices, checked, and /dev/tty: the runtime-spec's default devices are
 * null, zero, full, random, urandom (ctrkit binds the host's), tty and ptmx (a link to pts/ptmx).
 */
function devicesOf(l: OciLinux): DeviceNode[] {
  const listed = (l.devices ?? []).map((d, i) => {
    const type = d.type as DeviceNode['type'];
    if (!['c', 'b', 'u', 'p'].includes(type)) throw badConfig(`linux.devices[${i}].type`, `must be c, b, u or p, got "${d.type}"`);
    if (typeof d.path !== 'string' || !d.path.startsWith('/dev/'))
      throw badConfig(`linux.devices[${i}].path`, `must be below /dev, got ${JSON.stringify(d.path)}`);
    return { path: d.path, type, major: d.major ?? 0, minor: d.minor ?? 0, mode: d.fileMode ?? 0o666, uid: d.uid ?? 0, gid: d.gid ?? 0 };
  });
  const tty: DeviceNode = { path: '/dev/tty', type: 'c', major: 5, minor: 0, mode: 0o666 };
  return listed.some((d) => d.path === tty.path) ? listed : [tty, ...listed];
}

/** Refuses linux fields that have no equivalent here. */
function checkLinux(l: OciLinux): void {
  if (l.uidMappings?.length || l.gidMappings?.length) throw unsupported('linux.uidMappings', 'user namespaces are not supported by this runtime yet');
  if (l.timeOffsets && Object.keys(l.timeOffsets).length) throw unsupported('linux.timeOffsets', 'time namespaces are not supported by this runtime yet');
  if (l.mountLabel && selinuxEnabled()) throw unsupported('linux.mountLabel', 'SELinux is not supported by this runtime (the label would not be applied)');
  if (l.intelRdt !== undefined) throw unsupported('linux.intelRdt', 'Intel RDT is not supported by this runtime');
  const domain = l.personality?.domain;
  if (domain !== undefined && domain !== 'LINUX') throw unsupported('linux.personality.domain', `only LINUX is supported by this runtime, got "${domain}"`);
}

/**
 * linux.rootfsPropagation as mount flags. The container's mount namespace was made private
 * before anything was mounted, so even "shared" shares only within the container.
 */
function propagationOf(l: OciLinux): number | undefined {
  if (!l.rootfsPropagation) return undefined;
  const flags = PROPAGATION[l.rootfsPropagation];
  if (flags === undefined) throw badConfig('linux.rootfsPropagation', `unknown propagation "${l.rootfsPropagation}"`);
  return flags;
}

/** The namespaces config.json asks for, and those of them to enter by path. */
function namespacesOf(l: OciLinux): { namespaces: NamespaceType[]; joinPaths: Partial<Record<NamespaceType, string>> } {
  const out: NamespaceType[] = [];
  const joinPaths: Partial<Record<NamespaceType, string>> = {};
  (l.namespaces ?? []).forEach((n, i) => {
    const type = SPEC_NAMESPACE[n.type];
    if (!type) throw badConfig(`linux.namespaces[${i}].type`, `unknown namespace type "${n.type}"`);
    if (out.includes(type)) throw badConfig(`linux.namespaces[${i}]`, `${n.type} is listed twice`);
    if (n.path) joinPaths[type] = checkNamespacePath(n.path, n.type, type, `linux.namespaces[${i}].path`);
    out.push(type);
  });
  if (!out.includes('mnt')) throw unsupported('linux.namespaces', 'a container without its own mount namespace is not supported by this runtime');
  if (!out.includes('pid')) throw unsupported('linux.namespaces', 'a container without its own PID namespace is not supported by this runtime yet');
  if (out.includes('user')) throw unsupported('linux.namespaces', 'user namespaces are not supported by this runtime yet');
  if (out.includes('time')) throw unsupported('linux.namespaces', 'time namespaces are not supported by this runtime yet');
  return { namespaces: out, joinPaths };
}

/**
 * A namespace path to enter: it must be a namespace of that type, and a mount namespace must
 * not be this process's own (the container's root is pivoted in the namespace it enters:
 * the host's would be turned upside down).
 */
function checkNamespacePath(path: string, name: string, type: NamespaceType, field: string): string {
  let ino: number;
  try {
    ino = statSync(path).ino;
  } catch (e) {
    throw badConfig(field, `${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let kind: string;
  try {
    kind = readlinkSync(path);
  } catch {
    kind = `${type}:`; // a bind-mounted namespace file (/run/netns/X): setns checks its type
  }
  if (!kind.startsWith(`${type}:`) && !kind.startsWith(`${type}_for_children:`)) throw badConfig(field, `${path} is not a ${name} namespace (${kind})`);
  if (type === 'mnt' && statSync('/proc/self/ns/mnt').ino === ino)
    throw unsupported(field, "the runtime's own mount namespace: a container's root is built in the mount namespace it enters");
  return path;
}

/** The whole plan of `create` from a bundle's config.json. */
export function createPlan(spec: OciSpec, bundle: string, id: string, systemdCgroup: boolean): CreatePlan {
  const p = spec.process;
  if (!p) throw badConfig('process', 'is required');
  checkProcess(p, 'process');
  const l = spec.linux ?? {};
  checkLinux(l);
  const rootPath = spec.root?.path;
  if (!rootPath) throw badConfig('root.path', 'is required');
  const rootfs = resolve(bundle, rootPath);
  if (!existsSync(rootfs)) throw badConfig('root.path', `${rootfs} does not exist`);
  const { namespaces, joinPaths } = namespacesOf(l);
  if ((spec.hostname || spec.domainname) && !namespaces.includes('uts')) throw badConfig('hostname', 'needs a uts namespace of its own');
  const cgroupfs = namespaces.includes('cgroup') ? cgroupfsOperation(cgroupHierarchies()) : undefined;
  const mounts = [
    ...mountPlan(spec.mounts ?? [], bundle, cgroupfs),
    ...(l.maskedPaths ?? []).map((target) => ({ op: 'mask' as const, target })),
    ...(l.readonlyPaths ?? []).map((target) => ({ op: 'readonly' as const, target })),
  ];
  const options: UnshareOptions = {
    command: p.args!,
    namespaces,
    rootfs,
    readonlyRoot: spec.root?.readonly ?? false,
    mounts,
    devices: devicesOf(l),
    hostname: spec.hostname || undefined,
    domainname: spec.domainname || undefined,
    sysctl: l.sysctl,
    env: envRecord(p.env, 'process.env'),
    cwd: p.cwd ?? '/',
    capabilities: capabilitiesOf(p),
    noNewPrivileges: p.noNewPrivileges ?? false,
    user: userOf(p),
    ambientCapabilities: ambientOf(p),
    umask: p.user?.umask,
    seccomp: (l.seccomp as UnshareOptions['seccomp']) ?? 'unconfined',
    startPath: 'auto',
    tty: p.terminal ?? false,
    ttySize: p.consoleSize && { rows: p.consoleSize.height, cols: p.consoleSize.width },
  };
  return {
    options,
    rootfs,
    cgroupPath: cgroupPathOf(l.cgroupsPath, id, systemdCgroup),
    resources: l.resources,
    rlimits: rlimitsOf(p),
    oomScoreAdj: p.oomScoreAdj,
    namespaces,
    joinPaths,
    propagation: propagationOf(l),
  };
}
