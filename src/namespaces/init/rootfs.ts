/**
 * Builds the container's filesystem view inside its new mount namespace and pivots into it:
 * the rootfs bind-mounted onto itself, a fresh /proc, a minimal /dev, a read-only /sys,
 * masked and read-only paths, then pivot_root and the old root detached.
 * @internal
 */
import {
  AT_FDCWD,
  MNT_DETACH,
  MS_BIND,
  MS_NODEV,
  MS_NOEXEC,
  MS_NOSUID,
  MS_PRIVATE,
  MS_RDONLY,
  MS_REC,
  MS_REMOUNT,
  MS_SLAVE,
  MS_STRICTATIME,
  O_CLOEXEC,
  O_DIRECTORY,
  O_PATH,
} from '../../sys/constants.js';
import { chmodSync, chownSync, fstatSync, statSync, unlinkSync } from 'node:fs';
import { chdir, close, mknodat, mount, openat, pivotRoot, symlinkat, umount2 } from '../../sys/libc.js';
import { SysError } from '../../sys/sys-error.js';
import type { RootfsConfig, StageConfig } from './config.js';
import type { CgroupHierarchy, DeviceNode, MountOperation } from '../mount-plan.js';
import { mountRootFs } from './root-mount.js';
import { attachIdmappedMounts } from './idmapped.js';
import type { InitStep } from '../protocol.js';
import { fdPath, mkdirInRoot, mkdirOwn, openInRoot, touchAt } from './inroot.js';
import { MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY, mountSetattr } from '../../sys/mountapi.js';

/** Points of {@link prepareRoot} where the thread start path waits for other threads' work. */
export interface PrepareHooks {
  /** Before the caller's mount plan: the files it binds are made meanwhile. */
  readonly beforePlan?: (() => void) | undefined;
  /** Before the cgroup hierarchies are mounted: the container's cgroup namespace is made meanwhile. */
  readonly beforeCgroupfs?: (() => void) | undefined;
}

/** Records which step is running, for the error message. */
export type StepTracker = (step: InitStep) => void;

/**
 * The standard nodes, bound from the host's /dev (never mknod'ed: the /dev tmpfs is nodev, and
 * a user namespace may not mknod anyway). The devices cgroup allows exactly these (1:3 1:5
 * 1:7 1:8 1:9, 5:0, ptys).
 */
const DEVICES: readonly string[] = ['null', 'zero', 'full', 'random', 'urandom'];
/**
 * /dev/tty names the opener's controlling terminal. Only a container given a terminal of its
 * own has one; without, the node is left out rather than offered to fail with ENXIO.
 */
const TTY_DEVICE = 'tty';

const DEV_LINKS: ReadonlyArray<readonly [string, string]> = [
  ['fd', '/proc/self/fd'],
  ['stdin', '/proc/self/fd/0'],
  ['stdout', '/proc/self/fd/1'],
  ['stderr', '/proc/self/fd/2'],
  ['ptmx', 'pts/ptmx'],
  ['core', '/proc/kcore'],
];

/** Mounts onto an fd-resolved destination inside the root, then closes the fd. */
function mountAt(fd: number, source: string | null, fstype: string | null, flags: number, data: string | null, shown: string): void {
  try {
    mount(source, fdPath(fd), fstype, flags, data, undefined);
  } catch (e) {
    if (e instanceof SysError) throw new SysError(e.syscall, e.errno, shown);
    throw e;
  } finally {
    close(fd);
  }
}

function mountProc(rootFd: number, cfg: StageConfig, pidns?: string): void {
  const fd = mkdirInRoot(rootFd, '/proc', '/proc');
  if (cfg.namespaces.includes('pid')) {
    // pidns=: the PID namespace of a process other than the mounting thread (the thread start path).
    mountAt(fd, 'proc', 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC, pidns ? `pidns=${pidns}` : null, '/proc');
  } else {
    // Without its own PID namespace the container sees the host's processes either way;
    // a user namespace may not mount a proc it does not own, so bind the existing one.
    mountAt(fd, '/proc', null, MS_BIND | MS_REC, null, '/proc');
  }
}

function mountDev(rootFd: number, cfg: StageConfig, devices: readonly DeviceNode[]): void {
  const fd = mkdirInRoot(rootFd, '/dev', '/dev');
  // nodev: a device node a container creates here (CAP_MKNOD is in Docker's default set)
  // cannot be opened. The standard nodes are binds of the host's own, which are their own
  // mounts and keep working. Where the caller asks for device nodes (an OCI config's
  // linux.devices), /dev is mounted as runc mounts it, without nodev: the devices cgroup is
  // then what decides which nodes open.
  const nodev = devices.length ? 0 : MS_NODEV;
  mountAt(fd, 'tmpfs', 'tmpfs', MS_NOSUID | nodev | MS_STRICTATIME, 'mode=755,size=65536k', '/dev');
  // Re-open: the fd above names the directory under the new tmpfs, not the tmpfs itself.
  const dev = openInRoot(rootFd, '/dev', '/dev', true);
  try {
    for (const name of cfg.tty ? [...DEVICES, TTY_DEVICE] : DEVICES) {
      const shown = `/dev/${name}`;
      mountAt(touchAt(dev, name, shown), `/dev/${name}`, null, MS_BIND, null, shown);
    }
    // The tmpfs is fresh and ours: its directories are made relative to it.
    const pts = mkdirOwn(dev, 'pts', '/dev/pts');
    const ptsOpts = 'newinstance,ptmxmode=0666,mode=0620';
    try {
      mount('devpts', fdPath(pts), 'devpts', MS_NOSUID | MS_NOEXEC, `${ptsOpts},gid=5`);
    } catch (e) {
      // gid 5 (tty) may not be mapped in a user namespace: EINVAL, retried without it. Any
      // other failure keeps its syscall and errno, shown on /dev/pts rather than the fd path;
      // what is not a SysError (a bug, not the kernel) goes up unchanged.
      if (!(e instanceof SysError)) throw e;
      if (e.code !== 'EINVAL') throw new SysError(e.syscall, e.errno, '/dev/pts');
      mountAt(openInRoot(rootFd, '/dev/pts', '/dev/pts', true), 'devpts', 'devpts', MS_NOSUID | MS_NOEXEC, ptsOpts, '/dev/pts');
    } finally {
      close(pts);
    }
    const shm = mkdirOwn(dev, 'shm', '/dev/shm', 0o1777);
    mountAt(shm, 'shm', 'tmpfs', MS_NOSUID | MS_NODEV | MS_NOEXEC, 'mode=1777,size=65536k', '/dev/shm');
    if (cfg.namespaces.includes('ipc')) {
      const mq = mkdirOwn(dev, 'mqueue', '/dev/mqueue');
      mountAt(mq, 'mqueue', 'mqueue', MS_NOSUID | MS_NODEV | MS_NOEXEC, null, '/dev/mqueue');
    }
    for (const [name, target] of DEV_LINKS) symlinkat(target, dev, name, `/dev/${name}`);
  } finally {
    close(dev);
  }
  for (const d of devices) makeDevice(rootFd, d);
}

const NODE_TYPE: Readonly<Record<DeviceNode['type'], number>> = { c: 0o020000, u: 0o020000, b: 0o060000, p: 0o010000 };

/** mknod of one device node in /dev (an existing standard node of the same name is replaced by it). */
function makeDevice(rootFd: number, d: DeviceNode): void {
  const slash = d.path.lastIndexOf('/');
  const dir = mkdirInRoot(rootFd, d.path.slice(0, slash) || '/', d.path);
  const name = d.path.slice(slash + 1);
  // /dev is our fresh tmpfs: what is there already is one of our standard nodes (a bind over
  // an empty file), replaced by the caller's.
  const inDir = `${fdPath(dir)}/${name}`;
  try {
    umount2(inDir, MNT_DETACH);
  } catch {
    // not a mount point
  }
  try {
    unlinkSync(inDir);
  } catch {
    // nothing there
  }
  const dev = (BigInt(d.major & 0xfff) << 8n) | BigInt(d.minor & 0xff) | (BigInt(d.minor & ~0xff) << 12n) | (BigInt(d.major & ~0xfff) << 32n);
  try {
    mknodat(dir, name, NODE_TYPE[d.type] | ((d.mode ?? 0o666) & 0o7777), d.type === 'p' ? 0n : dev, d.path);
    const node = openInRoot(rootFd, d.path, d.path);
    try {
      // Through the O_PATH fd's /proc link; the mode again, past the umask mknod applied.
      chownSync(fdPath(node), d.uid ?? 0, d.gid ?? 0);
      chmodSync(fdPath(node), (d.mode ?? 0o666) & 0o7777);
    } finally {
      close(node);
    }
  } finally {
    close(dir);
  }
}

function mountSys(rootFd: number, cfg: StageConfig): void {
  const flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
  const fd = mkdirInRoot(rootFd, '/sys', '/sys');
  if (cfg.namespaces.includes('net') || cfg.joinNetOf !== undefined) {
    mountAt(fd, 'sysfs', 'sysfs', flags, null, '/sys');
    return;
  }
  if (!cfg.userns) {
    // The host's network namespace: root may still mount a fresh sysfs for it, which has
    // none of the host's submounts (tracefs, debugfs, bpffs, efivarfs ...). Docker's way.
    mountAt(fd, 'sysfs', 'sysfs', flags, null, '/sys');
    return;
  }
  // A user namespace may mount sysfs only for a network namespace it owns: bind the host's
  // instead, read-only all the way down (a read-only top alone leaves its submounts writable).
  mountAt(fd, '/sys', null, MS_BIND | MS_REC, null, '/sys');
  readOnlyTree(rootFd, '/sys');
}

/** Makes the mount at `path` and every mount below it read-only, nosuid, nodev, noexec, keeping locked flags. */
function readOnlyTree(rootFd: number, path: string): void {
  const fd = openInRoot(rootFd, path, path); // a file (/proc/sysrq-trigger) as well as a directory
  try {
    mountSetattr(fd, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, 0, true, path);
  } finally {
    close(fd);
  }
}

function mountCgroups(rootFd: number, hierarchies: readonly CgroupHierarchy[]): void {
  if (hierarchies.length === 0) return;
  const flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
  const only = hierarchies[0]!;
  if (hierarchies.length === 1 && only.dir === '') {
    // A pure v2 host: the unified hierarchy is /sys/fs/cgroup itself.
    mountAt(mkdirInRoot(rootFd, '/sys/fs/cgroup', '/sys/fs/cgroup'), only.fstype, only.fstype, flags, only.options || null, '/sys/fs/cgroup');
    return;
  }
  mountAt(mkdirInRoot(rootFd, '/sys/fs/cgroup', '/sys/fs/cgroup'), 'tmpfs', 'tmpfs', MS_NOSUID | MS_NODEV | MS_NOEXEC, 'mode=755,size=64k', '/sys/fs/cgroup');
  // The fresh tmpfs, ours alone: each hierarchy's directory is made relative to it.
  const top = openInRoot(rootFd, '/sys/fs/cgroup', '/sys/fs/cgroup', true);
  try {
    for (const m of hierarchies) {
      const path = `/sys/fs/cgroup/${m.dir}`;
      const fd = m.dir.includes('/') ? mkdirInRoot(rootFd, path, path) : mkdirOwn(top, m.dir, path);
      mountAt(fd, m.fstype, m.fstype, flags, m.options || null, path);
    }
  } catch (e) {
    close(top);
    throw e;
  }
  mountAt(top, null, null, MS_BIND | MS_REMOUNT | flags, null, '/sys/fs/cgroup');
}

/** Hides a path: /dev/null over a file, an empty read-only tmpfs over a directory. */
function maskPath(rootFd: number, path: string): void {
  const fd = openInRoot(rootFd, path, path);
  if (fd < 0) return;
  let isDir: boolean;
  try {
    isDir = fstatSync(fd).isDirectory(); // an O_PATH fd may be fstat'ed: one call
  } catch (e) {
    close(fd);
    throw e;
  }
  if (isDir) mountAt(fd, 'tmpfs', 'tmpfs', MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, 'size=0,mode=0755', path);
  else mountAt(fd, '/dev/null', null, MS_BIND, null, path);
}

/** Makes a path read-only, recursively (bound onto itself first: it need not be a mount point). */
function readOnlyPath(rootFd: number, path: string): void {
  const fd = openInRoot(rootFd, path, path);
  if (fd < 0) return;
  mountAt(fd, fdPath(fd), null, MS_BIND | MS_REC, null, path);
  readOnlyTree(rootFd, path);
}

/** Binds a host path into the root (`-v`), creating the mount point inside it. */
function bindPath(rootFd: number, b: Extract<MountOperation, { op: 'bind' }>): void {
  let fd: number;
  try {
    fd = bindTarget(rootFd, b.source, b.target);
  } catch (e) {
    // An optional bind (the /etc files) whose mount point cannot be made: a read-only rootfs,
    // or a user-namespaced root that may not write to /etc. The rootfs's own file stays.
    if (b.optional && e instanceof SysError && ['EACCES', 'EPERM', 'EROFS'].includes(e.code)) return;
    throw e;
  }
  mountAt(fd, b.source, null, MS_BIND | MS_REC, null, b.target);
  if (b.readonly) {
    // Recursive, and only the read-only flag: a remount would drop the source's locked
    // nosuid/nodev/noexec (EPERM in a user namespace) and leave its submounts writable.
    const ro = openInRoot(rootFd, b.target, b.target);
    try {
      mountSetattr(ro, MOUNT_ATTR_RDONLY, 0, true, b.target);
    } finally {
      close(ro);
    }
  }
}

/** One mount of any kind (see MountOperation `mount`). */
function mountAny(rootFd: number, m: Extract<MountOperation, { op: 'mount' }>): void {
  const bind = (m.flags & MS_BIND) !== 0;
  const fd = bind ? bindTarget(rootFd, m.source, m.target) : mkdirInRoot(rootFd, m.target, m.target);
  // A bind takes only MS_BIND and MS_REC; its other flags need a remount of the new mount.
  mountAt(fd, m.source, bind ? null : m.fstype, bind ? m.flags & (MS_BIND | MS_REC) : m.flags & ~MS_REMOUNT, bind ? null : (m.data ?? null), m.target);
  const rest = m.flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
  if (bind && rest) mountAt(openInRoot(rootFd, m.target, m.target), null, null, MS_BIND | MS_REMOUNT | rest, null, m.target);
  if (m.propagation) mountAt(openInRoot(rootFd, m.target, m.target), null, null, m.propagation, null, m.target);
}

/** Executes the caller's mount plan, in order. */
function executePlan(rootFd: number, mounts: readonly MountOperation[], step: StepTracker, beforeCgroupfs?: () => void): void {
  for (const m of mounts) {
    switch (m.op) {
      case 'bind':
        step('binds');
        bindPath(rootFd, m);
        break;
      case 'mask':
        step('mask');
        maskPath(rootFd, m.target);
        break;
      case 'readonly':
        step('mask');
        readOnlyPath(rootFd, m.target);
        break;
      case 'cgroupfs':
        beforeCgroupfs?.();
        step('sys');
        mountCgroups(rootFd, m.hierarchies);
        break;
      case 'mount':
        step('binds');
        mountAny(rootFd, m);
        break;
    }
  }
}

/** Opens (creating when missing) the mount point of a bind: a directory or a file, like its source. */
function bindTarget(rootFd: number, source: string, target: string): number {
  if (statSync(source).isDirectory()) return mkdirInRoot(rootFd, target, target);
  const existing = openInRoot(rootFd, target, target);
  if (existing >= 0) return existing;
  const slash = target.lastIndexOf('/');
  const parent = mkdirInRoot(rootFd, target.slice(0, slash) || '/', target);
  try {
    return touchAt(parent, target.slice(slash + 1), target);
  } finally {
    close(parent);
  }
}

/** Whether a mount of the plan lies in /proc, which the thread start path mounts last. */
function underProc(m: MountOperation): boolean {
  return m.op !== 'cgroupfs' && (m.target === '/proc' || m.target.startsWith('/proc/'));
}

/**
 * The root up to, not including, the pivot: the copy-on-write root, the bind onto itself,
 * /proc, /dev, /sys and the caller's mounts. With `deferProc`, /proc and the mounts inside it
 * are left for {@link finishRoot}: the thread start path can mount /proc only once the
 * container's init exists (a PID namespace without a process cannot be named).
 * `hooks` let the thread start path wait for what other threads make meanwhile.
 */
export function prepareRoot(cfg: StageConfig, rootfs: RootfsConfig, step: StepTracker, deferProc = false, hooks: PrepareHooks = {}): void {
  if (rootfs.idmapped?.length) {
    // The layers (or the rootfs) as the container's user namespace must see them.
    step('idmap');
    attachIdmappedMounts(rootfs.idmapped);
  }
  if (rootfs.rootMount) {
    // The container's copy-on-write root, mounted where only its own mount namespace sees it:
    // nothing to unmount on the host, nothing left behind if anything dies.
    step('overlay');
    mountRootFs(rootfs.rootMount, rootfs.path);
  }
  step('rootfs');
  // pivot_root needs the new root to be a mount point: bind it onto itself.
  mount(rootfs.path, rootfs.path, null, MS_BIND | MS_REC, null);
  if (deferProc && rootfs.inOrder) return; // all of it in finishRoot
  const rootFd = openat(AT_FDCWD, rootfs.path, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
  try {
    if (!deferProc) {
      step('proc');
      mountProc(rootFd, cfg);
    }
    mountDevAndSys(rootFd, cfg, rootfs, step);
    hooks.beforePlan?.();
    executePlan(rootFd, deferProc ? rootfs.mounts.filter((m) => !underProc(m)) : rootfs.mounts, step, hooks.beforeCgroupfs);
  } finally {
    close(rootFd);
  }
}

function mountDevAndSys(rootFd: number, cfg: StageConfig, rootfs: RootfsConfig, step: StepTracker): void {
  step('dev');
  mountDev(rootFd, cfg, rootfs.devices ?? []);
  step('sys');
  mountSys(rootFd, cfg);
}

/**
 * After {@link prepareRoot} with `deferProc`: /proc of the PID namespace `pidns` names (a
 * /proc/PID/ns/pid path), the plan's mounts inside it, then the pivot.
 */
export function finishRoot(cfg: StageConfig, rootfs: RootfsConfig, step: StepTracker, pidns: string): void {
  const rootFd = openat(AT_FDCWD, rootfs.path, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
  try {
    step('proc');
    mountProc(rootFd, cfg, pidns);
    if (rootfs.inOrder) {
      mountDevAndSys(rootFd, cfg, rootfs, step);
      executePlan(rootFd, rootfs.mounts, step);
    } else executePlan(rootFd, rootfs.mounts.filter(underProc), step);
  } finally {
    close(rootFd);
  }
  readOnlyRoot(rootfs);
  pivotInto(rootfs.path, step);
  if (rootfs.propagation) mount(null, '/', null, rootfs.propagation, null);
}

/** With `rootfs.readonly`: the root mount alone made read-only (its submounts keep their flags). */
function readOnlyRoot(rootfs: RootfsConfig): void {
  if (!rootfs.readonly) return;
  const fd = openat(AT_FDCWD, rootfs.path, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
  try {
    mountSetattr(fd, MOUNT_ATTR_RDONLY, 0, false, '/');
  } finally {
    close(fd);
  }
}

/** pivot_root into `path` and detach the old root: nothing of the host stays reachable. */
function pivotInto(path: string, step: StepTracker): void {
  step('pivot-root');
  chdir(path);
  // pivot_root(".", ".") stacks the old root on top of the new one; detaching "." then
  // drops it without needing a put_old directory inside the rootfs.
  pivotRoot('.', '.');
  mount(null, '.', null, MS_SLAVE | MS_REC, null);
  umount2('.', MNT_DETACH);
  chdir('/');
}

/**
 * Everything from the rootfs bind mount to the detached old root.
 * Runs as the container's root in its new mount namespace; the host's mount table is
 * never touched because `/` was made private first.
 */
export function enterRootfs(cfg: StageConfig, rootfs: RootfsConfig, step: StepTracker): void {
  prepareRoot(cfg, rootfs, step);
  readOnlyRoot(rootfs);
  pivotInto(rootfs.path, step);
  if (rootfs.propagation) mount(null, '/', null, rootfs.propagation, null);
}

/** Makes every mount in the new mount namespace private, so nothing propagates to the host. */
export function makeRootPrivate(): void {
  mount(null, '/', null, MS_REC | MS_PRIVATE, null);
}

/** Mounts a fresh /proc in place, like `unshare --mount-proc`. */
export function remountProc(): void {
  mount('proc', '/proc', 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC, null);
}
