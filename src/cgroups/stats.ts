/** One normalized shape of cgroup statistics, whichever cgroup version produced it. */

/** Memory use. Bytes unless said otherwise. */
export interface MemoryStats {
  /** Current usage (v2 memory.current, v1 memory.usage_in_bytes). */
  readonly current: number;
  /** Highest usage seen (v2 memory.peak, v1 memory.max_usage_in_bytes), when the kernel has it. */
  readonly peak: number | undefined;
  /** The limit in force, or undefined for none. */
  readonly limit: number | undefined;
  /** Times the limit was hit (v1 memory.failcnt, v2 memory.events max). */
  readonly failcnt: number;
  /** Times the OOM killer was invoked for this cgroup. */
  readonly oomEvents: number;
  /** Processes killed by the OOM killer in this cgroup. */
  readonly oomKills: number;
}

/** CPU time, in microseconds. */
export interface CpuStats {
  /** Total CPU time used. */
  readonly usageUsec: number;
  /** In user mode. */
  readonly userUsec: number;
  /** In kernel mode. */
  readonly systemUsec: number;
  /** CFS periods that have elapsed (with a quota). */
  readonly periods: number;
  /** Periods in which the group was throttled. */
  readonly throttledPeriods: number;
  /** Total time throttled. */
  readonly throttledUsec: number;
}

/** IO of one block device. */
export interface DeviceIoStats {
  /** Device numbers. */
  readonly major: number;
  readonly minor: number;
  /** Bytes read and written. */
  readonly readBytes: number;
  readonly writeBytes: number;
  /** Read and write operations. */
  readonly readOps: number;
  readonly writeOps: number;
}

/** Statistics of a cgroup; a part is undefined when its controller is not attached. */
export interface CgroupStats {
  readonly memory: MemoryStats | undefined;
  readonly cpu: CpuStats | undefined;
  readonly io: readonly DeviceIoStats[] | undefined;
  readonly pids: { readonly current: number; readonly max: number | undefined } | undefined;
}

/** One line of a PSI file: the share of time some (or all) tasks were stalled. */
export interface PressureLine {
  /** Percent of wall time stalled, averaged over 10, 60 and 300 s. */
  readonly avg10: number;
  readonly avg60: number;
  readonly avg300: number;
  /** Total stall time in µs. */
  readonly total: number;
}

/** Pressure stall information of one resource. `full` is absent for cpu on older kernels. */
export interface Pressure {
  readonly some: PressureLine;
  readonly full: PressureLine | undefined;
}

/** PSI for the three resources. */
export interface CgroupPressure {
  readonly cpu: Pressure | undefined;
  readonly memory: Pressure | undefined;
  readonly io: Pressure | undefined;
}

/** Parses a *.pressure file. @internal */
export function parsePressure(text: string | undefined): Pressure | undefined {
  if (text === undefined) return undefined;
  const lines: Record<string, PressureLine> = {};
  for (const line of text.split('\n')) {
    const [kind, ...fields] = line.trim().split(/\s+/);
    if (kind !== 'some' && kind !== 'full') continue;
    const kv = Object.fromEntries(fields.map((f) => f.split('=') as [string, string]));
    lines[kind] = { avg10: Number(kv.avg10), avg60: Number(kv.avg60), avg300: Number(kv.avg300), total: Number(kv.total) };
  }
  return lines.some ? { some: lines.some, full: lines.full } : undefined;
}

/** A change seen on a cgroup's event files. */
export interface CgroupEvent {
  /**
   * `oom`: a limit was hit and the OOM killer invoked; `oom_kill`: a process was killed;
   * `max` / `high`: the memory limit / throttling threshold was hit; `populated`: processes
   * came or went; `frozen`: the freezer state changed.
   */
  readonly type: 'oom' | 'oom_kill' | 'max' | 'high' | 'populated' | 'frozen';
  /** The counter after the change (for populated/frozen: 1 or 0). */
  readonly value: number;
}
