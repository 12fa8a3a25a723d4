/**
 * The one place cgroupfs is read and written (runc's seam): errors carry the path and the
 * value written, and writes never follow a symlink out of the hierarchy.
 * @internal
 */
import { writeFile } from 'node:fs/promises';
import { closeSync, constants, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { CgroupError } from './errors.js';

function describe(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ENOENT':
      return 'no such file (controller not enabled here, or the cgroup is gone?)';
    case 'EBUSY':
      return 'EBUSY (the cgroup is in use, or a v2 cgroup with processes cannot enable controllers for children)';
    case 'EINVAL':
      return 'EINVAL (the kernel refused the value)';
    case 'EOPNOTSUPP':
      return 'EOPNOTSUPP (not supported by this kernel or filesystem)';
    default:
      return e.code ?? e.message;
  }
}

/*
 * cgroupfs files live in kernel memory: reading one, or writing a limit, takes microseconds,
 * while each step of an fs/promises call (open, read or write, close) is a round trip
 * through libuv's thread pool. They are read and written synchronously, apart from the
 * writes that may wait: moving a process (cgroup.procs, tasks: an RCU grace period on v1,
 * 10-20 ms), killing (cgroup.kill) and freezing.
 */
const MAY_WAIT = new Set(['cgroup.procs', 'tasks', 'cgroup.threads', 'cgroup.kill', 'cgroup.freeze', 'freezer.state', 'memory.force_empty']);

/** open, one write(2), close: synchronously. */
function writeNow(path: string, value: string, flag: number): void {
  const fd = openSync(path, flag);
  try {
    writeSync(fd, value);
  } finally {
    closeSync(fd);
  }
}

/** Reads a cgroup file as trimmed text. */
export async function readCgroupFile(dir: string, file: string): Promise<string> {
  const path = join(dir, file);
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (e) {
    throw new CgroupError('ERR_CGROUP_READ', `${path}: ${describe(e as NodeJS.ErrnoException)}`, { file: path, cause: e });
  }
}

/** Reads a cgroup file, or undefined when it does not exist. */
export async function readOptional(dir: string, file: string): Promise<string | undefined> {
  try {
    return readFileSync(join(dir, file), 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Writes one value to a cgroup file (one write(2), as the kernel expects). */
export async function writeCgroupFile(dir: string, file: string, value: string): Promise<void> {
  const path = join(dir, file);
  const flag = constants.O_WRONLY | constants.O_NOFOLLOW;
  try {
    if (MAY_WAIT.has(file)) await writeFile(path, value, { flag });
    else writeNow(path, value, flag);
  } catch (e) {
    throw new CgroupError('ERR_CGROUP_WRITE', `${path}: writing ${JSON.stringify(value)} failed: ${describe(e as NodeJS.ErrnoException)}`, {
      file: path,
      value,
      cause: e,
    });
  }
}

/**
 * Writes values to files of one cgroup in order, each with a write(2) of its own (one rule per
 * write, as devices.allow expects), opening each file once for the whole batch: a container's
 * device list is a dozen rules. Not for the files whose writes may wait (see MAY_WAIT).
 */
export function writeCgroupBatch(dir: string, writes: ReadonlyArray<readonly [file: string, value: string]>): void {
  const fds = new Map<string, number>();
  try {
    for (const [file, value] of writes) {
      const path = join(dir, file);
      try {
        let fd = fds.get(file);
        if (fd === undefined) {
          fd = openSync(path, constants.O_WRONLY | constants.O_NOFOLLOW);
          fds.set(file, fd);
        }
        writeSync(fd, value);
      } catch (e) {
        throw new CgroupError('ERR_CGROUP_WRITE', `${path}: writing ${JSON.stringify(value)} failed: ${describe(e as NodeJS.ErrnoException)}`, {
          file: path,
          value,
          cause: e,
        });
      }
    }
  } finally {
    for (const fd of fds.values()) closeSync(fd);
  }
}

/** Parses "key value" lines (cpu.stat, memory.events, memory.stat). */
export function parseKeyValues(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^-?\d+$/.test(v)) out[k] = Number(v);
  }
  return out;
}
