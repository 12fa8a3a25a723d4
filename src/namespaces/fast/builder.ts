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
import { closeSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
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
  O_NONBLOCK,
  O_PATH,
  O_RDONLY,
  O_RDWR,
} from '../../sys/constants.js';
import { close, openat, setns, unshare } from '../../sys/libc.js';
import { SysError } from '../../sys/sys-error.js';
import { gettid } from '../../sys/spawn.js';
import type { RootfsConfig, StageConfig } from '../init/config.js';
import type { MountOperation } from '../mount-plan.js';
import { lookupCommandIn } from '../init/exec.js';
import { openInRoot } from '../init/inroot.js';
import { removeSmallTreeSync } from '../../overlay/remove-tree.js';
import { bringLoopbackUp } from '../init/loopback.js';
import { setUpNamesAndLoopback } from '../init/names.js';
import { finishRoot, makeRootPrivate, prepareRoot } from '../init/rootfs.js';
import { toWire } from '../init/wire.js';
import type { InitStep } from '../protocol.js';
import { BARRIER_TIMEOUT_MS, built, namespacesMade, waitEntered, waitReady, type Handoff } from './handoff.js';
import type { BuilderStartRequest, PrebuildRequest, PreparedFds, ThreadReply, BuilderRequest } from './protocol.js';
import { namespaceInodes, NS_FLAG, openHome, threadChildren, threadNsPath, withFd, type ThreadNamespace } from './thread-home.js';

const port = parentPort!;
unshare(CLONE_FS); // our own root, cwd and umask: setns(CLONE_NEWNS) needs them unshared
const HOME: readonly ThreadNamespace[] = ['mnt', 'uts', 'ipc', 'net', 'cgroup'];
const home = openHome(HOME);
let step: InitStep = 'start';
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

/**
 * A network namespace with its loopback up, made while the thread had nothing to do: the
 * next container enters it instead of making one, which takes that (about 0.6 ms, the
 * costliest namespace to make) off its start. Only fresh namespaces are kept here, never one
 * a container used. -1: none.
 */
let spareNet = -1;

/** Makes the spare network namespace, if there is none, and returns home. */
function makeSpareNet(): void {
  if (spareNet >= 0) return;
  try {
    unshare(CLONE_NEWNET);
    bringLoopbackUp();
    spareNet = openat(AT_FDCWD, threadNsPath(gettid(), 'net'), O_RDONLY | O_CLOEXEC, 0);
  } catch {
    // None then: the next container makes its own, as without the spare.
  }
  goHome();
}

/** Drops the spare (the threads are about to end: nothing of theirs may stay open). */
function dropSpareNet(): void {
  if (spareNet >= 0) close(spareNet);
  spareNet = -1;
}

/** unshare(2) of `flags`, a new network namespace taken from the spare when there is one: true when so (its loopback is up). */
function unshareTakingSpare(flags: number): boolean {
  if ((flags & CLONE_NEWNET) === 0 || spareNet < 0) {
    unshare(flags);
    return false;
  }
  const fd = spareNet;
  spareNet = -1;
  try {
    setns(fd, CLONE_NEWNET);
  } finally {
    close(fd);
  }
  if (flags & ~CLONE_NEWNET) unshare(flags & ~CLONE_NEWNET);
  return true;
}

function newNamespaces(config: StageConfig): number {
  const join = config.joinPaths ?? {};
  let flags = join.mnt ? 0 : CLONE_NEWNS;
  if (config.namespaces.includes('uts') && !join.uts) flags |= CLONE_NEWUTS;
  if (config.namespaces.includes('ipc') && !join.ipc) flags |= CLONE_NEWIPC;
  if (config.namespaces.includes('net') && !join.net) flags |= CLONE_NEWNET;
  return flags;
}

/** The container's namespaces: those named by path entered, the others made new. True when its loopback is up already. */
function enterNamespaces(config: StageConfig): boolean {
  for (const type of ['mnt', 'uts', 'ipc', 'net'] as const) {
    const path = config.joinPaths?.[type];
    if (path) withFd(path, (fd) => setns(fd, NS_FLAG[type], path));
  }
  return unshareTakingSpare(newNamespaces(config));
}

/** Everything but /proc: namespaces, root, names, loopback; the command's path. */
function build(config: StageConfig, spawnerTid: number, handoff: Handoff, gated: boolean): string {
  const rootfs = config.rootfs!;
  setStep('propagation');
  const loopbackIsUp = enterNamespaces(config);
  namespacesMade(handoff); // the spawner enters them while the root is built
  let inCgroupns = !config.namespaces.includes('cgroup');
  const joinCgroupns = () => {
    if (inCgroupns) return;
    // The cgroupfs mounts show the container's cgroup namespace, which the spawner has been
    // making meanwhile (its thread joins the cgroup first).
    setStep('cgroupns');
    waitEntered(handoff, BARRIER_TIMEOUT_MS);
    const path = threadNsPath(spawnerTid, 'cgroup');
    withFd(path, (fd) => setns(fd, CLONE_NEWCGROUP, path));
    inCgroupns = true;
  };
  setStep('propagation');
  makeRootPrivate();
  const waitForCaller = () => {
    if (gated) waitReady(handoff, BARRIER_TIMEOUT_MS); // the files the plan binds are made meanwhile
  };
  prepareRoot(config, cgroupfsLast(rootfs), setStep, true, { beforePlan: waitForCaller, beforeCgroupfs: joinCgroupns });
  waitForCaller(); // a plan mounted in order after /proc: before the command's path is looked up
  joinCgroupns(); // a plan without cgroupfs, or one mounted in order after /proc
  setUpNamesAndLoopback(config, setStep, loopbackIsUp);
  return lookup(config);
}

/**
 * The plan with its cgroupfs mounts moved after the others, where nothing else is mounted
 * inside /sys/fs/cgroup (the tree is then the same): the cgroup namespace they need is the
 * spawner's, made meanwhile, and is ready by the time the other mounts are done.
 */
function cgroupfsLast(rootfs: RootfsConfig): RootfsConfig {
  if (rootfs.inOrder) return rootfs;
  const isCgroupfs = (m: MountOperation) => m.op === 'cgroupfs';
  if (!rootfs.mounts.some(isCgroupfs)) return rootfs;
  if (rootfs.mounts.some((m) => !isCgroupfs(m) && (m.target === '/sys/fs/cgroup' || m.target.startsWith('/sys/fs/cgroup/')))) return rootfs;
  return { ...rootfs, mounts: [...rootfs.mounts.filter((m) => !isCgroupfs(m)), ...rootfs.mounts.filter(isCgroupfs)] };
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
    const loopbackIsUp = unshareTakingSpare(newNamespaces(config));
    makeRootPrivate();
    prepareRoot(config, config.rootfs!, setStep, true);
    setUpNamesAndLoopback(config, setStep, loopbackIsUp);
    for (const type of ['mnt', 'uts', 'ipc', 'net'] as const) if (type === 'mnt' || config.namespaces.includes(type)) keep(type);
    return fds;
  } catch (e) {
    for (const fd of Object.values(fds)) close(fd);
    throw e;
  }
}

/** The command's path in a prepared container's root (its mount namespace entered for it). */
function resolve(config: StageConfig, mntFd: number): string {
  setStep('lookup');
  setns(mntFd, CLONE_NEWNS);
  return lookup(config);
}

/** What the builder tells of a process it let go itself: see ThreadReply. */
type Arrival = { pid: number; released?: number; namespaces?: Record<string, number> };

/**
 * Waits at the barrier's first FIFO for the command's process, then /proc and the pivot; with
 * `release`, lets it go. Its PID, and the release's fd.
 */
function arrive({ config, fifo, spawnerTid, mntFd, earlier: before, release }: BuilderStartRequest): Arrival {
  const earlier = new Set(before);
  setStep('sync');
  closeSync(openSync(fifo, 'r')); // returns once the command's process opened the other end
  // The spawner's earlier commands may still run: ours is the child it did not have before.
  const [pid] = threadChildren(spawnerTid).filter((p) => !earlier.has(p));
  if (pid === undefined) throw new Error('the command did not start');
  let releaseDir = -1;
  try {
    // The release's directory, for after the pivot (whose root does not have it); and the
    // process's namespaces, while this thread still sees the host's /proc: let go, the command
    // may be over before the caller looks.
    const namespaces = release === undefined ? undefined : namespaceInodes(pid);
    if (release !== undefined) releaseDir = openat(AT_FDCWD, dirname(release), O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
    if (mntFd !== undefined) {
      setStep('join');
      setns(mntFd, CLONE_NEWNS);
    }
    finishRoot(config, config.rootfs!, setStep, `/proc/${pid}/ns/pid`);
    // A writer on the second FIFO: the process, blocked opening it for reading, goes on to its
    // exec. O_RDWR never blocks; the fd stays open (the caller closes it) until the process
    // has been there. Opened past Node's fd tracking (see prebuild).
    if (release === undefined) return { pid };
    setStep('exec');
    return { pid, released: openat(releaseDir, basename(release), O_RDWR | O_NONBLOCK | O_CLOEXEC, 0), namespaces };
  } catch (e) {
    throw Object.assign(e as Error, { pid });
  } finally {
    if (releaseDir >= 0) close(releaseDir);
  }
}

/**
 * A whole start: the root built (or a prepared one's command found), the command's path handed
 * to the spawner, which spawns it at once; then the barrier. The command's PID (see arrive).
 */
function start(req: BuilderStartRequest): Arrival {
  let path: string | undefined;
  try {
    path = req.mntFd !== undefined ? resolve(req.config, req.mntFd) : build(req.config, req.spawnerTid, req.handoff, req.gated ?? false);
  } finally {
    built(req.handoff, path); // undefined: failed, and the spawner gives up too
  }
  return arrive(req);
}

/** Deletes directory trees the caller discarded (a failure is left for prune to find). */
function deleteTrees(paths: readonly string[] | undefined): void {
  for (const path of paths ?? []) {
    try {
      // Mostly an untouched layer: listed and deleted in about half the calls rm -rf makes.
      if (!removeSmallTreeSync(path)) rmSync(path, { recursive: true, force: true });
    } catch {
      // left for prune (the trash of a live process is not its to judge, of a dead one it is)
    }
  }
}

port.on('message', (req: BuilderRequest) => {
  if (req.t === 'delete' || req.t === 'home') deleteTrees(req.trash); // before the reply: the caller is waiting for it
  let reply: ThreadReply;
  try {
    if (req.t === 'start') reply = { ok: true, ...start(req) };
    else if (req.t === 'prebuild') reply = { ok: true, fds: prebuild(req) };
    else if (req.t === 'delete') reply = { ok: true };
    else if (req.t === 'home')
      reply = { ok: true }; // the threads are about to end (the spare is dropped below)
    else throw new Error(`the builder thread has no request "${(req as { t: string }).t}"`);
  } catch (e) {
    // A failure after the process arrived names it, for the caller to kill.
    reply = { ok: false, step, error: toWire(e), pid: (e as { pid?: number }).pid };
  }
  // The way home is not on the caller's clock: the reply goes first (the next request waits).
  port.postMessage(reply);
  goHome();
  if (req.t === 'home') dropSpareNet();
  // Done with a container that had a network namespace of its own: the next one's, now, while the caller runs this one.
  else if ((req.t === 'start' || req.t === 'prebuild') && reply.ok && newNamespaces(req.config) & CLONE_NEWNET) makeSpareNet();
  // What the caller discarded before this start, deleted while it goes on with the container.
  if (req.t === 'start') deleteTrees(req.trash);
});
port.postMessage({ ok: true, pid: gettid() } satisfies ThreadReply);
