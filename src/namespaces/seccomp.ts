/**
 * The seccomp filter containers get by default: a deny-list in the spirit of Docker's
 * profile. Everything runs except what lets a process in a container reach the kernel's
 * global state (modules, kexec, keyrings, clocks, swap, reboot, BPF, perf, io_uring,
 * file handles that bypass the mount namespace ...), and, unless the container keeps
 * CAP_SYS_ADMIN, new namespaces and mounts. Denied calls fail with EPERM; clone3 fails with
 * ENOSYS so that the C library falls back to clone, whose flags a classic BPF filter can read.
 */
import { InvalidOptionError } from '../errors.js';

/** `default`: ctrkit's deny-list; `unconfined`: no filter. */
export type SeccompProfile = 'default' | 'unconfined';

/** System calls the default profile always denies. */
export const SECCOMP_DENIED: readonly string[] = Object.freeze([
  'acct', 'add_key', 'bpf', 'clock_adjtime', 'clock_settime', 'settimeofday', 'create_module', 'delete_module',
  'finit_module', 'init_module', 'get_kernel_syms', 'query_module', 'ioperm', 'iopl', 'kcmp', 'kexec_file_load',
  'kexec_load', 'keyctl', 'request_key', 'lookup_dcookie', 'move_pages', 'name_to_handle_at', 'open_by_handle_at',
  'nfsservctl', 'perf_event_open', 'quotactl', 'quotactl_fd', 'reboot', 'swapon', 'swapoff', 'sysfs', '_sysctl',
  'uselib', 'userfaultfd', 'ustat', 'io_uring_setup', 'io_uring_enter', 'io_uring_register', 'syslog',
]);

/** Denied unless the container keeps CAP_SYS_ADMIN (plus clone with namespace flags). */
export const SECCOMP_DENIED_WITHOUT_SYS_ADMIN: readonly string[] = Object.freeze([
  'unshare', 'setns', 'mount', 'umount2', 'pivot_root', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'open_tree',
  'move_mount', 'mount_setattr',
]);

// From the kernel's unistd tables (x86_64: asm/unistd_64.h; arm64: asm-generic/unistd.h).
const X64: Record<string, number> = {
  acct: 163, add_key: 248, bpf: 321, clock_adjtime: 305, clock_settime: 227, create_module: 174, delete_module: 176,
  finit_module: 313, get_kernel_syms: 177, init_module: 175, ioperm: 173, iopl: 172, kcmp: 312, kexec_file_load: 320,
  kexec_load: 246, keyctl: 250, lookup_dcookie: 212, move_pages: 279, name_to_handle_at: 303, nfsservctl: 180,
  open_by_handle_at: 304, perf_event_open: 298, query_module: 178, quotactl: 179, quotactl_fd: 443, reboot: 169,
  request_key: 249, settimeofday: 164, swapon: 167, swapoff: 168, sysfs: 139, _sysctl: 156, uselib: 134,
  userfaultfd: 323, ustat: 136, io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427, syslog: 103,
  unshare: 272, setns: 308, mount: 165, umount2: 166, pivot_root: 155, fsopen: 430, fsconfig: 431, fsmount: 432,
  fspick: 433, open_tree: 428, move_mount: 429, mount_setattr: 442, clone: 56, clone3: 435,
};
const ARM64: Record<string, number> = {
  acct: 89, add_key: 217, bpf: 280, clock_adjtime: 266, clock_settime: 112, delete_module: 106, finit_module: 273,
  init_module: 105, kcmp: 272, kexec_file_load: 294, kexec_load: 104, keyctl: 219, lookup_dcookie: 18, move_pages: 239,
  name_to_handle_at: 264, nfsservctl: 42, open_by_handle_at: 265, perf_event_open: 241, quotactl: 60, quotactl_fd: 443,
  reboot: 142, request_key: 218, settimeofday: 170, swapon: 224, swapoff: 225, userfaultfd: 282, io_uring_setup: 425,
  io_uring_enter: 426, io_uring_register: 427, syslog: 116, unshare: 97, setns: 268, mount: 40, umount2: 39,
  pivot_root: 41, fsopen: 430, fsconfig: 431, fsmount: 432, fspick: 433, open_tree: 428, move_mount: 429,
  mount_setattr: 442, clone: 220, clone3: 435,
};
const ARCH: Record<string, { audit: number; table: Record<string, number>; x32: boolean }> = {
  x64: { audit: 0xc000003e, table: X64, x32: true },
  arm64: { audit: 0xc00000b7, table: ARM64, x32: false },
};

// Classic BPF as the kernel's seccomp reads it: struct sock_filter { u16 code; u8 jt, jf; u32 k }.
const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JSET_K = 0x45;
const RET_K = 0x06;
const RET_ALLOW = 0x7fff0000;
const RET_ERRNO = 0x00050000;
const EPERM = 1;
const ENOSYS = 38;
const CLONE_NEW_FLAGS = 0x7e020080; // NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWTIME
const OFF_NR = 0;
const OFF_ARCH = 4;
const OFF_ARG0_LO = 16;

type Insn = { code: number; k: number; jt?: string; jf?: string; label?: string };

/**
 * Builds the filter program for `profile` on this architecture, or undefined for
 * `unconfined`. Plain bytes: it is sent to the init stage, which installs it just before exec.
 * @param allowSysAdmin - the container keeps CAP_SYS_ADMIN: namespaces and mounts stay allowed
 * @internal
 */
export function buildSeccompFilter(profile: SeccompProfile, allowSysAdmin: boolean): Buffer | undefined {
  if (profile === 'unconfined') return undefined;
  if (profile !== 'default') throw new InvalidOptionError('seccomp', `unknown profile "${String(profile)}" (expected "default" or "unconfined")`);
  const arch = ARCH[process.arch];
  if (!arch) throw new InvalidOptionError('seccomp', `no seccomp profile for ${process.arch} (use "unconfined")`);
  const denied = [...SECCOMP_DENIED, ...(allowSysAdmin ? [] : SECCOMP_DENIED_WITHOUT_SYS_ADMIN)]
    .map((n) => arch.table[n])
    .filter((n): n is number => n !== undefined);
  const prog: Insn[] = [
    { code: LD_W_ABS, k: OFF_ARCH },
    // Another ABI (i386 on x86_64) would index another table: refuse it whole.
    { code: JEQ_K, k: arch.audit, jf: 'eperm' },
    { code: LD_W_ABS, k: OFF_NR },
  ];
  if (arch.x32) prog.push({ code: JSET_K, k: 0x40000000, jt: 'eperm' }); // the x32 ABI
  for (const nr of new Set(denied)) prog.push({ code: JEQ_K, k: nr, jt: 'eperm' });
  if (!allowSysAdmin) {
    prog.push({ code: JEQ_K, k: arch.table.clone3!, jt: 'enosys' });
    prog.push({ code: JEQ_K, k: arch.table.clone!, jf: 'allow' });
    prog.push({ code: LD_W_ABS, k: OFF_ARG0_LO });
    prog.push({ code: JSET_K, k: CLONE_NEW_FLAGS, jt: 'eperm' });
  }
  prog.push({ code: RET_K, k: RET_ALLOW, label: 'allow' });
  prog.push({ code: RET_K, k: RET_ERRNO | EPERM, label: 'eperm' });
  prog.push({ code: RET_K, k: RET_ERRNO | ENOSYS, label: 'enosys' });
  const at = new Map(prog.flatMap((p, i) => (p.label ? [[p.label, i] as const] : [])));
  const buf = Buffer.alloc(prog.length * 8);
  prog.forEach((p, i) => {
    const jump = (label?: string) => (label === undefined ? 0 : at.get(label)! - i - 1);
    buf.writeUInt16LE(p.code, i * 8);
    buf.writeUInt8(jump(p.jt), i * 8 + 2);
    buf.writeUInt8(jump(p.jf), i * 8 + 3);
    buf.writeUInt32LE(p.k >>> 0, i * 8 + 4);
  });
  return buf;
}
