/**
 * A spawner thread of the thread start path. It carries one security profile for good — the
 * bounding set narrowed to the container's capabilities, no_new_privs, the seccomp filter —
 * and for each container: joins its v1 cgroups (writing 0 to `tasks` moves this thread alone,
 * without the RCU wait a move of another process costs), makes a PID and a cgroup namespace
 * for its children, enters the builder's namespaces and posix_spawns the command, which
 * inherits all of it. Then it returns to the host's namespaces and its park cgroup.
 *
 * The thread keeps CAP_SYS_ADMIN in its effective set (the bounding set limits only what an
 * exec grants), so it may still setns and unshare; its filter lets those two calls through
 * for the key only (see withNamespaceKey in ../seccomp.ts).
 * @internal
 */
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import {
  AT_FDCWD,
  CLONE_FS,
  CLONE_NEWCGROUP,
  CLONE_NEWPID,
  O_PATH,
  PR_CAPBSET_DROP,
  PR_CAP_AMBIENT,
  PR_CAP_AMBIENT_CLEAR_ALL,
  PR_CAP_AMBIENT_RAISE,
  PR_SET_KEEPCAPS,
  PR_SET_NO_NEW_PRIVS,
} from '../../sys/constants.js';
import { capsetSets, close, openat, prctl, seccompFilter, umask, unshare } from '../../sys/libc.js';
import { gettid, loadSpawnFunctions, posixSpawn, setgroupsThread, setnsKeyed, setUserThread, unshareKeyed, type FileAction } from '../../sys/spawn.js';
import { toWire } from '../init/wire.js';
import type { InitStep } from '../protocol.js';
import { failsOnlyWithErrno } from '../seccomp-actions.js';

const SECCOMP_FILTER_FLAG_TSYNC = 1;
import { BARRIER_TIMEOUT_MS, entered, waitBuilt, waitNamespaces, waitReady } from './handoff.js';
import type { EnterRequest, SpawnerData, SpawnerStartRequest, SpawnThreadRequest, ThreadReply, SpawnerRequest } from './protocol.js';
import { NS_FLAG, openHome, threadNsPath, withFd, type ThreadNamespace } from './thread-home.js';

const O_WRONLY = 1;
const O_RDONLY = 0;
const O_RDWR = 2;
const port = parentPort!;
const data = workerData as SpawnerData;
const key: [bigint, bigint] = [BigInt(data.key[0]), BigInt(data.key[1])];
let step: InitStep = 'start';
let park: readonly string[] = [];
/** The park's `tasks` files, open (closed on a `home` request: the threads are about to end). */
const parkFds = new Map<string, number>();

unshare(CLONE_FS); // our own root and cwd: setns(CLONE_NEWNS) needs them unshared
const home = openHome(['mnt', 'uts', 'ipc', 'net', 'cgroup', 'pid']);

/** The profile, once: each part stays with the thread and passes to every command it starts. */
function applyProfile(): void {
  const p = data.profile;
  if (p.groups) setgroupsThread(p.groups);
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL);
  // An exec as root gets its permitted and effective sets from the bounding set and the
  // inheritable set: both become the container's; the thread's own effective and permitted
  // sets stay whole (it still has namespaces to enter and leave).
  const last = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'));
  const keep = new Set(p.capabilities);
  let mask = 0n;
  for (let cap = 0; cap <= last; cap++) {
    if (keep.has(cap)) mask |= 1n << BigInt(cap);
    else prctl(PR_CAPBSET_DROP, cap);
  }
  if (p.uid || p.gid) {
    // The containers' user, on this thread alone: what it spawns inherits it, and execs as a
    // process that is not root, whose capabilities the exec clears (as on the stage path).
    // The thread keeps its permitted set through the change (KEEPCAPS) and makes it effective
    // again below: it still joins cgroups and enters namespaces.
    prctl(PR_SET_KEEPCAPS, 1);
    setUserThread(p.uid ?? 0, p.gid ?? 0);
  }
  const status = readFileSync('/proc/thread-self/status', 'utf8');
  const set = (name: string) => BigInt(`0x${status.match(new RegExp(`^${name}:\\s*([0-9a-f]+)$`, 'm'))?.[1] ?? '0'}`);
  // Only what the thread holds can be inheritable (and what it lacks, the stage path could not give either).
  capsetSets(set('CapPrm'), set('CapPrm'), mask & set('CapPrm'));
  // The ambient set, which an exec keeps: a non-root user's capabilities (root's exec grants the bounding set anyway).
  const permitted = set('CapPrm');
  for (const cap of p.ambient ?? []) if (keep.has(cap) && (permitted >> BigInt(cap)) & 1n) prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap);
  umask(p.umask ?? 0o022); // this thread's alone (unshare(CLONE_FS) above)
  if (p.noNewPrivileges) prctl(PR_SET_NO_NEW_PRIVS, 1);
  if (p.seccomp) {
    const program = Buffer.from(p.seccomp, 'base64');
    // Thrown before the thread is ready: the start falls back to the stage path.
    if (!failsOnlyWithErrno(program)) throw new Error('a seccomp profile that kills, traps or traces is installed by the stage path only');
    // Never TSYNC here: it would put the container's filter on every thread of this process.
    seccompFilter(program, (p.seccompFlags ?? 0) & ~SECCOMP_FILTER_FLAG_TSYNC);
  }
}

/**
 * Out of the container's cgroups, into the park: before any reply (see the message loop).
 * The host's mount and cgroup namespaces first: inside the container's, the park's path
 * names nothing (the pivot carried this thread's root along into the container's).
 */
function leaveCgroups(): void {
  goHome(['mnt', 'cgroup']);
  try {
    for (const tasks of park) {
      // The park's files stay open: leaving is on the start's path (after the exec, before the reply).
      let fd = parkFds.get(tasks);
      if (fd === undefined) {
        fd = openSync(tasks, O_WRONLY);
        parkFds.set(tasks, fd);
      }
      writeSync(fd, '0');
    }
  } catch (e) {
    port.postMessage({ ok: false, step: 'start', error: toWire(e) } satisfies ThreadReply);
    process.exit(1);
  }
}

function goHome(types: readonly ThreadNamespace[] = ['uts', 'ipc', 'net', 'pid']): void {
  try {
    for (const type of types) setnsKeyed(home.get(type)!, NS_FLAG[type], key);
  } catch (e) {
    // Stuck in a container's namespaces or cgroup: this thread must not start another one.
    port.postMessage({ ok: false, step: 'start', error: toWire(e) } satisfies ThreadReply);
    process.exit(1);
  }
}

function enter(req: EnterRequest): void {
  park = req.parkTasks;
  step = 'cgroup';
  for (const tasks of req.cgroupTasks) writeFileSync(tasks, '0');
  step = 'cgroupns';
  if (req.joinOf !== undefined) {
    // An exec: the running container's cgroup namespace, and its PID namespace for children.
    for (const type of ['cgroup', 'pid'] as const) {
      const path = `/proc/${req.joinOf}/ns/${type}`;
      withFd(path, (fd) => setnsKeyed(fd, NS_FLAG[type], key, path));
    }
  } else if (req.joinPaths?.pid || req.joinPaths?.cgroup) {
    for (const type of ['cgroup', 'pid'] as const) {
      const path = req.joinPaths[type];
      if (path) withFd(path, (fd) => setnsKeyed(fd, NS_FLAG[type], key, path));
    }
    const fresh = (req.joinPaths.pid ? 0 : CLONE_NEWPID) | (req.cgroupns && !req.joinPaths.cgroup ? CLONE_NEWCGROUP : 0);
    if (fresh) unshareKeyed(fresh, key);
  } else if (req.cgroupnsFd !== undefined) {
    // A prepared container's cgroup namespace, rooted at its cgroup when it was made.
    setnsKeyed(req.cgroupnsFd, CLONE_NEWCGROUP, key);
    unshareKeyed(CLONE_NEWPID, key);
  } else unshareKeyed(CLONE_NEWPID | (req.cgroupns ? CLONE_NEWCGROUP : 0), key);
}

/**
 * A whole start: enter, tell the builder (it mounts cgroupfs in the cgroup namespace made
 * here), enter its namespaces as soon as they exist, wait for its root and the command's
 * path, spawn. The command's PID, once it execs.
 */
function start(req: SpawnerStartRequest): number {
  try {
    if (req.gated) {
      step = 'cgroup';
      waitReady(req.handoff, BARRIER_TIMEOUT_MS); // the cgroup may not exist before
    }
    enter({ t: 'enter', ...req.enter });
  } catch (e) {
    entered(req.handoff, false);
    throw e;
  }
  entered(req.handoff, true);
  step = 'join';
  if (!req.spawn.nsFds) waitNamespaces(req.handoff, BARRIER_TIMEOUT_MS);
  joinNamespaces(req.spawn);
  step = 'rootfs';
  const path = waitBuilt(req.handoff, BARRIER_TIMEOUT_MS);
  return spawnJoined({ t: 'spawn', ...req.spawn, path });
}

/** Into the namespaces the command is spawned in: the builder's, or a prepared container's. */
function joinNamespaces(req: Omit<SpawnThreadRequest, 't' | 'path'>): void {
  step = 'join';
  for (const type of req.namespaces) {
    const fd = req.nsFds?.[type];
    if (fd !== undefined) {
      setnsKeyed(fd, NS_FLAG[type], key);
      continue;
    }
    const path = threadNsPath(req.builderTid, type);
    withFd(path, (fd) => setnsKeyed(fd, NS_FLAG[type as ThreadNamespace], key, path));
  }
}

function spawnCommand(req: SpawnThreadRequest): number {
  joinNamespaces(req);
  return spawnJoined(req);
}

/** posix_spawn from the namespaces this thread stands in. */
function spawnJoined(req: SpawnThreadRequest): number {
  step = 'exec';
  // A terminal: its slave, opened by the session leader the child is (setsid), becomes its
  // controlling terminal and its 0, 1 and 2 (the stdio given stands in until then).
  const terminal: FileAction[] = req.terminal
    ? [
        { op: 'open', fd: 0, path: req.terminal, flags: O_RDWR },
        { op: 'dup2', fd: 0, to: 1 },
        { op: 'dup2', fd: 0, to: 2 },
      ]
    : [];
  if (!req.fifos) {
    // An exec into a running container: nothing to wait for, and nothing of ours to keep.
    const actions: FileAction[] = [
      ...req.stdio.map((fd, i) => ({ op: 'dup2' as const, fd, to: i })),
      ...terminal,
      { op: 'chdir', path: req.cwd },
      { op: 'closefrom', fd: 3 },
    ];
    return posixSpawn({ path: req.path, argv: req.argv, env: req.env, actions, setsid: true });
  }
  // The barrier's FIFOs, held as O_PATH fds the child inherits and reopens through its own
  // /proc/self/fd: opening the first for writing tells the builder the process exists,
  // opening the second for reading blocks it until the caller's hook has run. (Were the
  // caller to die meanwhile, it would wait there for good, in the container's cgroup: the
  // owner helper kills what is in it. The thread path takes only starts with a cgroup.)
  const fifos = req.fifos.map((f) => openat(AT_FDCWD, f, O_PATH, 0, f)) as [number, number];
  try {
    // Nothing of ours may stay open in the child while it waits: a copy of the owner helper's
    // channel would keep the helper from seeing its owner die. So the FIFOs move to 3 and 4
    // (through fds above both, so neither overwrites the other), everything above is closed,
    // and they are reopened onto 5 and 6 (glibc closes an open action's target first).
    const high = Math.max(...fifos) + 1;
    const actions: FileAction[] = [
      ...req.stdio.map((fd, i) => ({ op: 'dup2' as const, fd, to: i })),
      { op: 'dup2', fd: fifos[0], to: high },
      { op: 'dup2', fd: fifos[1], to: high + 1 },
      { op: 'dup2', fd: high, to: 3 },
      { op: 'dup2', fd: high + 1, to: 4 },
      { op: 'closefrom', fd: 5 },
      { op: 'open', fd: 5, path: '/proc/self/fd/3', flags: O_WRONLY },
      { op: 'open', fd: 6, path: '/proc/self/fd/4', flags: O_RDONLY },
      ...terminal, // after the barrier: the pivot has made the container's /dev/pts the one it names
      { op: 'chdir', path: req.cwd },
      { op: 'closefrom', fd: 3 },
    ];
    return posixSpawn({ path: req.path, argv: req.argv, env: req.env, actions, setsid: true });
  } finally {
    for (const fd of fifos) close(fd);
  }
}

try {
  loadSpawnFunctions();
  applyProfile();
} catch (e) {
  port.postMessage({ ok: false, step: 'capabilities', error: toWire(e) } satisfies ThreadReply);
  process.exit(1);
}

port.on('message', (req: SpawnerRequest) => {
  let reply: ThreadReply;
  try {
    if (req.t === 'enter') {
      enter(req);
      reply = { ok: true };
    } else if (req.t === 'start') reply = { ok: true, pid: start(req) };
    else if (req.t === 'spawn') reply = { ok: true, pid: spawnCommand(req) };
    else if (req.t === 'home') reply = { ok: true };
    else throw new Error(`a spawner thread has no request "${(req as { t: string }).t}"`);
  } catch (e) {
    reply = { ok: false, step, error: toWire(e) };
  }
  // Out of the container's cgroups before the reply: the caller may kill or freeze what is
  // in them next, and this thread would count as the whole process there. The namespaces
  // can wait until after it (the next request waits for them).
  const done = req.t !== 'enter' || !reply.ok;
  if (done) leaveCgroups();
  if (req.t === 'home') {
    for (const fd of parkFds.values()) closeSync(fd);
    parkFds.clear();
  }
  port.postMessage(reply);
  if (done) goHome();
});
port.postMessage({ ok: true, pid: gettid() } satisfies ThreadReply);
