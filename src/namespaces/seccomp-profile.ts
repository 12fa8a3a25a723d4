/**
 * What the default seccomp profile allows, by name: Docker's default profile (moby's
 * profiles/seccomp/default.json) as of Docker 25+, for the 64-bit ABIs of x86_64 and arm64.
 * Everything not named here fails with EPERM. The compiler (./seccomp.ts) turns these names
 * into numbers per architecture.
 */
import type { Capability } from './capabilities.js';

/**
 * System calls every container may make (the default profile's unconditional allow-list).
 * Docker's list without the names that exist only in 32-bit ABIs (ctrkit refuses those ABIs
 * whole), without io_uring (refused as in Docker 25+: it bypasses seccomp and was the source
 * of many kernel exploits) and without name_to_handle_at (CAP_SYS_ADMIN only, as in Docker
 * 25+). `clone`, `clone3`, `personality` and `socket` are allowed with argument checks: see
 * {@link SECCOMP_ARGUMENT_RULES}.
 */
export const SECCOMP_ALLOWED: readonly string[] = Object.freeze([
  'accept', 'accept4', 'access', 'adjtimex', 'alarm', 'bind', 'brk', 'capget', 'capset', 'chdir', 'chmod', 'chown',
  'clock_adjtime', 'clock_getres', 'clock_gettime', 'clock_nanosleep', 'close', 'close_range', 'connect',
  'copy_file_range', 'creat', 'dup', 'dup2', 'dup3', 'epoll_create', 'epoll_create1', 'epoll_ctl', 'epoll_ctl_old',
  'epoll_pwait', 'epoll_pwait2', 'epoll_wait', 'epoll_wait_old', 'eventfd', 'eventfd2', 'execve', 'execveat', 'exit',
  'exit_group', 'faccessat', 'faccessat2', 'fadvise64', 'fallocate', 'fanotify_mark', 'fchdir', 'fchmod', 'fchmodat',
  'fchown', 'fchownat', 'fcntl', 'fdatasync', 'fgetxattr', 'flistxattr', 'flock', 'fork', 'fremovexattr', 'fsetxattr',
  'fstat', 'fstatfs', 'fsync', 'ftruncate', 'futex', 'futex_waitv', 'futimesat', 'getcpu', 'getcwd', 'getdents',
  'getdents64', 'getegid', 'geteuid', 'getgid', 'getgroups', 'getitimer', 'getpeername', 'getpgid', 'getpgrp',
  'getpid', 'getppid', 'getpriority', 'getrandom', 'getresgid', 'getresuid', 'getrlimit', 'get_robust_list',
  'getrusage', 'getsid', 'getsockname', 'getsockopt', 'get_thread_area', 'gettid', 'gettimeofday', 'getuid',
  'getxattr', 'inotify_add_watch', 'inotify_init', 'inotify_init1', 'inotify_rm_watch', 'io_cancel', 'ioctl',
  'io_destroy', 'io_getevents', 'io_pgetevents', 'ioprio_get', 'ioprio_set', 'io_setup', 'io_submit', 'kill',
  'landlock_add_rule', 'landlock_create_ruleset', 'landlock_restrict_self', 'lchown', 'lgetxattr', 'link', 'linkat',
  'listen', 'listxattr', 'llistxattr', 'lremovexattr', 'lseek', 'lsetxattr', 'lstat', 'madvise', 'membarrier',
  'memfd_create', 'memfd_secret', 'mincore', 'mkdir', 'mkdirat', 'mknod', 'mknodat', 'mlock', 'mlock2', 'mlockall',
  'mmap', 'mprotect', 'mq_getsetattr', 'mq_notify', 'mq_open', 'mq_timedreceive', 'mq_timedsend', 'mq_unlink',
  'mremap', 'msgctl', 'msgget', 'msgrcv', 'msgsnd', 'msync', 'munlock', 'munlockall', 'munmap', 'nanosleep',
  'newfstatat', 'open', 'openat', 'openat2', 'pause', 'pidfd_open', 'pidfd_send_signal', 'pipe', 'pipe2',
  'pkey_alloc', 'pkey_free', 'pkey_mprotect', 'poll', 'ppoll', 'prctl', 'pread64', 'preadv', 'preadv2', 'prlimit64',
  'process_mrelease', 'process_vm_readv', 'process_vm_writev', 'pselect6', 'ptrace', 'pwrite64', 'pwritev',
  'pwritev2', 'read', 'readahead', 'readlink', 'readlinkat', 'readv', 'recvfrom', 'recvmmsg', 'recvmsg',
  'remap_file_pages', 'removexattr', 'rename', 'renameat', 'renameat2', 'restart_syscall', 'rmdir', 'rseq',
  'rt_sigaction', 'rt_sigpending', 'rt_sigprocmask', 'rt_sigqueueinfo', 'rt_sigreturn', 'rt_sigsuspend',
  'rt_sigtimedwait', 'rt_tgsigqueueinfo', 'sched_getaffinity', 'sched_getattr', 'sched_getparam',
  'sched_get_priority_max', 'sched_get_priority_min', 'sched_getscheduler', 'sched_rr_get_interval',
  'sched_setaffinity', 'sched_setattr', 'sched_setparam', 'sched_setscheduler', 'sched_yield', 'seccomp', 'select',
  'semctl', 'semget', 'semop', 'semtimedop', 'sendfile', 'sendmmsg', 'sendmsg', 'sendto', 'setfsgid', 'setfsuid',
  'setgid', 'setgroups', 'setitimer', 'setpgid', 'setpriority', 'setregid', 'setresgid', 'setresuid', 'setreuid',
  'setrlimit', 'set_robust_list', 'setsid', 'setsockopt', 'set_thread_area', 'set_tid_address', 'setuid', 'setxattr',
  'shmat', 'shmctl', 'shmdt', 'shmget', 'shutdown', 'sigaltstack', 'signalfd', 'signalfd4', 'socketpair', 'splice',
  'stat', 'statfs', 'statx', 'symlink', 'symlinkat', 'sync', 'sync_file_range', 'syncfs', 'sysinfo', 'tee', 'tgkill',
  'time', 'timer_create', 'timer_delete', 'timer_getoverrun', 'timer_gettime', 'timer_settime', 'timerfd_create',
  'timerfd_gettime', 'timerfd_settime', 'times', 'tkill', 'truncate', 'umask', 'uname', 'unlink', 'unlinkat', 'utime',
  'utimensat', 'utimes', 'vfork', 'vmsplice', 'wait4', 'waitid', 'write', 'writev',
  // x86_64 only (Docker: amd64): the TLS register and the LDT that 16-bit code (Wine) needs.
  'arch_prctl', 'modify_ldt',
]);

/**
 * System calls allowed only when the container keeps one of the capabilities they are listed
 * under (Docker's `includes.caps` groups). A call listed under several capabilities (`bpf`,
 * `perf_event_open`, `syslog`) is allowed by any one of them.
 */
export const SECCOMP_BY_CAPABILITY: Readonly<Partial<Record<Capability, readonly string[]>>> = Object.freeze({
  SYS_ADMIN: Object.freeze([
    'bpf', 'clone', 'clone3', 'fanotify_init', 'fsconfig', 'fsmount', 'fsopen', 'fspick', 'lookup_dcookie', 'mount',
    'mount_setattr', 'move_mount', 'name_to_handle_at', 'open_tree', 'perf_event_open', 'quotactl', 'quotactl_fd',
    'setdomainname', 'sethostname', 'setns', 'syslog', 'umount2', 'unshare',
  ]),
  DAC_READ_SEARCH: Object.freeze(['open_by_handle_at']),
  SYS_BOOT: Object.freeze(['reboot']),
  SYS_CHROOT: Object.freeze(['chroot']),
  SYS_MODULE: Object.freeze(['delete_module', 'init_module', 'finit_module']),
  SYS_PACCT: Object.freeze(['acct']),
  SYS_PTRACE: Object.freeze(['kcmp', 'pidfd_getfd', 'process_madvise']),
  SYS_RAWIO: Object.freeze(['iopl', 'ioperm']),
  SYS_TIME: Object.freeze(['settimeofday', 'clock_settime']),
  SYS_TTY_CONFIG: Object.freeze(['vhangup']),
  SYS_NICE: Object.freeze(['get_mempolicy', 'mbind', 'set_mempolicy', 'set_mempolicy_home_node']),
  SYSLOG: Object.freeze(['syslog']),
  BPF: Object.freeze(['bpf']),
  PERFMON: Object.freeze(['perf_event_open']),
});

/** The namespace flags `clone` may not carry without CAP_SYS_ADMIN (Docker's mask, 0x7e020000). */
export const CLONE_NAMESPACE_FLAGS = 0x00020000 /* NEWNS */ | 0x02000000 /* NEWCGROUP */ | 0x04000000 /* NEWUTS */
  | 0x08000000 /* NEWIPC */ | 0x10000000 /* NEWUSER */ | 0x20000000 /* NEWPID */ | 0x40000000; /* NEWNET */

/** The only `personality` values Docker allows: Linux, with UNAME26 and/or ADDR_NO_RANDOMIZE, and the query. */
export const PERSONALITY_ALLOWED: readonly number[] = Object.freeze([0x0, 0x8, 0x20000, 0x20008, 0xffffffff]);

/** `AF_VSOCK`: the one socket family refused, because it is not namespaced and reaches the hypervisor. */
export const AF_VSOCK = 40;

/**
 * The calls allowed only with certain arguments, in words (the compiler implements them).
 * Only the low 32 bits of each argument are compared: the kernel reads these three as 32-bit
 * values (`clone` flags via lower_32_bits, `personality` as unsigned int, the family as int).
 */
export const SECCOMP_ARGUMENT_RULES: Readonly<Record<string, string>> = Object.freeze({
  clone: 'without CAP_SYS_ADMIN, only without CLONE_NEWNS/NEWUTS/NEWIPC/NEWUSER/NEWPID/NEWNET/NEWCGROUP',
  clone3: 'without CAP_SYS_ADMIN, fails with ENOSYS (its flags are in memory a filter cannot read), so libcs use clone',
  personality: 'only 0x0, 0x8, 0x20000, 0x20008 and 0xffffffff (query)',
  socket: 'every family but AF_VSOCK (40)',
});

/** What the filter does with one syscall number. */
export type Verdict = 'allow' | 'eperm' | 'enosys' | 'clone' | 'personality' | 'socket';

/**
 * The verdict for every number from 0 to the table's highest, for a container keeping `caps`.
 * @internal
 */
export function verdicts(table: Readonly<Record<string, number>>, caps: ReadonlySet<Capability> | 'all'): Verdict[] {
  const has = (c: Capability): boolean => caps === 'all' || caps.has(c);
  const max = Math.max(...Object.values(table));
  const out: Verdict[] = new Array<Verdict>(max + 1).fill('eperm');
  const set = (name: string, v: Verdict): void => {
    const nr = table[name];
    if (nr !== undefined) out[nr] = v;
  };
  for (const name of SECCOMP_ALLOWED) set(name, 'allow');
  for (const [cap, names] of Object.entries(SECCOMP_BY_CAPABILITY)) {
    if (has(cap as Capability)) for (const name of names ?? []) set(name, 'allow');
  }
  const admin = has('SYS_ADMIN');
  set('clone', admin ? 'allow' : 'clone');
  set('clone3', admin ? 'allow' : 'enosys');
  set('personality', 'personality');
  set('socket', 'socket');
  return out;
}
