// OCI runtime-spec seccomp profiles (linux.seccomp): compiled by compileOciSeccomp, run in BPF
// simulators for every action and comparison, then installed on the real kernel by unshare().
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../src/errors.js';
import { Container } from 'ctrkit';
import { DEFAULT_CAPABILITIES, unshare, type Capability, type SeccompProfile } from 'ctrkit/namespaces';
import { compileOciSeccomp, type LinuxSeccomp, type LinuxSeccompArg, type SeccompOperator } from '../src/namespaces/seccomp-oci.js';
import { buildSeccompFilter, withNamespaceKey } from '../src/namespaces/seccomp.js';
import { failsOnlyWithErrno } from '../src/namespaces/seccomp-actions.js';
import { SYSCALLS_ARM64, SYSCALLS_X64 } from '../src/namespaces/seccomp-tables.js';
import { ALLOW, ENOSYS, EPERM, runFilter } from './bpf-sim.js';
import { rootfs, tempDir } from './helpers.js';

const X = SYSCALLS_X64;
const AUDIT_X64 = 0xc000003e;
const AUDIT_ARM64 = 0xc00000b7;
const AUDIT_I386 = 0x40000003;
const errno = (e: number): number => 0x00050000 | e;
const KILL_THREAD = 0;
const KILL_PROCESS = 0x80000000;
const TRAP = 0x00030000;
const LOG = 0x7ffc0000;
const trace = (d: number): number => 0x7ff00000 | d;

/**
 * A fuller simulator than ./bpf-sim.ts (which reads only nr, arch and arg0's low word and
 * knows no ALU): every word of seccomp_data, and AND. Unknown opcodes still throw.
 */
function run(prog: Buffer, d: { nr: number; arch?: number; args?: readonly (bigint | number)[] }): number {
  const args = (d.args ?? []).map(BigInt);
  const word = (off: number): number => {
    if (off === 0) return d.nr >>> 0;
    if (off === 4) return d.arch ?? AUDIT_X64;
    if (off < 16 || off >= 64 || off % 4) throw new Error(`load at ${off}`);
    const v = args[(off - 16) >> 3] ?? 0n;
    return Number((off % 8 === 0 ? v : v >> 32n) & 0xffffffffn);
  };
  const n = prog.length / 8;
  let acc = 0;
  for (let pc = 0; pc < n; pc++) {
    const [code, jt, jf, k] = [prog.readUInt16LE(pc * 8), prog.readUInt8(pc * 8 + 2), prog.readUInt8(pc * 8 + 3), prog.readUInt32LE(pc * 8 + 4)];
    if (code === 0x20) acc = word(k);
    else if (code === 0x54) acc = (acc & k) >>> 0;
    else if (code === 0x05) pc += k;
    else if (code === 0x15) pc += acc === k ? jt : jf;
    else if (code === 0x25) pc += acc > k ? jt : jf;
    else if (code === 0x35) pc += acc >= k ? jt : jf;
    else if (code === 0x45) pc += (acc & k) !== 0 ? jt : jf;
    else if (code === 0x06) return k >>> 0;
    else throw new Error(`unexpected opcode 0x${code.toString(16)} at ${pc}`);
    if (pc + 1 >= n) throw new Error(`jump past the end at ${pc}`);
  }
  throw new Error('fell off the end');
}

const compile = (p: LinuxSeccomp, arch = 'x64'): Buffer => compileOciSeccomp(p, arch).program;
const refused = (p: unknown, message: RegExp): void => {
  expect(() => compileOciSeccomp(p as LinuxSeccomp, 'x64')).toThrow(InvalidOptionError);
  expect(() => compileOciSeccomp(p as LinuxSeccomp, 'x64')).toThrow(message);
};

/** Docker's default.json (Docker's format) resolved as Docker does for amd64 and `caps`: the OCI object runc gets. */
function dockerProfile(caps: readonly Capability[]): LinuxSeccomp {
  type Cond = { arches?: string[]; caps?: string[] };
  type Entry = { names: string[]; action: string; errnoRet?: number; args?: LinuxSeccompArg[]; includes?: Cond; excludes?: Cond };
  const raw = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures/moby-default-seccomp.json'), 'utf8')) as {
    defaultAction: string;
    defaultErrnoRet: number;
    archMap: { architecture: string; subArchitectures: string[] | null }[];
    syscalls: Entry[];
  };
  const have = new Set(caps.map((c) => `CAP_${c}`));
  const wanted = (e: Entry): boolean => {
    if (e.includes?.arches && !e.includes.arches.includes('amd64')) return false;
    if (e.includes?.caps && !e.includes.caps.every((c) => have.has(c))) return false;
    if (e.excludes?.arches?.includes('amd64')) return false;
    if (e.excludes?.caps?.some((c) => have.has(c))) return false;
    return true; // minKernel (4.8) is below every kernel ctrkit runs on
  };
  const x64 = raw.archMap.find((a) => a.architecture === 'SCMP_ARCH_X86_64')!;
  return {
    defaultAction: raw.defaultAction as LinuxSeccomp['defaultAction'],
    defaultErrnoRet: raw.defaultErrnoRet,
    architectures: [x64.architecture, ...(x64.subArchitectures ?? [])],
    syscalls: raw.syscalls
      .filter(wanted)
      .map(({ names, action, errnoRet, args }) => ({ names, action: action as LinuxSeccomp['defaultAction'], errnoRet, args })),
  };
}

describe('compileOciSeccomp, simulated', () => {
  it('gives every action its return value, as a rule and as the default', () => {
    const cases: [LinuxSeccomp['defaultAction'], number | undefined, number][] = [
      ['SCMP_ACT_KILL', undefined, KILL_THREAD],
      ['SCMP_ACT_KILL_THREAD', undefined, KILL_THREAD],
      ['SCMP_ACT_KILL_PROCESS', undefined, KILL_PROCESS],
      ['SCMP_ACT_TRAP', undefined, TRAP],
      ['SCMP_ACT_ERRNO', undefined, EPERM],
      ['SCMP_ACT_ERRNO', 95, errno(95)],
      ['SCMP_ACT_TRACE', undefined, trace(1)],
      ['SCMP_ACT_TRACE', 7, trace(7)],
      ['SCMP_ACT_ALLOW', undefined, ALLOW],
      ['SCMP_ACT_LOG', undefined, LOG],
    ];
    for (const [action, errnoRet, want] of cases) {
      const other = action === 'SCMP_ACT_ALLOW' ? 'SCMP_ACT_LOG' : 'SCMP_ACT_ALLOW';
      const asRule = compile({ defaultAction: other, syscalls: [{ names: ['getpid'], action, errnoRet }] });
      // bpf-sim.ts reads these programs fully: no argument comparisons in them.
      expect([action, errnoRet, runFilter(asRule, { nr: X.getpid!, arch: AUDIT_X64 })]).toEqual([action, errnoRet, want]);
      expect(run(asRule, { nr: X.getppid! })).toBe(other === 'SCMP_ACT_ALLOW' ? ALLOW : LOG);
      const asDefault = compile({ defaultAction: action, defaultErrnoRet: errnoRet, syscalls: [{ names: ['getpid'], action: other }] });
      expect([action, errnoRet, runFilter(asDefault, { nr: X.getppid!, arch: AUDIT_X64 })]).toEqual([action, errnoRet, want]);
      expect(run(asDefault, { nr: X.getpid! })).toBe(other === 'SCMP_ACT_ALLOW' ? ALLOW : LOG);
    }
  });

  it('compares 64-bit arguments unsigned, for every operator, across the word boundary', () => {
    const values = [
      0n,
      1n,
      0xfffffffen,
      0xffffffffn,
      0x100000000n,
      0x100000001n,
      0x1fffffffen,
      0x7fffffffffffffffn,
      0x8000000000000000n,
      0xffffffff00000000n,
      0xfffffffffffffffen,
      0xffffffffffffffffn,
    ];
    const truth: Record<Exclude<SeccompOperator, 'SCMP_CMP_MASKED_EQ'>, (a: bigint, v: bigint) => boolean> = {
      SCMP_CMP_EQ: (a, v) => a === v,
      SCMP_CMP_NE: (a, v) => a !== v,
      SCMP_CMP_LT: (a, v) => a < v,
      SCMP_CMP_LE: (a, v) => a <= v,
      SCMP_CMP_GT: (a, v) => a > v,
      SCMP_CMP_GE: (a, v) => a >= v,
    };
    for (const [opName, holds] of Object.entries(truth)) {
      for (const v of values) {
        for (const index of [0, 3, 5]) {
          const prog = compile({
            defaultAction: 'SCMP_ACT_ALLOW',
            syscalls: [{ names: ['personality'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, args: [{ index, value: v, op: opName as SeccompOperator }] }],
          });
          for (const a of values) {
            const args = [0n, 0n, 0n, 0n, 0n, 0n];
            args[index] = a;
            const got = run(prog, { nr: X.personality!, args });
            expect([opName, index, a, v, got]).toEqual([opName, index, a, v, holds(a, v) ? errno(13) : ALLOW]);
          }
        }
      }
    }
  });

  it('MASKED_EQ: (argument & value) == valueTwo, on all 64 bits', () => {
    const cases: [bigint, bigint, bigint, boolean][] = [
      // [argument, mask, wanted, matches]
      [0x11n, 0x7e020000n, 0n, true],
      [0x10000011n, 0x7e020000n, 0n, false],
      [0x1_0000_0011n, 0x7e020000n, 0n, true], // the high word is not in the mask
      [0x1_0000_0011n, 0xffffffff_00000000n, 0x1_0000_0000n, true],
      [0x2_0000_0011n, 0xffffffff_00000000n, 0x1_0000_0000n, false],
      [0xffffffff_ffffffffn, 0x8000000000000001n, 0x8000000000000001n, true],
      [0x7fffffff_ffffffffn, 0x8000000000000001n, 0x8000000000000001n, false],
      [0x5n, 0n, 0n, true], // an empty mask always matches 0
      [0x5n, 0n, 1n, false], // and never anything else
    ];
    for (const [arg, mask, want, matches] of cases) {
      const prog = compile({
        defaultAction: 'SCMP_ACT_ERRNO',
        syscalls: [{ names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, value: mask, valueTwo: want, op: 'SCMP_CMP_MASKED_EQ' }] }],
      });
      expect([arg, mask, want, run(prog, { nr: X.clone!, args: [0, arg] })]).toEqual([arg, mask, want, matches ? ALLOW : EPERM]);
    }
  });

  it('ANDs the comparisons of a rule, ORs the rules of a syscall, first match first', () => {
    const prog = compile({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [
        { names: ['socket'], action: 'SCMP_ACT_ERRNO', errnoRet: 97, args: [{ index: 0, value: 40, op: 'SCMP_CMP_EQ' }] },
        {
          names: ['socket'],
          action: 'SCMP_ACT_ALLOW',
          args: [
            { index: 0, value: 2, op: 'SCMP_CMP_EQ' },
            { index: 1, value: 1, op: 'SCMP_CMP_EQ' },
          ],
        },
        { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }] },
        { names: ['socket'], action: 'SCMP_ACT_LOG' },
        { names: ['socket'], action: 'SCMP_ACT_KILL' }, // after an unconditional rule: never reached
      ],
    });
    const sock = (...args: number[]) => run(prog, { nr: X.socket!, args });
    expect(sock(40, 1)).toBe(errno(97));
    expect(sock(2, 1)).toBe(ALLOW);
    expect(sock(2, 2)).toBe(LOG); // only one of the two comparisons holds
    expect(sock(10, 1)).toBe(LOG);
    expect(sock(1, 5)).toBe(ALLOW);
    expect(run(prog, { nr: X.read! })).toBe(EPERM);
  });

  it('splits a rule comparing one argument twice into one rule each (runc), skips rules equal to the default', () => {
    const prog = compile({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [
        {
          names: ['personality'],
          action: 'SCMP_ACT_ALLOW',
          args: [
            { index: 0, value: 8, op: 'SCMP_CMP_EQ' },
            { index: 0, value: 0x20000, op: 'SCMP_CMP_EQ' },
          ],
        },
        { names: ['read'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }, // the default itself: dropped
        { names: ['read'], action: 'SCMP_ACT_ALLOW' },
      ],
    });
    expect(run(prog, { nr: X.personality!, args: [8] })).toBe(ALLOW);
    expect(run(prog, { nr: X.personality!, args: [0x20000] })).toBe(ALLOW);
    expect(run(prog, { nr: X.personality!, args: [0] })).toBe(EPERM);
    expect(run(prog, { nr: X.read! })).toBe(ALLOW);
  });

  it('takes values as numbers up to 2^53 - 1, bigints or digit strings', () => {
    const big = 0xffff_ffff_ffff_fff0n;
    for (const value of [big, big.toString(), `0x${big.toString(16)}`]) {
      const prog = compile({
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['personality'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value, op: 'SCMP_CMP_GE' }] }],
      });
      expect(run(prog, { nr: X.personality!, args: [big] })).toBe(EPERM);
      expect(run(prog, { nr: X.personality!, args: [big - 1n] })).toBe(ALLOW);
    }
    refused(
      { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 2 ** 60, op: 'SCMP_CMP_EQ' }] }] },
      /syscalls\[0\]\.args\[0\]\.value: .*bigint or a decimal string/,
    );
    refused(
      { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: -1, op: 'SCMP_CMP_EQ' }] }] },
      /not an unsigned 64-bit value/,
    );
    refused(
      { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1n << 64n, op: 'SCMP_CMP_EQ' }] }] },
      /not an unsigned 64-bit value/,
    );
  });

  it('skips names the architecture lacks, knows the syscalls newer than its tables', () => {
    const p: LinuxSeccomp = {
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [{ names: ['chown32', 'no_such_call', 'constructor', 'fchmodat2', 'mkdir'], action: 'SCMP_ACT_ALLOW' }],
    };
    const x64 = compile(p);
    expect(run(x64, { nr: X.mkdir! })).toBe(ALLOW);
    expect(run(x64, { nr: 452 })).toBe(ALLOW); // fchmodat2 (6.6)
    expect(run(x64, { nr: 451 })).toBe(EPERM);
    const arm = compile(p, 'arm64');
    expect(run(arm, { nr: 452, arch: AUDIT_ARM64 })).toBe(ALLOW);
    expect(run(arm, { nr: SYSCALLS_ARM64.mkdirat!, arch: AUDIT_ARM64 })).toBe(EPERM); // arm64 has no mkdir
  });

  it('gives numbers past every known syscall ENOSYS under an errno default, the default otherwise', () => {
    expect(run(compile({ defaultAction: 'SCMP_ACT_ERRNO' }), { nr: 471 })).toBe(ENOSYS);
    expect(run(compile({ defaultAction: 'SCMP_ACT_ERRNO' }), { nr: 470 })).toBe(EPERM);
    expect(run(compile({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 13 }), { nr: 1000 })).toBe(ENOSYS);
    expect(run(compile({ defaultAction: 'SCMP_ACT_KILL_PROCESS' }), { nr: 1000 })).toBe(KILL_PROCESS);
    expect(run(compile({ defaultAction: 'SCMP_ACT_ALLOW' }), { nr: 1000 })).toBe(ALLOW);
  });

  it('never lets another ABI through: the default action, or EPERM when the default allows', () => {
    for (const architectures of [undefined, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']]) {
      const deny = compile({ defaultAction: 'SCMP_ACT_KILL_PROCESS', architectures, syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_ALLOW' }] });
      expect(run(deny, { nr: X.getpid! })).toBe(ALLOW);
      expect(run(deny, { nr: 20, arch: AUDIT_I386 })).toBe(KILL_PROCESS);
      expect(run(deny, { nr: 0x40000000 | X.getpid! })).toBe(KILL_PROCESS); // x32
      const allow = compile({ defaultAction: 'SCMP_ACT_ALLOW', architectures, syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] });
      expect(run(allow, { nr: X.getpid! })).toBe(ALLOW);
      expect(run(allow, { nr: 39, arch: AUDIT_I386 })).toBe(EPERM); // i386 mkdir
      expect(run(allow, { nr: 0x40000000 | X.mkdir! })).toBe(EPERM);
    }
  });

  it('turns flags into seccomp(2) bits', () => {
    const flags = (f: string[]) => compileOciSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', flags: f }, 'x64').flags;
    expect(flags([])).toBe(0);
    expect(flags(['SECCOMP_FILTER_FLAG_TSYNC'])).toBe(1);
    expect(flags(['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'])).toBe(6);
  });

  it('refuses what it cannot honour, naming the field', () => {
    const base = { defaultAction: 'SCMP_ACT_ALLOW' };
    refused({ ...base, syscalls: [{ names: ['read'], action: 'SCMP_ACT_NOTIFY' }] }, /syscalls\[0\]\.action: SCMP_ACT_NOTIFY is not supported/);
    refused({ defaultAction: 'SCMP_ACT_NOTIFY' }, /defaultAction: SCMP_ACT_NOTIFY is not supported/);
    refused({ ...base, listenerPath: '/run/agent.sock' }, /listenerPath: .*not supported/);
    refused({ ...base, listenerMetadata: 'x' }, /listenerMetadata/);
    refused({ ...base, syscalls: [{ names: ['read'], action: 'SCMP_ACT_MAYBE' }] }, /syscalls\[0\]\.action: unknown action "SCMP_ACT_MAYBE"/);
    refused({ defaultAction: 'ALLOW' }, /defaultAction: unknown action "ALLOW"/);
    refused(
      { ...base, syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1, op: 'SCMP_CMP_IN' }] }] },
      /syscalls\[0\]\.args\[0\]\.op: unknown operator/,
    );
    refused({ ...base, syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] }] }, /args\[0\]\.index: 6/);
    refused({ ...base, architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_Z80'] }, /architectures\[1\]: unknown architecture "SCMP_ARCH_Z80"/);
    refused({ ...base, flags: ['SECCOMP_FILTER_FLAG_FAST'] }, /flags\[0\]: unknown flag/);
    refused({ ...base, flags: ['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'] }, /flags\[0\]: .*SCMP_ACT_NOTIFY/);
    refused({ ...base, syscalls: [{ names: ['read'], action: 'SCMP_ACT_KILL', errnoRet: 1 }] }, /syscalls\[0\]\.action: an errno is only for/);
    refused({ defaultAction: 'SCMP_ACT_ALLOW', defaultErrnoRet: 1 }, /defaultAction: an errno is only for/);
    refused({ ...base, syscalls: [{ names: [], action: 'SCMP_ACT_ERRNO' }] }, /syscalls\[0\]\.names/);
    expect(() => compileOciSeccomp({ defaultAction: 'SCMP_ACT_ALLOW' }, 'ia32')).toThrow(/no seccomp support for ia32/);
  });

  it("compiles Docker's default profile well within the kernel's 4096 instructions, with Docker's verdicts", () => {
    const docker = dockerProfile(DEFAULT_CAPABILITIES);
    const prog = compile(docker);
    const count = prog.length / 8;
    console.log(`Docker's default profile (amd64, Docker's 14 capabilities): ${count} BPF instructions`);
    expect(count).toBeLessThan(1000);
    const admin = compile(dockerProfile([...DEFAULT_CAPABILITIES, 'SYS_ADMIN'])).length / 8;
    console.log(`... with CAP_SYS_ADMIN: ${admin} instructions`);
    const call = (name: string, ...args: number[]) => run(prog, { nr: X[name]!, args });
    for (const name of ['read', 'write', 'openat', 'execve', 'exit_group', 'arch_prctl', 'io_uring_setup', 'ptrace'])
      expect([name, call(name)]).toEqual([name, ALLOW]);
    for (const name of ['mount', 'unshare', 'setns', 'kexec_load', 'bpf', 'reboot', 'init_module', 'open_by_handle_at'])
      expect([name, call(name)]).toEqual([name, EPERM]);
    expect(call('clone', 0x11)).toBe(ALLOW);
    expect(call('clone', 0x10000011)).toBe(EPERM); // CLONE_NEWUSER
    expect(call('clone3')).toBe(ENOSYS);
    expect(call('socket', 2)).toBe(ALLOW);
    expect(call('socket', 40)).toBe(EPERM); // AF_VSOCK
    expect(call('personality', 0xffffffff)).toBe(ALLOW);
    expect(call('personality', 0x400000)).toBe(EPERM);
    expect(run(prog, { nr: 20, arch: AUDIT_I386 })).toBe(EPERM); // i386: the default action
  });

  it('keeps a large profile right (far jumps through JA) and refuses one longer than the kernel takes', () => {
    // Every syscall with its own argument rule: hundreds of distinct leaves, a search deeper than 255 instructions.
    const names = Object.keys(X);
    const rule = (name: string, i: number, value: number) => ({
      names: [name],
      action: 'SCMP_ACT_ERRNO' as const,
      errnoRet: (i % 4000) + 1,
      args: [{ index: 1, value, op: 'SCMP_CMP_EQ' as const }],
    });
    const prog = compile({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: names.map((n, i) => rule(n, i, i)) });
    expect(prog.length / 8).toBeGreaterThan(2000);
    names.forEach((n, i) => {
      expect([n, run(prog, { nr: X[n]!, args: [0, i] })]).toEqual([n, errno((i % 4000) + 1)]);
      expect([n, run(prog, { nr: X[n]!, args: [0, i + 1] })]).toEqual([n, ALLOW]);
    });
    const twice = names.flatMap((n, i) => [rule(n, i, i), rule(n, i, i + 100000)]);
    expect(() => compile({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: twice })).toThrow(/more than the 4096 the kernel takes/);
  });

  it('still works behind withNamespaceKey (the thread start path), which only lets keyed setns/unshare by', () => {
    const prog = compile({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        { names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 95 },
        { names: ['unshare'], action: 'SCMP_ACT_ERRNO' },
      ],
    });
    const key: [bigint, bigint] = [0x0123456789abcdefn, 0xfedcba9876543210n];
    const keyed = withNamespaceKey(prog, key, { setns: X.setns!, unshare: X.unshare! }, 'x64');
    expect(run(keyed, { nr: X.mkdir! })).toBe(errno(95));
    expect(run(keyed, { nr: X.getpid! })).toBe(ALLOW);
    expect(run(keyed, { nr: X.unshare!, args: [0x20000] })).toBe(EPERM);
    expect(run(keyed, { nr: X.unshare!, args: [0x20000, 0, key[0], key[1]] })).toBe(ALLOW);
    expect(run(keyed, { nr: 20, arch: AUDIT_I386 })).toBe(EPERM);
    // Errno verdicts only: fit for a spawner thread, keyed or not; a killing rule is not.
    expect([failsOnlyWithErrno(prog), failsOnlyWithErrno(keyed)]).toEqual([true, true]);
    const builtin = buildSeccompFilter('default', 'all', 'x64')!;
    expect(failsOnlyWithErrno(withNamespaceKey(builtin, key, { setns: X.setns!, unshare: X.unshare! }, 'x64'))).toBe(true);
    const killing = compileOciSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_KILL_PROCESS' }] }, 'x64').program;
    expect(failsOnlyWithErrno(killing)).toBe(false);
  });
});

const hasGcc = process.arch === 'x64' && spawnSync('gcc', ['--version']).status === 0;

describe.runIf(hasGcc)('OCI seccomp profiles on the real kernel, through unshare()', () => {
  const [dir, cleanup] = tempDir();
  beforeAll(() => {
    const c = spawnSync('gcc', ['-static', '-O2', '-o', join(dir, 'syscall'), join(import.meta.dirname, 'fixtures/syscall.c')], { encoding: 'utf8' });
    if (c.status !== 0) throw new Error(`gcc -static failed (apt-get install libc6-dev): ${c.stderr}`);
  });
  afterAll(cleanup);

  /** Runs `command` in a container with `seccomp` (the OCI object), collecting its output and status. */
  async function runWith(seccomp: LinuxSeccomp, command: string[]) {
    // The option's declared type is ctrkit's names (Container records them); the object is accepted all the same.
    const proc = await unshare({
      rootfs,
      // The probe's directory over /tmp: nothing the tests write lands in the shared rootfs.
      mounts: [{ op: 'bind', source: dir, target: '/tmp' }],
      command,
      seccomp: seccomp as unknown as SeccompProfile,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (err += d));
    const status = await proc.exited;
    await new Promise((r) => setImmediate(r));
    return { out, err, status };
  }

  it('fails a denied call with the profile errno, leaves the rest alone', async () => {
    const profile: LinuxSeccomp = {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 95 },
        { names: ['no_such_call'], action: 'SCMP_ACT_KILL' },
      ],
    };
    const r = await runWith(profile, ['sh', '-c', 'mkdir /tmp/x; echo "mkdir $?"; touch /tmp/y && echo touched; /tmp/syscall 83,0 258,-100,0,0']);
    expect(r.err).toMatch(/mkdir: can't create directory '\/tmp\/x': (Operation )?[Nn]ot supported/);
    expect(r.out).toBe('mkdir 1\ntouched\n-95\n-95\n');
    expect(r.status.exitCode).toBe(0);
  });

  it('matches arguments on all 64 bits: EQ, MASKED_EQ, GT, several rules of one syscall', async () => {
    const profile: LinuxSeccomp = {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        { names: ['personality'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, args: [{ index: 0, value: 0x1_0000_0008n, op: 'SCMP_CMP_EQ' }] },
        {
          names: ['personality'],
          action: 'SCMP_ACT_ERRNO',
          errnoRet: 22,
          args: [{ index: 0, value: 0xffff_0000_0000_0000n, valueTwo: 0x8000_0000_0000_0000n, op: 'SCMP_CMP_MASKED_EQ' }],
        },
        { names: ['personality'], action: 'SCMP_ACT_ERRNO', errnoRet: 34, args: [{ index: 0, value: 0x0400000, op: 'SCMP_CMP_GT' }] },
      ],
    };
    const calls = ['135,0x100000008', '135,0x8', '135,0x8000000000000008', '135,0x0400000', '135,0x0400001'];
    const r = await runWith(profile, ['/tmp/syscall', ...calls]);
    expect(r.err).toBe('');
    const got = r.out.trim().split('\n').map(Number);
    expect(got[0]).toBe(-13);
    // 8 itself (UNAME26) passes: its high word differs from the EQ rule's, and the kernel takes it.
    expect(got[1]).toBeGreaterThanOrEqual(0);
    expect(got[2]).toBe(-22);
    expect(got[3]).toBeGreaterThanOrEqual(0); // not greater than itself
    expect(got[4]).toBe(-34);
  });

  it('kills the process with SIGSYS on SCMP_ACT_KILL_PROCESS, and traps on SCMP_ACT_TRAP', async () => {
    for (const action of ['SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_TRAP'] as const) {
      const r = await runWith({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['getppid'], action }] }, ['/tmp/syscall', `${X.getuid}`, `${X.getppid}`]);
      expect([action, r.status.signal, r.out]).toEqual([action, 'SIGSYS', '0\n']);
    }
  });

  it("runs ordinary programs under Docker's default profile, installed with seccomp(2) flags", async () => {
    const profile = {
      ...dockerProfile(DEFAULT_CAPABILITIES),
      flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_TSYNC'],
    };
    const script = 'grep "^Seccomp:" /proc/self/status; ls / >/dev/null && echo listed; /tmp/syscall 272,0x20000 56,0x10000011 435,0,0 41,40,1,0';
    const r = await runWith(profile, ['sh', '-c', script]);
    expect(r.err).toBe('');
    // unshare(CLONE_NEWNS): EPERM; clone with CLONE_NEWUSER: EPERM; clone3: ENOSYS; socket(AF_VSOCK): EPERM
    expect(r.out).toMatch(/^Seccomp:\s+2\nlisted\n-1\n-1\n-38\n-1\n$/);
  });
  it("through Container too: a profile that can kill stays off ctrkit's own threads (the stage path installs it)", async () => {
    // An errno-only profile goes on the spawner thread (a thread of this very process); one
    // with a killing rule is refused there and the start falls back to the stage path: a
    // killing rule must hit the container, never this process.
    const binds = [{ source: dir, target: '/probe', readonly: true }];
    const cast = (p: LinuxSeccomp) => p as unknown as SeccompProfile;
    const errnoOnly = await Container.run({
      rootfs,
      binds,
      command: ['/probe/syscall', '83,0'],
      seccomp: cast({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 95 }] }),
    });
    expect([errnoOnly.stdout, errnoOnly.exitCode]).toEqual(['-95\n', 0]);
    const killing = await Container.run({
      rootfs,
      binds,
      command: ['/probe/syscall', `${X.getuid}`, `${X.getppid}`],
      seccomp: cast({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['getppid'], action: 'SCMP_ACT_KILL_PROCESS' }] }),
    });
    expect([killing.stdout, killing.signal]).toEqual(['0\n', 'SIGSYS']);
  });
});
