/**
 * The seccomp filter containers get by default: an allow-list at least as strict as Docker's
 * default profile (see ./seccomp-profile.ts for the names), compiled to classic BPF for the
 * machine's architecture. Calls not on the list fail with EPERM; numbers above the highest the
 * syscall table knows fail with ENOSYS, so a C library falls back from a syscall newer than
 * the table (as runc does); another ABI (i386 or x32 on x86_64, arm32 on arm64) is refused
 * whole, because its numbers index another table.
 *
 * Layout: a check of the ABI, then a binary search over the sorted runs of numbers that share
 * a verdict (about 8 comparisons per call instead of a linear scan over hundreds).
 */
import { InvalidOptionError } from '../errors.js';
import type { Capability } from './capabilities.js';
import { AF_VSOCK, CLONE_NAMESPACE_FLAGS, PERSONALITY_ALLOWED, verdicts, type Verdict } from './seccomp-profile.js';
import { SYSCALLS_ARM64, SYSCALLS_X64 } from './seccomp-tables.js';

export { SECCOMP_ALLOWED, SECCOMP_BY_CAPABILITY, SECCOMP_ARGUMENT_RULES } from './seccomp-profile.js';

/** `default`: ctrkit's allow-list (Docker's default profile, or stricter); `unconfined`: no filter. */
export type SeccompProfile = 'default' | 'unconfined';

/**
 * What the compilers know of each architecture (Node's names): its AUDIT_ARCH value, its
 * syscall table, and whether x32 (the same AUDIT_ARCH with bit 30 in the number) exists.
 * @internal
 */
export const ARCH: Readonly<Record<string, { audit: number; table: Readonly<Record<string, number>>; x32: boolean }>> = {
  x64: { audit: 0xc000003e, table: SYSCALLS_X64, x32: true },
  arm64: { audit: 0xc00000b7, table: SYSCALLS_ARM64, x32: false },
};

// Classic BPF as the kernel's seccomp reads it: struct sock_filter { u16 code; u8 jt, jf; u32 k }.
// Exported (@internal) for the OCI profile compiler, ./seccomp-oci.ts.
/** @internal */
export const LD_W_ABS = 0x20;
const JA = 0x05;
/** @internal */
export const JEQ_K = 0x15;
/** @internal */
export const JGT_K = 0x25;
/** @internal */
export const JGE_K = 0x35;
/** @internal */
export const JSET_K = 0x45;
const RET_K = 0x06;
const RET_ALLOW = 0x7fff0000;
const RET_EPERM = 0x00050000 | 1;
const RET_ENOSYS = 0x00050000 | 38;
/** @internal */
export const X32_SYSCALL_BIT = 0x40000000;
// struct seccomp_data { int nr; u32 arch; u64 ip; u64 args[6] }, little-endian: arg0's low word.
/** @internal */
export const OFF_NR = 0;
/** @internal */
export const OFF_ARCH = 4;
/** @internal */
export const OFF_ARG0_LO = 16;
const MAX_JUMP = 255; // jt/jf are 8 bits; farther targets go through JA (32 bits)

/** One classic-BPF instruction. @internal */
export type Insn = { code: number; k: number; jt: number; jf: number };
/** @internal */
export const op = (code: number, k: number, jt = 0, jf = 0): Insn => ({ code, k, jt, jf });
/** @internal */
export const ret = (k: number): Insn => op(RET_K, k);

/** Each leaf ends in a return, so no leaf ever jumps out of itself. */
function leaf(v: Verdict): Insn[] {
  switch (v) {
    case 'allow':
      return [ret(RET_ALLOW)];
    case 'eperm':
      return [ret(RET_EPERM)];
    case 'enosys':
      return [ret(RET_ENOSYS)];
    case 'clone':
      return [op(LD_W_ABS, OFF_ARG0_LO), op(JSET_K, CLONE_NAMESPACE_FLAGS, 0, 1), ret(RET_EPERM), ret(RET_ALLOW)];
    case 'socket':
      return [op(LD_W_ABS, OFF_ARG0_LO), op(JEQ_K, AF_VSOCK, 0, 1), ret(RET_EPERM), ret(RET_ALLOW)];
    case 'personality': {
      const n = PERSONALITY_ALLOWED.length;
      // Each JEQ jumps over the rest of the JEQs and the EPERM to the final ALLOW.
      return [op(LD_W_ABS, OFF_ARG0_LO), ...PERSONALITY_ALLOWED.map((v, i) => op(JEQ_K, v, n - i, 0)), ret(RET_EPERM), ret(RET_ALLOW)];
    }
  }
}

/**
 * Binary search over runs [start, verdict] (sorted, the first starting at 0); the accumulator
 * holds nr. `leafOf` gives each verdict's code, which must end in returns (no leaf jumps out).
 * @internal
 */
export function tree<V>(runs: readonly (readonly [number, V])[], leafOf: (v: V) => Insn[]): Insn[] {
  if (runs.length === 1) return leafOf(runs[0]![1]);
  const mid = runs.length >> 1;
  const below = tree(runs.slice(0, mid), leafOf);
  const above = tree(runs.slice(mid), leafOf);
  const k = runs[mid]![0];
  if (below.length <= MAX_JUMP) return [op(JGE_K, k, below.length, 0), ...below, ...above];
  return [op(JGE_K, k, 0, 1), op(JA, below.length), ...below, ...above];
}

/** The program as the kernel takes it: 8 bytes an instruction, little-endian. @internal */
export function encode(prog: readonly Insn[]): Buffer {
  const buf = Buffer.alloc(prog.length * 8);
  prog.forEach((p, i) => {
    buf.writeUInt16LE(p.code, i * 8);
    buf.writeUInt8(p.jt, i * 8 + 2);
    buf.writeUInt8(p.jf, i * 8 + 3);
    buf.writeUInt32LE(p.k >>> 0, i * 8 + 4);
  });
  return buf;
}

/**
 * Builds the filter program for `profile`, or undefined for `unconfined`. Plain bytes: it is
 * sent to the init stage, which installs it just before exec.
 * @param capabilities - the capabilities the container keeps (`'all'`: every one): each of
 *   Docker's capability-gated groups (mounts and namespaces with SYS_ADMIN, ptrace helpers with
 *   SYS_PTRACE, reboot with SYS_BOOT ...) is allowed only when its capability is kept
 * @param arch - Node's name of the architecture to build for (the simulation tests build both)
 * @internal
 */
export function buildSeccompFilter(profile: SeccompProfile, capabilities: readonly Capability[] | 'all', arch: string = process.arch): Buffer | undefined {
  if (profile === 'unconfined') return undefined;
  if (profile !== 'default') throw new InvalidOptionError('seccomp', `unknown profile "${String(profile)}" (expected "default" or "unconfined")`);
  const a = ARCH[arch];
  if (!a) throw new InvalidOptionError('seccomp', `no seccomp profile for ${arch} (use "unconfined")`);
  // Spelled as capabilityNumbers() accepts them (CAP_ prefix, any case): JavaScript callers do.
  const caps = capabilities === 'all' ? 'all' : new Set(capabilities.map((c) => String(c).toUpperCase().replace(/^CAP_/, '') as Capability));
  const byNr = verdicts(a.table, caps);
  const runs: [number, Verdict][] = [];
  byNr.forEach((v, nr) => {
    if (runs.at(-1)?.[1] !== v) runs.push([nr, v]);
  });
  return encode([...numberGuard(a, RET_EPERM, byNr.length - 1, RET_ENOSYS), ...tree(runs, leaf)]);
}

/**
 * The head of every program: another ABI (and x32 on x86_64) gets `otherAbi`, whose numbers
 * would index another table; numbers above `highest` get `newer`; the syscall number is left
 * in the accumulator for the search tree that follows.
 * @internal
 */
export function numberGuard(a: { audit: number; x32: boolean }, otherAbi: number, highest: number, newer: number): Insn[] {
  const prog: Insn[] = [op(LD_W_ABS, OFF_ARCH), op(JEQ_K, a.audit, 1, 0), ret(otherAbi), op(LD_W_ABS, OFF_NR)];
  if (a.x32) prog.push(op(JSET_K, X32_SYSCALL_BIT, 0, 1), ret(otherAbi));
  prog.push(op(JGT_K, highest, 0, 1), ret(newer));
  return prog;
}

/** How many instructions withNamespaceKey() puts in front of a program. @internal */
export const KEY_PREFIX_LENGTH = 16;

/** clone3's number on x86_64 and arm64 alike. */
const NR_CLONE3 = 435;

/**
 * Puts a door in front of `program`: setns and unshare pass when their (otherwise unused)
 * third and fourth arguments carry `key`, 128 random bits only this process knows. The
 * thread start path installs a container's filter once on its spawner thread, which must
 * still enter the next container's namespaces and return from them; everything the
 * container runs inherits the filter, but not the key (it never leaves this process's
 * memory, and reading a filter back needs CAP_SYS_ADMIN, which such a container lacks).
 *
 * clone3 fails with ENOSYS in front of any program, as Docker's profile has it: glibc's
 * posix_spawn, which the thread calls, then falls back to clone, which profiles allow and can
 * check (clone3 passes its flags in memory, out of a filter's reach). A profile that refuses
 * clone3 with EPERM would otherwise refuse the spawn itself.
 * @internal
 */
export function withNamespaceKey(
  program: Buffer,
  key: readonly [bigint, bigint],
  nrs: { setns: number; unshare: number },
  arch: string = process.arch,
): Buffer {
  const a = ARCH[arch];
  if (!a) throw new InvalidOptionError('seccomp', `no seccomp profile for ${arch}`);
  const words = [key[0] & 0xffffffffn, key[0] >> 32n, key[1] & 0xffffffffn, key[1] >> 32n].map(Number);
  const REST = KEY_PREFIX_LENGTH; // index of the first instruction of `program`
  const jf = (i: number) => REST - (i + 1);
  const prefix: Insn[] = [
    op(LD_W_ABS, OFF_ARCH),
    op(JEQ_K, a.audit, 0, jf(1)),
    op(LD_W_ABS, OFF_NR),
    op(JEQ_K, NR_CLONE3, 0, 1),
    ret(RET_ENOSYS),
    op(JEQ_K, nrs.setns, 1, 0),
    op(JEQ_K, nrs.unshare, 0, jf(6)),
  ];
  words.forEach((w, n) => {
    prefix.push(op(LD_W_ABS, OFF_ARG0_LO + 16 + 4 * n), op(JEQ_K, w, 0, jf(prefix.length + 1)));
  });
  prefix.push(ret(RET_ALLOW));
  return Buffer.concat([encode(prefix), program]);
}
