/**
 * The new mount API (Linux 5.2+): fsopen, fsconfig, fsmount, move_mount, plus statx for
 * the two mount facts Node's fs.stat does not give (the mount id and "is a mount root").
 *
 * Why not mount(2) alone: its option string is limited to one page, which caps an overlay
 * at a few dozen layers, and every path in it must be escaped. With fsconfig each option
 * is its own call, so overlay's `lowerdir+` takes one layer per call, verbatim and
 * unlimited in number. A filesystem context also keeps the error text the VFS and some
 * filesystems log through it (overlayfs logs most of its own to dmesg only); it is read
 * from the context fd and put in the error.
 *
 * The calls go through syscall(2) with the numbers below rather than glibc's wrappers,
 * which only exist since glibc 2.36. The numbers are the same on x86_64 and arm64 (the
 * generic syscall table, added after the tables were unified).
 * @internal
 */
import { koffi } from './koffi.js';
import { SysError } from './sys-error.js';
import { close } from './libc.js';
import { AT_FDCWD } from './constants.js';

const SYS_MOVE_MOUNT = 429;
const SYS_FSOPEN = 430;
const SYS_FSCONFIG = 431;
const SYS_FSMOUNT = 432;

const FSOPEN_CLOEXEC = 0x1;
const FSCONFIG_SET_FLAG = 0;
const FSCONFIG_SET_STRING = 1;
const FSCONFIG_CMD_CREATE = 6;
const FSMOUNT_CLOEXEC = 0x1;
const MOVE_MOUNT_F_EMPTY_PATH = 0x4;

const STATX_MNT_ID = 0x1000;
const STATX_ATTR_MOUNT_ROOT = 0x2000;

type Fn = (...args: unknown[]) => unknown;
interface Bound {
  syscall: Fn;
  read: Fn;
  statx: Fn;
}
let bound: Bound | undefined;

function lib(): Bound {
  if (bound) return bound;
  const c = koffi().load('libc.so.6');
  bound = {
    syscall: c.func('long syscall(long nr, ...)'),
    read: c.func('long read(int fd, _Out_ uint8_t *buf, size_t count)'),
    statx: c.func('int statx(int dirfd, const char *path, int flags, unsigned int mask, _Out_ uint8_t *buf)'),
  };
  return bound;
}

function errno(): number {
  return koffi().errno();
}

/**
 * A call on a filesystem context failed; `kernelMessage` is what the kernel logged to the
 * context about it (e.g. `overlay: Unknown parameter 'lowerdir+'`), also part of the message.
 * @internal
 */
export class FsContextError extends SysError {
  /** The kernel's own explanation, read from the context fd ('' when it gave none). */
  readonly kernelMessage: string;

  constructor(syscall: string, errnoValue: number, path: string | undefined, kernelMessage: string) {
    super(syscall, errnoValue, path, kernelMessage || undefined);
    this.kernelMessage = kernelMessage;
  }
}

/**
 * Drains the messages a filesystem context has logged. Each read(2) returns one message,
 * prefixed `e ` (error), `w ` (warning) or `i ` (info); ENODATA ends the log.
 */
function readContextLog(fd: number): string[] {
  const out: string[] = [];
  const buf = Buffer.alloc(4096);
  for (let i = 0; i < 64; i++) {
    const n = Number(lib().read(fd, buf, buf.length));
    if (n <= 0) break; // ENODATA (no more messages) or any other error: the log is best effort
    out.push(buf.subarray(0, n).toString('utf8').trim());
  }
  return out;
}

/** The error lines of a context log, without their `e ` prefix, joined for a message. */
function errorText(fd: number): string {
  const lines = readContextLog(fd);
  const errors = lines.filter((l) => l.startsWith('e ')).map((l) => l.slice(2));
  return (errors.length ? errors : lines.map((l) => l.replace(/^[a-z] /, ''))).join('; ');
}

function fail(fd: number, syscall: string, path?: string): never {
  const e = errno();
  throw new FsContextError(syscall, e, path, fd >= 0 ? errorText(fd) : '');
}

/** fsopen(2): a new, unconfigured filesystem context (close-on-exec). @internal */
export function fsopen(fsname: string): number {
  const r = Number(lib().syscall(SYS_FSOPEN, 'const char *', fsname, 'unsigned int', FSOPEN_CLOEXEC));
  if (r < 0) throw new SysError(`fsopen(${fsname})`, errno());
  return r;
}

/**
 * fsconfig(FSCONFIG_SET_STRING): one `key=value` option. `shown` names the option in the
 * error (a path the caller recognises).
 * @internal
 */
export function fsconfigString(fd: number, key: string, value: string, shown = value): void {
  const r = Number(lib().syscall(SYS_FSCONFIG, 'int', fd, 'unsigned int', FSCONFIG_SET_STRING, 'const char *', key, 'const char *', value, 'int', 0));
  if (r < 0) fail(fd, `fsconfig(${key})`, shown);
}

/** fsconfig(FSCONFIG_SET_FLAG): a valueless option such as `userxattr`. @internal */
export function fsconfigFlag(fd: number, key: string): void {
  const r = Number(lib().syscall(SYS_FSCONFIG, 'int', fd, 'unsigned int', FSCONFIG_SET_FLAG, 'const char *', key, 'void *', null, 'int', 0));
  if (r < 0) fail(fd, `fsconfig(${key})`);
}

/** fsconfig(FSCONFIG_CMD_CREATE): builds the superblock from the options set so far. @internal */
export function fsconfigCreate(fd: number, shown?: string): void {
  const r = Number(lib().syscall(SYS_FSCONFIG, 'int', fd, 'unsigned int', FSCONFIG_CMD_CREATE, 'void *', null, 'void *', null, 'int', 0));
  if (r < 0) fail(fd, 'fsconfig(create)', shown);
}

/**
 * fsmount(2): a detached mount of the context's superblock, as a close-on-exec fd. Until
 * move_mount attaches it nothing is visible anywhere, and closing the fd drops it: a
 * failure between here and move_mount leaves nothing mounted.
 * @internal
 */
export function fsmount(fd: number, attrFlags = 0, shown?: string): number {
  const r = Number(lib().syscall(SYS_FSMOUNT, 'int', fd, 'unsigned int', FSMOUNT_CLOEXEC, 'unsigned int', attrFlags));
  if (r < 0) fail(fd, 'fsmount', shown);
  return r;
}

/** move_mount(2) of a detached mount fd onto `target` (a path, symlinks followed). @internal */
export function moveMount(mountFd: number, target: string): void {
  const r = Number(
    lib().syscall(SYS_MOVE_MOUNT, 'int', mountFd, 'const char *', '', 'int', AT_FDCWD, 'const char *', target, 'unsigned int', MOVE_MOUNT_F_EMPTY_PATH),
  );
  if (r < 0) throw new SysError('move_mount', errno(), target);
}

/** What statx says about a path's mount. @internal */
export interface MountFacts {
  /** The id of the mount the path is on (the same one /proc/self/mountinfo shows first). */
  readonly mountId: bigint;
  /** True when the path is the root of a mount, i.e. a mount point. */
  readonly isMountRoot: boolean;
}

/**
 * statx(2) for the mount id and the STATX_ATTR_MOUNT_ROOT attribute (Linux 5.8+), following
 * symlinks as mount(2) does. Without kernel support the id is -1 and "mount root" false.
 * @internal
 */
export function mountFacts(path: string): MountFacts {
  const buf = Buffer.alloc(256);
  const r = Number(lib().statx(AT_FDCWD, path, 0, STATX_MNT_ID, buf));
  if (r < 0) throw new SysError('statx', errno(), path);
  const mask = buf.readUInt32LE(0);
  const attributes = buf.readBigUInt64LE(8);
  const attributesMask = buf.readBigUInt64LE(56);
  const knowsRoot = (attributesMask & BigInt(STATX_ATTR_MOUNT_ROOT)) !== 0n;
  return {
    mountId: (mask & STATX_MNT_ID) !== 0 ? buf.readBigUInt64LE(144) : -1n,
    isMountRoot: knowsRoot && (attributes & BigInt(STATX_ATTR_MOUNT_ROOT)) !== 0n,
  };
}

/** Closes an fd from this module; errors are ignored like libc.close. @internal */
export function closeFd(fd: number): void {
  if (fd >= 0) close(fd);
}

const SYS_MOUNT_SETATTR = 442;
const AT_RECURSIVE = 0x8000;
const AT_EMPTY_PATH = 0x1000;

/** MOUNT_ATTR_* flags of mount_setattr(2). @internal */
export const MOUNT_ATTR_RDONLY = 0x1;
/** @internal */
export const MOUNT_ATTR_NOSUID = 0x2;
/** @internal */
export const MOUNT_ATTR_NODEV = 0x4;
/** @internal */
export const MOUNT_ATTR_NOEXEC = 0x8;

/**
 * mount_setattr(2) on the mount an fd names (AT_EMPTY_PATH), and with `recursive` on every
 * mount below it: sets `set` and clears `clear`, leaving every other flag as it is. Unlike a
 * MS_REMOUNT|MS_BIND, it never drops the flags the kernel locked on a mount a user namespace
 * was given (nosuid, nodev, noexec), and it reaches submounts.
 * @internal
 */
export function mountSetattr(fd: number, set: number, clear: number, recursive: boolean, shown?: string): void {
  const attr = Buffer.alloc(32); // struct mount_attr { u64 attr_set, attr_clr, propagation, userns_fd }
  attr.writeBigUInt64LE(BigInt(set), 0);
  attr.writeBigUInt64LE(BigInt(clear), 8);
  const flags = AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
  const r = Number(lib().syscall(SYS_MOUNT_SETATTR, 'int', fd, 'const char *', '', 'unsigned int', flags, 'uint8_t *', attr, 'size_t', attr.length));
  if (r < 0) throw new SysError('mount_setattr', errno(), shown);
}

const SYS_OPEN_TREE = 428;
const OPEN_TREE_CLONE = 0x1;
const OPEN_TREE_CLOEXEC = 0o2000000;
/** @internal */
export const MOUNT_ATTR_IDMAP = 0x00100000;

/**
 * open_tree(OPEN_TREE_CLONE): a detached bind mount of `path` (that mount only, not the ones
 * below it), as a close-on-exec fd. Nothing is visible anywhere until move_mount attaches
 * it; closing the fd drops it.
 * @internal
 */
export function openTreeClone(path: string): number {
  const r = Number(lib().syscall(SYS_OPEN_TREE, 'int', AT_FDCWD, 'const char *', path, 'unsigned int', OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
  if (r < 0) throw new SysError('open_tree', errno(), path);
  return r;
}

/**
 * mount_setattr(MOUNT_ATTR_IDMAP) on a detached mount: from now on it shows a file owned by
 * uid N on disk as the id the user namespace `usernsFd` maps N to (and writes the other way
 * round), as the kernel's idmapped mounts do. `set` may add MOUNT_ATTR_RDONLY and the like in
 * the same call. The mount must not have been attached yet, and its file system must allow
 * idmapping (ext4, xfs, btrfs, tmpfs ...; not overlayfs itself).
 * @internal
 */
export function mountSetattrIdmap(fd: number, usernsFd: number, set = 0, shown?: string): void {
  const attr = Buffer.alloc(32); // struct mount_attr { u64 attr_set, attr_clr, propagation, userns_fd }
  attr.writeBigUInt64LE(BigInt(MOUNT_ATTR_IDMAP | set), 0);
  attr.writeBigUInt64LE(BigInt(usernsFd), 24);
  const r = Number(lib().syscall(SYS_MOUNT_SETATTR, 'int', fd, 'const char *', '', 'unsigned int', AT_EMPTY_PATH, 'uint8_t *', attr, 'size_t', attr.length));
  if (r < 0) throw new SysError('mount_setattr(MOUNT_ATTR_IDMAP)', errno(), shown);
}
