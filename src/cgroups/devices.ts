import { statSync, type Stats } from 'node:fs';
import { CgroupValueError } from './errors.js';

/**
 * Resolves a block device given as a path (`/dev/vda`) or as `MAJ:MIN` to its numbers.
 * A path must name a block device: throttling applies to block IO only.
 * @param file - the cgroup file the device is for, named in errors
 */
export function blockDevice(device: string, file: string): { major: number; minor: number } {
  const m = /^(\d+):(\d+)$/.exec(device);
  if (m) return { major: Number(m[1]), minor: Number(m[2]) };
  let st: Stats;
  try {
    st = statSync(device);
  } catch {
    throw new CgroupValueError(file, device, 'an existing block device path like /dev/vda, or MAJ:MIN');
  }
  if (!st.isBlockDevice()) throw new CgroupValueError(file, device, `a block device (${device} is not one)`);
  const rdev = st.rdev;
  // glibc's major()/minor() split of a 64-bit dev_t.
  const major = ((rdev >>> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
  const minor = (rdev & 0xff) | ((rdev >>> 12) & ~0xff);
  return { major, minor };
}
