/**
 * The OCI runtime-spec `linux.resources` block, applied the way runc applies it: at create,
 * and again from `update --resources`. Everything is checked, and every file it will touch is
 * found, before the first write; a write the kernel refuses restores the single-value files
 * already written.
 *
 * Where runc silently ignores a field, so does this module, and says so in
 * {@link OciResourcesResult.ignored}; where runc would fail (a controller or file the host
 * lacks), this module fails first, with the field named.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { CgroupOptions } from './base.js';
import { Cgroup } from './cgroup.js';
import { attachDeviceFilter } from './device-filter.js';
import { DEFAULT_DEVICE_RULES, checkDeviceRule, formatDeviceRule, reduceDeviceRules } from './device-rules.js';
import { CgroupValueError, ControllerUnavailableError } from './errors.js';
import { readCgroupFile, readOptional, writeCgroupFile } from './fs.js';
import type { DeviceCgroupRule, DeviceRule } from './resources.js';
import { blkioToIoWeight } from './units.js';
import type { CgroupV1 } from './v1.js';
import type { CgroupV2 } from './v2.js';

// ---- the spec's types -----------------------------------------------------------------

/** One entry of `linux.resources.devices` (runtime-spec `LinuxDeviceCgroup`). */
export interface OciLinuxDeviceCgroup {
  /** Allow (true) or deny (false) the access. */
  readonly allow: boolean;
  /** `a` (all), `c` (character) or `b` (block). @defaultValue `a` */
  readonly type?: string;
  /** Major number; absent, null or -1: any. */
  readonly major?: number | null;
  /** Minor number; absent, null or -1: any. */
  readonly minor?: number | null;
  /** Any of r, w, m. @defaultValue `rwm` */
  readonly access?: string;
}

/** `linux.resources.memory`. Sizes in bytes; -1 means unlimited, 0 (as in runc) unset. */
export interface OciLinuxMemory {
  /** Memory limit (v1 memory.limit_in_bytes, v2 memory.max). */
  readonly limit?: number;
  /** Soft limit (v1 memory.soft_limit_in_bytes, v2 memory.low). */
  readonly reservation?: number;
  /** Memory plus swap (v1 memory.memsw.limit_in_bytes; v2 memory.swap.max = swap − limit). */
  readonly swap?: number;
  /** Kernel memory limit. Deprecated by the spec; ignored, as runc ignores it. */
  readonly kernel?: number;
  /** Kernel TCP buffer limit. Ignored, as runc ignores it (v2 has no such limit). */
  readonly kernelTCP?: number;
  /** 0..100 (v1 memory.swappiness; v2 has no per-cgroup swappiness: ignored, as in runc). */
  readonly swappiness?: number;
  /** Disables the OOM killer (v1 memory.oom_control; v2 has none: ignored, as in runc). */
  readonly disableOOMKiller?: boolean;
  /** Hierarchical accounting: always on (v1 since Linux 5.16, v2 by design); ignored, as in runc. */
  readonly useHierarchy?: boolean;
  /** On update, refuse a limit below the current usage. */
  readonly checkBeforeUpdate?: boolean;
}

/** `linux.resources.cpu`. Times in microseconds. */
export interface OciLinuxCPU {
  /** Relative weight, 2..262144 (v1 cpu.shares; v2 cpu.weight by runc's conversion). 0: unset. */
  readonly shares?: number;
  /** CFS quota; -1 unlimited, 0 unset, otherwise at least 1000. */
  readonly quota?: number;
  /** Extra time a group may accumulate for bursts (v1 cpu.cfs_burst_us, v2 cpu.max.burst). */
  readonly burst?: number;
  /** CFS period, 1000..1000000; 0 unset. */
  readonly period?: number;
  /** Realtime runtime (v1 cpu.rt_runtime_us; -1 unlimited). Not in cgroup v2. */
  readonly realtimeRuntime?: number;
  /** Realtime period (v1 cpu.rt_period_us). Not in cgroup v2. */
  readonly realtimePeriod?: number;
  /** CPU list like `0-3,6` (cpuset.cpus). */
  readonly cpus?: string;
  /** Memory node list like `0` (cpuset.mems). */
  readonly mems?: string;
  /** 1: SCHED_IDLE weight for the whole group, 0: normal (cpu.idle). */
  readonly idle?: number;
}

/** A device of `blockIO.weightDevice`. */
export interface OciLinuxWeightDevice {
  /** Device major number. */
  readonly major: number;
  /** Device minor number. */
  readonly minor: number;
  /** Weight 10..1000 for this device. */
  readonly weight?: number;
  /** Leaf weight (CFQ only, which Linux 5.0 removed). */
  readonly leafWeight?: number;
}

/** A device of the `blockIO.throttle*Device` lists. */
export interface OciLinuxThrottleDevice {
  /** Device major number. */
  readonly major: number;
  /** Device minor number. */
  readonly minor: number;
  /** Bytes or operations per second; 0 removes the limit. */
  readonly rate: number;
}

/** `linux.resources.blockIO`. */
export interface OciLinuxBlockIO {
  /** Weight 10..1000 (v1 blkio.weight or blkio.bfq.weight; v2 io.bfq.weight, else io.weight converted). */
  readonly weight?: number;
  /** Leaf weight 10..1000 (v1 blkio.leaf_weight, CFQ only; ignored on v2, as in runc). */
  readonly leafWeight?: number;
  /** Per-device weights. */
  readonly weightDevice?: readonly OciLinuxWeightDevice[];
  /** Read bytes/s per device. */
  readonly throttleReadBpsDevice?: readonly OciLinuxThrottleDevice[];
  /** Write bytes/s per device. */
  readonly throttleWriteBpsDevice?: readonly OciLinuxThrottleDevice[];
  /** Read operations/s per device. */
  readonly throttleReadIOPSDevice?: readonly OciLinuxThrottleDevice[];
  /** Write operations/s per device. */
  readonly throttleWriteIOPSDevice?: readonly OciLinuxThrottleDevice[];
}

/** One entry of `hugepageLimits`. */
export interface OciLinuxHugepageLimit {
  /** Page size like `2MB` or `1GB`. */
  readonly pageSize: string;
  /** Bytes of huge pages (reservations where the kernel has them). */
  readonly limit: number;
}

/** One entry of `network.priorities`. */
export interface OciLinuxInterfacePriority {
  /** Interface name. */
  readonly name: string;
  /** Priority of its traffic. */
  readonly priority: number;
}

/** `linux.resources.network` (v1 net_cls / net_prio; ignored on v2, as in runc). */
export interface OciLinuxNetwork {
  /** net_cls.classid. */
  readonly classID?: number;
  /** net_prio.ifpriomap entries. */
  readonly priorities?: readonly OciLinuxInterfacePriority[];
}

/** One device of `linux.resources.rdma`. */
export interface OciLinuxRdma {
  /** Maximum HCA handles. */
  readonly hcaHandles?: number;
  /** Maximum HCA objects. */
  readonly hcaObjects?: number;
}

/**
 * The runtime-spec `LinuxResources` object (config-linux.md, "Control groups"), as found in
 * `config.json` under `linux.resources` and as `runc update --resources FILE` reads it.
 */
export interface LinuxResources {
  /** The device allow/deny list, applied in order. */
  readonly devices?: readonly OciLinuxDeviceCgroup[];
  /** Memory limits. */
  readonly memory?: OciLinuxMemory;
  /** CPU limits and placement. */
  readonly cpu?: OciLinuxCPU;
  /** Task limit; -1 unlimited, 0 unset. */
  readonly pids?: { readonly limit?: number };
  /** Block IO weights and throttles. */
  readonly blockIO?: OciLinuxBlockIO;
  /** Huge page limits. */
  readonly hugepageLimits?: readonly OciLinuxHugepageLimit[];
  /** Network classification and priorities. */
  readonly network?: OciLinuxNetwork;
  /** RDMA limits by device name. */
  readonly rdma?: Readonly<Record<string, OciLinuxRdma>>;
  /** cgroup v2 files written as given (`"memory.high": "1G"`), after everything else. */
  readonly unified?: Readonly<Record<string, string>>;
}

// ---- options, results, errors ---------------------------------------------------------

/** Options of {@link applyOciResources}. */
export interface ApplyOciResourcesOptions {
  /**
   * An update of a live container (`runtime update`) rather than its creation: honours
   * `memory.checkBeforeUpdate`, and lets a quota come without a period (the period in force
   * stays) and a period without a quota (the quota in force stays). @defaultValue false
   */
  readonly update?: boolean;
  /**
   * Append {@link DEFAULT_DEVICE_RULES} after `devices`, as runc does at create. Only
   * consulted when `devices` is given. @defaultValue false
   */
  readonly defaultDevices?: boolean;
}

/** A field that was accepted but not applied, and why. */
export interface OciIgnoredField {
  /** The field, like `memory.kernel`. */
  readonly field: string;
  /** Why it has no effect here. */
  readonly reason: string;
}

/** What {@link applyOciResources} did. */
export interface OciResourcesResult {
  /** Every write, in order: the file's full path and the value. */
  readonly written: readonly { readonly file: string; readonly value: string }[];
  /** Fields runc would also ignore on this cgroup version (log them as warnings). */
  readonly ignored: readonly OciIgnoredField[];
  /**
   * v1 controller directories that did not exist and were created (the members of the
   * cgroup joined them). A handle from `open()` sees them; remove them with it.
   */
  readonly created: readonly string[];
}

/**
 * A value of `linux.resources` is out of range or malformed. `field` is its path in the
 * resources object (`cpu.quota`); `code` is `ERR_CGROUP_VALUE`.
 */
export class OciResourceValueError extends CgroupValueError {
  /** The field, like `memory.limit` or `blockIO.throttleReadBpsDevice[0].rate`. */
  readonly field: string;
  /** @internal */
  constructor(field: string, value: unknown, expected: string) {
    super(field ? `linux.resources.${field}` : 'linux.resources', value, expected);
    this.field = field;
  }
}

/**
 * A field of `linux.resources` needs a controller or file this host or cgroup version lacks
 * (and runc would fail on it too). `code` is `ERR_CGROUP_CONTROLLER`; `field` names it.
 */
export class OciResourceUnsupportedError extends ControllerUnavailableError {
  /** The field, like `network.classID`. */
  readonly field: string;
  /** @internal */
  constructor(field: string, controller: string, why: string) {
    super(controller, `linux.resources.${field}: ${why}`);
    this.field = field;
  }
}

// ---- validation -----------------------------------------------------------------------

const CPU_LIST = /^\d+(-\d+)?(,\d+(-\d+)?)*$/;
const PAGE_SIZE = /^\d+[KMG]B$/;
const INT64_MAX = Number.MAX_SAFE_INTEGER;

/** A JSON integer in [min, max]; undefined stays undefined. */
function int(field: string, v: unknown, min: number, max: number, expected?: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new OciResourceValueError(field, v, expected ?? `an integer from ${min} to ${max}`);
  }
  return v;
}

function bool(field: string, v: unknown): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new OciResourceValueError(field, v, 'true or false');
  return v;
}

/** A size where -1 is unlimited and 0 unset (runc's reading of the spec's int64s). */
function size(field: string, v: unknown): number | 'max' | undefined {
  const n = int(field, v, -1, INT64_MAX, 'a size in bytes, or -1 for unlimited');
  return n === undefined || n === 0 ? undefined : n === -1 ? 'max' : n;
}

function list(field: string, v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' || !CPU_LIST.test(v)) throw new OciResourceValueError(field, v, 'a list like "0-3,6"');
  return v;
}

function array<T>(field: string, v: readonly T[] | undefined): readonly T[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new OciResourceValueError(field, v, 'an array');
  return v;
}

/** The checked, normalized request: what will be written, independent of the cgroup version. */
interface Request {
  memory: {
    limit?: number | 'max';
    reservation?: number | 'max';
    swap?: number | 'max';
    swappiness?: number;
    disableOOMKiller?: boolean;
    checkBeforeUpdate: boolean;
  };
  cpu: {
    shares?: number;
    quota?: number | 'max';
    period?: number;
    burst?: number;
    rtRuntime?: number;
    rtPeriod?: number;
    cpus?: string;
    mems?: string;
    idle?: number;
  };
  pids?: number | 'max';
  blkio: {
    weight?: number;
    leafWeight?: number;
    weightDevice: { dev: string; weight?: number; leafWeight?: number; i: number }[];
    throttle: { file: 'read_bps' | 'write_bps' | 'read_iops' | 'write_iops'; key: 'rbps' | 'wbps' | 'riops' | 'wiops'; dev: string; rate: number; i: number }[];
  };
  hugepages: { pageSize: string; limit: number; i: number }[];
  classID?: number;
  priorities: { name: string; priority: number }[];
  rdma: { dev: string; line: string }[];
  unified: [string, string][];
  devices: DeviceCgroupRule[] | undefined;
  /** Fields accepted and checked that have no effect on either version. */
  ignored: OciIgnoredField[];
}

function device(field: string, d: { major: unknown; minor: unknown }): string {
  const major = int(`${field}.major`, d.major, 0, 4095);
  const minor = int(`${field}.minor`, d.minor, 0, 1_048_575);
  if (major === undefined || minor === undefined) throw new OciResourceValueError(`${field}.major`, d.major, 'major and minor device numbers');
  return `${major}:${minor}`;
}

function checkMemory(m: OciLinuxMemory | undefined, req: Request): void {
  if (m === undefined || m === null) return;
  req.memory.limit = size('memory.limit', m.limit);
  req.memory.reservation = size('memory.reservation', m.reservation);
  req.memory.swap = size('memory.swap', m.swap);
  const { limit, swap } = req.memory;
  if (typeof swap === 'number' && typeof limit === 'number' && swap < limit) {
    throw new OciResourceValueError('memory.swap', m.swap, `memory plus swap, so at least memory.limit (${limit})`);
  }
  if (size('memory.kernel', m.kernel) !== undefined) {
    req.ignored.push({ field: 'memory.kernel', reason: 'kernel memory limits are deprecated (Linux 5.4) and ignored, as runc ignores them' });
  }
  if (size('memory.kernelTCP', m.kernelTCP) !== undefined) {
    req.ignored.push({ field: 'memory.kernelTCP', reason: 'kernel TCP limits are ignored, as runc ignores them (cgroup v2 has none)' });
  }
  req.memory.swappiness = int('memory.swappiness', m.swappiness, 0, 100);
  req.memory.disableOOMKiller = bool('memory.disableOOMKiller', m.disableOOMKiller);
  if (bool('memory.useHierarchy', m.useHierarchy) !== undefined) {
    req.ignored.push({ field: 'memory.useHierarchy', reason: 'accounting is always hierarchical (v1 since Linux 5.16, v2 by design); runc ignores it too' });
  }
  req.memory.checkBeforeUpdate = bool('memory.checkBeforeUpdate', m.checkBeforeUpdate) ?? false;
}

function checkCpu(c: OciLinuxCPU | undefined, req: Request, update: boolean): void {
  if (c === undefined || c === null) return;
  const shares = int('cpu.shares', c.shares, 0, 262144);
  if (shares !== undefined && shares !== 0 && shares < 2) throw new OciResourceValueError('cpu.shares', c.shares, 'an integer from 2 to 262144 (0: unset)');
  req.cpu.shares = shares === 0 ? undefined : shares;
  const quota = int('cpu.quota', c.quota, -1, INT64_MAX, 'microseconds, at least 1000 (the kernel minimum), or -1 for none');
  if (quota !== undefined && quota > 0 && quota < 1000)
    throw new OciResourceValueError('cpu.quota', quota, 'at least 1000 µs (the kernel minimum), or -1 for none');
  req.cpu.quota = quota === -1 ? 'max' : quota === 0 ? undefined : quota;
  const period = int('cpu.period', c.period, 0, 1_000_000, 'microseconds from 1000 to 1000000');
  if (period !== undefined && period !== 0 && period < 1000) throw new OciResourceValueError('cpu.period', period, 'microseconds from 1000 to 1000000');
  req.cpu.period = period === 0 ? undefined : period;
  // A new cgroup has the kernel's period, which the caller may not have meant: say it.
  if (!update && typeof req.cpu.quota === 'number' && req.cpu.period === undefined) {
    throw new OciResourceValueError('cpu.period', c.period, 'a period to go with cpu.quota (only an update may keep the period in force)');
  }
  req.cpu.burst = int('cpu.burst', c.burst, 0, INT64_MAX);
  if (req.cpu.burst !== undefined && typeof req.cpu.quota === 'number' && req.cpu.burst > req.cpu.quota) {
    throw new OciResourceValueError('cpu.burst', c.burst, `at most cpu.quota (${req.cpu.quota})`);
  }
  const rt = int('cpu.realtimeRuntime', c.realtimeRuntime, -1, INT64_MAX, 'microseconds, or -1 for unlimited');
  req.cpu.rtRuntime = rt === 0 ? undefined : rt;
  const rtp = int('cpu.realtimePeriod', c.realtimePeriod, 0, INT64_MAX);
  req.cpu.rtPeriod = rtp === 0 ? undefined : rtp;
  req.cpu.cpus = list('cpu.cpus', c.cpus);
  req.cpu.mems = list('cpu.mems', c.mems);
  req.cpu.idle = int('cpu.idle', c.idle, 0, 1);
}

function checkBlockIO(b: OciLinuxBlockIO | undefined, req: Request): void {
  if (b === undefined || b === null) return;
  const weight = (field: string, v: unknown) => {
    const w = int(field, v, 0, 1000, 'an integer from 10 to 1000 (0: unset)');
    if (w !== undefined && w !== 0 && w < 10) throw new OciResourceValueError(field, v, 'an integer from 10 to 1000 (0: unset)');
    return w === 0 ? undefined : w;
  };
  req.blkio.weight = weight('blockIO.weight', b.weight);
  req.blkio.leafWeight = weight('blockIO.leafWeight', b.leafWeight);
  array('blockIO.weightDevice', b.weightDevice).forEach((d, i) => {
    const field = `blockIO.weightDevice[${i}]`;
    req.blkio.weightDevice.push({
      dev: device(field, d),
      weight: weight(`${field}.weight`, d.weight),
      leafWeight: weight(`${field}.leafWeight`, d.leafWeight),
      i,
    });
  });
  const kinds = [
    ['throttleReadBpsDevice', 'read_bps', 'rbps'],
    ['throttleWriteBpsDevice', 'write_bps', 'wbps'],
    ['throttleReadIOPSDevice', 'read_iops', 'riops'],
    ['throttleWriteIOPSDevice', 'write_iops', 'wiops'],
  ] as const;
  for (const [name, file, key] of kinds) {
    array(`blockIO.${name}`, b[name]).forEach((d, i) => {
      const field = `blockIO.${name}[${i}]`;
      const rate = int(`${field}.rate`, d.rate, 0, INT64_MAX, 'a rate per second (0 removes the limit)') ?? 0;
      req.blkio.throttle.push({ file, key, dev: device(field, d), rate, i });
    });
  }
}

function checkDevices(devices: readonly OciLinuxDeviceCgroup[] | undefined, defaults: boolean): DeviceCgroupRule[] | undefined {
  if (devices === undefined || devices === null) return undefined;
  const rules = array('devices', devices).map((d, i) => {
    const field = `devices[${i}]`;
    const allow = bool(`${field}.allow`, d.allow);
    if (allow === undefined) throw new OciResourceValueError(`${field}.allow`, d.allow, 'true or false');
    const any = (v: unknown, what: string) =>
      v === undefined || v === null || v === -1 ? '*' : int(`${field}.${what}`, v, 0, what === 'major' ? 4095 : 1_048_575)!;
    const rule: DeviceRule = {
      type: (d.type ?? 'a') as DeviceRule['type'],
      major: any(d.major, 'major'),
      minor: any(d.minor, 'minor'),
      access: d.access ?? 'rwm',
    };
    try {
      return checkDeviceRule(rule, allow);
    } catch (e) {
      throw new OciResourceValueError(field, d, (e as Error).message);
    }
  });
  if (defaults) for (const r of DEFAULT_DEVICE_RULES) rules.push(checkDeviceRule(r, true));
  try {
    reduceDeviceRules(rules); // refuses, now, a list the kernel would misread
  } catch (e) {
    throw new OciResourceValueError('devices', devices.length, (e as Error).message);
  }
  return rules;
}

/** The writes `unified` may not do: they move or kill processes, they set no resource. */
const UNIFIED_REFUSED = new Set(['cgroup.procs', 'cgroup.threads', 'cgroup.kill', 'cgroup.freeze', 'cgroup.type']);

function checkRest(r: LinuxResources, req: Request): void {
  if (r.pids !== undefined && r.pids !== null) {
    const p = int('pids.limit', r.pids.limit, -1, 4_194_304, 'a number of tasks up to 4194304, or -1 for unlimited');
    req.pids = p === undefined || p === 0 ? undefined : p === -1 ? 'max' : p;
  }
  array('hugepageLimits', r.hugepageLimits).forEach((h, i) => {
    if (typeof h?.pageSize !== 'string' || !PAGE_SIZE.test(h.pageSize))
      throw new OciResourceValueError(`hugepageLimits[${i}].pageSize`, h?.pageSize, 'a page size like "2MB"');
    const limit = int(`hugepageLimits[${i}].limit`, h.limit, 0, INT64_MAX, 'a size in bytes');
    req.hugepages.push({ pageSize: h.pageSize, limit: limit ?? 0, i });
  });
  if (r.network !== undefined && r.network !== null) {
    req.classID = int('network.classID', r.network.classID, 0, 0xffffffff);
    array('network.priorities', r.network.priorities).forEach((p, i) => {
      if (typeof p?.name !== 'string' || !/^[^\s/]{1,15}$/.test(p.name))
        throw new OciResourceValueError(`network.priorities[${i}].name`, p?.name, 'an interface name');
      req.priorities.push({ name: p.name, priority: int(`network.priorities[${i}].priority`, p.priority, 0, 0xffffffff) ?? 0 });
    });
  }
  for (const [dev, l] of Object.entries(r.rdma ?? {})) {
    if (!/^[^\s/]+$/.test(dev)) throw new OciResourceValueError(`rdma["${dev}"]`, dev, 'an RDMA device name');
    const h = int(`rdma["${dev}"].hcaHandles`, l?.hcaHandles, 0, 0xffffffff);
    const o = int(`rdma["${dev}"].hcaObjects`, l?.hcaObjects, 0, 0xffffffff);
    const parts = [h === undefined ? '' : `hca_handle=${h}`, o === undefined ? '' : `hca_object=${o}`].filter(Boolean);
    if (parts.length) req.rdma.push({ dev, line: `${dev} ${parts.join(' ')}` });
  }
  for (const [key, value] of Object.entries(r.unified ?? {})) {
    const field = `unified["${key}"]`;
    if (!/^[a-z_]+\.[A-Za-z0-9_.]+$/.test(key))
      throw new OciResourceValueError(field, key, 'a cgroup v2 file name like "memory.high" (CONTROLLER.PARAMETER, no slashes)');
    if (UNIFIED_REFUSED.has(key)) throw new OciResourceValueError(field, key, 'a resource file (this one moves, freezes or kills processes)');
    if (typeof value !== 'string') throw new OciResourceValueError(field, value, 'a string');
    req.unified.push([key, value]);
  }
}

/**
 * Checks a `LinuxResources` object and normalizes it, throwing
 * {@link OciResourceValueError} for the first bad field. Touches nothing.
 */
function checkResources(r: LinuxResources, options: ApplyOciResourcesOptions): Request {
  if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new OciResourceValueError('', r, 'a LinuxResources object');
  const req: Request = {
    memory: { checkBeforeUpdate: false },
    cpu: {},
    blkio: { weightDevice: [], throttle: [] },
    hugepages: [],
    priorities: [],
    rdma: [],
    unified: [],
    devices: undefined,
    ignored: [],
  };
  checkMemory(r.memory, req);
  checkCpu(r.cpu, req, options.update ?? false);
  checkBlockIO(r.blockIO, req);
  checkRest(r, req);
  req.devices = checkDevices(r.devices, options.defaultDevices ?? false);
  return req;
}

// ---- conversions ----------------------------------------------------------------------

/**
 * cpu.shares (v1, 2..262144) to cpu.weight (v2, 1..10000) the way runc converts them since
 * 1.3: a curve through (2, 1), (1024, 100) and (262144, 10000), so the v1 default of 1024
 * lands on the v2 default of 100. (ctrkit's own setters keep the older linear mapping, which
 * gives 39 for 1024; an OCI runtime must agree with runc.)
 *
 * weight = ⌈10^((l² + 125·l) / 612 − 7/34)⌉ with l = log2(shares).
 */
export function ociSharesToWeight(shares: number): number {
  if (shares <= 2) return 1;
  if (shares >= 262144) return 10000;
  const l = Math.log2(shares);
  return Math.ceil(10 ** ((l * l + 125 * l) / 612 - 7 / 34));
}

// ---- planning -------------------------------------------------------------------------

/** One write of the plan. */
interface Write {
  /** The field of `linux.resources` it applies. */
  readonly field: string;
  /** The controller whose file it is. */
  readonly controller: string;
  /** The directory (v1: the controller's directory of the cgroup). */
  readonly dir: string;
  readonly file: string;
  readonly value: string;
  /** A one-value file whose old content can be written back if a later write fails. */
  readonly restorable: boolean;
  /** v2 device program (not a file write). */
  readonly devices?: DeviceCgroupRule[];
}

/** Where writes go and what the host has there; one per cgroup version. */
interface Target {
  readonly version: 1 | 2;
  /** The directory of a controller's cgroup; throws naming `field` when there is none. */
  dir(controller: string, field: string): string;
  /** Whether a file exists (for a v1 directory not made yet: in its hierarchy's root). */
  has(dir: string, file: string): boolean;
  /** Reads a file of the cgroup (undefined when absent or not made yet). */
  read(dir: string, file: string): string | undefined;
  /**
   * v2: controllers the hierarchy offers that are not enabled for this cgroup yet (their
   * files appear once enabled in the parents' cgroup.subtree_control). v1: empty.
   */
  readonly enableable: ReadonlySet<string>;
}

function v1Target(cg: CgroupV1): Target {
  const rootOf = (dir: string) => dir.slice(0, dir.length - cg.path.length - 1);
  return {
    version: 1,
    dir(controller, field) {
      const d = cg.dirs.get(controller);
      if (!d) {
        throw new OciResourceUnsupportedError(field, controller, `no v1 "${controller}" hierarchy is mounted (mounted: ${[...cg.dirs.keys()].join(' ')})`);
      }
      return d;
    },
    has: (dir, file) => existsSync(join(existsSync(dir) ? dir : rootOf(dir), file)),
    read: (dir, file) => readNow(dir, file),
    enableable: new Set(),
  };
}

function v2Target(cg: CgroupV2): Target {
  const words = (dir: string, file: string) => new Set((readNow(dir, file) ?? '').split(/\s+/).filter(Boolean));
  const mine = words(cg.dir, 'cgroup.controllers');
  const enableable = new Set([...words(cg.root, 'cgroup.controllers')].filter((c) => !mine.has(c)));
  return {
    version: 2,
    dir: () => cg.dir,
    // A file of a controller not enabled yet is taken on trust now and looked for again once it is.
    has: (dir, file) => existsSync(join(dir, file)) || enableable.has(file.split('.')[0]!),
    read: (dir, file) => readNow(dir, file),
    enableable,
  };
}

function readNow(dir: string, file: string): string | undefined {
  try {
    return readFileSync(join(dir, file), 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Builds the writes in order; every file is looked for now, so a missing one fails before any write. */
class Planner {
  readonly writes: Write[] = [];
  readonly ignored: OciIgnoredField[] = [];
  constructor(readonly t: Target) {}

  /** Adds a write to an existing file of `controller`, or fails naming the field. */
  put(field: string, controller: string, file: string, value: string | number, restorable = true): void {
    const dir = this.t.dir(controller, field);
    if (!this.t.has(dir, file)) throw new OciResourceUnsupportedError(field, controller, `${file} does not exist here (${why(controller, file)})`);
    this.writes.push({ field, controller, dir, file, value: String(value), restorable });
  }

  /** The first of `files` that exists in `controller`'s directory. */
  pick(field: string, controller: string, files: string[]): string | undefined {
    const dir = this.t.dir(controller, field);
    return files.find((f) => this.t.has(dir, f));
  }

  ignore(field: string, reason: string): void {
    this.ignored.push({ field, reason });
  }
}

/** A hint for a missing file. */
function why(controller: string, file: string): string {
  if (file.startsWith('memory.memsw') || file.startsWith('memory.swap')) return 'swap accounting is off: boot with swapaccount=1';
  if (file.includes('weight')) return 'no IO scheduler with weights (BFQ) serves this cgroup';
  if (file.startsWith('cpu.rt_')) return 'the kernel lacks CONFIG_RT_GROUP_SCHED';
  if (file.startsWith('hugetlb.')) return 'the kernel does not support that huge page size';
  return `the "${controller}" controller is not enabled for this cgroup, or the kernel lacks the file`;
}

function planMemory(p: Planner, req: Request, update: boolean): void {
  const m = req.memory;
  if (p.t.version === 1) {
    const dir = m.limit !== undefined || m.swap !== undefined ? p.t.dir('memory', 'memory') : '';
    const lim = (v: number | 'max') => (v === 'max' ? -1 : v);
    // Unlimited memory with swap unsaid means unlimited swap as well (runc), where there is swap.
    const swap = m.swap ?? (m.limit === 'max' && p.t.has(dir, 'memory.memsw.limit_in_bytes') ? 'max' : undefined);
    const writeSwap = () => swap !== undefined && p.put('memory.swap', 'memory', 'memory.memsw.limit_in_bytes', lim(swap));
    // The kernel keeps memory ≤ memory+swap at every step: raise swap first when it grows.
    const swapFirst =
      m.limit !== undefined && swap !== undefined && (swap === 'max' || Number(p.t.read(dir, 'memory.limit_in_bytes') ?? Number.POSITIVE_INFINITY) < swap);
    if (swapFirst) writeSwap();
    if (m.limit !== undefined) p.put('memory.limit', 'memory', 'memory.limit_in_bytes', lim(m.limit));
    if (!swapFirst) writeSwap();
    if (m.reservation !== undefined) p.put('memory.reservation', 'memory', 'memory.soft_limit_in_bytes', lim(m.reservation));
    if (m.swappiness !== undefined) p.put('memory.swappiness', 'memory', 'memory.swappiness', m.swappiness);
    if (m.disableOOMKiller !== undefined) p.put('memory.disableOOMKiller', 'memory', 'memory.oom_control', m.disableOOMKiller ? 1 : 0);
  } else {
    const max = (v: number | 'max') => String(v);
    if (m.swap !== undefined) {
      // v2 limits swap alone: memory+swap minus memory (runc's conversion).
      let swap: number | 'max';
      if (m.swap === 'max' || m.limit === 'max') swap = m.swap;
      else if (m.limit === undefined)
        throw new OciResourceValueError('memory.swap', m.swap, 'a memory.limit as well (cgroup v2 limits swap separately from memory)');
      else swap = m.swap - m.limit;
      const dir = p.t.dir('memory', 'memory.swap');
      // Like runc: without swap accounting, "unlimited" and "none" need no file.
      if (p.t.has(dir, 'memory.swap.max') || (swap !== 'max' && swap !== 0)) p.put('memory.swap', 'memory', 'memory.swap.max', max(swap));
    } else if (m.limit === 'max' && p.t.has(p.t.dir('memory', 'memory.limit'), 'memory.swap.max')) {
      p.put('memory.swap', 'memory', 'memory.swap.max', 'max');
    }
    if (m.limit !== undefined) p.put('memory.limit', 'memory', 'memory.max', max(m.limit));
    if (m.reservation !== undefined) p.put('memory.reservation', 'memory', 'memory.low', max(m.reservation === 'max' ? 'max' : m.reservation));
    if (m.swappiness !== undefined) p.ignore('memory.swappiness', 'cgroup v2 has no per-cgroup swappiness; runc ignores it too');
    if (m.disableOOMKiller !== undefined) p.ignore('memory.disableOOMKiller', 'cgroup v2 cannot disable the OOM killer; runc ignores it too');
  }
  if (update && m.checkBeforeUpdate && typeof m.limit === 'number') {
    const dir = p.t.dir('memory', 'memory.checkBeforeUpdate');
    const usage = Number(p.t.read(dir, p.t.version === 1 ? 'memory.usage_in_bytes' : 'memory.current') ?? 0);
    if (m.limit < usage) {
      throw new OciResourceValueError('memory.limit', m.limit, `at least the current usage (${usage} bytes), as memory.checkBeforeUpdate asks`);
    }
  }
}

function planCpu(p: Planner, req: Request): void {
  const c = req.cpu;
  const v1 = p.t.version === 1;
  if (c.shares !== undefined) {
    if (v1) p.put('cpu.shares', 'cpu', 'cpu.shares', c.shares);
    else p.put('cpu.shares', 'cpu', 'cpu.weight', ociSharesToWeight(c.shares));
  }
  if (c.idle !== undefined) p.put('cpu.idle', 'cpu', 'cpu.idle', c.idle);
  if (v1) {
    if (c.period !== undefined) p.put('cpu.period', 'cpu', 'cpu.cfs_period_us', c.period);
    if (c.quota !== undefined) p.put('cpu.quota', 'cpu', 'cpu.cfs_quota_us', c.quota === 'max' ? -1 : c.quota);
    if (c.burst !== undefined) p.put('cpu.burst', 'cpu', 'cpu.cfs_burst_us', c.burst);
    // The period first: runtime must fit in it (runc's order).
    if (c.rtPeriod !== undefined) p.put('cpu.realtimePeriod', 'cpu', 'cpu.rt_period_us', c.rtPeriod);
    if (c.rtRuntime !== undefined) p.put('cpu.realtimeRuntime', 'cpu', 'cpu.rt_runtime_us', c.rtRuntime);
  } else {
    if (c.quota !== undefined || c.period !== undefined) {
      // cpu.max holds both: keep the half not given (an update), as a v1 file would.
      const dir = p.t.dir('cpu', 'cpu.quota');
      const [curQuota = 'max', curPeriod = '100000'] = (p.t.read(dir, 'cpu.max') ?? '').split(/\s+/).filter(Boolean);
      p.put(c.quota !== undefined ? 'cpu.quota' : 'cpu.period', 'cpu', 'cpu.max', `${c.quota ?? curQuota} ${c.period ?? curPeriod}`);
    }
    if (c.burst !== undefined) p.put('cpu.burst', 'cpu', 'cpu.max.burst', c.burst);
    if (c.rtPeriod !== undefined || c.rtRuntime !== undefined) {
      const field = c.rtRuntime !== undefined ? 'cpu.realtimeRuntime' : 'cpu.realtimePeriod';
      throw new OciResourceUnsupportedError(field, 'cpu', 'cgroup v2 has no realtime group scheduling (cpu.rt_*)');
    }
  }
  if (c.cpus !== undefined) p.put('cpu.cpus', 'cpuset', 'cpuset.cpus', c.cpus);
  if (c.mems !== undefined) p.put('cpu.mems', 'cpuset', 'cpuset.mems', c.mems);
}

function planBlockIO(p: Planner, req: Request): void {
  const b = req.blkio;
  if (p.t.version === 1) {
    if (b.weight !== undefined) {
      const file = p.pick('blockIO.weight', 'blkio', ['blkio.weight', 'blkio.bfq.weight']) ?? 'blkio.weight';
      p.put('blockIO.weight', 'blkio', file, b.weight);
    }
    if (b.leafWeight !== undefined) p.put('blockIO.leafWeight', 'blkio', 'blkio.leaf_weight', b.leafWeight);
    for (const d of b.weightDevice) {
      const field = `blockIO.weightDevice[${d.i}]`;
      if (d.weight !== undefined) {
        const file = p.pick(field, 'blkio', ['blkio.weight_device', 'blkio.bfq.weight_device']) ?? 'blkio.weight_device';
        p.put(`${field}.weight`, 'blkio', file, `${d.dev} ${d.weight}`, false);
      }
      if (d.leafWeight !== undefined) p.put(`${field}.leafWeight`, 'blkio', 'blkio.leaf_weight_device', `${d.dev} ${d.leafWeight}`, false);
    }
    for (const t of b.throttle) p.put(`blockIO.${throttleName(t.key)}[${t.i}]`, 'blkio', `blkio.throttle.${t.file}_device`, `${t.dev} ${t.rate}`, false);
    return;
  }
  const bfq = p.pick('blockIO.weight', 'io', ['io.bfq.weight']);
  if (b.weight !== undefined) {
    // BFQ takes the v1 scale as it is; io.weight (v2 scale) gets runc's conversion.
    if (bfq) p.put('blockIO.weight', 'io', bfq, b.weight, false);
    else p.put('blockIO.weight', 'io', 'io.weight', `default ${blkioToIoWeight(b.weight)}`, false);
  }
  if (b.leafWeight !== undefined) p.ignore('blockIO.leafWeight', 'cgroup v2 has no leaf weights (a CFQ feature); runc ignores it too');
  for (const d of b.weightDevice) {
    const field = `blockIO.weightDevice[${d.i}]`;
    if (d.weight !== undefined) {
      if (bfq) p.put(`${field}.weight`, 'io', bfq, `${d.dev} ${d.weight}`, false);
      else p.ignore(`${field}.weight`, 'per-device weights need the BFQ scheduler (io.bfq.weight), which does not serve this cgroup; runc ignores it too');
    }
    if (d.leafWeight !== undefined) p.ignore(`${field}.leafWeight`, 'cgroup v2 has no leaf weights; runc ignores it too');
  }
  for (const t of b.throttle) p.put(`blockIO.${throttleName(t.key)}[${t.i}]`, 'io', 'io.max', `${t.dev} ${t.key}=${t.rate === 0 ? 'max' : t.rate}`, false);
}

function throttleName(key: 'rbps' | 'wbps' | 'riops' | 'wiops'): string {
  return { rbps: 'throttleReadBpsDevice', wbps: 'throttleWriteBpsDevice', riops: 'throttleReadIOPSDevice', wiops: 'throttleWriteIOPSDevice' }[key];
}

function planRest(p: Planner, req: Request): void {
  const v1 = p.t.version === 1;
  if (req.pids !== undefined) p.put('pids.limit', 'pids', 'pids.max', req.pids);
  for (const h of req.hugepages) {
    const field = `hugepageLimits[${h.i}]`;
    const prefix = `hugetlb.${h.pageSize}`;
    p.put(field, 'hugetlb', v1 ? `${prefix}.limit_in_bytes` : `${prefix}.max`, h.limit);
    // The spec prefers reservation limits: set them too where the kernel has them (5.7+).
    const rsvd = v1 ? `${prefix}.rsvd.limit_in_bytes` : `${prefix}.rsvd.max`;
    if (p.pick(field, 'hugetlb', [rsvd])) p.put(field, 'hugetlb', rsvd, h.limit);
  }
  if (v1) {
    if (req.classID !== undefined) p.put('network.classID', 'net_cls', 'net_cls.classid', req.classID);
    for (const [i, n] of req.priorities.entries()) p.put(`network.priorities[${i}]`, 'net_prio', 'net_prio.ifpriomap', `${n.name} ${n.priority}`, false);
  } else {
    if (req.classID !== undefined) p.ignore('network.classID', 'cgroup v2 has no net_cls (classify with eBPF instead); runc ignores it too');
    if (req.priorities.length) p.ignore('network.priorities', 'cgroup v2 has no net_prio; runc ignores it too');
  }
  for (const r of req.rdma) p.put(`rdma["${r.dev}"]`, 'rdma', 'rdma.max', r.line, false);
  if (req.unified.length && v1) {
    throw new OciResourceUnsupportedError(
      'unified',
      'cgroup2',
      'unified resources need a cgroup v2 cgroup; this one is cgroup v1 (runc refuses them there too)',
    );
  }
  for (const [key, value] of req.unified) {
    // Each line is one write, as the kernel parses files like io.max one entry at a time.
    for (const line of value.split('\n').filter((l) => l !== '')) p.put(`unified["${key}"]`, key.split('.')[0]!, key, line, !value.includes('\n'));
  }
  if (req.devices) {
    if (v1) {
      // Deny everything, then each rule: the list means what the v1 controller makes of it.
      p.put('devices', 'devices', 'devices.deny', 'a', false);
      for (const d of req.devices) p.put('devices', 'devices', d.allow ? 'devices.allow' : 'devices.deny', formatDeviceRule(d), false);
    } else {
      p.writes.push({
        field: 'devices',
        controller: 'devices',
        dir: p.t.dir('devices', 'devices'),
        file: '(device program)',
        value: `${req.devices.length} rules`,
        restorable: false,
        devices: req.devices,
      });
    }
  }
}

// ---- applying -------------------------------------------------------------------------

/**
 * Makes the v1 controller directories the plan writes to that do not exist yet, and moves the
 * cgroup's members into them: a container is in every controller's cgroup, as runc puts it.
 */
async function makeMissing(cg: CgroupV1, writes: Write[]): Promise<string[]> {
  const created: string[] = [];
  // The members, from a controller every ctrkit v1 cgroup has (pids, memory, freezer) where it can.
  const from = ['pids', 'memory', 'freezer', ...cg.dirs.keys()].map((c) => cg.dirs.get(c)).find((d) => d !== undefined && existsSync(d));
  const members = from ? ((await readOptional(from, 'cgroup.procs')) ?? '').split('\n').filter(Boolean) : [];
  for (const dir of [...new Set(writes.map((w) => w.dir))]) {
    if (existsSync(dir)) continue;
    const root = dir.slice(0, dir.length - cg.path.length - 1);
    let cur = root;
    for (const part of cg.path.split('/')) {
      cur = join(cur, part);
      if (existsSync(cur)) continue;
      await mkdir(cur);
      created.push(cur);
      // cpuset refuses tasks until cpus and mems are set: inherit the parent's.
      for (const f of ['cpuset.cpus', 'cpuset.mems']) {
        if ((await readOptional(cur, f)) === '') await writeCgroupFile(cur, f, await readCgroupFile(dirname(cur), f));
      }
    }
    for (const pid of members) await writeCgroupFile(dir, 'cgroup.procs', pid);
  }
  return created;
}

/**
 * v2: enables, from the root down to the cgroup's parent, the controllers the writes need
 * that are not enabled for the cgroup yet; then every file must be there.
 */
async function enableControllers(cg: CgroupV2, writes: Write[], enableable: ReadonlySet<string>): Promise<void> {
  const need = [...new Set(writes.filter((w) => !w.devices && !existsSync(join(w.dir, w.file)) && enableable.has(w.controller)).map((w) => w.controller))];
  if (need.length) {
    let dir = cg.root;
    for (const part of cg.path.split('/')) {
      const on = ((await readOptional(dir, 'cgroup.subtree_control')) ?? '').split(/\s+/);
      const missing = need.filter((c) => !on.includes(c));
      if (missing.length) await writeCgroupFile(dir, 'cgroup.subtree_control', missing.map((c) => `+${c}`).join(' '));
      dir = join(dir, part);
    }
  }
  const absent = writes.find((w) => !w.devices && !existsSync(join(w.dir, w.file)));
  if (absent)
    throw new OciResourceUnsupportedError(absent.field, absent.controller, `${absent.file} does not exist here (${why(absent.controller, absent.file)})`);
}

/** Writes back the old values of the one-value files already written, newest first. */
async function restore(done: { w: Write; old: string | undefined }[]): Promise<void> {
  for (const { w, old } of done.reverse()) {
    if (!w.restorable || old === undefined) continue;
    // v1 reads "unlimited" back as a huge number the kernel takes again; v2 reads "max".
    await writeCgroupFile(w.dir, w.file, old.split('\n')[0]!).catch(() => undefined);
  }
}

/**
 * Applies an OCI `linux.resources` object to a container's cgroup, as `runc create` does
 * with config.json and `runc update --resources` does later.
 *
 * `target` is the container's cgroup: a {@link CgroupV1} (its directories in each
 * controller's hierarchy, the same relative path in each, as ctrkit makes them on v1 and
 * hybrid hosts) or a {@link CgroupV2}, created by this process or opened (`open()`); unlike
 * `apply()`, it need not be owned, since `update` runs in a later process.
 *
 * In order: every value is checked ({@link OciResourceValueError}, nothing written); every
 * file needed is looked for ({@link OciResourceUnsupportedError} for a controller or file the
 * host lacks, nothing written); on v1, controller directories still missing are made and the
 * members moved in, on v2 the controllers needed are enabled in the parents'
 * cgroup.subtree_control (a file still missing then is refused before any limit is written);
 * then the writes. On v1, `devices` is written as `devices.deny a` followed by the rules, so a
 * running container is denied every device for the few microseconds in between. When the kernel refuses one (EINVAL, EBUSY for a memory
 * limit below usage), the one-value files already written get their old values back and the
 * error is rethrown; list files (throttles, device rules) keep what was written.
 *
 * Fields that have no effect on this cgroup version, and that runc ignores as well, are
 * listed in the result's `ignored` rather than refused.
 *
 * @example
 * ```ts
 * const cg = await Cgroup.forHost('ctk-oci/abc').open();
 * const { ignored } = await applyOciResources(cg, { memory: { limit: 256 << 20 }, pids: { limit: 64 } }, { update: true });
 * ```
 * @throws {@link OciResourceValueError}, {@link OciResourceUnsupportedError}, `CgroupError` (a refused write)
 */
export async function applyOciResources(
  target: CgroupV1 | CgroupV2,
  resources: LinuxResources,
  options: ApplyOciResourcesOptions = {},
): Promise<OciResourcesResult> {
  const req = checkResources(resources, options);
  const p = new Planner(target.version === 1 ? v1Target(target) : v2Target(target));
  p.ignored.push(...req.ignored);
  planMemory(p, req, options.update ?? false);
  planCpu(p, req);
  planBlockIO(p, req);
  planRest(p, req);
  const created = target.version === 1 ? await makeMissing(target, p.writes) : [];
  if (target.version === 2) await enableControllers(target, p.writes, p.t.enableable);
  const done: { w: Write; old: string | undefined }[] = [];
  try {
    for (const w of p.writes) {
      if (w.devices) {
        attachDeviceFilter(w.dir, w.devices);
        continue;
      }
      const old = w.restorable ? await readOptional(w.dir, w.file) : undefined;
      await writeCgroupFile(w.dir, w.file, w.value);
      done.push({ w, old });
    }
  } catch (e) {
    await restore(done);
    for (const dir of created.reverse()) await rmdir(dir).catch(() => undefined);
    throw e;
  }
  return { written: p.writes.map((w) => ({ file: join(w.dir, w.file), value: w.value })), ignored: p.ignored, created };
}

/**
 * A not yet created cgroup for an OCI container at `path`: `Cgroup.forHost(path)` (or the
 * version asked for), told about the limits that map onto its setters so that `create()`
 * spans every controller `resources` needs, and `addProcess()` puts the container into each.
 * Then {@link applyOciResources} writes the whole block.
 *
 * The setters get the values they can take; a CPU field without shares or quota (idle,
 * burst, realtime) records the kernel's default weight, only so that the cpu controller's
 * directory is made.
 *
 * @example
 * ```ts
 * const cg = await ociCgroup('ctk-oci/abc', spec.linux.resources).create();
 * await applyOciResources(cg, spec.linux.resources, { defaultDevices: true });
 * await cg.addProcess(pid);
 * ```
 * @throws {@link OciResourceValueError} for a bad value, before anything exists
 */
export function ociCgroup(path: string, resources: LinuxResources = {}, options: CgroupOptions & { readonly version?: 1 | 2 } = {}): CgroupV1 | CgroupV2 {
  const req = checkResources(resources, { update: true });
  const cg = options.version === 1 ? Cgroup.v1(path, options) : options.version === 2 ? Cgroup.v2(path, options) : Cgroup.forHost(path);
  const m = req.memory;
  if (m.limit !== undefined) cg.memoryMax(m.limit);
  const c = req.cpu;
  if (c.shares !== undefined) cg.cpuShares(c.shares);
  else if (
    c.quota !== undefined ||
    c.period !== undefined ||
    c.burst !== undefined ||
    c.idle !== undefined ||
    c.rtRuntime !== undefined ||
    c.rtPeriod !== undefined
  ) {
    if (cg.version === 1) cg.cpuShares(1024);
    else cg.cpuWeight(100);
  }
  if (c.cpus !== undefined) cg.cpusetCpus(c.cpus);
  if (c.mems !== undefined) cg.cpusetMems(c.mems);
  if (req.pids !== undefined) cg.pidsMax(req.pids);
  // Only where the hierarchy exists: otherwise applyOciResources names the field it cannot apply.
  if (cg.version === 2 || cg.dirs.has('hugetlb')) for (const h of req.hugepages) cg.hugetlbMax(h.pageSize, h.limit);
  for (const d of req.devices ?? []) {
    if (d.allow) cg.devicesAllow(d);
    else cg.devicesDeny(d);
  }
  return cg;
}
