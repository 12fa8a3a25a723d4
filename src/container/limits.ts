import { statSync } from 'node:fs';
import { join } from 'node:path';
import { Cgroup, type CgroupV1, type CgroupV2, parseBytes, type ByteSize, type DeviceRule, type Rate } from '../cgroups/index.js';
import { delegatedParent, noV1Delegation } from '../cgroups/delegation.js';
import { DEFAULT_PIDS_LIMIT } from './security.js';
import { InvalidOptionError } from '../errors.js';

/** A per-device rate: `'/dev/sda:10mb'` (Docker's form) or an object. */
export type DeviceRate = string | { readonly path: string; readonly rate: Rate };

/** The resource limits `Container.run` accepts, with Docker's names. */
export interface ResourceLimits {
  /** Memory limit (`-m 512m`). */
  readonly memory?: ByteSize;
  /** Memory plus swap (`--memory-swap`); `-1`/`'max'` for unlimited swap. Needs `memory`. */
  readonly memorySwap?: ByteSize;
  /** CPU bandwidth in CPUs (`--cpus 0.5`). */
  readonly cpus?: number;
  /** Relative CPU shares, v1 scale 2..262144 (`--cpu-shares`). */
  readonly cpuShares?: number;
  /** Relative CPU weight, v2 scale 1..10000. */
  readonly cpuWeight?: number;
  /** CPUs to run on (`--cpuset-cpus 0-1`). */
  readonly cpusetCpus?: string;
  /** Maximum number of tasks (`--pids-limit`); 0 or less: no limit. @defaultValue {@link DEFAULT_PIDS_LIMIT} */
  readonly pids?: number;
  /** Read bandwidth per device (`--device-read-bps /dev/sda:10mb`). */
  readonly deviceReadBps?: readonly DeviceRate[];
  /** Write bandwidth per device (`--device-write-bps`). */
  readonly deviceWriteBps?: readonly DeviceRate[];
  /** Read IOPS per device (`--device-read-iops /dev/sda:100`). */
  readonly deviceReadIops?: readonly DeviceRate[];
  /** Write IOPS per device (`--device-write-iops`). */
  readonly deviceWriteIops?: readonly DeviceRate[];
  /** Relative IO weight, v1 scale 10..1000 (`--blkio-weight`). */
  readonly blkioWeight?: number;
  /** Force a cgroup version; by default the host's resource controllers decide. */
  readonly cgroupVersion?: 1 | 2;
}

const KEYS: (keyof ResourceLimits)[] = [
  'memory',
  'memorySwap',
  'cpus',
  'cpuShares',
  'cpuWeight',
  'cpusetCpus',
  'pids',
  'deviceReadBps',
  'deviceWriteBps',
  'deviceReadIops',
  'deviceWriteIops',
  'blkioWeight',
];

function deviceRate(option: string, d: DeviceRate): [string, Rate] {
  if (typeof d !== 'string') return [d.path, d.rate];
  const i = d.lastIndexOf(':');
  if (i <= 0) throw new InvalidOptionError(option, `"${d}" is not DEVICE:RATE, like /dev/sda:10mb`);
  return [d.slice(0, i), d.slice(i + 1)];
}

/** True when any resource limit is set. @internal */
export function hasLimits(limits: ResourceLimits): boolean {
  return KEYS.some((k) => limits[k] !== undefined);
}

/**
 * The cgroup a container with these limits gets, not yet created: Docker's flags mapped onto
 * the chainable setters, which check every value before anything exists.
 * @internal
 */
export function cgroupFor(path: string, limits: ResourceLimits): CgroupV1 | CgroupV2 {
  const cg = limits.cgroupVersion === 1 ? Cgroup.v1(path) : limits.cgroupVersion === 2 ? Cgroup.v2(path) : Cgroup.forHost(path);
  if (limits.memory !== undefined) cg.memoryMax(limits.memory);
  if (limits.memorySwap !== undefined) {
    const total = parseBytes(limits.memorySwap, 'memorySwap');
    const mem = limits.memory === undefined ? undefined : parseBytes(limits.memory, 'memory');
    if (mem === undefined || mem === 'max') throw new InvalidOptionError('memorySwap', 'needs a memory limit as well');
    if (total !== 'max' && total < mem) throw new InvalidOptionError('memorySwap', 'is memory plus swap, so it must be at least `memory`');
    cg.memorySwapMax(total === 'max' ? 'max' : total - mem);
  }
  if (limits.cpus !== undefined) cg.cpus(limits.cpus);
  if (limits.cpuShares !== undefined) cg.cpuShares(limits.cpuShares);
  if (limits.cpuWeight !== undefined) cg.cpuWeight(limits.cpuWeight);
  if (limits.cpusetCpus !== undefined) cg.cpusetCpus(limits.cpusetCpus);
  if (limits.pids !== undefined) cg.pidsMax(limits.pids);
  for (const d of limits.deviceReadBps ?? []) cg.ioReadBps(...deviceRate('deviceReadBps', d));
  for (const d of limits.deviceWriteBps ?? []) cg.ioWriteBps(...deviceRate('deviceWriteBps', d));
  for (const d of limits.deviceReadIops ?? []) {
    const [p, r] = deviceRate('deviceReadIops', d);
    cg.ioReadIops(p, Number(r));
  }
  for (const d of limits.deviceWriteIops ?? []) {
    const [p, r] = deviceRate('deviceWriteIops', d);
    cg.ioWriteIops(p, Number(r));
  }
  if (limits.blkioWeight !== undefined) cg.blkioWeight(limits.blkioWeight);
  return cg;
}

/** The device rule giving a container a host device node (`devices: ['/dev/loop3']`). */
function hostDeviceRule(path: string): DeviceRule {
  const st = statSync(path);
  const rdev = st.rdev;
  // glibc's major()/minor() split of a 64-bit dev_t.
  const major = ((rdev >>> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
  const minor = (rdev & 0xff) | ((rdev >>> 12) & ~0xff);
  return { type: st.isBlockDevice() ? 'b' : 'c', major, minor, access: 'rwm' };
}

/**
 * The cgroup every container gets, limits or not: its own place in the hierarchy (so it can
 * be frozen, counted and killed as a whole, and its cgroup namespace shows nothing else), a
 * task limit ({@link DEFAULT_PIDS_LIMIT} unless `pids` says otherwise; 0 or less: none), and,
 * unless privileged, the default device allow-list plus the devices it was given.
 *
 * Root's containers get `path` at the top of the hierarchy. An unprivileged caller's (which
 * get a cgroup only with limits) go below the cgroup v2 subtree delegated to the caller
 * ({@link delegatedParent}); without one, or on cgroup v1, a `CgroupDelegationError` names
 * what to configure, before anything exists.
 * @internal
 */
export function containerCgroup(
  path: string,
  options: ResourceLimits & { readonly privileged?: boolean; readonly devices?: readonly string[] },
): CgroupV1 | CgroupV2 {
  const pids = options.pids === undefined ? DEFAULT_PIDS_LIMIT : options.pids > 0 ? options.pids : undefined;
  let cg = cgroupFor(path, { ...options, pids });
  if (process.getuid?.() !== 0 && hasLimits(options)) {
    if (cg.version === 1) throw noV1Delegation();
    cg = cgroupFor(join(delegatedParent(cg.root), path), { ...options, pids });
  }
  // runc's allow-list (DEFAULT_DEVICE_RULES of ctrkit/cgroups): the v1 devices controller, or
  // on v2 a BPF device program, which only root may load (runc skips it rootless too).
  if (!options.privileged && process.getuid?.() === 0) {
    cg.devicesDefault();
    for (const rule of (options.devices ?? []).map(hostDeviceRule)) cg.devicesAllow(rule);
  }
  return cg;
}
