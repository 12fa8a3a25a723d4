/**
 * The parent's side of a container's pseudo-terminal.
 *
 * Node cannot receive a file descriptor over a socket (SCM_RIGHTS), so the stage cannot
 * open the master and hand it over. Instead, once the stage stands in the container's root
 * with the container's own devpts instance at /dev/pts, the parent opens that instance's
 * ptmx itself, through /proc/PID/root, and tells the stage which slave to open. (Reopening
 * /proc/PID/fd/N of an open ptmx would allocate a new pty, not share the stage's.)
 * @internal
 */
import { constants } from 'node:os';
import { fstatSync, readFileSync } from 'node:fs';
import {
  AT_FDCWD,
  O_CLOEXEC,
  O_DIRECTORY,
  O_NOCTTY,
  O_PATH,
  O_RDWR,
  RESOLVE_IN_ROOT,
  RESOLVE_NO_MAGICLINKS,
  TIOCGPTN,
  TIOCGPTPEER,
  TIOCSPTLCK,
  TIOCSWINSZ,
} from '../sys/constants.js';
import { close, fchown, ioctl, ioctlInt, openat, openat2 } from '../sys/libc.js';
import { InvalidOptionError } from '../errors.js';
import { SysError } from '../sys/sys-error.js';

/** The size of a terminal in character cells. */
export interface TtySize {
  /** Columns (characters per line), 0 to 65535. */
  readonly cols: number;
  /** Rows (lines), 0 to 65535. */
  readonly rows: number;
}

/** A pty master the parent holds, and the number of its slave (`/dev/pts/<n>`). @internal */
export interface AllocatedPty {
  readonly fd: number;
  readonly n: number;
}

// The device number of every devpts instance's ptmx node: major 5, minor 2.
const PTMX_RDEV = (5 << 8) | 2;
const { ENODEV } = constants.errno;
const MAX_CELLS = 0xffff; // struct winsize has unsigned short fields

/** Throws unless `size` holds two whole numbers a `struct winsize` can carry. @internal */
export function checkTtySize(size: TtySize, option: string): void {
  for (const key of ['cols', 'rows'] as const) {
    const v = size?.[key];
    if (!Number.isInteger(v) || v < 0 || v > MAX_CELLS)
      throw new InvalidOptionError(`${option}.${key}`, `must be an integer from 0 to ${MAX_CELLS}, got ${String(v)}`);
  }
}

/**
 * Checks the `tty` and `ttySize` options of unshare/nsenter; returns the initial size.
 * @internal
 */
export function checkTtyOptions(tty: boolean | undefined, size: TtySize | undefined): TtySize | undefined {
  if (tty !== undefined && typeof tty !== 'boolean') throw new InvalidOptionError('tty', 'must be a boolean');
  if (size === undefined) return undefined;
  if (!tty) throw new InvalidOptionError('ttySize', 'needs tty: true');
  checkTtySize(size, 'ttySize');
  return { cols: size.cols, rows: size.rows };
}

/** TIOCSWINSZ: on the master it resizes both ends and sends SIGWINCH to the slave's foreground group. @internal */
export function setWindowSize(master: number, size: TtySize): void {
  // struct winsize { unsigned short ws_row, ws_col, ws_xpixel, ws_ypixel; } in host byte order
  ioctl(master, TIOCSWINSZ, Buffer.from(new Uint16Array([size.rows, size.cols, 0, 0]).buffer));
}

/**
 * Opens a new master on the devpts instance at `/dev/pts` under the stage's root, unlocks it
 * and sizes it. The path is resolved with RESOLVE_IN_ROOT, as a container's files are: in
 * join mode the container is already running and could have replaced /dev/pts with a
 * symlink aimed at the host.
 * @internal
 */
export function allocatePty(stagePid: number, size: TtySize | undefined): AllocatedPty {
  const shown = `/proc/${stagePid}/root/dev/pts/ptmx`;
  const root = openat(AT_FDCWD, `/proc/${stagePid}/root`, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
  let fd: number;
  try {
    fd = openat2(root, 'dev/pts/ptmx', O_RDWR | O_NOCTTY | O_CLOEXEC, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS, shown);
  } finally {
    close(root);
  }
  try {
    if (fstatSync(fd).rdev !== PTMX_RDEV) throw new SysError('open', ENODEV, shown, 'not the ptmx node of a devpts instance');
    ioctl(fd, TIOCSPTLCK, Buffer.alloc(4)); // 0: unlocked, so the slave can be opened
    const n = Buffer.alloc(4);
    ioctl(fd, TIOCGPTN, n);
    if (size) setWindowSize(fd, size);
    giveSlaveTo(fd, stagePid);
    return { fd, n: n.readUInt32LE(0) };
  } catch (e) {
    close(fd);
    throw e;
  }
}

/** The effective uid of a process, as the caller's user namespace sees it. */
function effectiveUid(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Uid:'));
  const uid = Number(line?.split(/\s+/)[2]);
  if (!Number.isInteger(uid)) throw new SysError('read', ENODEV, `/proc/${pid}/status`, 'no effective uid in it');
  return uid;
}

/**
 * devpts gives a new slave to whoever opened the master: us. When the stage runs under
 * another uid (a user namespace that does not map ours), its root may not open a node owned
 * by an unmapped uid, so the slave is handed to the stage's uid first.
 */
function giveSlaveTo(master: number, stagePid: number): void {
  const uid = effectiveUid(stagePid);
  if (uid === process.geteuid?.()) return;
  const slave = ioctlInt(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  try {
    fchown(slave, uid, -1, "the container's pty slave");
  } finally {
    close(slave);
  }
}
