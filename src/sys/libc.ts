/**
 * Typed bindings to the libc calls ctrkit needs, the only code that calls koffi.
 *
 * Every wrapper checks the return value and throws {@link SysError} with the call's name,
 * the errno and the path, so callers never see a bare `-1`.
 *
 * A few calls are variadic in C (prctl, fcntl, ioctl). They are bound with fixed prototypes
 * whose arguments are all integers or pointers: on the x86_64 and arm64 Linux ABIs such a
 * call is passed exactly like the variadic one.
 * @internal
 */
import { constants } from 'node:os';
import { koffi } from './koffi.js';
import { SysError } from './sys-error.js';
import { syscallNumbers } from './arch.js';
import { LINUX_CAPABILITY_VERSION_3 } from './constants.js';

type Fn = (...args: unknown[]) => unknown;

interface Bound {
  mount: Fn;
  umount2: Fn;
  unshare: Fn;
  setns: Fn;
  sethostname: Fn;
  setdomainname: Fn;
  prctl: Fn;
  fcntl: Fn;
  ioctl: Fn;
  close_range: Fn;
  close: Fn;
  execve: Fn;
  signal: Fn;
  pthread_sigmask: Fn;
  umask: Fn;
  chdir: Fn;
  socket: Fn;
  mkdirat: Fn;
  mknodat: Fn;
  symlinkat: Fn;
  openat: Fn;
  syscall: Fn;
  dup3: Fn;
  pipe2: Fn;
  setresuid: Fn;
  setresgid: Fn;
  setgroups: Fn;
  setsid: Fn;
  fchown: Fn;
  ioctlInt: Fn;
}

let bound: Bound | undefined;

function lib(): Bound {
  if (bound) return bound;
  const k = koffi();
  const c = k.load('libc.so.6');
  bound = {
    mount: c.func('int mount(const char *src, const char *target, const char *fstype, unsigned long flags, const char *data)'),
    umount2: c.func('int umount2(const char *target, int flags)'),
    unshare: c.func('int unshare(int flags)'),
    setns: c.func('int setns(int fd, int nstype)'),
    sethostname: c.func('int sethostname(const char *name, size_t len)'),
    setdomainname: c.func('int setdomainname(const char *name, size_t len)'),
    prctl: c.func('int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)'),
    fcntl: c.func('int fcntl(int fd, int cmd, long arg)'),
    ioctl: c.func('int ioctl(int fd, unsigned long req, uint8_t *arg)'),
    close_range: c.func('int close_range(unsigned int first, unsigned int last, int flags)'),
    close: c.func('int close(int fd)'),
    execve: c.func('int execve(const char *path, const char **argv, const char **envp)'),
    signal: c.func('void *signal(int sig, void *handler)'),
    pthread_sigmask: c.func('int pthread_sigmask(int how, const uint8_t *set, uint8_t *old)'),
    umask: c.func('uint32_t umask(uint32_t mask)'),
    chdir: c.func('int chdir(const char *path)'),
    socket: c.func('int socket(int domain, int type, int protocol)'),
    mkdirat: c.func('int mkdirat(int dirfd, const char *path, uint32_t mode)'),
    mknodat: c.func('int mknodat(int dirfd, const char *path, uint32_t mode, uint64_t dev)'),
    symlinkat: c.func('int symlinkat(const char *target, int dirfd, const char *linkpath)'),
    openat: c.func('int openat(int dirfd, const char *path, int flags, uint32_t mode)'),
    syscall: c.func('long syscall(long nr, ...)'),
    dup3: c.func('int dup3(int oldfd, int newfd, int flags)'),
    pipe2: c.func('int pipe2(_Out_ int *fds, int flags)'),
    setresuid: c.func('int setresuid(uint32_t r, uint32_t e, uint32_t s)'),
    setresgid: c.func('int setresgid(uint32_t r, uint32_t e, uint32_t s)'),
    setgroups: c.func('int setgroups(size_t n, const uint32_t *list)'),
    setsid: c.func('int setsid()'),
    fchown: c.func('int fchown(int fd, uint32_t owner, uint32_t group)'),
    // The same symbol again, for the requests whose argument is an integer, not a pointer.
    ioctlInt: c.func('int ioctl(int fd, unsigned long req, long arg)'),
  };
  return bound;
}

const ENOENT = 2;

function errno(): number {
  return koffi().errno();
}

function check(r: unknown, syscall: string, path?: string, hint?: string): number {
  const n = Number(r);
  if (n < 0) throw new SysError(syscall, errno(), path, hint);
  return n;
}

/** mount(2). `target` is named in errors. @internal */
export function mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null = null, hint?: string): void {
  check(lib().mount(source, target, fstype, flags, data), `mount(${fstype ?? source ?? 'none'})`, target, hint);
}

/** umount2(2). @internal */
export function umount2(target: string, flags: number): void {
  check(lib().umount2(target, flags), 'umount2', target);
}

/** unshare(2) for the calling thread. @internal */
export function unshare(flags: number): void {
  check(lib().unshare(flags), 'unshare');
}

/** setns(2) for the calling thread. @internal */
export function setns(fd: number, nstype: number, path?: string): void {
  check(lib().setns(fd, nstype), 'setns', path);
}

/** sethostname(2). @internal */
export function sethostname(name: string): void {
  check(lib().sethostname(name, Buffer.byteLength(name)), 'sethostname');
}

/** setdomainname(2). @internal */
export function setdomainname(name: string): void {
  check(lib().setdomainname(name, Buffer.byteLength(name)), 'setdomainname');
}

/** prctl(2) with integer arguments. @internal */
export function prctl(option: number, a2 = 0, a3 = 0, a4 = 0, a5 = 0): number {
  return check(lib().prctl(option, a2, a3, a4, a5), `prctl(${option})`);
}

/** fcntl(2) with an integer argument. @internal */
export function fcntl(fd: number, cmd: number, arg = 0): number {
  return check(lib().fcntl(fd, cmd, arg), `fcntl(${cmd})`, `fd ${fd}`);
}

/** ioctl(2) with a buffer argument. @internal */
export function ioctl(fd: number, request: number, arg: Buffer): void {
  check(lib().ioctl(fd, request, arg), `ioctl(0x${request.toString(16)})`);
}

/** ioctl(2) whose argument is an integer passed by value; returns the call's result. @internal */
export function ioctlInt(fd: number, request: number, arg: number): number {
  return check(lib().ioctlInt(fd, request, arg), `ioctl(0x${request.toString(16)})`);
}

/** close_range(2). @internal */
export function closeRange(first: number, last: number, flags: number): void {
  check(lib().close_range(first, last, flags), 'close_range');
}

/** close(2); errors are ignored, as there is nothing useful to do about them. @internal */
export function close(fd: number): void {
  lib().close(fd);
}

/** execve(2). Returns only by throwing. @internal */
export function execve(path: string, argv: readonly string[], env: readonly string[]): never {
  lib().execve(path, [...argv, null], [...env, null]);
  throw new SysError('execve', errno(), path);
}

/** Resets a signal's disposition to SIG_DFL. EINVAL for SIGKILL/SIGSTOP is ignored. @internal */
export function resetSignal(sig: number): void {
  lib().signal(sig, null);
}

/** Unblocks every signal on the calling thread. @internal */
export function unblockAllSignals(): void {
  check(lib().pthread_sigmask(2 /* SIG_SETMASK */, Buffer.alloc(128), null), 'pthread_sigmask');
}

/** umask(2). @internal */
export function umask(mask: number): number {
  return Number(lib().umask(mask));
}

/** chdir(2). @internal */
export function chdir(path: string): void {
  check(lib().chdir(path), 'chdir', path);
}

/** socket(2). @internal */
export function socket(domain: number, type: number, protocol: number): number {
  return check(lib().socket(domain, type, protocol), 'socket');
}

/** mkdirat(2). @internal */
export function mkdirat(dirfd: number, path: string, mode: number, shownAs?: string): void {
  check(lib().mkdirat(dirfd, path, mode), 'mkdirat', shownAs ?? path);
}

/** mknodat(2). @internal */
export function mknodat(dirfd: number, path: string, mode: number, dev: bigint, shownAs?: string): void {
  check(lib().mknodat(dirfd, path, mode, dev), 'mknodat', shownAs ?? path);
}

/** symlinkat(2). @internal */
export function symlinkat(target: string, dirfd: number, path: string, shownAs?: string): void {
  check(lib().symlinkat(target, dirfd, path), 'symlinkat', shownAs ?? path);
}

/** openat(2). @internal */
export function openat(dirfd: number, path: string, flags: number, mode = 0, shownAs?: string): number {
  return check(lib().openat(dirfd, path, flags, mode), 'openat', shownAs ?? path);
}

/** pivot_root(2) (no glibc wrapper). @internal */
export function pivotRoot(newRoot: string, putOld: string): void {
  check(
    lib().syscall(syscallNumbers().pivot_root, 'const char *', newRoot, 'const char *', putOld),
    'pivot_root',
    newRoot,
    'the new root must be a mount point and / must not be shared',
  );
}

/**
 * openat2(2): opens `path` relative to `dirfd` with the given RESOLVE_* flags. With
 * RESOLVE_IN_ROOT every `..` and absolute symlink is resolved as if `dirfd` were `/`, which
 * is what keeps a hostile rootfs from redirecting a mount outside itself.
 * @internal
 */
export function openat2(dirfd: number, path: string, flags: number, resolve: number, shownAs?: string): number {
  const r = openat2Call(dirfd, path, flags, resolve);
  return check(r, 'openat2', shownAs ?? path);
}

/**
 * {@link openat2}, or -1 when nothing is there (ENOENT) without making an error of it: the
 * masks of a container probe paths that mostly do not exist, and an Error with its stack
 * costs more than the call. @internal
 */
export function openat2IfExists(dirfd: number, path: string, flags: number, resolve: number, shownAs?: string): number {
  const r = openat2Call(dirfd, path, flags, resolve);
  if (r < 0 && errno() === ENOENT) return -1;
  return check(r, 'openat2', shownAs ?? path);
}

function openat2Call(dirfd: number, path: string, flags: number, resolve: number): number {
  const how = Buffer.alloc(24);
  how.writeBigUInt64LE(BigInt(flags), 0);
  how.writeBigUInt64LE(BigInt(resolve), 16);
  return Number(lib().syscall(syscallNumbers().openat2, 'int', dirfd, 'const char *', path, 'uint8_t *', how, 'size_t', 24));
}

/**
 * capset(2) for the calling thread: the same 64-bit mask as effective, permitted and
 * inheritable set.
 * @internal
 */
export function capset(mask: bigint): void {
  capsetSets(mask, mask, mask);
}

/**
 * capset(2) of the calling thread with each set given apart (effective, permitted,
 * inheritable). @internal
 */
export function capsetSets(effective: bigint, permitted: bigint, inheritable: bigint): void {
  const header = Buffer.alloc(8);
  header.writeUInt32LE(LINUX_CAPABILITY_VERSION_3, 0);
  // struct __user_cap_data_struct[2] { u32 effective, permitted, inheritable }: low words, then high
  const data = Buffer.alloc(24);
  for (const [i, shift] of [0n, 32n].entries()) {
    for (const [j, set] of [effective, permitted, inheritable].entries()) data.writeUInt32LE(Number((set >> shift) & 0xffffffffn), i * 12 + j * 4);
  }
  check(lib().syscall(syscallNumbers().capset, 'uint8_t *', header, 'uint8_t *', data), 'capset');
}

/** dup3(2). @internal */
export function dup3(oldfd: number, newfd: number, flags = 0): void {
  check(lib().dup3(oldfd, newfd, flags), 'dup3', `fd ${oldfd} -> ${newfd}`);
}

/** pipe2(2) with O_CLOEXEC: returns [readEnd, writeEnd]. @internal */
export function pipe(): [number, number] {
  const fds = [0, 0];
  check(lib().pipe2(fds, 0o2000000), 'pipe2');
  return [fds[0]!, fds[1]!];
}

/** pidfd_open(2): a handle on a process that cannot be confused with a later one of the same PID. @internal */
export function pidfdOpen(pid: number): number {
  return check(lib().syscall(434, 'int', pid, 'unsigned int', 0), 'pidfd_open', `pid ${pid}`);
}

/** pidfd_send_signal(2). Returns false when the process is gone (ESRCH). @internal */
export function pidfdSendSignal(pidfd: number, sig: number): boolean {
  const r = Number(lib().syscall(424, 'int', pidfd, 'int', sig, 'void *', null, 'unsigned int', 0));
  if (r === 0) return true;
  const e = errno();
  if (e === 3) return false;
  throw new SysError('pidfd_send_signal', e);
}

/** setresuid(2) (glibc applies it to every thread). @internal */
export function setresuid(uid: number): void {
  check(lib().setresuid(uid, uid, uid), 'setresuid', `uid ${uid}`);
}

/** setresgid(2) (glibc applies it to every thread). @internal */
export function setresgid(gid: number): void {
  check(lib().setresgid(gid, gid, gid), 'setresgid', `gid ${gid}`);
}

/**
 * setsid(2): a new session and process group led by the caller, with no controlling
 * terminal. Returns the new session ID.
 * @internal
 */
export function setsid(): number {
  return check(lib().setsid(), 'setsid');
}

/** fchown(2); `-1` leaves that id unchanged. @internal */
export function fchown(fd: number, uid: number, gid: number, shownAs?: string): void {
  check(lib().fchown(fd, uid >>> 0, gid >>> 0), 'fchown', shownAs ?? `fd ${fd}`);
}

/** setgroups(2) with the given supplementary groups. @internal */
export function setgroups(groups: readonly number[]): void {
  check(lib().setgroups(groups.length, groups.length ? Uint32Array.from(groups) : null), 'setgroups');
}

/*
 * Extended attributes, for overlayfs's markers (`trusted.overlay.opaque`, or `user.` with
 * userxattr) and the layer tools that read them. The l* variants never follow a symlink:
 * a layer's symlink is data, not a path to resolve on the host. Bound on first use, apart
 * from the table above so that table stays as it was.
 */
interface BoundXattr {
  lgetxattr: Fn;
  lsetxattr: Fn;
  llistxattr: Fn;
  lremovexattr: Fn;
}
let boundXattr: BoundXattr | undefined;

function xattrLib(): BoundXattr {
  if (boundXattr) return boundXattr;
  const c = koffi().load('libc.so.6');
  boundXattr = {
    lgetxattr: c.func('long lgetxattr(const char *path, const char *name, _Out_ uint8_t *value, size_t size)'),
    lsetxattr: c.func('int lsetxattr(const char *path, const char *name, const uint8_t *value, size_t size, int flags)'),
    llistxattr: c.func('long llistxattr(const char *path, _Out_ uint8_t *list, size_t size)'),
    lremovexattr: c.func('int lremovexattr(const char *path, const char *name)'),
  };
  return boundXattr;
}

const { ENODATA, EOPNOTSUPP, ERANGE } = constants.errno;

/**
 * lgetxattr(2). Returns null when the attribute is absent (ENODATA) or the filesystem has
 * no extended attributes at all (EOPNOTSUPP): for a reader both mean "not set here".
 * @internal
 */
export function lgetxattr(path: string, name: string): Buffer | null {
  let buf = Buffer.alloc(256);
  for (;;) {
    const n = Number(xattrLib().lgetxattr(path, name, buf, buf.length));
    if (n >= 0) return buf.subarray(0, n);
    const e = errno();
    if (e === ENODATA || e === EOPNOTSUPP) return null;
    if (e !== ERANGE || buf.length >= 65536) throw new SysError('lgetxattr', e, path, name);
    buf = Buffer.alloc(65536); // the largest value Linux allows
  }
}

/** lsetxattr(2) with flags 0 (create or replace). @internal */
export function lsetxattr(path: string, name: string, value: Buffer | string): void {
  const v = typeof value === 'string' ? Buffer.from(value) : value;
  check(xattrLib().lsetxattr(path, name, v, v.length, 0), 'lsetxattr', path, name);
}

/** llistxattr(2): the attribute names of a path ([] when the filesystem has none). @internal */
export function llistxattr(path: string): string[] {
  let buf = Buffer.alloc(1024);
  for (;;) {
    const n = Number(xattrLib().llistxattr(path, buf, buf.length));
    if (n >= 0) return buf.subarray(0, n).toString('utf8').split('\0').filter(Boolean);
    const e = errno();
    if (e === EOPNOTSUPP) return [];
    if (e !== ERANGE || buf.length >= 65536) throw new SysError('llistxattr', e, path);
    buf = Buffer.alloc(65536);
  }
}

/** lremovexattr(2); an attribute that is already absent is not an error. @internal */
export function lremovexattr(path: string, name: string): void {
  const r = Number(xattrLib().lremovexattr(path, name));
  if (r < 0 && errno() !== ENODATA) throw new SysError('lremovexattr', errno(), path, name);
}

let boundUtimensat: Fn | undefined;

/**
 * utimensat(2) with AT_SYMLINK_NOFOLLOW and nanosecond times: Node's lutimes takes seconds
 * as a double, which cannot carry every timestamp exactly, and a copy that a diff later
 * compares with its original must keep them exactly.
 * @internal
 */
export function lutimensNs(path: string, atimeNs: bigint, mtimeNs: bigint): void {
  boundUtimensat ??= koffi().load('libc.so.6').func('int utimensat(int dirfd, const char *path, const int64_t *times, int flags)');
  const times = new BigInt64Array([atimeNs / 1_000_000_000n, atimeNs % 1_000_000_000n, mtimeNs / 1_000_000_000n, mtimeNs % 1_000_000_000n]);
  check(boundUtimensat(-100 /* AT_FDCWD */, path, times, 0x100 /* AT_SYMLINK_NOFOLLOW */), 'utimensat', path);
}

let prctlFprog: Fn | undefined;

/** seccomp(2)'s number: glibc has no wrapper. */
const SYS_SECCOMP: Readonly<Record<string, number>> = { x64: 317, arm64: 277 };

/**
 * Installs a seccomp filter (classic BPF, 8 bytes per instruction) on the calling thread:
 * prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &sock_fprog), or with `flags`
 * (SECCOMP_FILTER_FLAG_*), seccomp(SECCOMP_SET_MODE_FILTER, flags, &sock_fprog), which
 * prctl cannot carry. It stays across execve.
 * @internal
 */
export function seccompFilter(program: Buffer, flags = 0): void {
  const k = koffi();
  if (!prctlFprog) {
    k.struct('ctk_sock_fprog', { len: 'uint16', filter: 'uint8_t *' }); // registers the type by name
    prctlFprog = k.load('libc.so.6').func('int prctl(int option, unsigned long mode, ctk_sock_fprog *prog, unsigned long a4, unsigned long a5)') as Fn;
  }
  const fprog = { len: program.length / 8, filter: program };
  if (flags === 0) {
    check(prctlFprog(22 /* PR_SET_SECCOMP */, 2 /* SECCOMP_MODE_FILTER */, fprog, 0, 0), 'prctl(PR_SET_SECCOMP)');
    return;
  }
  const nr = SYS_SECCOMP[process.arch];
  if (nr === undefined) throw new Error(`ctrkit: unsupported architecture ${process.arch} (x64 and arm64 are supported)`);
  const r = Number(lib().syscall(nr, 'unsigned int', 1 /* SECCOMP_SET_MODE_FILTER */, 'unsigned int', flags, 'ctk_sock_fprog *', fprog));
  check(r, 'seccomp(SECCOMP_SET_MODE_FILTER)');
  // With SECCOMP_FILTER_FLAG_TSYNC, a positive result is a thread that could not be synchronized.
  if (r > 0) throw new SysError('seccomp(SECCOMP_SET_MODE_FILTER)', 16 /* EBUSY */, undefined, `thread ${r} could not take the filter (TSYNC)`);
}
