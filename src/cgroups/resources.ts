/**
 * One flat description of what a cgroup should enforce (runc's `Resources`): the caller says
 * what, each backend says how. Values are already checked and in kernel units.
 */

/** Throttling of one block device. Rates in bytes/s, operations in IO/s. */
export interface DeviceThrottle {
  /** Device major number. */
  readonly major: number;
  /** Device minor number. */
  readonly minor: number;
  /** Read bytes per second. */
  readonly rbps?: number;
  /** Write bytes per second. */
  readonly wbps?: number;
  /** Read operations per second. */
  readonly riops?: number;
  /** Write operations per second. */
  readonly wiops?: number;
}

/**
 * A device-access rule in the devices controller's words (`c 1:3 rwm`): on cgroup v1 it is
 * written to devices.allow / devices.deny, on cgroup v2 it becomes part of an eBPF program.
 */
export interface DeviceRule {
  /** `a` all devices (with `*:*` and `rwm` only), `c` character, `b` block. */
  readonly type: 'a' | 'c' | 'b';
  /** Major number (0..4095) or `*`. */
  readonly major: number | '*';
  /** Minor number (0..1048575) or `*`. */
  readonly minor: number | '*';
  /** Any of r (read), w (write), m (mknod). */
  readonly access: string;
}

/** A {@link DeviceRule} with its verdict, as `devicesAllow()` / `devicesDeny()` record it. */
export interface DeviceCgroupRule extends DeviceRule {
  /** true: the access is allowed (devices.allow); false: it is denied (devices.deny). */
  readonly allow: boolean;
}

/** Everything a cgroup can be asked to enforce. */
export interface CgroupResources {
  /** Hard memory limit in bytes (v2 memory.max, v1 memory.limit_in_bytes). */
  memoryMax?: number | 'max';
  /** Throttling threshold (v2 memory.high; no v1 equivalent). */
  memoryHigh?: number | 'max';
  /** Protected memory (v2 memory.low, v1 memory.soft_limit_in_bytes). */
  memoryLow?: number;
  /** Swap allowed on top of memoryMax (v2 memory.swap.max; v1 memsw = memory + swap). */
  memorySwapMax?: number | 'max';
  /** Relative CPU weight 1..10000 (v2 cpu.weight; on v1 converted to cpu.shares). */
  cpuWeight?: number;
  /** Relative CPU shares 2..262144 (v1 cpu.shares; on v2 converted to cpu.weight). */
  cpuShares?: number;
  /** CFS bandwidth: quota per period in µs (v2 cpu.max, v1 cfs_quota_us/cfs_period_us). */
  cpuMax?: { readonly quotaUs: number | 'max'; readonly periodUs: number };
  /** CPUs allowed, like `0-1,3`. */
  cpusetCpus?: string;
  /** Memory nodes allowed, like `0`. */
  cpusetMems?: string;
  /** Per-device bandwidth and IOPS limits. */
  io?: DeviceThrottle[];
  /** Relative IO weight 1..10000 (v2 io.weight; on v1 converted to blkio.weight). */
  ioWeight?: number;
  /** Relative IO weight 10..1000 (v1 blkio.weight; on v2 converted to io.weight). */
  blkioWeight?: number;
  /** Maximum number of tasks. */
  pidsMax?: number | 'max';
  /** Huge page limits by page size (`2MB`, `1GB`) in bytes. */
  hugetlb?: Record<string, number | 'max'>;
  /**
   * Device access rules, applied in order after denying everything (v1: devices.allow and
   * devices.deny; v2: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE). None: no restriction.
   */
  devices?: DeviceCgroupRule[];
}
