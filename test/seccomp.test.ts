import { describe, expect, it } from 'vitest';
import { buildSeccompFilter } from '../dist/namespaces/seccomp.js';

/** Runs a classic-BPF seccomp program over one seccomp_data, as the kernel would. */
function run(prog: Buffer, data: { nr: number; arch: number; arg0?: number }): number {
  const word = (off: number) => (off === 0 ? data.nr : off === 4 ? data.arch : off === 16 ? (data.arg0 ?? 0) : 0);
  let acc = 0;
  for (let pc = 0; pc < prog.length / 8; pc++) {
    const code = prog.readUInt16LE(pc * 8);
    const jt = prog.readUInt8(pc * 8 + 2);
    const jf = prog.readUInt8(pc * 8 + 3);
    const k = prog.readUInt32LE(pc * 8 + 4);
    if (code === 0x20) acc = word(k) >>> 0;
    else if (code === 0x15) pc += acc === k ? jt : jf;
    else if (code === 0x45) pc += (acc & k) !== 0 ? jt : jf;
    else if (code === 0x06) return k;
    else throw new Error(`unexpected opcode ${code}`);
  }
  throw new Error('fell off the end');
}

const ALLOW = 0x7fff0000;
const EPERM = 0x00050001;
const ENOSYS = 0x00050026;

describe('the default seccomp filter, simulated', () => {
  // The filter is built for the machine's own architecture; its logic is checked here for
  // the syscall numbers of that architecture (the x86_64 run also runs it for real).
  const arch = process.arch === 'arm64' ? { audit: 0xc00000b7, nr: { read: 63, keyctl: 219, unshare: 97, clone: 220, clone3: 435, mount: 40 } }
    : { audit: 0xc000003e, nr: { read: 0, keyctl: 250, unshare: 272, clone: 56, clone3: 435, mount: 165 } };
  const strict = buildSeccompFilter('default', false)!;
  const admin = buildSeccompFilter('default', true)!;

  it('allows ordinary calls and denies the global-state ones', () => {
    expect(run(strict, { nr: arch.nr.read, arch: arch.audit })).toBe(ALLOW);
    expect(run(strict, { nr: arch.nr.keyctl, arch: arch.audit })).toBe(EPERM);
    expect(run(admin, { nr: arch.nr.keyctl, arch: arch.audit })).toBe(EPERM);
  });

  it('denies namespaces and mounts unless CAP_SYS_ADMIN is kept; clone3 falls back to clone', () => {
    expect(run(strict, { nr: arch.nr.unshare, arch: arch.audit })).toBe(EPERM);
    expect(run(strict, { nr: arch.nr.mount, arch: arch.audit })).toBe(EPERM);
    expect(run(strict, { nr: arch.nr.clone3, arch: arch.audit })).toBe(ENOSYS);
    expect(run(strict, { nr: arch.nr.clone, arch: arch.audit, arg0: 0x11 /* SIGCHLD-ish fork */ })).toBe(ALLOW);
    expect(run(strict, { nr: arch.nr.clone, arch: arch.audit, arg0: 0x10000000 /* CLONE_NEWUSER */ })).toBe(EPERM);
    expect(run(admin, { nr: arch.nr.unshare, arch: arch.audit })).toBe(ALLOW);
    expect(run(admin, { nr: arch.nr.clone, arch: arch.audit, arg0: 0x10000000 })).toBe(ALLOW);
  });

  it('refuses another ABI', () => {
    expect(run(strict, { nr: arch.nr.read, arch: 0x40000003 /* i386 */ })).toBe(EPERM);
    if (process.arch === 'x64') expect(run(strict, { nr: 0x40000000, arch: arch.audit })).toBe(EPERM); // x32
  });

  it('unconfined is no filter; an unknown profile is an error', () => {
    expect(buildSeccompFilter('unconfined', false)).toBeUndefined();
    expect(() => buildSeccompFilter('strict' as 'default', false)).toThrow(/unknown profile/);
  });
});
