// Pure: the default seccomp filter, built and run in a BPF simulator (test/bpf-sim.ts) for
// every syscall number of x86-64 and arm64. The real-kernel half is test/seccomp.test.ts.
import { describe, expect, it } from 'vitest';
import { CAPABILITIES, DEFAULT_CAPABILITIES, type Capability } from '../../src/namespaces/capabilities.js';
import { SECCOMP_ALLOWED, SECCOMP_BY_CAPABILITY } from '../../src/namespaces/seccomp-profile.js';
import { buildSeccompFilter } from '../../src/namespaces/seccomp.js';
import { SYSCALLS_ARM64, SYSCALLS_X64 } from '../../src/namespaces/seccomp-tables.js';
import { ALLOW, ENOSYS, EPERM, runFilter } from '../bpf-sim.js';

const ARCHES = [
  { name: 'x64', audit: 0xc000003e, table: SYSCALLS_X64 },
  { name: 'arm64', audit: 0xc00000b7, table: SYSCALLS_ARM64 },
] as const;
const ARGUMENT_FILTERED = new Set(['clone', 'clone3', 'personality', 'socket']);

/** What Docker's rules say for `name` when `caps` are kept, computed without the compiler. */
function expected(name: string, caps: readonly Capability[]): number {
  if (SECCOMP_ALLOWED.includes(name)) return ALLOW;
  const gated = Object.entries(SECCOMP_BY_CAPABILITY).some(([cap, names]) => caps.includes(cap as Capability) && names?.includes(name));
  return gated ? ALLOW : EPERM;
}

describe.each(ARCHES)('the default seccomp filter, simulated for $name', ({ name: arch, audit, table }) => {
  const nr = (n: string): number => {
    const v = table[n];
    if (v === undefined) throw new Error(`${n} is not a syscall on ${arch}`);
    return v;
  };
  const max = Math.max(...Object.values(table));
  const build = (caps: readonly Capability[] | 'all'): Buffer => buildSeccompFilter('default', caps, arch)!;
  const strict = build(DEFAULT_CAPABILITIES);
  const admin = build([...DEFAULT_CAPABILITIES, 'SYS_ADMIN']);
  const call = (prog: Buffer, n: string, arg0?: number): number => runFilter(prog, { nr: nr(n), arch: audit, arg0 });

  it('is small: a binary search, far below the kernel limit of 4096 instructions', () => {
    for (const caps of [[], DEFAULT_CAPABILITIES, 'all'] as const) expect(build(caps).length / 8).toBeLessThan(300);
  });

  it('gives every number exactly the verdict of the allow-list and capability groups', () => {
    for (const caps of [[], DEFAULT_CAPABILITIES, ['SYS_PTRACE', 'SYS_TIME'], CAPABILITIES] as readonly (readonly Capability[])[]) {
      const prog = build(caps);
      for (const [name, n] of Object.entries(table)) {
        if (ARGUMENT_FILTERED.has(name)) continue;
        expect([name, runFilter(prog, { nr: n, arch: audit })]).toEqual([name, expected(name, caps)]);
      }
    }
    const all = build('all');
    for (const name of Object.values(SECCOMP_BY_CAPABILITY).flat()) if (name && table[name] !== undefined) expect(call(all, name)).toBe(ALLOW);
  });

  it('allows what the init stage and Node still do after installing it, even with no capability kept', () => {
    const none = build([]);
    for (const n of [
      'execve',
      'prctl',
      'capset',
      'setresuid',
      'setresgid',
      'setgroups',
      'close_range',
      'fcntl',
      'dup3',
      'close',
      'umask',
      'rt_sigprocmask',
      'rt_sigaction',
      'write',
      'writev',
      'read',
      'exit_group',
      'futex',
      'mmap',
      'munmap',
      'madvise',
      'mprotect',
      'epoll_ctl',
      'rseq',
      'getpid',
      'wait4',
      'ptrace',
    ]) {
      expect([n, call(none, n)]).toEqual([n, ALLOW]);
    }
  });

  it("refuses with EPERM what reaches the kernel's global state", () => {
    for (const n of [
      'kexec_load',
      'kexec_file_load',
      'add_key',
      'keyctl',
      'request_key',
      'bpf',
      'io_uring_setup',
      'io_uring_enter',
      'io_uring_register',
      'userfaultfd',
      'perf_event_open',
      'init_module',
      'finit_module',
      'delete_module',
      'reboot',
      'swapon',
      'swapoff',
      'acct',
      'settimeofday',
      'clock_settime',
      'syslog',
      'vhangup',
      'quotactl',
      'lookup_dcookie',
      'move_pages',
      'open_by_handle_at',
      'name_to_handle_at',
      'pidfd_getfd',
      'kcmp',
      'process_madvise',
      'mbind',
      'set_mempolicy',
      'nfsservctl',
      'mount',
      'umount2',
      'pivot_root',
      'unshare',
      'setns',
      'fsopen',
      'fsmount',
      'open_tree',
      'move_mount',
      'fanotify_init',
      'sethostname',
      'setdomainname',
      ...(arch === 'x64' ? ['iopl', 'ioperm', 'uselib', '_sysctl', 'sysfs', 'ustat', 'create_module'] : []),
    ]) {
      expect([n, call(strict, n)]).toEqual([n, EPERM]);
    }
  });

  it('ENOSYS above the highest known number, EPERM for holes below it', () => {
    expect(runFilter(strict, { nr: max + 1, arch: audit })).toBe(ENOSYS);
    expect(runFilter(strict, { nr: 1000, arch: audit })).toBe(ENOSYS);
    expect(runFilter(strict, { nr: 0xffffffff, arch: audit })).toBe(arch === 'x64' ? EPERM /* x32 bit */ : ENOSYS);
    const hole = [...Array(max).keys()].find((n) => !Object.values(table).includes(n))!;
    expect(runFilter(strict, { nr: hole, arch: audit })).toBe(EPERM);
  });

  it('clone: no namespace flags without CAP_SYS_ADMIN; clone3 falls back to clone', () => {
    expect(call(strict, 'clone', 0x11 /* SIGCHLD: fork */)).toBe(ALLOW);
    expect(call(strict, 'clone', 0x003d0f00 /* glibc's pthread_create flags */)).toBe(ALLOW);
    for (const flag of [0x20000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000]) {
      expect(call(strict, 'clone', flag | 0x11)).toBe(EPERM);
      expect(call(admin, 'clone', flag | 0x11)).toBe(ALLOW);
    }
    expect(call(strict, 'clone3')).toBe(ENOSYS);
    expect(call(admin, 'clone3')).toBe(ALLOW);
    expect(call(strict, 'unshare')).toBe(EPERM);
    expect(call(admin, 'unshare')).toBe(ALLOW);
    expect(call(admin, 'mount')).toBe(ALLOW);
  });

  it("personality: only Docker's values; socket: every family but AF_VSOCK", () => {
    for (const v of [0, 8, 0x20000, 0x20008, 0xffffffff]) expect(call(admin, 'personality', v)).toBe(ALLOW);
    for (const v of [0x0400000 /* READ_IMPLIES_EXEC */, 0x0800000 /* ADDR_LIMIT_32BIT */, 0x8 | 0x0400000, 1])
      expect(call(admin, 'personality', v)).toBe(EPERM);
    for (const family of [1, 2, 10, 16, 17]) expect(call(strict, 'socket', family)).toBe(ALLOW);
    expect(call(build('all'), 'socket', 40)).toBe(EPERM);
  });

  it('each capability group follows its capability', () => {
    for (const [cap, names] of Object.entries(SECCOMP_BY_CAPABILITY)) {
      const prog = build([cap as Capability]);
      for (const n of names ?? []) if (table[n] !== undefined && !ARGUMENT_FILTERED.has(n)) expect([cap, n, call(prog, n)]).toEqual([cap, n, ALLOW]);
    }
    expect(call(build(['SYS_PTRACE']), 'pidfd_getfd')).toBe(ALLOW);
    expect(call(build(['CAP_BPF' as Capability]), 'bpf')).toBe(ALLOW); // spelled as capabilityNumbers() accepts
  });

  it('refuses another ABI whole', () => {
    expect(runFilter(strict, { nr: 20, arch: 0x40000003 /* i386 */ })).toBe(EPERM);
    expect(runFilter(strict, { nr: 20, arch: 0x40000028 /* arm */ })).toBe(EPERM);
    if (arch === 'x64') expect(runFilter(strict, { nr: 0x40000000 | nr('getpid'), arch: audit })).toBe(EPERM);
  });
});

describe('the profile', () => {
  it('names only real syscalls; unconfined is no filter; an unknown profile is an error', () => {
    for (const n of [...SECCOMP_ALLOWED, ...Object.values(SECCOMP_BY_CAPABILITY).flat()]) {
      expect([n, n! in SYSCALLS_X64 || n! in SYSCALLS_ARM64]).toEqual([n, true]);
    }
    expect(buildSeccompFilter('unconfined', [])).toBeUndefined();
    expect(() => buildSeccompFilter('strict' as 'default', [])).toThrow(/unknown profile/);
    expect(() => buildSeccompFilter('default', [], 'ppc64')).toThrow(/no seccomp profile/);
  });
});
