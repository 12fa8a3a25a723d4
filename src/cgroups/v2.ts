import { existsSync, watch } from 'node:fs';
import { dirname, join } from 'node:path';
import { logger } from '../log.js';
import { AbortError } from '../errors.js';
import { CgroupBase, descendants, sleep, type CgroupOptions } from './base.js';
import { writable } from './delegation.js';
import { detectCgroupLayoutSync } from './detect.js';
import { attachDeviceFilter, deviceFilterIds } from './device-filter.js';
import { CgroupError, ControllerUnavailableError } from './errors.js';
import { parseKeyValues, readCgroupFile, readOptional, writeCgroupFile } from './fs.js';
import type { CgroupResources } from './resources.js';
import { blkioToIoWeight, sharesToWeight } from './units.js';
import { parsePressure, type CgroupEvent, type CgroupPressure, type CgroupStats, type DeviceIoStats } from './stats.js';

const log = logger('ctrkit:cgroups');

/** The v2 controllers a set of limits needs. @internal */
export function controllersFor(r: CgroupResources): string[] {
  const need = new Set<string>();
  if (r.memoryMax !== undefined || r.memoryHigh !== undefined || r.memoryLow !== undefined || r.memorySwapMax !== undefined) need.add('memory');
  if (r.cpuWeight !== undefined || r.cpuShares !== undefined || r.cpuMax !== undefined) need.add('cpu');
  if (r.cpusetCpus !== undefined || r.cpusetMems !== undefined) need.add('cpuset');
  if (r.io?.length || r.ioWeight !== undefined || r.blkioWeight !== undefined) need.add('io');
  if (r.pidsMax !== undefined) need.add('pids');
  if (r.hugetlb && Object.keys(r.hugetlb).length) need.add('hugetlb');
  return [...need];
}

const max = (v: number | 'max') => (v === 'max' ? 'max' : String(v));

/**
 * A cgroup in the unified (v2) hierarchy: one directory, controllers enabled down the path
 * through `cgroup.subtree_control`, the "no internal processes" rule respected.
 */
export class CgroupV2 extends CgroupBase {
  readonly version = 2 as const;
  /** The cgroup2 mount this cgroup lives in. */
  readonly root: string;
  /** The cgroup's directory. */
  readonly dir: string;
  /**
   * Device rules (`devicesAllow()` ...) are enforced here, by an eBPF device program: lets a
   * caller tell this from older ctrkit versions, whose v2 backend refused them.
   */
  readonly supportsDevices = true as const;

  /** @internal */
  constructor(path: string, options: CgroupOptions = {}) {
    super(path);
    const root = options.root ?? (options.layout ?? detectCgroupLayoutSync()).unified?.path;
    if (!root) throw new ControllerUnavailableError('cgroup2', 'no cgroup2 hierarchy is mounted on this host');
    this.root = root;
    this.dir = join(root, this.path);
  }

  directories(): string[] {
    return [this.dir];
  }

  async create(): Promise<this> {
    const need = controllersFor(this.resources);
    const available = (await readCgroupFile(this.root, 'cgroup.controllers')).split(/\s+/).filter(Boolean);
    for (const c of need) {
      if (!available.includes(c)) {
        throw new ControllerUnavailableError(
          c,
          `the cgroup2 hierarchy at ${this.root} offers only [${available.join(' ')}]` +
            (available.length <= 1 ? ' (on a hybrid host the other controllers are bound to v1: use Cgroup.v1 or Cgroup.forHost)' : ''),
        );
      }
    }
    // Below a subtree delegated to this (unprivileged) process: what its top was given is all
    // there is, since only root may enable more above it.
    const from = nearestExisting(this.root, dirname(this.path));
    if (from !== this.root && !writable(join(dirname(from), 'cgroup.subtree_control'))) {
      const given = (await readCgroupFile(from, 'cgroup.controllers')).split(/\s+/).filter(Boolean);
      for (const c of need) {
        if (!given.includes(c)) {
          throw new ControllerUnavailableError(
            c,
            `${from} offers only [${given.join(' ')}]: "${c}" is not delegated to it ` +
              `(root: echo +${c} > ${dirname(from)}/cgroup.subtree_control; systemd: Delegate=${[...new Set([...given, c])].join(' ')})`,
          );
        }
      }
    }
    const made = await this.mkdirTracked(this.root, this.path);
    if (!made.includes(this.dir)) {
      throw new CgroupError('ERR_CGROUP_EXISTS', `${this.dir} already exists (left by an earlier run? remove it, or use open() to read it)`, {
        file: this.dir,
      });
    }
    this.owned = true;
    try {
      await this.enableControllers(need);
      await this.apply();
    } catch (e) {
      await this.remove().catch((err: unknown) => log('rollback of %s failed: %s', this.dir, (err as Error).message));
      throw e;
    }
    log('created %s (controllers: %s)', this.dir, need.join(' ') || 'none');
    return this;
  }

  /** Enables `need` in cgroup.subtree_control of every ancestor, from the root down. */
  private async enableControllers(need: string[]): Promise<void> {
    if (need.length === 0) return;
    const parts = this.path.split('/');
    let dir = this.root;
    for (let i = 0; i < parts.length; i++) {
      const enabled = (await readCgroupFile(dir, 'cgroup.subtree_control')).split(/\s+/);
      const missing = need.filter((c) => !enabled.includes(c));
      if (missing.length) {
        try {
          await writeCgroupFile(dir, 'cgroup.subtree_control', missing.map((c) => `+${c}`).join(' '));
        } catch (e) {
          const procs = await readOptional(dir, 'cgroup.procs');
          const hint = procs ? ` (${dir} has processes of its own, and v2 allows controllers only for children of cgroups without processes)` : '';
          throw new ControllerUnavailableError(missing.join(','), `cannot enable it in ${dir}/cgroup.subtree_control${hint}: ${(e as Error).message}`);
        }
      }
      dir = join(dir, parts[i]!);
    }
  }

  async apply(): Promise<void> {
    this.assertOwned('write limits into');
    const r = this.resources;
    const w = (file: string, value: string) => writeCgroupFile(this.dir, file, value);
    if (r.memoryMax !== undefined) await w('memory.max', max(r.memoryMax));
    if (r.memoryHigh !== undefined) await w('memory.high', max(r.memoryHigh));
    if (r.memoryLow !== undefined) await w('memory.low', String(r.memoryLow));
    if (r.memorySwapMax !== undefined) {
      if ((await readOptional(this.dir, 'memory.swap.max')) === undefined) {
        throw new ControllerUnavailableError('memory.swap', 'this kernel has no swap accounting (memory.swap.max is missing)');
      }
      await w('memory.swap.max', max(r.memorySwapMax));
    }
    const cpuWeight = r.cpuWeight ?? (r.cpuShares === undefined ? undefined : sharesToWeight(r.cpuShares));
    if (cpuWeight !== undefined) await w('cpu.weight', String(cpuWeight));
    if (r.cpuMax) await w('cpu.max', `${max(r.cpuMax.quotaUs)} ${r.cpuMax.periodUs}`);
    if (r.cpusetCpus !== undefined) await w('cpuset.cpus', r.cpusetCpus);
    if (r.cpusetMems !== undefined) await w('cpuset.mems', r.cpusetMems);
    for (const d of r.io ?? []) {
      const parts = (['rbps', 'wbps', 'riops', 'wiops'] as const).filter((k) => d[k] !== undefined).map((k) => `${k}=${d[k]}`);
      await w('io.max', `${d.major}:${d.minor} ${parts.join(' ')}`);
    }
    const ioWeight = r.ioWeight ?? (r.blkioWeight === undefined ? undefined : blkioToIoWeight(r.blkioWeight));
    if (ioWeight !== undefined) await w('io.weight', `default ${ioWeight}`);
    if (r.pidsMax !== undefined) await w('pids.max', max(r.pidsMax));
    for (const [size, limit] of Object.entries(r.hugetlb ?? {})) await w(`hugetlb.${size}.max`, max(limit));
    // v2 has no devices files: access is decided by an eBPF program attached to the cgroup
    // (any cgroup2 directory takes one, with or without controllers).
    if (r.devices?.length) attachDeviceFilter(this.dir, r.devices);
  }

  /**
   * The ids of the device programs attached to this cgroup (`bpftool prog show id N`): one
   * after `create()` or `apply()` with device rules, none without.
   */
  async devicePrograms(): Promise<number[]> {
    return deviceFilterIds(this.dir);
  }

  async addProcess(pid: number): Promise<void> {
    await writeCgroupFile(this.dir, 'cgroup.procs', String(pid));
  }

  async processes(): Promise<number[]> {
    return (await readCgroupFile(this.dir, 'cgroup.procs')).split('\n').filter(Boolean).map(Number);
  }

  async stats(): Promise<CgroupStats> {
    const read = (f: string) => readOptional(this.dir, f);
    const [current, peak, limit, events, cpu, io, pids, pidsMax] = await Promise.all(
      ['memory.current', 'memory.peak', 'memory.max', 'memory.events', 'cpu.stat', 'io.stat', 'pids.current', 'pids.max'].map(read),
    );
    const ev = parseKeyValues(events ?? '');
    const cs = parseKeyValues(cpu ?? '');
    return {
      memory:
        current === undefined
          ? undefined
          : {
              current: Number(current),
              peak: peak === undefined ? undefined : Number(peak),
              limit: limit === undefined || limit === 'max' ? undefined : Number(limit),
              failcnt: ev.max ?? 0,
              oomEvents: ev.oom ?? 0,
              oomKills: ev.oom_kill ?? 0,
            },
      cpu:
        cpu === undefined
          ? undefined
          : {
              usageUsec: cs.usage_usec ?? 0,
              userUsec: cs.user_usec ?? 0,
              systemUsec: cs.system_usec ?? 0,
              periods: cs.nr_periods ?? 0,
              throttledPeriods: cs.nr_throttled ?? 0,
              throttledUsec: cs.throttled_usec ?? 0,
            },
      io: io === undefined ? undefined : parseIoStat(io),
      pids: pids === undefined ? undefined : { current: Number(pids), max: pidsMax === undefined || pidsMax === 'max' ? undefined : Number(pidsMax) },
    };
  }

  async pressure(): Promise<CgroupPressure> {
    const [cpu, memory, io] = await Promise.all(['cpu.pressure', 'memory.pressure', 'io.pressure'].map((f) => readOptional(this.dir, f)));
    return { cpu: parsePressure(cpu), memory: parsePressure(memory), io: parsePressure(io) };
  }

  /**
   * Watches memory.events and cgroup.events (inotify tells when the kernel changes them) and
   * yields each counter that moved.
   */
  async *events(options: { signal?: AbortSignal } = {}): AsyncGenerator<CgroupEvent> {
    const files = ['memory.events', 'cgroup.events'];
    const last: Record<string, number> = {};
    const snapshot = async (): Promise<CgroupEvent[]> => {
      const out: CgroupEvent[] = [];
      for (const f of files) {
        const kv = parseKeyValues((await readOptional(this.dir, f)) ?? '');
        for (const [k, v] of Object.entries(kv)) {
          const key = `${f}:${k}`;
          if (['oom', 'oom_kill', 'max', 'high', 'populated', 'frozen'].includes(k) && last[key] !== undefined && last[key] !== v) {
            out.push({ type: k as CgroupEvent['type'], value: v });
          }
          last[key] = v;
        }
      }
      return out;
    };
    await snapshot();
    let wake: (() => void) | undefined;
    let changed = false;
    const poke = () => {
      changed = true;
      wake?.();
    };
    const watchers = files
      .filter((f) => last[`${f}:populated`] !== undefined || f === 'memory.events')
      .flatMap((f) => {
        try {
          return [watch(join(this.dir, f), poke)];
        } catch {
          return [];
        }
      });
    const onAbort = () => wake?.();
    options.signal?.addEventListener('abort', onAbort);
    try {
      while (!options.signal?.aborted) {
        if (!changed) await new Promise<void>((r) => (wake = r));
        wake = undefined;
        changed = false;
        if (options.signal?.aborted) break;
        for (const ev of await snapshot()) yield ev;
      }
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      for (const w of watchers) w.close();
    }
  }

  /** Waits until cgroup.events says `key value`, or fails after `ms`. */
  private async waitFor(key: string, value: number, ms: number, signal?: AbortSignal): Promise<void> {
    const end = Date.now() + ms;
    for (;;) {
      const kv = parseKeyValues(await readCgroupFile(this.dir, 'cgroup.events'));
      if (kv[key] === value) return;
      if (signal?.aborted) throw new AbortError(signal.reason);
      if (Date.now() > end)
        throw new CgroupError('ERR_CGROUP_TIMEOUT', `${this.dir}: ${key} did not become ${value} within ${ms} ms`, { file: join(this.dir, 'cgroup.events') });
      await sleep(5);
    }
  }

  async freeze(): Promise<void> {
    await writeCgroupFile(this.dir, 'cgroup.freeze', '1');
    await this.waitFor('frozen', 1, 5000);
  }

  async thaw(): Promise<void> {
    await writeCgroupFile(this.dir, 'cgroup.freeze', '0');
    await this.waitFor('frozen', 0, 5000);
  }

  async kill(options: { signal?: AbortSignal } = {}): Promise<void> {
    if (!(await this.exists())) return;
    if (parseKeyValues((await readOptional(this.dir, 'cgroup.events')) ?? '').populated === 0) return;
    try {
      await writeCgroupFile(this.dir, 'cgroup.kill', '1'); // Linux 5.14+: the kernel kills the whole subtree
    } catch {
      await killEach([this.dir, ...(await descendants(this.dir))]);
    }
    await this.waitFor('populated', 0, 10_000, options.signal);
  }
}

/** The deepest existing directory of `root`/`rel` (`rel` `.` is `root`). */
function nearestExisting(root: string, rel: string): string {
  for (let p = rel; p !== '.' && p !== '' && p !== '/'; p = dirname(p)) if (existsSync(join(root, p))) return join(root, p);
  return root;
}

/** SIGKILL every process listed in the cgroup.procs of `dirs` (the pre-5.14 way). @internal */
export async function killEach(dirs: string[]): Promise<void> {
  for (const dir of dirs) {
    for (const pid of ((await readOptional(dir, 'cgroup.procs')) ?? '').split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

/** Parses io.stat: `8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...`. @internal */
export function parseIoStat(text: string): DeviceIoStats[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [dev = '0:0', ...kvs] = line.trim().split(/\s+/);
      const [major, minor] = dev.split(':').map(Number);
      const kv = Object.fromEntries(kvs.map((p) => p.split('=')).map(([k, v]) => [k, Number(v)]));
      return { major: major ?? 0, minor: minor ?? 0, readBytes: kv.rbytes ?? 0, writeBytes: kv.wbytes ?? 0, readOps: kv.rios ?? 0, writeOps: kv.wios ?? 0 };
    });
}
