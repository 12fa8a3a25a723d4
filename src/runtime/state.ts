/**
 * A container's state on disk under the runtime's `--root`: `ROOT/ID/state.json` and, while
 * the container is `created`, `ROOT/ID/exec.fifo`, the FIFO its init waits on. Reading a state
 * needs nothing but the file system (`state` is called often: it loads no more than this).
 * @internal
 */
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { notFound, RuntimeError } from './errors.js';

/**
 * The runtime-spec version in `state` and in the config.json `spec` writes: 1.0.2, which every
 * runtime and tool reads (crun 1.8 refuses a config of 1.2.0). `features` says what is accepted.
 */
export const OCI_VERSION = '1.0.2';

/** The default `--root`. */
export const DEFAULT_ROOT = '/run/ctrkit-runtime';

/** A container's status, as the runtime-spec names them. */
export type Status = 'creating' | 'created' | 'running' | 'paused' | 'stopped';

/** An OCI runtime-spec hook. */
export interface Hook {
  readonly path: string;
  readonly args?: readonly string[];
  readonly env?: readonly string[];
  readonly timeout?: number;
}

/** What the runtime keeps about one container. */
export interface ContainerRecord {
  readonly id: string;
  /** The init's host PID. */
  readonly pid: number;
  /** Its start time (field 22 of /proc/PID/stat): a PID reused by another process does not match. */
  readonly pidStart: string;
  readonly bundle: string;
  readonly rootfs: string;
  /** RFC 3339, nanoseconds. */
  readonly created: string;
  readonly annotations?: Readonly<Record<string, string>>;
  /** The cgroup path (below each hierarchy's root). */
  readonly cgroupPath: string;
  /** The namespaces the container has of its own (an exec enters these). */
  readonly namespaces: readonly string[];
  /** Hooks run after `start` and after `delete`. */
  readonly hooks?: { readonly poststart?: readonly Hook[]; readonly poststop?: readonly Hook[]; readonly startContainer?: readonly Hook[] };
  /** The container's seccomp profile (config.json's linux.seccomp), applied to exec'd processes too. */
  readonly seccomp?: Readonly<Record<string, unknown>>;
  /** The container's capabilities (names) and no_new_privs: an exec's defaults. */
  readonly capabilities?: readonly string[];
  readonly noNewPrivileges?: boolean;
  /** The container's environment and cwd, for `exec ID CMD` without --process. */
  readonly env?: readonly string[];
  readonly cwd?: string;
}

/** The OCI state object `state` prints and hooks read on stdin. */
export interface OciState {
  readonly ociVersion: string;
  readonly id: string;
  readonly status: Status;
  readonly pid: number;
  readonly bundle: string;
  readonly rootfs: string;
  readonly created: string;
  readonly owner: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

const ID = /^[\w+.-]+$/;

/** Refuses an id that is not a file name runc would take. */
export function checkId(id: string): void {
  if (!ID.test(id) || id === '.' || id === '..' || id.length > 1024) throw new RuntimeError('ERR_RUNTIME_USAGE', `invalid container id "${id}"`);
}

/** The state directory of container `id`. */
export function containerDir(root: string, id: string): string {
  checkId(id);
  return join(root, id);
}

/** The FIFO a created container's init waits on. */
export function execFifo(root: string, id: string): string {
  return join(containerDir(root, id), 'exec.fifo');
}

/** Reads container `id`'s record; throws "does not exist" when there is none. */
export function readRecord(root: string, id: string): ContainerRecord {
  let text: string;
  try {
    text = readFileSync(join(containerDir(root, id), 'state.json'), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') throw notFound(id);
    throw e;
  }
  return JSON.parse(text) as ContainerRecord;
}

/** Writes a record atomically (a reader sees the old one or the new one). */
export function writeRecord(root: string, rec: ContainerRecord): void {
  const file = join(containerDir(root, rec.id), 'state.json');
  writeFileSync(`${file}.tmp`, JSON.stringify(rec));
  renameSync(`${file}.tmp`, file);
}

/** The ids under `root`, sorted. */
export function listIds(root: string): string[] {
  try {
    return readdirSync(root, { withFileTypes: true })
      .filter((d) => d.isDirectory() && existsSync(join(root, d.name, 'state.json')))
      .map((d) => d.name)
      .sort();
  } catch {
    return [];
  }
}

/** Field 22 of /proc/PID/stat and the state letter, or undefined when there is no such process. */
export function procStat(pid: number): { start: string; state: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0]!, start: rest[19]! };
  } catch {
    return undefined;
  }
}

/** Whether the record's init still runs (not exited, not a zombie, not a reused PID). */
export function initRuns(rec: ContainerRecord): boolean {
  const s = procStat(rec.pid);
  return s !== undefined && s.start === rec.pidStart && s.state !== 'Z' && s.state !== 'X';
}

/** The v1 freezer state file, or v2 cgroup.freeze, of the record's cgroup. */
function frozen(rec: ContainerRecord): boolean {
  for (const file of [`/sys/fs/cgroup/freezer${rec.cgroupPath}/freezer.state`, `/sys/fs/cgroup${rec.cgroupPath}/cgroup.freeze`]) {
    try {
      const v = readFileSync(file, 'utf8').trim();
      return v === 'FROZEN' || v === 'FREEZING' || v === '1';
    } catch {
      // not this layout
    }
  }
  return false;
}

/** The container's status now: stopped once its init ended, created while its init waits on exec.fifo. */
export function statusOf(root: string, rec: ContainerRecord): Status {
  if (rec.pid === 0) return 'creating'; // recorded before the init exists (or a create that died)
  if (!initRuns(rec)) return 'stopped';
  if (existsSync(execFifo(root, rec.id))) return 'created';
  return frozen(rec) ? 'paused' : 'running';
}

/** The OCI state object of a record. */
export function ociState(rec: ContainerRecord, status: Status): OciState {
  return {
    ociVersion: OCI_VERSION,
    id: rec.id,
    status,
    pid: status === 'stopped' ? 0 : rec.pid,
    bundle: rec.bundle,
    rootfs: rec.rootfs,
    created: rec.created,
    owner: '',
    ...(rec.annotations && Object.keys(rec.annotations).length ? { annotations: rec.annotations } : {}),
  };
}
