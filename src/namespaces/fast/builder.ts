/**
 * The builder thread of the thread start path: for each container it makes the new mount,
 * UTS, IPC and network namespaces for itself (a thread with its own fs_struct may), builds
 * the container's root in them exactly as the init stage would (../init/rootfs.ts), finishes
 * it once the command's process exists (/proc of its PID namespace, then pivot_root, which
 * carries that waiting process into the new root), and returns to the host's namespaces.
 * (A PID namespace can be named, and so its /proc mounted, only once a process lives in it.)
 * Nothing of the container's runs on this thread; it keeps every privilege.
 * @internal
 */
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import {
  CLONE_FS,
  CLONE_NEWCGROUP,
  CLONE_NEWIPC,
  CLONE_NEWNET,
  CLONE_NEWNS,
  CLONE_NEWUTS,
  AT_FDCWD,
  O_CLOEXEC,
  O_DIRECTORY,
  O_PATH,
  O_RDONLY,
} from '../../sys/constants.js';
import { close, openat, setns, unshare } from '../../sys/libc.js';
import { SysError } from '../../sys/sys-error.js';
import { gettid } from '../../sys/spawn.js';
import type { StageConfig } from '../init/config.js';
import { lookupCommandIn } from '../init/exec.js';
import { openInRoot } from '../init/inroot.js';
import { setUpNamesAndLoopback } from '../init/names.js';
import { finishRoot, makeRootPrivate, prepareRoot } from '../init/rootfs.js';
import { toWire } from '../init/wire.js';
import type { InitStep } from '../protocol.js';
import type { ArriveRequest, BuildRequest, PrebuildRequest, PreparedFds, ResolveRequest, ThreadReply, ThreadRequest } from './protocol.js';
import { NS_FLAG, openHome, threadChildren, threadNsPath, withFd, type ThreadNamespace } from './thread-home.js';

const port = parentPort!;
unshare(CLONE_FS); // our own root, cwd and umask: setns(CLONE_NEWNS) needs them unshared
const HOME: readonly ThreadNamespace[] = ['mnt', 'uts', 'ipc', 'net', 'cgroup'];
const home = openHome(HOME);
let step: InitStep = 'start';
/** The spawner's children when the build began (it spawns one command at a time). */
let earlier = new Set<number>();
const setStep = (s: InitStep): void => {
  step = s;
};

function goHome(): void {
  try {
    for (const [type, fd] of home) setns(fd, NS_FLAG[type]);
  } catch (e) {
    // Stuck in a container's namespaces: this thread must not build another one.
    port.postMessage({ ok: false, step: 'start', error: toWire(e) } satisfies ThreadReply);
    process.exit(1);
  }
}

function newNamespaces(config: StageConfig): number {
  const join = config.joinPaths ?? {};
  let flags = join.mnt ? 0 : CLONE_NEWNS;
  if (config.namespaces.includes('uts') && !join.uts) flags |= CLONE_NEWUTS;
  if (config.namespaces.includes('ipc') && !join.ipc) flags |= CLONE_NEWIPC;
  if (config.namespaces.includes('net') && !join.net) flags |= CLONE_NEWNET;
  return flags;
}

/** The container's namespaces: those named by path entered, the others made new. */
function enterNamespaces(config: StageConfig): void {
  for (const type of ['mnt', 'uts', 'ipc', 'net'] as const) {
    const path = config.joinPaths?.[type];
    if (path) withFd(path, (fd) => setns(fd, NS_FLAG[type], path));
  }
  unshare(newNamespaces(config));
}

/** Everything but /proc: namespaces, root, names, loopback; the command's path. */
function build({ config, spawnerTid }: BuildRequest): string {
  const rootfs = config.rootfs!;
  earlier = new Set(threadChildren(spawnerTid));
  setStep('propagation');
  enterNamespaces(config);
  if (config.namespaces.includes('cgroup')) {
    // The cgroupfs mounts show the container's cgroup namespace, which the spawner made.
    setStep('cgroupns');
    const path = threadNsPath(spawnerTid, 'cgroup');
    withFd(path, (fd) => setns(fd, CLONE_NEWCGROUP, path));
  }
  setStep('propagation');
  makeRootPrivate();
  prepareRoot(config, rootfs, setStep, true);
  setUpNamesAndLoopback(config, setStep);
  return lookup(config);
}

/** The command's path inside the root (cwd checked first), from this thread's mount namespace. */
function lookup(config: StageConfig): string {
  const rootfs = config.rootfs!;
  const rootFd = openat(AT_FDCWD, rootfs.path, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
  try {
    setStep('cwd');
    const cwd = openInRoot(rootFd, config.cwd, config.cwd, true);
    if (cwd < 0) throw new SysError('chdir', 2, config.cwd);
    close(cwd);
    setStep('lookup');
    return lookupCommandIn(rootFd, config.argv[0]!, config.env, config.cwd);
  } finally {
    close(rootFd);
  }
}

/**
 * A build ahead of time: the container's cgroup namespace (made here, rooted at its cgroup:
 * this thread joins the cgroup, unshares, and moves on to the park at once), then the other
 * namespaces and the root as {@link build} makes them, all kept as fds of this process.
 */
function prebuild({ config, parkTasks }: PrebuildRequest): PreparedFds {
  const fds: Record<string, number> = {};
  // Opened past Node's fd tracking: the main thread closes them (a worker's openSync would
  // warn when the number comes back to it).
  const keep = (type: ThreadNamespace) => {
    fds[type] = openat(AT_FDCWD, threadNsPath(gettid(), type), O_RDONLY | O_CLOEXEC, 0);
  };
  try {
    if (config.namespaces.includes('cgroup')) {
      setStep('cgroup');
      try {
        for (const tasks of config.cgroupTasks ?? []) writeFileSync(tasks, '0');
        setStep('cgroupns');
        unshare(CLONE_NEWCGROUP);
        keep('cgroup');
      } finally {
        // Never to stay in a container's cgroup (its processes' count, its freezer, its kill).
        try {
          for (const tasks of parkTasks) writeFileSync(tasks, '0');
        } catch (e) {
          port.postMessage({ ok: false, step: 'cgroup', error: toWire(e) } satisfies ThreadReply);
          process.exit(1);
        }
      }
    }
    setStep('propagation');
    unshare(newNamespaces(config));
    makeRootPrivate();
    prepareRoot(config, config.rootfs!, setStep, true);
    setUpNamesAndLoopback(config, setStep);
    for (const type of ['mnt', 'uts', 'ipc', 'net'] as const) if (type === 'mnt' || config.namespaces.includes(type)) keep(type);
    return fds;
  } catch (e) {
    for (const fd of Object.values(fds)) close(fd);
    throw e;
  }
}

/** The command's path in a prepared container's root (its mount namespace entered for it). */
function resolve({ config, mntFd }: ResolveRequest): string {
  setStep('lookup');
  setns(mntFd, CLONE_NEWNS);
  return lookup(config);
}

/** Waits at the barrier's first FIFO for the command's process, then /proc and the pivot. */
function arrive({ config, fifo, spawnerTid, mntFd, earlier: before }: ArriveRequest): number {
  if (before) earlier = new Set(before);
  setStep('sync');
  closeSync(openSync(fifo, 'r')); // returns once the command's process opened the other end
  // The spawner's earlier commands may still run: ours is the child it did not have before.
  const [pid] = threadChildren(spawnerTid).filter((p) => !earlier.has(p));
  if (pid === undefined) throw new Error('the command did not start');
  try {
    if (mntFd !== undefined) {
      setStep('join');
      setns(mntFd, CLONE_NEWNS);
    }
    finishRoot(config, config.rootfs!, setStep, `/proc/${pid}/ns/pid`);
  } catch (e) {
    throw Object.assign(e as Error, { pid });
  }
  return pid;
}

port.on('message', (req: ThreadRequest) => {
  let reply: ThreadReply;
  try {
    if (req.t === 'build') reply = { ok: true, path: build(req) };
    else if (req.t === 'prebuild') reply = { ok: true, fds: prebuild(req) };
    else if (req.t === 'resolve') reply = { ok: true, path: resolve(req) };
    else if (req.t === 'arrive') reply = { ok: true, pid: arrive(req) };
    else if (req.t === 'home')
      reply = { ok: true }; // a start given up after its build
    else throw new Error(`the builder thread has no request "${req.t}"`);
  } catch (e) {
    // A failure after the process arrived names it, for the caller to kill.
    reply = { ok: false, step, error: toWire(e), pid: (e as { pid?: number }).pid };
  }
  // After a build the thread stays in the container's namespaces until the command arrived;
  // the way home is not on the caller's clock: the reply goes first (the next request waits).
  port.postMessage(reply);
  if (req.t !== 'build' || !reply.ok) goHome();
});
port.postMessage({ ok: true, pid: gettid() } satisfies ThreadReply);
