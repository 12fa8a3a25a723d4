import { CgroupValueError } from './errors.js';

/** A memory size: bytes as a number, a string with a unit, or `'max'` for no limit. */
export type ByteSize = number | string;

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
const BYTES_FORM = 'bytes as a number, a size like "512m", "1.5g", "512MiB", or "max"';

/**
 * Parses a size the way Docker does: `512m`, `1.5g`, `512MiB`, `100k`, a plain number of
 * bytes, or `max`. Units are powers of 1024 (`mb` and `mib` both mean MiB), case does not
 * matter. Returns `'max'` or a whole number of bytes.
 * @param file - the cgroup file the value is for, named in the error
 * @throws {@link CgroupValueError}
 */
export function parseBytes(value: ByteSize, file: string): number | 'max' {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new CgroupValueError(file, value, BYTES_FORM);
    return Math.floor(value);
  }
  if (typeof value !== 'string') throw new CgroupValueError(file, value, BYTES_FORM);
  const v = value.trim().toLowerCase();
  if (v === 'max' || v === '-1') return 'max';
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/.exec(v);
  if (!m) throw new CgroupValueError(file, value, BYTES_FORM);
  return Math.floor(Number(m[1]) * UNITS[m[2]!]!);
}

/** A rate for device throttling: bytes per second (`'10mb'`) or a number. */
export type Rate = ByteSize;

/**
 * Parses a CPU count (`0.5` = half a CPU) into a CFS quota for a period.
 * @returns the quota in microseconds for `periodUs`
 */
export function cpusToQuota(cpus: number, periodUs: number, file: string): number {
  if (typeof cpus !== 'number' || !Number.isFinite(cpus) || cpus <= 0) {
    throw new CgroupValueError(file, cpus, 'a positive number of CPUs, like 0.5 or 2');
  }
  const quota = Math.round(cpus * periodUs);
  // The kernel refuses quotas under 1 ms.
  if (quota < 1000)
    throw new CgroupValueError(file, cpus, `at least ${1000 / periodUs} CPUs with a ${periodUs} µs period (the kernel's minimum quota is 1000 µs)`);
  return quota;
}

/** Checks an integer in a range, for files like cpu.weight. */
export function intInRange(value: number, min: number, max: number, file: string): number {
  if (!Number.isInteger(value) || value < min || value > max) throw new CgroupValueError(file, value, `an integer from ${min} to ${max}`);
  return value;
}

/** cpu.shares (v1, 2..262144) to cpu.weight (v2, 1..10000), the conversion crun and runc use. */
export function sharesToWeight(shares: number): number {
  return 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

/** cpu.weight (v2) back to cpu.shares (v1). */
export function weightToShares(weight: number): number {
  return 2 + Math.floor(((weight - 1) * 262142) / 9999);
}

/** blkio.weight (v1, 10..1000) to io.weight (v2, 1..10000). */
export function blkioToIoWeight(weight: number): number {
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

/** io.weight (v2) back to blkio.weight (v1). */
export function ioToBlkioWeight(weight: number): number {
  return 10 + Math.floor(((weight - 1) * 990) / 9999);
}
