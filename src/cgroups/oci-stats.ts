/**
 * Container statistics in the shape `runc events --stats` prints under `data`
 * (`{"type":"stats","id":ID,"data":{...}}`, runc's types/events.go), read from a container's
 * v1 cgroups or its v2 cgroup, and OOM notifications for `runc events`' `{"type":"oom"}`.
 *
 * The field names are runc's JSON names, snake_case and camelCase mixed as runc has them;
 * a field runc leaves out when zero (Go's `omitempty`) is left out here too, so
 * `JSON.stringify` of the result (or {@link ociEventJson}) reads like runc's output.
 */
import { readdirSync } from 'node:fs';
import { parseKeyValues, readOptional } from './fs.js';
import { parsePressure, type Pressure } from './stats.js';
import type { CgroupV1 } from './v1.js';
import type { CgroupV2 } from './v2.js';

/**
 * How an unlimited limit reads: runc reports v2's `max` as 2^64 − 1, which a JS number cannot
 * hold; it is kept as 2^64 here and {@link ociEventJson} prints it as 18446744073709551615.
 */
export const OCI_UNLIMITED = 2 ** 64;

/** One PSI line (runc `PSIData`). */
export interface OciPsiData {
  /** Percent of time stalled over 10 s. */
  readonly avg10: number;
  /** Over 60 s. */
  readonly avg60: number;
  /** Over 300 s. */
  readonly avg300: number;
  /** Total stall time in µs. */
  readonly total: number;
}

/** Pressure of one resource (runc `PSIStats`; cgroup v2 only). */
export interface OciPsiStats {
  /** Some tasks stalled. */
  readonly some?: OciPsiData;
  /** All tasks stalled. */
  readonly full?: OciPsiData;
}

/** `cpu.usage`: nanoseconds. */
export interface OciCpuUsage {
  /** Total CPU time. */
  readonly total?: number;
  /** Per CPU (v1 cpuacct.usage_percpu). */
  readonly percpu?: readonly number[];
  /** Per CPU, kernel mode (v1 cpuacct.usage_all). */
  readonly percpu_kernel?: readonly number[];
  /** Per CPU, user mode (v1 cpuacct.usage_all). */
  readonly percpu_user?: readonly number[];
  /** Kernel mode. */
  readonly kernel: number;
  /** User mode. */
  readonly user: number;
}

/** `cpu.throttling` (CFS bandwidth). */
export interface OciThrottling {
  /** Enforcement periods elapsed. */
  readonly periods?: number;
  /** Periods the group was throttled in. */
  readonly throttledPeriods?: number;
  /** Time throttled, in nanoseconds. */
  readonly throttledTime?: number;
}

/** runc `Cpu`. */
export interface OciCpuStats {
  /** CPU time used. */
  readonly usage?: OciCpuUsage;
  /** Throttling by the quota. */
  readonly throttling?: OciThrottling;
  /** Pressure (v2). */
  readonly psi?: OciPsiStats;
}

/** runc `CPUSet` (filled from the v1 cpuset files; zeros elsewhere, as in runc). */
export interface OciCpusetStats {
  /** CPUs of cpuset.cpus, expanded. */
  readonly cpus?: readonly number[];
  readonly cpu_exclusive: number;
  /** Memory nodes of cpuset.mems, expanded. */
  readonly mems?: readonly number[];
  readonly mem_hardwall: number;
  readonly mem_exclusive: number;
  readonly memory_migrate: number;
  readonly memory_spread_page: number;
  readonly memory_spread_slab: number;
  readonly memory_pressure: number;
  readonly sched_load_balance: number;
  readonly sched_relax_domain_level: number;
}

/** runc `MemoryEntry`: bytes. */
export interface OciMemoryEntry {
  /** The limit ({@link OCI_UNLIMITED} or v1's page-aligned 2^63 − 4096 for none). */
  readonly limit: number;
  /** Current use. */
  readonly usage?: number;
  /** Highest use seen. */
  readonly max?: number;
  /** Times the limit was hit (v1). */
  readonly failcnt: number;
}

/** runc `Memory`. */
export interface OciMemoryStats {
  /** Page cache (v1 memory.stat cache, v2 memory.stat file). */
  readonly cache?: number;
  /** Memory. */
  readonly usage?: OciMemoryEntry;
  /** Memory plus swap (v2: memory.swap.current + memory.current). */
  readonly swap?: OciMemoryEntry;
  /** Kernel memory (v1 memory.kmem.*). */
  readonly kernel?: OciMemoryEntry;
  /** Kernel TCP buffers (v1 memory.kmem.tcp.*). */
  readonly kernelTCP?: OciMemoryEntry;
  /** memory.stat as it is. */
  readonly raw?: Readonly<Record<string, number>>;
  /** Pressure (v2). */
  readonly psi?: OciPsiStats;
}

/** runc `Pids`. */
export interface OciPidsStats {
  /** Tasks in the cgroup. */
  readonly current?: number;
  /** pids.max (0 when there is none, as runc reports it). */
  readonly limit?: number;
}

/** runc `BlkioEntry`: one counter of one device. */
export interface OciBlkioEntry {
  readonly major?: number;
  readonly minor?: number;
  /** `Read`, `Write`, `Sync`, `Async`, `Discard`, `Total`. */
  readonly op?: string;
  readonly value?: number;
}

/** runc `Blkio`. */
export interface OciBlkioStats {
  /** Bytes. */
  readonly ioServiceBytesRecursive?: readonly OciBlkioEntry[];
  /** Operations. */
  readonly ioServicedRecursive?: readonly OciBlkioEntry[];
  readonly ioQueueRecursive?: readonly OciBlkioEntry[];
  readonly ioServiceTimeRecursive?: readonly OciBlkioEntry[];
  readonly ioWaitTimeRecursive?: readonly OciBlkioEntry[];
  readonly ioMergedRecursive?: readonly OciBlkioEntry[];
  readonly ioTimeRecursive?: readonly OciBlkioEntry[];
  readonly sectorsRecursive?: readonly OciBlkioEntry[];
  /** Pressure (v2). */
  readonly psi?: OciPsiStats;
}

/** runc `Hugetlb`, per page size (`2MB`). */
export interface OciHugetlbStats {
  /** Bytes in use (v2: reservations where the kernel has them). */
  readonly usage?: number;
  /** Highest use (v1). */
  readonly max?: number;
  /** Allocations that failed on the limit. */
  readonly failcnt: number;
}

/** What `runc events --stats` prints under `data` (runc `types.Stats`). */
export interface OciStats {
  readonly cpu: OciCpuStats;
  readonly cpuset: OciCpusetStats;
  readonly memory: OciMemoryStats;
  readonly pids: OciPidsStats;
  readonly blkio: OciBlkioStats;
  readonly hugetlb: Readonly<Record<string, OciHugetlbStats>>;
  /** Intel RDT is not read: always empty. */
  readonly intel_rdt: Readonly<Record<string, never>>;
  /** runc fills this only for containers whose network it knows: always null here. */
  readonly network_interfaces: null;
}

/** One line of `runc events`. */
export interface OciEvent {
  /** `stats`, or `oom`. */
  readonly type: 'stats' | 'oom';
  /** The container id. */
  readonly id: string;
  /** The statistics, for `stats`. */
  readonly data?: OciStats;
}

// ---- helpers --------------------------------------------------------------------------

/** Drops the keys whose value Go's `omitempty` / `omitzero` would drop. */
function compact<T extends object>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined || v === 0 || v === '' || (Array.isArray(v) && v.length === 0)) continue;
    if (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0) continue;
    out[k] = v;
  }
  return out as T;
}

/** A map with its keys sorted, as Go's encoding/json writes maps. */
function sorted<T>(map: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(map).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** A kernel counter: `max` is {@link OCI_UNLIMITED}, absent is 0. */
function u64(text: string | undefined): number {
  if (text === undefined || text === '') return 0;
  if (text === 'max') return OCI_UNLIMITED;
  const n = Number(text);
  return Number.isFinite(n) ? n : 0;
}

const nums = (text: string | undefined) => (text ?? '').split(/\s+/).filter(Boolean).map(Number);

/** `0-2,5` → [0, 1, 2, 5]. */
function expandList(text: string | undefined): number[] {
  const out: number[] = [];
  for (const part of (text ?? '').split(',').filter(Boolean)) {
    const [a = 0, b = a] = part.split('-').map(Number);
    for (let i = a; i <= b; i++) out.push(i);
  }
  return out;
}

/** An entry with both zero fields cut, as runc's omitzero does. */
function entry(e: OciMemoryEntry): OciMemoryEntry | undefined {
  return e.limit === 0 && !e.usage && !e.max && e.failcnt === 0
    ? undefined
    : { limit: e.limit, ...compact({ usage: e.usage, max: e.max }), failcnt: e.failcnt };
}

function psi(p: Pressure | undefined): OciPsiStats | undefined {
  if (!p) return undefined;
  const line = (l: Pressure['some'] | undefined) =>
    l && (l.avg10 || l.avg60 || l.avg300 || l.total) ? { avg10: l.avg10, avg60: l.avg60, avg300: l.avg300, total: l.total } : undefined;
  return compact({ some: line(p.some), full: line(p.full) });
}

/** The huge page sizes of this kernel, named as runc names them (`2MB`, `1GB`). */
function hugePageSizes(): string[] {
  let names: string[];
  try {
    names = readdirSync('/sys/kernel/mm/hugepages');
  } catch {
    return [];
  }
  return names.flatMap((n) => {
    const m = /^hugepages-(\d+)kB$/.exec(n);
    if (!m) return [];
    let size = Number(m[1]);
    let unit = 0;
    while (size >= 1024 && size % 1024 === 0 && unit < 3) {
      size /= 1024;
      unit++;
    }
    return [`${size}${['KB', 'MB', 'GB', 'TB'][unit]}`];
  });
}

/** `8:0 Read 4096` lines into entries; empty when the file is absent or has no device line. */
function blkioEntries(text: string | undefined): OciBlkioEntry[] {
  const out: OciBlkioEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const [dev, op, value] = line.trim().split(/\s+/);
    if (!dev || op === undefined || value === undefined || !/^\d+:\d+$/.test(dev)) continue;
    const [major, minor] = dev.split(':').map(Number);
    out.push(compact({ major, minor, op, value: Number(value) }));
  }
  return out;
}

// ---- v1 -------------------------------------------------------------------------------

async function v1Stats(cg: CgroupV1): Promise<OciStats> {
  const read = (controller: string, file: string) => {
    const dir = cg.dirs.get(controller);
    return dir === undefined ? Promise.resolve(undefined) : readOptional(dir, file);
  };
  const [cpu, memory, pids, blkio, cpuset, hugetlb] = await Promise.all([
    v1Cpu(read),
    v1Memory(read),
    v1Pids(read),
    v1Blkio(read),
    v1Cpuset(read),
    v1Hugetlb(read),
  ]);
  return { cpu, cpuset, memory, pids, blkio, hugetlb, intel_rdt: {}, network_interfaces: null };
}

type Read = (controller: string, file: string) => Promise<string | undefined>;

const NS_PER_TICK = 1e9 / 100; // cpuacct.stat counts USER_HZ ticks

async function v1Cpu(read: Read): Promise<OciCpuStats> {
  const [usage, percpu, all, stat, cpuStat] = await Promise.all([
    read('cpuacct', 'cpuacct.usage'),
    read('cpuacct', 'cpuacct.usage_percpu'),
    read('cpuacct', 'cpuacct.usage_all'),
    read('cpuacct', 'cpuacct.stat'),
    read('cpu', 'cpu.stat'),
  ]);
  // usage_all: a "cpu user system" header, then one line per CPU.
  const rows = (all ?? '')
    .split('\n')
    .slice(1)
    .map(nums)
    .filter((r) => r.length === 3);
  const ticks = parseKeyValues(stat ?? '');
  const cs = parseKeyValues(cpuStat ?? '');
  const u = compact({
    total: u64(usage),
    percpu: nums(percpu),
    percpu_kernel: rows.map((r) => r[2]!),
    percpu_user: rows.map((r) => r[1]!),
  });
  const cpuUsage: OciCpuUsage = { ...u, kernel: (ticks.system ?? 0) * NS_PER_TICK, user: (ticks.user ?? 0) * NS_PER_TICK };
  return compact({
    usage: cpuUsage.total || cpuUsage.kernel || cpuUsage.user ? cpuUsage : undefined,
    throttling: compact({ periods: cs.nr_periods, throttledPeriods: cs.nr_throttled, throttledTime: cs.throttled_time }),
  });
}

async function v1MemoryEntry(read: Read, prefix: string): Promise<OciMemoryEntry | undefined> {
  const [usage, max, failcnt, limit] = await Promise.all(
    ['usage_in_bytes', 'max_usage_in_bytes', 'failcnt', 'limit_in_bytes'].map((f) => read('memory', `${prefix}.${f}`)),
  );
  if (usage === undefined) return undefined;
  return entry({ limit: u64(limit), usage: u64(usage), max: u64(max), failcnt: u64(failcnt) });
}

async function v1Memory(read: Read): Promise<OciMemoryStats> {
  const [stat, usage, swap, kernel, kernelTCP] = await Promise.all([
    read('memory', 'memory.stat'),
    v1MemoryEntry(read, 'memory'),
    v1MemoryEntry(read, 'memory.memsw'),
    v1MemoryEntry(read, 'memory.kmem'),
    v1MemoryEntry(read, 'memory.kmem.tcp'),
  ]);
  const raw = sorted(parseKeyValues(stat ?? ''));
  return compact({ cache: raw.cache, usage, swap, kernel, kernelTCP, raw });
}

async function v1Pids(read: Read): Promise<OciPidsStats> {
  const [current, max] = await Promise.all([read('pids', 'pids.current'), read('pids', 'pids.max')]);
  return compact({ current: u64(current), limit: max === 'max' ? 0 : u64(max) });
}

/** runc's order: BFQ's recursive counters when they have any, else the throttling layer's (which counts all IO). */
async function v1Blkio(read: Read): Promise<OciBlkioStats> {
  const bfqBytes = blkioEntries(await read('blkio', 'blkio.bfq.io_service_bytes_recursive'));
  const bfqOps = blkioEntries(await read('blkio', 'blkio.bfq.io_serviced_recursive'));
  if (bfqBytes.length || bfqOps.length) return compact({ ioServiceBytesRecursive: bfqBytes, ioServicedRecursive: bfqOps });
  const [bytes, ops] = await Promise.all([read('blkio', 'blkio.throttle.io_service_bytes_recursive'), read('blkio', 'blkio.throttle.io_serviced_recursive')]);
  return compact({ ioServiceBytesRecursive: blkioEntries(bytes), ioServicedRecursive: blkioEntries(ops) });
}

async function v1Cpuset(read: Read): Promise<OciCpusetStats> {
  const files = [
    'cpus',
    'mems',
    'cpu_exclusive',
    'mem_hardwall',
    'mem_exclusive',
    'memory_migrate',
    'memory_spread_page',
    'memory_spread_slab',
    'memory_pressure',
    'sched_load_balance',
    'sched_relax_domain_level',
  ];
  const v = await Promise.all(files.map((f) => read('cpuset', `cpuset.${f}`)));
  const n = (i: number) => Number(v[i] ?? 0) || 0;
  return {
    ...compact({ cpus: expandList(v[0]) }),
    cpu_exclusive: n(2),
    ...compact({ mems: expandList(v[1]) }),
    mem_hardwall: n(3),
    mem_exclusive: n(4),
    memory_migrate: n(5),
    memory_spread_page: n(6),
    memory_spread_slab: n(7),
    memory_pressure: n(8),
    sched_load_balance: n(9),
    sched_relax_domain_level: n(10),
  };
}

async function v1Hugetlb(read: Read): Promise<Record<string, OciHugetlbStats>> {
  const out: Record<string, OciHugetlbStats> = {};
  for (const size of hugePageSizes()) {
    const [usage, max, failcnt] = await Promise.all(['usage_in_bytes', 'max_usage_in_bytes', 'failcnt'].map((f) => read('hugetlb', `hugetlb.${size}.${f}`)));
    if (usage === undefined) continue;
    out[size] = { ...compact({ usage: u64(usage), max: u64(max) }), failcnt: u64(failcnt) };
  }
  return sorted(out);
}

// ---- v2 -------------------------------------------------------------------------------

const ZERO_CPUSET: OciCpusetStats = {
  cpu_exclusive: 0,
  mem_hardwall: 0,
  mem_exclusive: 0,
  memory_migrate: 0,
  memory_spread_page: 0,
  memory_spread_slab: 0,
  memory_pressure: 0,
  sched_load_balance: 0,
  sched_relax_domain_level: 0,
};

async function v2Stats(cg: CgroupV2): Promise<OciStats> {
  const read = (file: string) => readOptional(cg.dir, file);
  const files = ['cpu.stat', 'memory.stat', 'memory.current', 'memory.max', 'memory.peak', 'memory.swap.current', 'memory.swap.max'] as const;
  const [cpuStat, memStat, current, max, peak, swapCurrent, swapMax] = await Promise.all(files.map(read));
  const [pidsCurrent, pidsMax, procs, io, cpuP, memP, ioP] = await Promise.all(
    ['pids.current', 'pids.max', 'cgroup.procs', 'io.stat', 'cpu.pressure', 'memory.pressure', 'io.pressure'].map(read),
  );
  const cs = parseKeyValues(cpuStat ?? '');
  const usage: OciCpuUsage = { ...compact({ total: (cs.usage_usec ?? 0) * 1000 }), kernel: (cs.system_usec ?? 0) * 1000, user: (cs.user_usec ?? 0) * 1000 };
  const cpu = compact<OciCpuStats>({
    usage: usage.total || usage.kernel || usage.user ? usage : undefined,
    throttling: compact({ periods: cs.nr_periods, throttledPeriods: cs.nr_throttled, throttledTime: (cs.throttled_usec ?? 0) * 1000 }),
    psi: psi(parsePressure(cpuP)),
  });
  const raw = sorted(parseKeyValues(memStat ?? ''));
  const mem = current === undefined ? undefined : { limit: u64(max), usage: u64(current), max: u64(peak), failcnt: 0 };
  const swapLimit = mem === undefined || u64(swapMax) === OCI_UNLIMITED || mem.limit === OCI_UNLIMITED ? OCI_UNLIMITED : u64(swapMax) + mem.limit;
  const memory = compact<OciMemoryStats>({
    cache: raw.file,
    usage: mem && entry(mem),
    // runc's swap entry is memory plus swap, without a peak.
    swap: mem && swapCurrent !== undefined ? entry({ limit: swapLimit, usage: u64(swapCurrent) + mem.usage, failcnt: 0 }) : undefined,
    raw: memStat === undefined ? undefined : raw,
    psi: psi(parsePressure(memP)),
  });
  // Without the pids controller, runc counts cgroup.procs and reports no limit.
  const pids =
    pidsCurrent === undefined
      ? compact<OciPidsStats>({ current: (procs ?? '').split('\n').filter(Boolean).length })
      : compact<OciPidsStats>({ current: u64(pidsCurrent), limit: pidsMax === 'max' ? 0 : u64(pidsMax) });
  return { cpu, cpuset: ZERO_CPUSET, memory, pids, blkio: v2Blkio(io, ioP), hugetlb: await v2Hugetlb(read), intel_rdt: {}, network_interfaces: null };
}

/** io.stat (`8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...`) in v1's tables, as runc maps it. */
function v2Blkio(io: string | undefined, pressure: string | undefined): OciBlkioStats {
  const bytes: OciBlkioEntry[] = [];
  const ops: OciBlkioEntry[] = [];
  for (const line of (io ?? '').split('\n')) {
    const [dev, ...kvs] = line.trim().split(/\s+/);
    if (!dev || !/^\d+:\d+$/.test(dev)) continue;
    const [major, minor] = dev.split(':').map(Number);
    const kv = Object.fromEntries(kvs.map((p) => p.split('=')));
    const add = (list: OciBlkioEntry[], key: string, op: string) => kv[key] !== undefined && list.push(compact({ major, minor, op, value: Number(kv[key]) }));
    add(bytes, 'rbytes', 'Read');
    add(bytes, 'wbytes', 'Write');
    add(ops, 'rios', 'Read');
    add(ops, 'wios', 'Write');
  }
  return compact({ ioServiceBytesRecursive: bytes, ioServicedRecursive: ops, psi: psi(parsePressure(pressure)) });
}

async function v2Hugetlb(read: (file: string) => Promise<string | undefined>): Promise<Record<string, OciHugetlbStats>> {
  const out: Record<string, OciHugetlbStats> = {};
  for (const size of hugePageSizes()) {
    // Reservations where the kernel has them (5.7+), as the limits are set on them.
    const usage = (await read(`hugetlb.${size}.rsvd.current`)) ?? (await read(`hugetlb.${size}.current`));
    if (usage === undefined) continue;
    const events = parseKeyValues((await read(`hugetlb.${size}.events`)) ?? '');
    out[size] = { ...compact({ usage: u64(usage) }), failcnt: events.max ?? 0 };
  }
  return sorted(out);
}

// ---- public ---------------------------------------------------------------------------

/**
 * The statistics `runc events --stats ID` prints under `data`, from the container's cgroup:
 * a {@link CgroupV1} (each controller's directory read where it exists) or a
 * {@link CgroupV2}. Parts whose controller the cgroup lacks come out empty, as in runc
 * (`cpuset` with zeros, `hugetlb` `{}`).
 *
 * @example
 * ```ts
 * const cg = await Cgroup.forHost('ctk-oci/abc').open();
 * process.stdout.write(ociEventJson({ type: 'stats', id: 'abc', data: await ociStats(cg) }) + '\n');
 * ```
 */
export async function ociStats(target: CgroupV1 | CgroupV2): Promise<OciStats> {
  return target.version === 1 ? v1Stats(target) : v2Stats(target);
}

/**
 * An event as one line of JSON, exactly as runc writes it: integers above 2^53 (v1's
 * "unlimited" 9223372036854771712, {@link OCI_UNLIMITED}) printed digit for digit, where
 * `JSON.stringify` would round them (and a Go reader would refuse 2^64).
 */
export function ociEventJson(event: OciEvent): string {
  const MARK = '\u0000u64:';
  const text = JSON.stringify(event, (_key, v: unknown) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= Number.MAX_SAFE_INTEGER) return v;
    return `${MARK}${v >= OCI_UNLIMITED ? '18446744073709551615' : BigInt(v).toString()}`;
  });
  return text.replace(/"\\u0000u64:(\d+)"/g, '$1');
}

/** How many processes the OOM killer has killed in the cgroup (v1 memory.oom_control, v2 memory.events `oom_kill`). */
export async function ociOomKills(target: CgroupV1 | CgroupV2): Promise<number> {
  return (await target.stats()).memory?.oomKills ?? 0;
}

/**
 * `runc events`' `{"type":"oom"}` notifications: yields once per OOM, until `signal` aborts.
 * v1: each notification of the memory.oom_control eventfd (runc's v1 source); v2: each rise
 * of memory.events `oom_kill` (runc's v2 source). Built on the cgroup's own `events()`.
 */
export async function* ociOomEvents(target: CgroupV1 | CgroupV2, options: { signal?: AbortSignal } = {}): AsyncGenerator<{ readonly type: 'oom' }> {
  const wanted = target.version === 1 ? 'oom' : 'oom_kill';
  for await (const ev of target.events(options)) if (ev.type === wanted) yield { type: 'oom' };
}
