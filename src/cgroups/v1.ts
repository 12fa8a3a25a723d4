import { open, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { logger } from '../log.js';
import { AbortError } from '../errors.js';
import { close } from '../sys/libc.js';
import { eventfd, watchEventfd } from '../sys/eventfd.js';
import { CgroupBase, descendants, hasProcesses, sleep, type CgroupOptions } from './base.js';
import { detectCgroupLayoutSync, parseCgroupLayout } from './detect.js';
import { formatDeviceRule } from './device-rules.js';
import { CgroupError, ControllerUnavailableError } from './errors.js';
import { parseKeyValues, readCgroupFile, readOptional, writeCgroupBatch, writeCgroupFile } from './fs.js';
import type { CgroupEvent, CgroupPressure, CgroupStats, DeviceIoStats } from './stats.js';
import { ioToBlkioWeight, weightToShares } from './units.js';
import { controllersFor, killEach } from './v2.js';

const log = logger('ctrkit:cgroups');
// v1 reports "no limit" as the largest page-aligned signed 64-bit value.
const UNLIMITED = 2 ** 62;
const USER_HZ = 100;

/**
 * A cgroup in the legacy (v1) hierarchies: one directory per controller mount
 * (memory, cpu, cpuacct, cpuset, blkio, pids, devices, freezer ...), all at the same path.
 */
export class CgroupV1 extends CgroupBase {
  readonly version = 1 as const;
  /** Controller name → the directory of this cgroup in that controller's hierarchy. */
  readonly dirs: ReadonlyMap<string, string>;

  /** @internal */
  constructor(path: string, options: CgroupOptions = {}) {
    super(path);
    const layout =
      options.root === undefined
        ? (options.layout ?? detectCgroupLayoutSync())
        : parseCgroupLayout(
            // A custom root is laid out like /sys/fs/cgroup: one directory per controller.
            ['cpu', 'cpuacct', 'cpuset', 'memory', 'blkio', 'pids', 'devices', 'freezer', 'hugetlb']
              .map((c, i) => `${i} 0 0:0 / ${join(options.root!, c)} rw - cgroup cgroup rw,${c}`)
              .join('\n'),
          );
    const dirs = new Map<string, string>();
    for (const m of layout.mounts) {
      if (m.version !== 1) continue;
      for (const c of m.controllers) if (!c.startsWith('name=')) dirs.set(c, join(m.path, this.path));
    }
    if (dirs.size === 0) throw new ControllerUnavailableError('cgroup v1', 'no v1 controller hierarchy is mounted on this host');
    this.dirs = dirs;
  }

  /**
   * The controllers this cgroup spans. Always those that account for what `stats()` reports
   * and what `kill()` needs (memory, pids, cpuacct, blkio, freezer), plus those its limits
   * need. Not cpu without a CPU limit: moving a task into a v1 cpu cgroup waits for an RCU
   * grace period (12-17 ms measured here), the largest single cost of starting a container.
   */
  private active: Set<string> | undefined;

  directories(): string[] {
    return this.directoriesOf(this.active ?? new Set(this.dirs.keys()));
  }

  /** The directories of these controllers' hierarchies, each once. */
  private directoriesOf(controllers: ReadonlySet<string>): string[] {
    return [...new Set([...this.dirs].filter(([c]) => controllers.has(c)).map(([, d]) => d))];
  }

  /** True when the cgroup exists in any hierarchy. */
  override async exists(): Promise<boolean> {
    for (const dir of new Set(this.dirs.values())) if (existsSync(dir)) return true;
    return false;
  }

  override async open(): Promise<this> {
    await super.open();
    const present = new Set<string>();
    for (const [c, d] of this.dirs)
      if (
        await stat(d).then(
          () => true,
          () => false,
        )
      )
        present.add(c);
    this.active = present;
    return this;
  }

  private controllersNeeded(): Set<string> {
    const need = new Set(['memory', 'pids', 'cpuacct', 'blkio', 'freezer']);
    for (const c of controllersFor(this.resources)) need.add(c === 'io' ? 'blkio' : c);
    if (this.resources.devices?.length) need.add('devices');
    // Controllers that share a hierarchy with a needed one come along (cpu,cpuacct mounted together).
    for (const [c, d] of this.dirs) if ([...need].some((n) => this.dirs.get(n) === d)) need.add(c);
    return new Set([...need].filter((c) => this.dirs.has(c)));
  }

  private dir(controller: string): string {
    const d = this.dirs.get(controller);
    if (!d) throw new ControllerUnavailableError(controller, `no v1 hierarchy has it (mounted v1 controllers: ${[...this.dirs.keys()].join(' ')})`);
    return d;
  }

  /** The hierarchy root of a controller's mount. */
  private mountOf(controller: string): string {
    const d = this.dir(controller);
    return d.slice(0, d.length - this.path.length - 1);
  }

  async create(): Promise<this> {
    const r = this.resources;
    if (r.memoryHigh !== undefined) throw new ControllerUnavailableError('memory.high', 'cgroup v1 has no equivalent of memory.high (use memoryMax)');
    for (const c of controllersFor(r)) this.dir(c === 'io' ? 'blkio' : c);
    if (r.devices?.length) this.dir('devices');
    if (await this.exists()) {
      throw new CgroupError('ERR_CGROUP_EXISTS', `${this.directories()[0]} already exists (left by an earlier run? remove it first)`);
    }
    this.owned = true;
    this.active = this.controllersNeeded();
    try {
      const mounts = new Map<string, string>();
      for (const c of this.active) mounts.set(this.mountOf(c), c);
      // The hierarchies are independent: made side by side.
      await Promise.all(
        [...mounts].map(async ([mount, controller]) => {
          const made = await this.mkdirTracked(mount, this.path);
          // cpuset refuses tasks until cpus and mems are set: inherit the parent's, level by level.
          if (controller === 'cpuset' || this.dirs.get('cpuset') === join(mount, this.path)) {
            for (const dir of made) {
              for (const f of ['cpuset.cpus', 'cpuset.mems']) {
                if ((await readCgroupFile(dir, f)) === '') await writeCgroupFile(dir, f, await readCgroupFile(join(dir, '..'), f));
              }
            }
          }
        }),
      );
      await this.apply();
    } catch (e) {
      await this.remove().catch((err: unknown) => log('rollback of %s failed: %s', this.path, (err as Error).message));
      throw e;
    }
    log('created v1 cgroup %s in %d hierarchies', this.path, this.directories().length);
    return this;
  }

  async apply(): Promise<void> {
    this.assertOwned('write limits into');
    const r = this.resources;
    const w = (controller: string, file: string, value: string | number) => writeCgroupFile(this.dir(controller), file, String(value));
    if (r.memoryMax !== undefined) await w('memory', 'memory.limit_in_bytes', r.memoryMax === 'max' ? -1 : r.memoryMax);
    if (r.memoryLow !== undefined) await w('memory', 'memory.soft_limit_in_bytes', r.memoryLow);
    if (r.memorySwapMax !== undefined) {
      const memDir = this.dir('memory');
      if ((await readOptional(memDir, 'memory.memsw.limit_in_bytes')) === undefined) {
        throw new ControllerUnavailableError('memory.memsw', 'swap accounting is off in this kernel (boot with swapaccount=1)');
      }
      // v1 limits memory+swap together.
      const memsw = r.memorySwapMax === 'max' || r.memoryMax === undefined || r.memoryMax === 'max' ? -1 : r.memoryMax + r.memorySwapMax;
      await w('memory', 'memory.memsw.limit_in_bytes', memsw);
    }
    const shares = r.cpuShares ?? (r.cpuWeight === undefined ? undefined : weightToShares(r.cpuWeight));
    if (shares !== undefined) await w('cpu', 'cpu.shares', shares);
    if (r.cpuMax) {
      await w('cpu', 'cpu.cfs_period_us', r.cpuMax.periodUs);
      await w('cpu', 'cpu.cfs_quota_us', r.cpuMax.quotaUs === 'max' ? -1 : r.cpuMax.quotaUs);
    }
    if (r.cpusetCpus !== undefined) await w('cpuset', 'cpuset.cpus', r.cpusetCpus);
    if (r.cpusetMems !== undefined) await w('cpuset', 'cpuset.mems', r.cpusetMems);
    for (const d of r.io ?? []) {
      const dev = `${d.major}:${d.minor}`;
      if (d.rbps !== undefined) await w('blkio', 'blkio.throttle.read_bps_device', `${dev} ${d.rbps}`);
      if (d.wbps !== undefined) await w('blkio', 'blkio.throttle.write_bps_device', `${dev} ${d.wbps}`);
      if (d.riops !== undefined) await w('blkio', 'blkio.throttle.read_iops_device', `${dev} ${d.riops}`);
      if (d.wiops !== undefined) await w('blkio', 'blkio.throttle.write_iops_device', `${dev} ${d.wiops}`);
    }
    const blkioWeight = r.blkioWeight ?? (r.ioWeight === undefined ? undefined : ioToBlkioWeight(r.ioWeight));
    if (blkioWeight !== undefined) {
      // With the multiqueue schedulers the weight lives in BFQ's file, when there is one at all.
      const blkio = this.dir('blkio');
      const file =
        (await readOptional(blkio, 'blkio.weight')) !== undefined
          ? 'blkio.weight'
          : (await readOptional(blkio, 'blkio.bfq.weight')) !== undefined
            ? 'blkio.bfq.weight'
            : undefined;
      if (!file) throw new ControllerUnavailableError('blkio.weight', 'no IO scheduler with weights (BFQ) serves this cgroup');
      await w('blkio', file, blkioWeight);
    }
    if (r.pidsMax !== undefined) await w('pids', 'pids.max', r.pidsMax === 'max' ? 'max' : r.pidsMax);
    for (const [size, limit] of Object.entries(r.hugetlb ?? {})) await w('hugetlb', `hugetlb.${size}.limit_in_bytes`, limit === 'max' ? -1 : limit);
    if (r.devices?.length) {
      writeCgroupBatch(this.dir('devices'), [
        ['devices.deny', 'a'],
        ...r.devices.map((d) => [d.allow ? 'devices.allow' : 'devices.deny', formatDeviceRule(d)] as const),
      ]);
    }
  }

  /**
   * The `tasks` files of the hierarchies this cgroup spans: a thread that writes `0` to each
   * joins the cgroup itself, without the RCU grace period that moving another process costs.
   */
  taskFiles(): string[] {
    return this.directories().map((d) => join(d, 'tasks'));
  }

  /**
   * The `tasks` files {@link CgroupV1.create} makes, known before it ran: a start plans its
   * mounts and threads while its cgroup is being made. @internal
   */
  plannedTaskFiles(): string[] {
    return this.directoriesOf(this.active ?? this.controllersNeeded()).map((d) => join(d, 'tasks'));
  }

  async addProcess(pid: number): Promise<void> {
    for (const dir of this.directories()) await writeCgroupFile(dir, 'cgroup.procs', String(pid));
  }

  async processes(): Promise<number[]> {
    const dir = this.dirs.get('pids') ?? this.dirs.get('memory') ?? this.directories()[0]!;
    return (await readCgroupFile(dir, 'cgroup.procs')).split('\n').filter(Boolean).map(Number);
  }

  async stats(): Promise<CgroupStats> {
    const on = (c: string) => this.dirs.has(c) && (this.active?.has(c) ?? true);
    const read = (c: string, f: string) => (on(c) ? readOptional(this.dirs.get(c)!, f) : Promise.resolve(undefined));
    const [usage, maxUsage, limit, failcnt, oom, cpuUsage, cpuacct, cpuStat, ioBytes, ioOps, pids, pidsMax] = await Promise.all([
      read('memory', 'memory.usage_in_bytes'),
      read('memory', 'memory.max_usage_in_bytes'),
      read('memory', 'memory.limit_in_bytes'),
      read('memory', 'memory.failcnt'),
      read('memory', 'memory.oom_control'),
      read('cpuacct', 'cpuacct.usage'),
      read('cpuacct', 'cpuacct.stat'),
      read('cpu', 'cpu.stat'),
      read('blkio', 'blkio.throttle.io_service_bytes'),
      read('blkio', 'blkio.throttle.io_serviced'),
      read('pids', 'pids.current'),
      read('pids', 'pids.max'),
    ]);
    const oc = parseKeyValues(oom ?? '');
    const acct = parseKeyValues(cpuacct ?? '');
    const cs = parseKeyValues(cpuStat ?? '');
    const lim = limit === undefined ? undefined : Number(limit);
    return {
      memory:
        usage === undefined
          ? undefined
          : {
              current: Number(usage),
              peak: maxUsage === undefined ? undefined : Number(maxUsage),
              limit: lim === undefined || lim >= UNLIMITED ? undefined : lim,
              failcnt: Number(failcnt ?? 0),
              oomEvents: oc.oom_kill ?? 0,
              oomKills: oc.oom_kill ?? 0,
            },
      cpu:
        cpuUsage === undefined
          ? undefined
          : {
              usageUsec: Math.floor(Number(cpuUsage) / 1000),
              userUsec: ((acct.user ?? 0) * 1_000_000) / USER_HZ,
              systemUsec: ((acct.system ?? 0) * 1_000_000) / USER_HZ,
              periods: cs.nr_periods ?? 0,
              throttledPeriods: cs.nr_throttled ?? 0,
              throttledUsec: Math.floor((cs.throttled_time ?? 0) / 1000),
            },
      io: ioBytes === undefined ? undefined : parseBlkio(ioBytes, ioOps ?? ''),
      pids: pids === undefined ? undefined : { current: Number(pids), max: pidsMax === undefined || pidsMax === 'max' ? undefined : Number(pidsMax) },
    };
  }

  /** v1 has no per-cgroup pressure files: every part is undefined (see /proc/pressure for the host's). */
  async pressure(): Promise<CgroupPressure> {
    return { cpu: undefined, memory: undefined, io: undefined };
  }

  /**
   * OOM notifications through v1's only interface: an eventfd registered with
   * cgroup.event_control against memory.oom_control. Each notification yields `oom`, and an
   * `oom_kill` when the kill counter moved.
   */
  async *events(options: { signal?: AbortSignal } = {}): AsyncGenerator<CgroupEvent> {
    const memDir = this.dir('memory');
    const efd = eventfd();
    const oomControl = await open(join(memDir, 'memory.oom_control'), 'r');
    let watcher: { close(): void } | undefined;
    const queue: CgroupEvent[] = [];
    let wake: (() => void) | undefined;
    let kills = parseKeyValues(await readCgroupFile(memDir, 'memory.oom_control')).oom_kill ?? 0;
    const onAbort = () => wake?.();
    options.signal?.addEventListener('abort', onAbort);
    try {
      await writeCgroupFile(memDir, 'cgroup.event_control', `${efd} ${oomControl.fd}`);
      watcher = watchEventfd(efd, (count) => {
        for (let i = 0n; i < count; i++) queue.push({ type: 'oom', value: 1 });
        wake?.();
      });
      while (!options.signal?.aborted) {
        if (queue.length === 0) await new Promise<void>((r) => (wake = r));
        wake = undefined;
        while (queue.length) {
          const ev = queue.shift()!;
          yield ev;
          // The kill happens just after the notification: give the counter a moment.
          for (let i = 0; i < 20; i++) {
            const now = parseKeyValues((await readOptional(memDir, 'memory.oom_control')) ?? '').oom_kill ?? kills;
            if (now !== kills) {
              kills = now;
              yield { type: 'oom_kill', value: now };
              break;
            }
            await sleep(5);
          }
        }
      }
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      watcher?.close();
      close(efd);
      await oomControl.close();
    }
  }

  async freeze(): Promise<void> {
    await this.setFreezer('FROZEN');
  }

  async thaw(): Promise<void> {
    await this.setFreezer('THAWED');
  }

  private async setFreezer(state: 'FROZEN' | 'THAWED', ms = 5000): Promise<void> {
    const dir = this.dir('freezer');
    await writeCgroupFile(dir, 'freezer.state', state);
    const end = Date.now() + ms;
    while ((await readCgroupFile(dir, 'freezer.state')) !== state) {
      if (Date.now() > end)
        throw new CgroupError('ERR_CGROUP_TIMEOUT', `${dir}: freezer.state did not become ${state} within ${ms} ms`, { file: join(dir, 'freezer.state') });
      await sleep(5);
    }
  }

  /** Freezes (so nothing forks meanwhile), SIGKILLs every member, thaws, and waits until all are gone. */
  async kill(options: { signal?: AbortSignal } = {}): Promise<void> {
    if (!(await this.exists())) return;
    const all = async () => (await Promise.all(this.directories().map(async (d) => [d, ...(await descendants(d))]))).flat();
    // The common case at removal: the container already ended. Nothing to freeze or kill.
    if (!(await Promise.all((await all()).map(hasProcesses))).some(Boolean)) return;
    const frozen =
      this.dirs.has('freezer') &&
      (this.active?.has('freezer') ?? true) &&
      (await this.setFreezer('FROZEN').then(
        () => true,
        () => false,
      ));
    await killEach(await all());
    if (frozen) await this.setFreezer('THAWED');
    const end = Date.now() + 10_000;
    for (;;) {
      const busy = await Promise.all((await all()).map(hasProcesses));
      if (!busy.some(Boolean)) return;
      if (options.signal?.aborted) throw new AbortError(options.signal.reason);
      if (Date.now() > end) throw new CgroupError('ERR_CGROUP_TIMEOUT', `processes of ${this.path} did not die within 10 s`);
      await killEach(await all());
      await sleep(5);
    }
  }
}

/** Parses blkio.throttle.io_service_bytes / io_serviced: `8:0 Read 123` lines. @internal */
export function parseBlkio(bytes: string, ops: string): DeviceIoStats[] {
  const devs = new Map<string, { readBytes: number; writeBytes: number; readOps: number; writeOps: number }>();
  const take = (text: string, r: 'readBytes' | 'readOps', w: 'writeBytes' | 'writeOps') => {
    for (const line of text.split('\n')) {
      const [dev, op, n] = line.trim().split(/\s+/);
      if (!dev || !/^\d+:\d+$/.test(dev) || n === undefined) continue;
      const e = devs.get(dev) ?? { readBytes: 0, writeBytes: 0, readOps: 0, writeOps: 0 };
      if (op === 'Read') e[r] = Number(n);
      if (op === 'Write') e[w] = Number(n);
      devs.set(dev, e);
    }
  };
  take(bytes, 'readBytes', 'writeBytes');
  take(ops, 'readOps', 'writeOps');
  return [...devs].map(([dev, e]) => {
    const [major, minor] = dev.split(':').map(Number);
    return { major: major ?? 0, minor: minor ?? 0, ...e };
  });
}
