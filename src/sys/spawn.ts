/**
 * posix_spawn(3) and what the thread start path needs around it: FIFOs for its barrier, the
 * calling thread's id, reaping through a pidfd, and setns/unshare carrying the extra
 * arguments a thread's seccomp filter checks (see ../namespaces/fast/).
 *
 * glibc's posix_spawn clones with CLONE_VFORK from the calling thread: the child inherits
 * that thread's namespaces, credentials, seccomp filter and no_new_privs, and the thread is
 * blocked until the child has exec'd or failed to.
 * @internal
 */
import { koffi } from './koffi.js';
import { SysError } from './sys-error.js';

type Fn = (...args: unknown[]) => unknown;

interface Bound {
  spawn: Fn;
  faInit: Fn;
  faDestroy: Fn;
  faDup2: Fn;
  faOpen: Fn;
  faClosefrom: Fn;
  faChdir: Fn;
  attrInit: Fn;
  attrDestroy: Fn;
  attrFlags: Fn;
  attrSigmask: Fn;
  attrSigdefault: Fn;
  mkfifo: Fn;
  syscall: Fn;
  waitid: Fn;
  exit: Fn;
  prlimit: Fn;
}

let bound: Bound | undefined;

function lib(): Bound {
  if (bound) return bound;
  const c = koffi().load('libc.so.6');
  bound = {
    spawn: c.func('int posix_spawn(_Out_ int *pid, const char *path, const uint8_t *fa, const uint8_t *attr, const char **argv, const char **envp)'),
    faInit: c.func('int posix_spawn_file_actions_init(uint8_t *fa)'),
    faDestroy: c.func('int posix_spawn_file_actions_destroy(uint8_t *fa)'),
    faDup2: c.func('int posix_spawn_file_actions_adddup2(uint8_t *fa, int fd, int newfd)'),
    faOpen: c.func('int posix_spawn_file_actions_addopen(uint8_t *fa, int fd, const char *path, int oflag, uint32_t mode)'),
    faClosefrom: c.func('int posix_spawn_file_actions_addclosefrom_np(uint8_t *fa, int from)'),
    faChdir: c.func('int posix_spawn_file_actions_addchdir_np(uint8_t *fa, const char *path)'),
    attrInit: c.func('int posix_spawnattr_init(uint8_t *attr)'),
    attrDestroy: c.func('int posix_spawnattr_destroy(uint8_t *attr)'),
    attrFlags: c.func('int posix_spawnattr_setflags(uint8_t *attr, short flags)'),
    attrSigmask: c.func('int posix_spawnattr_setsigmask(uint8_t *attr, const uint8_t *set)'),
    attrSigdefault: c.func('int posix_spawnattr_setsigdefault(uint8_t *attr, const uint8_t *set)'),
    mkfifo: c.func('int mkfifo(const char *path, uint32_t mode)'),
    syscall: c.func('long syscall(long nr, ...)'),
    waitid: c.func('int waitid(int idtype, int id, _Out_ uint8_t *info, int options)'),
    exit: c.func('void _exit(int status)'),
    prlimit: c.func('int prlimit(int pid, int resource, const uint64_t *limit, _Out_ uint64_t *old)'),
  };
  return bound;
}

// glibc's <spawn.h>
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSID = 0x80;
// Generous sizes for glibc's opaque types (80 and 336 bytes on x86_64 and arm64).
const FILE_ACTIONS_SIZE = 512;
const ATTR_SIZE = 1024;
const SIGSET_SIZE = 128;

/**
 * Binds every function now: a C library without one of them (addclosefrom_np needs glibc
 * 2.34, addchdir_np 2.29) throws here, where the caller can still choose another way.
 */
export function loadSpawnFunctions(): void {
  lib();
}

/** posix_spawn's functions return the error number instead of setting errno. */
function checkRet(r: unknown, call: string, path?: string): void {
  const n = Number(r);
  if (n !== 0) throw new SysError(call, n, path);
}

/** One file action of the child, in order, before it execs. */
export type FileAction =
  | { readonly op: 'dup2'; readonly fd: number; readonly to: number }
  | { readonly op: 'open'; readonly fd: number; readonly path: string; readonly flags: number }
  | { readonly op: 'closefrom'; readonly fd: number }
  | { readonly op: 'chdir'; readonly path: string };

/** What {@link posixSpawn} starts. */
export interface SpawnSpec {
  /** The program, resolved already (no PATH search here). */
  readonly path: string;
  readonly argv: readonly string[];
  readonly env: readonly string[];
  readonly actions: readonly FileAction[];
  /** Start a new session (no controlling terminal). */
  readonly setsid: boolean;
}

/**
 * Starts a process from the calling thread with every signal at its default disposition and
 * none blocked. Returns its PID once it exec'd; throws a SysError with the exec's errno when
 * it could not (ENOENT, EACCES ...), or the file action's.
 */
export function posixSpawn(spec: SpawnSpec): number {
  const l = lib();
  const fa = Buffer.alloc(FILE_ACTIONS_SIZE);
  const attr = Buffer.alloc(ATTR_SIZE);
  checkRet(l.faInit(fa), 'posix_spawn_file_actions_init');
  checkRet(l.attrInit(attr), 'posix_spawnattr_init');
  try {
    for (const a of spec.actions) {
      switch (a.op) {
        case 'dup2':
          checkRet(l.faDup2(fa, a.fd, a.to), 'posix_spawn_file_actions_adddup2');
          break;
        case 'open':
          checkRet(l.faOpen(fa, a.fd, a.path, a.flags, 0), 'posix_spawn_file_actions_addopen', a.path);
          break;
        case 'closefrom':
          checkRet(l.faClosefrom(fa, a.fd), 'posix_spawn_file_actions_addclosefrom_np');
          break;
        case 'chdir':
          checkRet(l.faChdir(fa, a.path), 'posix_spawn_file_actions_addchdir_np', a.path);
          break;
      }
    }
    const all = Buffer.alloc(SIGSET_SIZE, 0xff);
    const none = Buffer.alloc(SIGSET_SIZE);
    checkRet(l.attrSigdefault(attr, all), 'posix_spawnattr_setsigdefault');
    checkRet(l.attrSigmask(attr, none), 'posix_spawnattr_setsigmask');
    checkRet(l.attrFlags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | (spec.setsid ? POSIX_SPAWN_SETSID : 0)), 'posix_spawnattr_setflags');
    const pid = [0];
    checkRet(l.spawn(pid, spec.path, fa, attr, [...spec.argv, null], [...spec.env, null]), 'execve', spec.path);
    return pid[0]!;
  } finally {
    l.faDestroy(fa);
    l.attrDestroy(attr);
  }
}

/** mkfifo(3). */
export function mkfifo(path: string, mode = 0o600): void {
  if (Number(lib().mkfifo(path, mode)) < 0) throw new SysError('mkfifo', koffi().errno(), path);
}

/** The calling thread's id (gettid(2)). */
export function gettid(): number {
  return Number(lib().syscall(process.arch === 'arm64' ? 178 : 186));
}

const NR: Record<string, { setns: number; unshare: number }> = {
  x64: { setns: 308, unshare: 272 },
  arm64: { setns: 268, unshare: 97 },
};

/** The numbers of setns and unshare on this architecture (for a filter that checks them). */
export function namespaceSyscalls(): { setns: number; unshare: number } {
  const n = NR[process.arch];
  if (!n) throw new Error(`ctrkit: unsupported architecture ${process.arch}`);
  return n;
}

/**
 * setns(2) with two more arguments the kernel ignores and a seccomp filter may check: the
 * key that lets a thread whose filter refuses setns to its containers still use it.
 */
export function setnsKeyed(fd: number, nstype: number, key: readonly [bigint, bigint], path?: string): void {
  const r = Number(lib().syscall(namespaceSyscalls().setns, 'int', fd, 'int', nstype, 'uint64_t', key[0], 'uint64_t', key[1]));
  if (r < 0) throw new SysError('setns', koffi().errno(), path);
}

/** unshare(2) with the key of {@link setnsKeyed} in its unused third and fourth arguments. */
export function unshareKeyed(flags: number, key: readonly [bigint, bigint]): void {
  const r = Number(lib().syscall(namespaceSyscalls().unshare, 'int', flags, 'uint64_t', 0n, 'uint64_t', key[0], 'uint64_t', key[1]));
  if (r < 0) throw new SysError('unshare', koffi().errno());
}

/** How a reaped child ended. */
export interface ChildExit {
  readonly exitCode: number | null;
  readonly signal: number | null;
}

const P_PIDFD = 3;
const WEXITED = 4;
const WNOHANG = 1;
const CLD_EXITED = 1;

/**
 * Reaps the child behind `pidfd` if it has exited (waitid(P_PIDFD, WNOHANG)); null while it
 * runs. Only a child of this process can be reaped so.
 */
export function reapPidfd(pidfd: number): ChildExit | null {
  const info = Buffer.alloc(128);
  if (Number(lib().waitid(P_PIDFD, pidfd, info, WEXITED | WNOHANG)) < 0) throw new SysError('waitid', koffi().errno());
  // siginfo_t: si_signo, si_errno, si_code, pad, then si_pid, si_uid, si_status
  if (info.readInt32LE(16) === 0) return null;
  const code = info.readInt32LE(8);
  const status = info.readInt32LE(24);
  return code === CLD_EXITED ? { exitCode: status, signal: null } : { exitCode: null, signal: status };
}

/**
 * setgroups(2) for the calling thread alone: glibc's wrapper applies it to every thread of
 * the process, the raw system call to the caller.
 */
export function setgroupsThread(groups: readonly number[]): void {
  const nr = process.arch === 'arm64' ? 159 : 116;
  const list = groups.length ? Buffer.from(Uint32Array.from(groups).buffer) : null;
  if (Number(lib().syscall(nr, 'size_t', groups.length, 'uint8_t *', list)) < 0) throw new SysError('setgroups', koffi().errno());
}

/**
 * setresuid(2) and setresgid(2) for the calling thread alone (raw system calls: glibc's
 * wrappers change every thread of the process). A spawner thread of the thread start path
 * takes its containers' user this way, keeping its capabilities with PR_SET_KEEPCAPS.
 */
export function setUserThread(uid: number, gid: number): void {
  const [setresuid, setresgid] = process.arch === 'arm64' ? [147, 149] : [117, 119];
  if (Number(lib().syscall(setresgid, 'uint32_t', gid, 'uint32_t', gid, 'uint32_t', gid)) < 0) throw new SysError('setresgid', koffi().errno(), `gid ${gid}`);
  if (Number(lib().syscall(setresuid, 'uint32_t', uid, 'uint32_t', uid, 'uint32_t', uid)) < 0) throw new SysError('setresuid', koffi().errno(), `uid ${uid}`);
}

/**
 * Calls `onExit` once the child behind `pidfd` has exited, reaped, from Node's event loop
 * (a pidfd turns readable when its process exits; no thread waits on it).
 */
export function watchPidfd(pidfd: number, onExit: (exit: ChildExit) => void): { close(): void } {
  let closed = false;
  const handle = koffi().node.poll(pidfd, { readable: true }, () => {
    if (closed) return;
    let exit: ChildExit | null;
    try {
      exit = reapPidfd(pidfd);
    } catch {
      exit = { exitCode: null, signal: 9 }; // reaped by someone else: it is gone either way
    }
    if (!exit) return;
    closed = true;
    handle.close();
    onExit(exit);
  });
  return {
    close: () => {
      if (closed) return;
      closed = true;
      handle.close();
    },
  };
}

/**
 * Ends this process at once with `code` (_exit(2)): no exit handlers, and no waiting for
 * worker threads, one of which may sit in posix_spawn for good after a start was handed over
 * (see holdOnThreads). Whatever must reach a file or a pipe has to be written synchronously
 * before.
 */
export function exitNow(code: number): never {
  lib().exit(code);
  throw new Error('_exit returned');
}

/** prlimit(2): sets resource `resource` of process `pid` to [soft, hard]. */
export function setProcessLimit(pid: number, resource: number, soft: bigint, hard: bigint): void {
  const limit = new BigUint64Array([soft, hard]);
  if (Number(lib().prlimit(pid, resource, limit, null)) < 0) throw new SysError('prlimit', koffi().errno(), `pid ${pid}`);
}
