import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { defaultRootfs } from 'ctrkit';

/** The rootfs every test runs in (built by the global setup). */
export const rootfs = await defaultRootfs();

/** The host's mount table, as mount points (what a leak would change). */
export function hostMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[4]!)
    .sort();
}

/** PIDs and command lines of every process, without the ones this test process owns. */
export function processes(): Map<number, string> {
  const out = new Map<number, string>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      out.set(Number(d), readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ').trim());
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** The parent PID of a process, or undefined when it is gone. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** Field `n` (1-based, after the command name) of /proc/PID/stat. */
function statField(pid: number, n: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[n - 3]);
  } catch {
    return undefined;
  }
}

const ourStart = statField(process.pid, 22) ?? 0;

/**
 * True when `pid` is this test process's doing: a descendant, or an orphan (re-parented to
 * init after a test killed its parent) started after this test process was.
 */
function ours(pid: number): boolean {
  for (let p: number | undefined = pid, hops = 0; p !== undefined && p > 1 && hops < 64; p = parentOf(p), hops++) {
    if (p === process.pid) return true;
    if (parentOf(p) === 1) return (statField(p, 22) ?? 0) >= ourStart;
  }
  return false;
}

/**
 * Processes of this test process's own making whose command line mentions the init stage or
 * util-linux unshare/nsenter. Other ctrkit containers on the machine (another test run, a
 * user's) are not this test's to judge.
 */
export function ctrkitProcesses(): string[] {
  return [...processes().entries()]
    .filter(([pid, cmd]) => pid !== process.pid && /init\/stage(\.bundle)?\.js|^unshare |^nsenter /.test(cmd) && ours(pid))
    .map(([pid, cmd]) => `${pid} ${cmd}`);
}

/** True while /proc/PID exists (zombies included). */
export function alive(pid: number): boolean {
  try {
    readFileSync(`/proc/${pid}/stat`);
    return true;
  } catch {
    return false;
  }
}

/** Waits until `pred` holds or `ms` pass; returns the last value. */
export async function eventually(pred: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return pred();
}

/** A temp dir named like the project's resources, removed by the returned function. */
export function tempDir(): [string, () => void] {
  const d = mkdtempSync('/tmp/ctk-test-');
  return [d, () => rmSync(d, { recursive: true, force: true })];
}

/** The unprivileged user the rootless tests run as (created by .ci/run). */
export const ROOTLESS_USER = 'ctkuser';

/** uid of ROOTLESS_USER, or undefined when it does not exist. */
export function rootlessUid(): number | undefined {
  const r = spawnSync('id', ['-u', ROOTLESS_USER], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.trim()) : undefined;
}

/** Runs `ipcmk`/`ipcrm` and friends; throws with their stderr on failure. */
export function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8' });
}

/**
 * A copy of the built package and its runtime dependencies in a fresh world-readable temp
 * dir (`DIR/node_modules/ctrkit`), so an unprivileged user can `import 'ctrkit'` from DIR even
 * when the checkout sits under a directory only root may enter. Returns [DIR, cleanup].
 */
export function rootlessPackageCopy(): [string, () => void] {
  const [dir, cleanup] = tempDir();
  chmodSync(dir, 0o755);
  const pkg = join(dir, 'node_modules', 'ctrkit');
  mkdirSync(pkg, { recursive: true });
  cpSync('package.json', join(pkg, 'package.json'));
  cpSync('dist', join(pkg, 'dist'), { recursive: true });
  // The runtime closure: dependencies (and installed optional ones), transitively.
  const seen = new Set<string>();
  const visit = (name: string) => {
    const from = join('node_modules', name);
    if (seen.has(name) || !existsSync(from)) return;
    seen.add(name);
    cpSync(from, join(dir, 'node_modules', name), { recursive: true });
    const meta = JSON.parse(readFileSync(join(from, 'package.json'), 'utf8')) as { dependencies?: object; optionalDependencies?: object };
    for (const dep of [...Object.keys(meta.dependencies ?? {}), ...Object.keys(meta.optionalDependencies ?? {})]) visit(dep);
  };
  const own = JSON.parse(readFileSync('package.json', 'utf8')) as { dependencies: object };
  for (const dep of Object.keys(own.dependencies)) visit(dep);
  return [dir, cleanup];
}

/**
 * The file system type of the mount holding `path`, from statfs (`ext4`, `tmpfs`, `xfs` ...),
 * named as ctrkit names it: ext2, ext3 and ext4 share one magic number, which stat(1) calls
 * `ext2/ext3` and ctrkit `ext4`.
 */
export function fsType(path: string): string {
  const name = execFileSync('stat', ['-f', '-c', '%T', path], { encoding: 'utf8' }).trim();
  return name === 'ext2/ext3' ? 'ext4' : name;
}

/** The owner helper serving the process `ownerPid` (its command line names the owner), if it runs. */
export function ownerHelperOf(ownerPid: number): number | undefined {
  for (const [pid, cmd] of processes()) {
    if (cmd.includes('helper-main.js') && cmd.includes(` ${ownerPid}:`)) return pid;
  }
  return undefined;
}

/** Waits until the owner helper of an ended owner has done its work and exited. */
export async function helperGone(ownerPid: number, ms = 5000): Promise<boolean> {
  return eventually(() => ownerHelperOf(ownerPid) === undefined, ms);
}
