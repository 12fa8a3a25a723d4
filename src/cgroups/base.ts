import { readdir, rmdir } from 'node:fs/promises';
import { existsSync, mkdirSync, rmdirSync, type Dirent } from 'node:fs';
import { join, posix } from 'node:path';
import { logger } from '../log.js';
import { blockDevice } from './devices.js';
import { DEFAULT_DEVICE_RULES, checkDeviceRule, reduceDeviceRules } from './device-rules.js';
import { CgroupError, CgroupValueError } from './errors.js';
import { readOptional } from './fs.js';
import type { CgroupLayout } from './detect.js';
import type { CgroupResources, DeviceRule, DeviceThrottle } from './resources.js';
import type { CgroupEvent, CgroupPressure, CgroupStats } from './stats.js';
import { cpusToQuota, intInRange, parseBytes, type ByteSize, type Rate } from './units.js';

const log = logger('ctrkit:cgroups');

/** Options of `Cgroup.v1()` / `Cgroup.v2()`. */
export interface CgroupOptions {
  /**
   * The hierarchy mount to work in. v2: the cgroup2 mount; v1: the directory holding the
   * per-controller mounts. @defaultValue found in /proc/self/mountinfo
   */
  readonly root?: string;
  /** The layout already read from /proc/self/mountinfo (ignored with `root`). @internal */
  readonly layout?: CgroupLayout;
}

/** One sample of {@link CgroupBase.statsStream}. */
export interface StatsSample {
  /** The statistics. */
  readonly stats: CgroupStats;
  /** CPU use since the previous sample, in percent of one CPU (0 for the first sample). */
  readonly cpuPercent: number;
  /** Memory use in percent of the limit, when there is a limit. */
  readonly memoryPercent: number | undefined;
}

/** Options of `remove()`. */
export interface RemoveOptions {
  /** Remove a cgroup this handle did not create. @defaultValue false */
  readonly force?: boolean;
  /** Kill the members first; with false, a cgroup that still has processes is an error. @defaultValue true */
  readonly kill?: boolean;
  /** Cancels waiting for the members to die. */
  readonly signal?: AbortSignal;
}

/** @internal */
export function normalizeCgroupPath(path: string): string {
  if (typeof path !== 'string' || path.trim() === '') throw new CgroupValueError('path', path, 'a non-empty cgroup path like "ctk/demo"');
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) throw new CgroupValueError('path', path, 'a path inside the hierarchy, without ".." components');
  if (parts.length === 0) throw new CgroupValueError('path', path, 'a cgroup below the root (the root cgroup is never managed)');
  return posix.join(...parts);
}

/** @internal */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * What every cgroup backend shares: the path rules, the chainable limit setters (which check
 * values at once and apply them on `create()` / `apply()`), and removal.
 *
 * Setters return `this`, so `Cgroup.v2('ctk/demo').memoryMax('512m').cpus(0.5)` reads like
 * the limits it sets; nothing touches the kernel until `await cg.create()`.
 */
export abstract class CgroupBase implements AsyncDisposable {
  /** 1 for the legacy per-controller hierarchies, 2 for the unified one. */
  abstract readonly version: 1 | 2;
  /** The path below the hierarchy root, e.g. `ctk/demo`. */
  readonly path: string;
  /** The limits recorded by the setters. */
  protected readonly resources: CgroupResources = {};
  /** Directories this handle created, deepest last (removed in reverse). */
  protected readonly created: string[] = [];
  /** Whether this handle created the cgroup itself (and may remove it). */
  protected owned = false;

  /** @internal */
  constructor(path: string) {
    this.path = normalizeCgroupPath(path);
  }

  /** The cgroup's directory in every hierarchy it spans (v2: one). */
  abstract directories(): string[];

  /** The limits set so far (a copy). */
  limits(): CgroupResources {
    return structuredClone(this.resources);
  }

  // ---- limits -------------------------------------------------------------------------

  /** Hard memory limit: `'512m'`, `'1.5g'`, bytes, or `'max'`. */
  memoryMax(size: ByteSize): this {
    this.resources.memoryMax = parseBytes(size, this.version === 2 ? 'memory.max' : 'memory.limit_in_bytes');
    return this;
  }

  /** Memory throttling threshold (v2 only: v1 has no equivalent). */
  memoryHigh(size: ByteSize): this {
    this.resources.memoryHigh = parseBytes(size, 'memory.high');
    return this;
  }

  /** Memory the kernel tries not to reclaim (v2 memory.low, v1 soft limit). */
  memoryLow(size: ByteSize): this {
    const v = parseBytes(size, this.version === 2 ? 'memory.low' : 'memory.soft_limit_in_bytes');
    if (v === 'max') throw new CgroupValueError('memory.low', size, 'a size in bytes');
    this.resources.memoryLow = v;
    return this;
  }

  /** Swap allowed in addition to the memory limit (`0` disables swap). */
  memorySwapMax(size: ByteSize): this {
    this.resources.memorySwapMax = parseBytes(size, this.version === 2 ? 'memory.swap.max' : 'memory.memsw.limit_in_bytes');
    return this;
  }

  /** Relative CPU weight, 1..10000 (default 100). */
  cpuWeight(weight: number): this {
    this.resources.cpuWeight = intInRange(weight, 1, 10000, 'cpu.weight');
    delete this.resources.cpuShares;
    return this;
  }

  /** Relative CPU shares as in v1 and Docker's `--cpu-shares`, 2..262144 (default 1024). */
  cpuShares(shares: number): this {
    this.resources.cpuShares = intInRange(shares, 2, 262144, 'cpu.shares');
    delete this.resources.cpuWeight;
    return this;
  }

  /** CPU bandwidth as a number of CPUs (`0.5` = half of one), like `docker run --cpus`. */
  cpus(cpus: number, periodUs = 100_000): this {
    intInRange(periodUs, 1000, 1_000_000, 'cpu period');
    this.resources.cpuMax = { quotaUs: cpusToQuota(cpus, periodUs, this.version === 2 ? 'cpu.max' : 'cpu.cfs_quota_us'), periodUs };
    return this;
  }

  /** CPU bandwidth as quota and period in µs; `'max'` removes the limit. */
  cpuMax(quotaUs: number | 'max', periodUs = 100_000): this {
    intInRange(periodUs, 1000, 1_000_000, 'cpu period');
    if (quotaUs !== 'max') intInRange(quotaUs, 1000, Number.MAX_SAFE_INTEGER, this.version === 2 ? 'cpu.max' : 'cpu.cfs_quota_us');
    this.resources.cpuMax = { quotaUs, periodUs };
    return this;
  }

  /** The CPUs the group may run on, like `'0-1'` or `'0,2'`. */
  cpusetCpus(cpus: string): this {
    if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(cpus)) throw new CgroupValueError('cpuset.cpus', cpus, 'a CPU list like "0-1" or "0,2"');
    this.resources.cpusetCpus = cpus;
    return this;
  }

  /** The memory nodes the group may use, like `'0'`. */
  cpusetMems(mems: string): this {
    if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(mems)) throw new CgroupValueError('cpuset.mems', mems, 'a node list like "0"');
    this.resources.cpusetMems = mems;
    return this;
  }

  private throttle(device: string, key: 'rbps' | 'wbps' | 'riops' | 'wiops', value: Rate, file: string): this {
    const dev = blockDevice(device, file);
    const n = parseBytes(value, file);
    if (n === 'max' || n === 0) throw new CgroupValueError(file, value, 'a positive rate like "10mb" (per second) or a number');
    const list = (this.resources.io ??= []);
    const i = list.findIndex((d) => d.major === dev.major && d.minor === dev.minor);
    const entry: DeviceThrottle = { ...(list[i] ?? dev), [key]: n };
    if (i >= 0) list[i] = entry;
    else list.push(entry);
    return this;
  }

  /** Read bandwidth limit of a block device (`'/dev/vda'` or `'253:0'`), e.g. `'10mb'` per second. */
  ioReadBps(device: string, rate: Rate): this {
    return this.throttle(device, 'rbps', rate, this.version === 2 ? 'io.max' : 'blkio.throttle.read_bps_device');
  }

  /** Write bandwidth limit of a block device. */
  ioWriteBps(device: string, rate: Rate): this {
    return this.throttle(device, 'wbps', rate, this.version === 2 ? 'io.max' : 'blkio.throttle.write_bps_device');
  }

  /** Read operations per second limit of a block device. */
  ioReadIops(device: string, iops: number): this {
    return this.throttle(device, 'riops', iops, this.version === 2 ? 'io.max' : 'blkio.throttle.read_iops_device');
  }

  /** Write operations per second limit of a block device. */
  ioWriteIops(device: string, iops: number): this {
    return this.throttle(device, 'wiops', iops, this.version === 2 ? 'io.max' : 'blkio.throttle.write_iops_device');
  }

  /** Relative IO weight, 1..10000 (v2 scale; converted to blkio.weight on v1). */
  ioWeight(weight: number): this {
    this.resources.ioWeight = intInRange(weight, 1, 10000, 'io.weight');
    delete this.resources.blkioWeight;
    return this;
  }

  /** Relative IO weight on v1's scale, 10..1000 (Docker's `--blkio-weight`). */
  blkioWeight(weight: number): this {
    this.resources.blkioWeight = intInRange(weight, 10, 1000, 'blkio.weight');
    delete this.resources.ioWeight;
    return this;
  }

  /** Maximum number of tasks (processes and threads), or `'max'`. */
  pidsMax(max: number | 'max'): this {
    this.resources.pidsMax = max === 'max' ? 'max' : intInRange(max, 1, 4_194_304, 'pids.max');
    return this;
  }

  /** Huge page limit for a page size (`'2MB'`, `'1GB'`). */
  hugetlbMax(pageSize: string, size: ByteSize): this {
    if (!/^\d+[KMG]B$/.test(pageSize)) throw new CgroupValueError('hugetlb', pageSize, 'a page size like "2MB" or "1GB"');
    (this.resources.hugetlb ??= {})[pageSize] = parseBytes(size, `hugetlb.${pageSize}`);
    return this;
  }

  /**
   * Allows access to a device class: `{ type: 'c', major: 1, minor: 3, access: 'rwm' }`.
   *
   * The first device rule makes the cgroup deny every device; rules then apply in order, with
   * the v1 devices controller's meaning on both versions (v1: devices.deny `a`, then
   * devices.allow / devices.deny per rule; v2: an eBPF device program generated from the same
   * list and attached to the cgroup). Without any device rule, devices are not restricted.
   */
  devicesAllow(rule: DeviceRule): this {
    return this.deviceRule(rule, true);
  }

  /**
   * Denies access to a device class. After `devicesAllow({ type: 'a', ... })` this makes a
   * deny-list; otherwise it narrows an earlier allow rule with exactly the same numbers. A
   * rule that would cut into a wider earlier rule (`allow c *:* m`, then `deny c 1:3 m`) is a
   * `CgroupValueError`: v1 silently ignores it, and ctrkit does not pretend it holds.
   */
  devicesDeny(rule: DeviceRule): this {
    return this.deviceRule(rule, false);
  }

  /**
   * Allows the devices every runc (Docker, containerd, Podman) container may use:
   * {@link DEFAULT_DEVICE_RULES}. Add a container's own devices with `devicesAllow()`.
   */
  devicesDefault(): this {
    for (const rule of DEFAULT_DEVICE_RULES) this.deviceRule(rule, true);
    return this;
  }

  private deviceRule(rule: DeviceRule, allow: boolean): this {
    const next = [...(this.resources.devices ?? []), checkDeviceRule(rule, allow)];
    reduceDeviceRules(next); // refuses, now, a list the kernel would misread
    this.resources.devices = next;
    return this;
  }

  // ---- lifecycle ----------------------------------------------------------------------

  /** Creates the cgroup (and missing parents), enables what it needs, and applies the limits. */
  abstract create(): Promise<this>;

  /**
   * Opens an existing cgroup, to read its stats, watch its events, or add processes to it.
   * ctrkit never writes limits into, nor removes, a cgroup it did not create, unless told to
   * (`remove({ force: true })`).
   */
  async open(): Promise<this> {
    if (!(await this.exists())) {
      throw new CgroupError('ERR_CGROUP_NOT_FOUND', `cgroup ${this.path} does not exist (${this.directories()[0]})`);
    }
    return this;
  }

  /** Throws unless this handle created the cgroup. @internal */
  protected assertOwned(what: string): void {
    if (!this.owned) throw new CgroupError('ERR_CGROUP_NOT_OWNED', `refusing to ${what} ${this.path}: this handle did not create it`);
  }
  /** Writes the recorded limits to an existing cgroup (like `docker update`). */
  abstract apply(): Promise<void>;
  /** Moves a process, with all its threads, into the cgroup. */
  abstract addProcess(pid: number): Promise<void>;
  /** The PIDs in the cgroup (not its children). */
  abstract processes(): Promise<number[]>;
  /** Normalized statistics. */
  abstract stats(): Promise<CgroupStats>;
  /** Pressure stall information (v2; undefined parts where the kernel has none). */
  abstract pressure(): Promise<CgroupPressure>;
  /** Memory and state events as they happen, until `signal` aborts. */
  abstract events(options?: { signal?: AbortSignal }): AsyncIterable<CgroupEvent>;
  /** Freezes every process in the cgroup and waits until they are. */
  abstract freeze(): Promise<void>;
  /** Thaws a frozen cgroup. */
  abstract thaw(): Promise<void>;
  /** Kills every process in the cgroup (and below) and waits until they are gone. */
  abstract kill(options?: { signal?: AbortSignal }): Promise<void>;

  /**
   * Statistics every `intervalMs`, with the CPU use over the last interval as a percentage of
   * one CPU, like `docker stats`; ends when `signal` aborts or the cgroup is gone.
   */
  async *statsStream(options: { intervalMs?: number; signal?: AbortSignal } = {}): AsyncGenerator<StatsSample> {
    const interval = options.intervalMs ?? 1000;
    let prev: { usage: number; at: number } | undefined;
    while (!options.signal?.aborted) {
      let stats: CgroupStats;
      try {
        stats = await this.stats();
      } catch {
        return; // removed meanwhile
      }
      const at = performance.now();
      const usage = stats.cpu?.usageUsec ?? 0;
      const cpuPercent = prev ? (100 * (usage - prev.usage)) / ((at - prev.at) * 1000) : 0;
      prev = { usage, at };
      const limit = stats.memory?.limit;
      yield { stats, cpuPercent, memoryPercent: limit && stats.memory ? (100 * stats.memory.current) / limit : undefined };
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, interval);
        options.signal?.addEventListener(
          'abort',
          () => {
            clearTimeout(t);
            resolve();
          },
          { once: true },
        );
      });
    }
  }

  /** True when the cgroup's directory exists (in the first hierarchy it spans). */
  async exists(): Promise<boolean> {
    const [dir] = this.directories();
    // cgroupfs lives in kernel memory: a stat takes microseconds, less than a thread-pool round trip.
    return dir !== undefined && existsSync(dir);
  }

  /** Creates `dir` and any missing parents below `root`, remembering what it made. @internal */
  protected async mkdirTracked(root: string, rel: string): Promise<string[]> {
    const made: string[] = [];
    let cur = root;
    for (const part of rel.split('/')) {
      cur = join(cur, part);
      try {
        // Synchronously (see ./fs.ts): an in-memory directory, made in microseconds.
        mkdirSync(cur);
        made.push(cur);
        this.created.push(cur);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new CgroupError('ERR_CGROUP_CREATE', `creating ${cur} failed: ${(e as NodeJS.ErrnoException).code}`, { file: cur, cause: e });
        }
      }
    }
    return made;
  }

  /**
   * Removes the cgroup: kills its members and waits for them, removes child cgroups first,
   * retries while the kernel still says EBUSY, then removes the parents this handle created.
   * A cgroup this handle did not create is removed only with `force`.
   */
  async remove(options: RemoveOptions = {}): Promise<void> {
    if (!this.owned && !options.force) {
      throw new CgroupError('ERR_CGROUP_NOT_OWNED', `refusing to remove ${this.path}: this handle did not create it (pass { force: true })`);
    }
    if (!(await this.exists()) && this.created.length === 0) return;
    if (options.kill === false) {
      const dirs = (await Promise.all(this.directories().map(async (d) => [d, ...(await descendants(d))]))).flat();
      const busy = (await Promise.all(dirs.map(async (d) => ((await hasProcesses(d)) ? d : undefined)))).filter(Boolean);
      if (busy.length)
        throw new CgroupError('ERR_CGROUP_BUSY', `cgroup ${this.path} still has processes (in ${busy.join(', ')}); kill them or remove with { kill: true }`, {
          file: busy[0],
        });
    } else if (this.removeIfEmpty()) {
      this.removeCreatedParents();
      log('removed %s', this.path);
      return;
    } else {
      await this.kill({ signal: options.signal });
    }
    for (const dir of this.directories()) {
      for (const child of await descendants(dir)) await rmdirRetry(child, options.signal);
      await rmdirRetry(dir, options.signal);
    }
    this.removeCreatedParents();
    log('removed %s', this.path);
  }

  /** The parents this handle made, deepest first; those still in use (someone else's children) stay. */
  private removeCreatedParents(): void {
    const own = new Set(this.directories());
    for (const dir of [...this.created].reverse()) {
      if (own.has(dir)) continue;
      try {
        rmdirSync(dir);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'EBUSY' && code !== 'ENOTEMPTY') throw e;
      }
    }
    this.created.length = 0;
  }

  /**
   * The common case of a removal, in one step: a cgroup whose processes have ended and that
   * has no children goes with one rmdir per hierarchy. False when any directory
   * is still busy (processes or children): the caller kills and retries.
   */
  private removeIfEmpty(): boolean {
    let removed = true;
    for (const d of this.directories()) {
      try {
        rmdirSync(d); // microseconds for an empty cgroup (see ./fs.ts)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') removed = false;
      }
    }
    return removed;
  }

  /** Removes the cgroup if this handle created it. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.owned) await this.remove();
  }
}

/** Child cgroup directories below `dir`, deepest first. @internal */
export async function descendants(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const child = join(dir, e.name);
    out.push(...(await descendants(child)), child);
  }
  return out;
}

/** rmdir, retrying EBUSY: a cgroup stays busy for a moment after its last task died. @internal */
export async function rmdirRetry(dir: string, signal?: AbortSignal): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await rmdir(dir);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || attempt >= 50 || signal?.aborted) {
        throw new CgroupError('ERR_CGROUP_REMOVE', `removing ${dir} failed: ${code}${code === 'EBUSY' ? ' (processes are still in it)' : ''}`, {
          file: dir,
          cause: e,
        });
      }
      await sleep(Math.min(5 * (attempt + 1), 50));
    }
  }
}

/** Whether a cgroup directory still has processes (v1 and v2 both have cgroup.procs). @internal */
export async function hasProcesses(dir: string): Promise<boolean> {
  const procs = await readOptional(dir, 'cgroup.procs');
  return procs !== undefined && procs !== '';
}
