/* Linux ABI constants used by ctrkit (the same on x86_64 and arm64). @internal */

export const CLONE_NEWNS = 0x00020000;
export const CLONE_NEWCGROUP = 0x02000000;
export const CLONE_NEWUTS = 0x04000000;
export const CLONE_NEWIPC = 0x08000000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWNET = 0x40000000;
export const CLONE_NEWTIME = 0x00000080;
export const CLONE_FS = 0x00000200;

export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_REMOUNT = 0x20;
export const MS_BIND = 0x1000;
export const MS_REC = 0x4000;
export const MS_PRIVATE = 1 << 18;
export const MS_SLAVE = 1 << 19;
export const MS_STRICTATIME = 1 << 24;

export const MNT_DETACH = 2;
export const UMOUNT_NOFOLLOW = 8;

export const PR_CAPBSET_DROP = 24;
export const PR_SET_DUMPABLE = 4;
export const PR_SET_NO_NEW_PRIVS = 38;
export const PR_SET_KEEPCAPS = 8;
export const PR_CAP_AMBIENT = 47;
export const PR_CAP_AMBIENT_CLEAR_ALL = 4;
export const PR_CAP_AMBIENT_RAISE = 2;

export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const F_DUPFD_CLOEXEC = 1030;
export const O_NONBLOCK = 0o4000;
export const O_RDONLY = 0;
export const O_DIRECTORY = 0o200000;
export const O_NOFOLLOW = 0o400000;
export const O_CLOEXEC = 0o2000000;
export const O_PATH = 0o10000000;

export const CLOSE_RANGE_CLOEXEC = 1 << 2;

export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_BENEATH = 0x08;
export const RESOLVE_IN_ROOT = 0x10;

export const AT_FDCWD = -100;

export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

export const SIG_SETMASK = 2;

export const AF_INET = 2;
export const SOCK_DGRAM = 2;
export const SOCK_CLOEXEC = 0o2000000;
export const SIOCGIFFLAGS = 0x8913;
export const SIOCSIFFLAGS = 0x8914;
export const IFF_UP = 0x1;
export const IFF_RUNNING = 0x40;

export const LINUX_CAPABILITY_VERSION_3 = 0x20080522;
export const O_WRONLY = 0o1;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_RDWR = 0o2;
export const O_NOCTTY = 0o400;

/* Terminal ioctls (asm-generic, shared by x86_64 and arm64). */
export const TIOCSCTTY = 0x540e;
export const TIOCSWINSZ = 0x5414;
export const TIOCGPTN = 0x80045430;
export const TIOCSPTLCK = 0x40045431;
export const TIOCGPTPEER = 0x5441;
