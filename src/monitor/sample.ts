/**
 * One reading of a container's resource use, in the units cAdvisor exports. Shared by the
 * monitor's endpoints and `ctrkit stats`, so both show the same numbers.
 */
import { readlink } from 'node:fs/promises';
import { basename } from 'node:path';
import { Cgroup, type Cgroup as CgroupHandle, type CgroupStats } from '../cgroups/index.js';
import { Container, type RunningContainer } from '../container/index.js';
import { logger } from '../log.js';
import { AbortError } from '../errors.js';
import { readMemoryBreakdown } from './memory-stat.js';

const log = logger('ctrkit:monitor');

/** Bytes read and written on one block device. */
export interface DeviceIo {
  /** `/dev/NAME` when /sys/dev/block knows the device, else `MAJ:MIN`. */
  readonly device: string;
  readonly readBytes: number;
  readonly writeBytes: number;
}

/**
 * A container's resource use at one moment. Counters only grow; rates (CPU %) come from two
 * samples. Every resource field is undefined when the container has no cgroup (it was
 * started without limits), or when the controller is not attached.
 */
export interface ContainerSample {
  /** The container id (64 hex digits). */
  readonly id: string;
  /** Its name, or the short id when it has none (cAdvisor's `name`). */
  readonly name: string;
  /** The image it runs, or `''` for a plain rootfs. */
  readonly image: string;
  /** Its cgroup path below the hierarchy root (cAdvisor's `id` label), when it has one. */
  readonly cgroup: string | undefined;
  /** When its init started, in seconds since the epoch. */
  readonly startTimeSeconds: number | undefined;
  /** When this sample was taken, in milliseconds since the epoch. */
  readonly timestampMs: number;
  /** CPU time used: total, user, system, in seconds. */
  readonly cpuUsageSeconds: number | undefined;
  readonly cpuUserSeconds: number | undefined;
  readonly cpuSystemSeconds: number | undefined;
  /** Time throttled by a CPU quota, in seconds. */
  readonly cpuThrottledSeconds: number | undefined;
  /** The memory counter, page cache included (memory.usage_in_bytes / memory.current). */
  readonly memoryUsageBytes: number | undefined;
  /** Usage minus inactive page cache: what cAdvisor and kubelet call the working set. */
  readonly memoryWorkingSetBytes: number | undefined;
  /** Anonymous memory. */
  readonly memoryRssBytes: number | undefined;
  /** Page cache. */
  readonly memoryCacheBytes: number | undefined;
  /** Highest usage seen, where the kernel keeps it. */
  readonly memoryMaxUsageBytes: number | undefined;
  /** The memory limit; undefined for none. */
  readonly memoryLimitBytes: number | undefined;
  /** Times the limit was hit. */
  readonly memoryFailcnt: number | undefined;
  /** OOM kills in the cgroup. */
  readonly oomEvents: number | undefined;
  /** Processes (thread-group leaders) in the cgroup. */
  readonly processes: number | undefined;
  /** Tasks (threads) in the cgroup: what pids.current counts. */
  readonly threads: number | undefined;
  /** pids.max; undefined for none. */
  readonly threadsMax: number | undefined;
  /** Block IO per device (blkio / io.stat). */
  readonly io: readonly DeviceIo[] | undefined;
}

// Device numbers do not change while the monitor runs: resolve each once.
const deviceNames = new Map<string, Promise<string>>();

function deviceName(major: number, minor: number): Promise<string> {
  const key = `${major}:${minor}`;
  let name = deviceNames.get(key);
  if (!name) {
    name = readlink(`/sys/dev/block/${key}`).then(
      (l) => `/dev/${basename(l)}`,
      () => key,
    );
    deviceNames.set(key, name);
  }
  return name;
}

function memoryDir(cg: CgroupHandle): string | undefined {
  return cg.version === 1 ? cg.dirs.get('memory') : cg.directories()[0];
}

async function openQuietly(cgroup: { version: 1 | 2; path: string }): Promise<CgroupHandle | undefined> {
  const cg = cgroup.version === 1 ? Cgroup.v1(cgroup.path) : Cgroup.v2(cgroup.path);
  return cg.open().catch(() => undefined); // removed since the record was read
}

/** Samples one container. A container that ended meanwhile gives a sample without resource numbers. */
export async function sampleContainer(c: RunningContainer): Promise<ContainerSample> {
  const info = await c.inspect();
  const cg = info.cgroup && (await openQuietly(info.cgroup));
  let stats: CgroupStats | undefined;
  let procs: number[] | undefined;
  try {
    [stats, procs] = cg ? await Promise.all([cg.stats(), cg.processes()]) : [undefined, undefined];
  } catch (e) {
    log('sampling %s: %s', info.id, (e as Error).message); // it ended between open and read
  }
  const memDir = cg && memoryDir(cg);
  const breakdown = memDir && stats?.memory ? await readMemoryBreakdown(memDir, cg.version) : undefined;
  const usage = stats?.memory?.current;
  const io =
    stats?.io &&
    (await Promise.all(stats.io.map(async (d) => ({ device: await deviceName(d.major, d.minor), readBytes: d.readBytes, writeBytes: d.writeBytes }))));
  const sec = (usec: number | undefined) => (usec === undefined ? undefined : usec / 1e6);
  return {
    id: info.id,
    name: info.name ?? info.id.slice(0, 12),
    image: info.image ?? '',
    cgroup: info.cgroup && `/${info.cgroup.path}`,
    startTimeSeconds: info.startedAt && info.startedAt.getTime() / 1000,
    timestampMs: Date.now(),
    cpuUsageSeconds: sec(stats?.cpu?.usageUsec),
    cpuUserSeconds: sec(stats?.cpu?.userUsec),
    cpuSystemSeconds: sec(stats?.cpu?.systemUsec),
    cpuThrottledSeconds: sec(stats?.cpu?.throttledUsec),
    memoryUsageBytes: usage,
    // cAdvisor's definition; never below zero (the two files are not read atomically).
    memoryWorkingSetBytes: usage === undefined ? undefined : Math.max(0, usage - (breakdown?.inactiveFile ?? 0)),
    memoryRssBytes: breakdown?.rss,
    memoryCacheBytes: breakdown?.cache,
    memoryMaxUsageBytes: stats?.memory?.peak,
    memoryLimitBytes: stats?.memory?.limit,
    memoryFailcnt: stats?.memory?.failcnt,
    oomEvents: stats?.memory?.oomKills,
    processes: procs?.length,
    threads: stats?.pids?.current,
    threadsMax: stats?.pids?.max,
    io,
  };
}

/** Options of {@link sampleContainers}. */
export interface SampleOptions {
  /** The state root whose running containers are sampled. @defaultValue ctrkit's default state root */
  readonly stateRoot?: string;
  /** Cancels the sampling. */
  readonly signal?: AbortSignal;
}

/** Samples every running container of a state root (`Container.list()`), in list order. */
export async function sampleContainers(options: SampleOptions = {}): Promise<ContainerSample[]> {
  if (options.signal?.aborted) throw new AbortError(options.signal.reason);
  const list = await Container.list({ stateRoot: options.stateRoot });
  const out: ContainerSample[] = [];
  for (const c of list) {
    if (options.signal?.aborted) throw new AbortError(options.signal.reason);
    try {
      out.push(await sampleContainer(c));
    } catch (e) {
      log('skipping %s: %s', c.id, (e as Error).message); // removed while we listed
    }
  }
  return out;
}
