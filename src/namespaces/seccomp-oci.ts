/**
 * The OCI runtime-spec's seccomp profile (config.json's `linux.seccomp`, the format of Docker's
 * default.json once its includes/excludes are resolved), compiled to classic BPF for the
 * machine's architecture, with the semantics runc gives it through libseccomp:
 *
 * - the rules of one entry match when all its `args` comparisons hold (AND); several entries
 *   naming one syscall are tried in the profile's order and the first that matches decides
 *   (OR); an entry comparing one argument twice becomes one rule per comparison, as in runc;
 * - an entry whose action equals the default action is skipped, as in runc;
 * - names the architecture lacks are skipped silently, as in runc;
 * - comparisons are on the whole 64-bit argument (high word, then low word);
 * - calls numbered above every syscall ctrkit knows get ENOSYS when the default action is
 *   SCMP_ACT_ERRNO (runc does the same), so a C library falls back from a newer call;
 * - another ABI (i386 and x32 on x86_64, arm32 on arm64) gets the default action, or EPERM
 *   when the default action allows: ctrkit has no syscall table for them, so it cannot apply
 *   the rules there, and letting them through would bypass a deny-list.
 *
 * Layout: the ABI checks, then a binary search over the runs of syscall numbers that share
 * the same rules (the leaves of ./seccomp.ts), each leaf trying its rules in order.
 */
import { InvalidOptionError } from '../errors.js';
import { ARCH, encode, type Insn, JEQ_K, JGE_K, JGT_K, LD_W_ABS, OFF_ARG0_LO, numberGuard, op, ret, type SeccompProfile, tree } from './seccomp.js';

/**
 * What `unshare()` takes as its `seccomp` option: one of ctrkit's profiles
 * ({@link SeccompProfile}), or an OCI runtime-spec `linux.seccomp` object ({@link LinuxSeccomp}),
 * compiled as runc applies it.
 */
export type SeccompOption = SeccompProfile | LinuxSeccomp;

/** An action of a seccomp rule, as libseccomp spells it. */
export type SeccompAction =
  | 'SCMP_ACT_KILL'
  | 'SCMP_ACT_KILL_THREAD'
  | 'SCMP_ACT_KILL_PROCESS'
  | 'SCMP_ACT_TRAP'
  | 'SCMP_ACT_ERRNO'
  | 'SCMP_ACT_TRACE'
  | 'SCMP_ACT_ALLOW'
  | 'SCMP_ACT_LOG'
  | 'SCMP_ACT_NOTIFY';

/** A comparison of a syscall argument, as libseccomp spells it. */
export type SeccompOperator = 'SCMP_CMP_NE' | 'SCMP_CMP_LT' | 'SCMP_CMP_LE' | 'SCMP_CMP_EQ' | 'SCMP_CMP_GE' | 'SCMP_CMP_GT' | 'SCMP_CMP_MASKED_EQ';

/**
 * A 64-bit unsigned argument value. JSON numbers above 2^53 - 1 lose precision in
 * `JSON.parse`, so such values are refused as numbers: pass them as a bigint or as a string
 * of decimal digits (or `0x` hex).
 */
export type SeccompValue = number | bigint | string;

/** One comparison of a syscall argument (`linux.seccomp.syscalls[].args[]`). */
export interface LinuxSeccompArg {
  /** Which argument, 0 to 5. */
  readonly index: number;
  /** The value compared with; for `SCMP_CMP_MASKED_EQ`, the mask. */
  readonly value: SeccompValue;
  /** For `SCMP_CMP_MASKED_EQ`: the value the masked argument must equal. Ignored otherwise. @defaultValue 0 */
  readonly valueTwo?: SeccompValue | undefined;
  /** The comparison: argument `op` value, unsigned 64-bit; `SCMP_CMP_MASKED_EQ`: (argument & value) == valueTwo. */
  readonly op: SeccompOperator;
}

/** One rule (`linux.seccomp.syscalls[]`): what to do with some syscalls, perhaps only for some arguments. */
export interface LinuxSyscall {
  /** The syscalls' names (at least one); names the architecture does not have are skipped. */
  readonly names: readonly string[];
  /** What the filter does when the rule matches. `SCMP_ACT_NOTIFY` is refused: ctrkit has no seccomp agent support. */
  readonly action: SeccompAction;
  /**
   * With `SCMP_ACT_ERRNO`: the errno the call fails with; with `SCMP_ACT_TRACE`: the data the
   * tracer gets. Refused with any other action. @defaultValue EPERM (1)
   */
  readonly errnoRet?: number | undefined;
  /** Comparisons that must all hold for the rule to match. @defaultValue none (the rule always matches) */
  readonly args?: readonly LinuxSeccompArg[] | undefined;
}

/** The OCI runtime-spec's `linux.seccomp` object, as runc takes it. */
export interface LinuxSeccomp {
  /** What the filter does with a call no rule matches. */
  readonly defaultAction: SeccompAction;
  /** The errno (or trace data) of `defaultAction`, for `SCMP_ACT_ERRNO` or `SCMP_ACT_TRACE` only. @defaultValue EPERM (1) */
  readonly defaultErrnoRet?: number | undefined;
  /**
   * Architectures (`SCMP_ARCH_X86_64`, `SCMP_ARCH_X86`, ...). The machine's own is always
   * filtered, listed or not; every other ABI gets the default action (EPERM when that allows),
   * because ctrkit cannot compile the rules against its syscall table.
   */
  readonly architectures?: readonly string[] | undefined;
  /**
   * seccomp(2) flags: `SECCOMP_FILTER_FLAG_TSYNC`, `SECCOMP_FILTER_FLAG_LOG`,
   * `SECCOMP_FILTER_FLAG_SPEC_ALLOW`. `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` is refused (it
   * goes with `SCMP_ACT_NOTIFY`).
   */
  readonly flags?: readonly string[] | undefined;
  /** The seccomp agent's socket for `SCMP_ACT_NOTIFY`: refused, ctrkit has no agent support. */
  readonly listenerPath?: string | undefined;
  /** Opaque data for the seccomp agent (with `listenerPath` only): refused likewise. */
  readonly listenerMetadata?: string | undefined;
  /** The rules, tried per syscall in this order. @defaultValue none (every call gets the default action) */
  readonly syscalls?: readonly LinuxSyscall[] | undefined;
}

/** A compiled profile: the program and the flags for seccomp(SECCOMP_SET_MODE_FILTER, flags, prog). */
export interface CompiledSeccomp {
  /** Classic BPF, 8 bytes an instruction. */
  readonly program: Buffer;
  /** SECCOMP_FILTER_FLAG_* bits (0: none, then prctl(PR_SET_SECCOMP) does as well). */
  readonly flags: number;
}

const OPTION = 'seccomp';
const EPERM = 1;
const ENOSYS = 38;
const RET_KILL_THREAD = 0x00000000;
const RET_KILL_PROCESS = 0x80000000;
const RET_TRAP = 0x00030000;
const RET_ERRNO = 0x00050000;
const RET_TRACE = 0x7ff00000;
const RET_LOG = 0x7ffc0000;
const RET_ALLOW = 0x7fff0000;
const AND_K = 0x54; // BPF_ALU | BPF_AND | BPF_K
const MAX_INSNS = 4096; // BPF_MAXINSNS
const U64_MAX = (1n << 64n) - 1n;

/** The flags the runtime-spec lists, by value (include/uapi/linux/seccomp.h). */
const FLAGS: Readonly<Record<string, number>> = {
  SECCOMP_FILTER_FLAG_TSYNC: 1,
  SECCOMP_FILTER_FLAG_LOG: 2,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4,
};

/** libseccomp's architecture names (runtime-spec, libseccomp 2.5), to tell a typo from an ABI. */
const ARCHES = new Set(
  'X86 X86_64 X32 ARM AARCH64 MIPS MIPS64 MIPS64N32 MIPSEL MIPSEL64 MIPSEL64N32 PPC PPC64 PPC64LE S390 S390X PARISC PARISC64 RISCV64 LOONGARCH64 M68K SH SHEB'
    .split(' ')
    .map((a) => `SCMP_ARCH_${a}`),
);

/**
 * Syscalls newer than ctrkit's tables (Linux 6.1): since 5.1 every architecture gives a new
 * syscall the same number, so one list serves x86_64 and arm64. Without them, a profile
 * allowing e.g. `fchmodat2` would be compiled as if it did not.
 */
const NEWER_SYSCALLS: Readonly<Record<string, number>> = {
  cachestat: 451,
  fchmodat2: 452,
  map_shadow_stack: 453,
  futex_wake: 454,
  futex_wait: 455,
  futex_requeue: 456,
  statmount: 457,
  listmount: 458,
  lsm_get_self_attr: 459,
  lsm_set_self_attr: 460,
  lsm_list_modules: 461,
  mseal: 462,
  setxattrat: 463,
  getxattrat: 464,
  listxattrat: 465,
  removexattrat: 466,
  open_tree_attr: 467,
  file_getattr: 468,
  file_setattr: 469,
  listns: 470,
};

/** One comparison, the value and mask split into 32-bit words (the filter reads args word by word). */
type Cond = { index: number; op: SeccompOperator; hi: number; lo: number; maskHi: number; maskLo: number };
/** One rule: all of `conds`, then return `ret`. */
type Rule = { conds: readonly Cond[]; ret: number };
/** A jump target inside a rule's code: a relative offset, or the next rule. */
type Target = number | 'fail';
type RuleInsn = { code: number; k: number; jt: Target; jf: Target };

/** The return value for an action; `errnoRet` only where the spec allows one. */
function actionValue(action: string, errnoRet: number | undefined, field: string): number {
  if (errnoRet !== undefined && action !== 'SCMP_ACT_ERRNO' && action !== 'SCMP_ACT_TRACE') {
    throw new InvalidOptionError(OPTION, `${field}: an errno is only for SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not ${action}`);
  }
  const data = errnoRet === undefined ? EPERM : errnoRet;
  if (!Number.isInteger(data) || data < 0 || data > 0xffff)
    throw new InvalidOptionError(OPTION, `${field}: errno ${String(errnoRet)} is not an integer from 0 to 65535`);
  switch (action) {
    case 'SCMP_ACT_KILL': // libseccomp's SCMP_ACT_KILL is SECCOMP_RET_KILL_THREAD
    case 'SCMP_ACT_KILL_THREAD':
      return RET_KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS':
      return RET_KILL_PROCESS;
    case 'SCMP_ACT_TRAP':
      return RET_TRAP;
    case 'SCMP_ACT_ERRNO':
      return (RET_ERRNO | data) >>> 0;
    case 'SCMP_ACT_TRACE': // runc's default trace data is EPERM too
      return (RET_TRACE | data) >>> 0;
    case 'SCMP_ACT_ALLOW':
      return RET_ALLOW;
    case 'SCMP_ACT_LOG':
      return RET_LOG;
    case 'SCMP_ACT_NOTIFY':
      throw new InvalidOptionError(
        OPTION,
        `${field}: SCMP_ACT_NOTIFY is not supported (ctrkit has no seccomp agent support: no listener socket, no notify fd)`,
      );
    default:
      throw new InvalidOptionError(OPTION, `${field}: unknown action "${action}"`);
  }
}

/** A 64-bit unsigned value from a JSON number (exact only up to 2^53 - 1), a bigint or a digit string. */
function u64(v: unknown, field: string): bigint {
  let n: bigint | undefined;
  if (typeof v === 'bigint') n = v;
  else if (typeof v === 'string' && /^(?:\d+|0x[0-9a-f]+)$/i.test(v)) n = BigInt(v);
  else if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) {
      throw new InvalidOptionError(
        OPTION,
        `${field}: ${v} is not an integer JSON can carry exactly (up to 2^53 - 1): pass larger values as a bigint or a decimal string`,
      );
    }
    n = BigInt(v);
  }
  if (n === undefined || n < 0n || n > U64_MAX) throw new InvalidOptionError(OPTION, `${field}: ${String(v)} is not an unsigned 64-bit value`);
  return n;
}

const words = (n: bigint): [number, number] => [Number(n >> 32n), Number(n & 0xffffffffn)];

const OPERATORS = new Set<string>(['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ']);

function condition(a: LinuxSeccompArg, field: string): Cond {
  if (!Number.isInteger(a.index) || a.index < 0 || a.index > 5)
    throw new InvalidOptionError(OPTION, `${field}.index: ${String(a.index)} is not an argument index from 0 to 5`);
  if (!OPERATORS.has(a.op)) throw new InvalidOptionError(OPTION, `${field}.op: unknown operator "${String(a.op)}"`);
  const value = u64(a.value, `${field}.value`);
  const two = a.valueTwo === undefined ? 0n : u64(a.valueTwo, `${field}.valueTwo`);
  // MASKED_EQ compares (arg & value) with valueTwo; the others compare arg with value.
  const masked = a.op === 'SCMP_CMP_MASKED_EQ';
  const [hi, lo] = words(masked ? two : value);
  const [maskHi, maskLo] = masked ? words(value) : [0xffffffff, 0xffffffff];
  return { index: a.index, op: a.op, hi, lo, maskHi, maskLo };
}

/** One rule's conditions; several comparisons of one argument become one rule each, as runc does. */
function rulesOf(s: LinuxSyscall, field: string, retValue: number): Rule[] {
  const conds = (s.args ?? []).map((a, j) => condition(a, `${field}.args[${j}]`));
  const indexes = new Set(conds.map((c) => c.index));
  if (indexes.size === conds.length) return [{ conds, ret: retValue }];
  return conds.map((c) => ({ conds: [c], ret: retValue }));
}

/**
 * The code of one comparison. The accumulator is free; 'fail' jumps to the next rule, and a
 * number skips forward within this comparison's code (its length: the comparison holds).
 */
function compare(c: Cond): RuleInsn[] {
  const hiOff = OFF_ARG0_LO + 8 * c.index + 4;
  const loOff = OFF_ARG0_LO + 8 * c.index;
  const ld = (off: number): RuleInsn => ({ code: LD_W_ABS, k: off, jt: 0, jf: 0 });
  const j = (code: number, k: number, jt: Target, jf: Target): RuleInsn => ({ code, k, jt, jf });
  switch (c.op) {
    case 'SCMP_CMP_EQ':
      return [ld(hiOff), j(JEQ_K, c.hi, 0, 'fail'), ld(loOff), j(JEQ_K, c.lo, 0, 'fail')];
    case 'SCMP_CMP_NE': // a differing high word is enough
      return [ld(hiOff), j(JEQ_K, c.hi, 0, 2), ld(loOff), j(JEQ_K, c.lo, 'fail', 0)];
    case 'SCMP_CMP_GT': // high word greater, or equal and the low word greater
      return [ld(hiOff), j(JGT_K, c.hi, 3, 0), j(JEQ_K, c.hi, 0, 'fail'), ld(loOff), j(JGT_K, c.lo, 0, 'fail')];
    case 'SCMP_CMP_GE':
      return [ld(hiOff), j(JGT_K, c.hi, 3, 0), j(JEQ_K, c.hi, 0, 'fail'), ld(loOff), j(JGE_K, c.lo, 0, 'fail')];
    case 'SCMP_CMP_LT': // not GE: high word less, or equal and the low word less
      return [ld(hiOff), j(JGT_K, c.hi, 'fail', 0), j(JEQ_K, c.hi, 0, 2), ld(loOff), j(JGE_K, c.lo, 'fail', 0)];
    case 'SCMP_CMP_LE': // not GT
      return [ld(hiOff), j(JGT_K, c.hi, 'fail', 0), j(JEQ_K, c.hi, 0, 2), ld(loOff), j(JGT_K, c.lo, 'fail', 0)];
    case 'SCMP_CMP_MASKED_EQ': {
      const half = (off: number, mask: number, want: number): RuleInsn[] =>
        // A zero mask wanting zero always holds: the usual case of a 32-bit flags argument.
        mask === 0 && want === 0 ? [] : [ld(off), { code: AND_K, k: mask, jt: 0, jf: 0 }, j(JEQ_K, want, 0, 'fail')];
      return [...half(hiOff, c.maskHi, c.hi), ...half(loOff, c.maskLo, c.lo)];
    }
  }
}

/** A rule's code: its comparisons, then its return; a failed comparison jumps past the return. */
function ruleCode(r: Rule): Insn[] {
  const code: RuleInsn[] = [];
  for (const c of r.conds) code.push(...compare(c));
  const end = code.length + 1; // the instruction after the return: the next rule
  const resolve = (t: Target, i: number): number => (t === 'fail' ? end - (i + 1) : t);
  // At most 6 comparisons of 6 instructions: every offset fits the 8 bits of jt/jf.
  return [...code.map((x, i) => op(x.code, x.k, resolve(x.jt, i), resolve(x.jf, i))), ret(r.ret)];
}

/** A leaf of the search: the rules of one syscall in order, then the default. */
function leafCode(rules: readonly Rule[], fallback: number): Insn[] {
  const out: Insn[] = [];
  for (const r of rules) {
    out.push(...ruleCode(r));
    if (r.conds.length === 0) return out; // it always matches: what follows is unreachable
  }
  out.push(ret(fallback));
  return out;
}

function flagBits(flags: readonly string[] | undefined): number {
  let bits = 0;
  for (const [i, f] of (flags ?? []).entries()) {
    const v = FLAGS[f];
    if (v !== undefined) bits |= v;
    else if (f === 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV') {
      throw new InvalidOptionError(OPTION, `flags[${i}]: ${f} is not supported (it goes with SCMP_ACT_NOTIFY, which ctrkit does not support)`);
    } else throw new InvalidOptionError(OPTION, `flags[${i}]: unknown flag "${String(f)}"`);
  }
  return bits;
}

function checkShape(profile: LinuxSeccomp): void {
  if (typeof profile !== 'object' || profile === null) throw new InvalidOptionError(OPTION, 'expected "default", "unconfined" or an OCI linux.seccomp object');
  if (profile.listenerPath !== undefined) {
    throw new InvalidOptionError(OPTION, 'listenerPath: seccomp agents (SCMP_ACT_NOTIFY) are not supported: ctrkit has no seccomp notify support');
  }
  if (profile.listenerMetadata !== undefined) throw new InvalidOptionError(OPTION, 'listenerMetadata: only with listenerPath, which is not supported');
  for (const [i, a] of (profile.architectures ?? []).entries()) {
    if (!ARCHES.has(a)) throw new InvalidOptionError(OPTION, `architectures[${i}]: unknown architecture "${String(a)}"`);
  }
}

/**
 * The rules of every syscall number the profile names, in the profile's order. Rules with
 * the default's own return value are dropped (runc does: libseccomp refuses them).
 */
function rulesByNumber(profile: LinuxSeccomp, table: Readonly<Record<string, number>>, fallback: number): Map<number, Rule[]> {
  const byNr = new Map<number, Rule[]>();
  for (const [i, s] of (profile.syscalls ?? []).entries()) {
    const field = `syscalls[${i}]`;
    if (!Array.isArray(s.names) || s.names.length === 0) throw new InvalidOptionError(OPTION, `${field}.names: at least one syscall name is required`);
    const value = actionValue(s.action, s.errnoRet, `${field}.action`);
    const rules = rulesOf(s, field, value);
    if (value === fallback) continue;
    for (const name of s.names) {
      const nr = Object.hasOwn(table, name) ? table[name] : Object.hasOwn(NEWER_SYSCALLS, name) ? NEWER_SYSCALLS[name] : undefined;
      if (nr === undefined) continue; // not a syscall of this architecture: skipped, as runc does
      const list = byNr.get(nr) ?? [];
      list.push(...rules);
      byNr.set(nr, list);
    }
  }
  return byNr;
}

/**
 * Compiles an OCI runtime-spec `linux.seccomp` profile into a seccomp filter program for
 * `arch`, applying it as runc does (see the module's notes for the details).
 * @param profile - the profile, as in config.json; values above 2^53 - 1 as bigints or digit strings
 * @param arch - Node's name of the architecture to build for: `x64` or `arm64`
 * @returns the program, and the flags to install it with
 * @throws InvalidOptionError (option `seccomp`) naming the field at fault: an unknown action,
 *   operator, architecture or flag; SCMP_ACT_NOTIFY, listenerPath or WAIT_KILLABLE_RECV (not
 *   supported); an errno with an action that takes none; a value that is not an unsigned
 *   64-bit integer; a program longer than the kernel takes
 */
export function compileOciSeccomp(profile: LinuxSeccomp, arch: string = process.arch): CompiledSeccomp {
  checkShape(profile);
  const a = ARCH[arch];
  if (!a) throw new InvalidOptionError(OPTION, `no seccomp support for ${arch} (x64 and arm64 are supported)`);
  const fallback = actionValue(profile.defaultAction, profile.defaultErrnoRet, 'defaultAction');
  const flags = flagBits(profile.flags);
  const byNr = rulesByNumber(profile, a.table, fallback);
  const permissive = fallback === RET_ALLOW || fallback === RET_LOG;
  const otherAbi = permissive ? (RET_ERRNO | EPERM) >>> 0 : fallback;
  const highest = Math.max(...Object.values(a.table), ...Object.values(NEWER_SYSCALLS));
  const newer = (fallback & 0xffff0000) === RET_ERRNO ? (RET_ERRNO | ENOSYS) >>> 0 : fallback;
  // Runs of numbers sharing the same rules: a key per distinct rule list, the default's is ''.
  const runs: [number, string][] = [];
  const leaves = new Map<string, Rule[]>([['', []]]);
  for (let nr = 0; nr <= highest; nr++) {
    const rules = byNr.get(nr) ?? [];
    const key = rules.length ? JSON.stringify(rules) : '';
    leaves.set(key, rules);
    if (runs.at(-1)?.[1] !== key) runs.push([nr, key]);
  }
  const prog: Insn[] = [...numberGuard(a, otherAbi, highest, newer), ...tree(runs, (key) => leafCode(leaves.get(key) ?? [], fallback))];
  if (prog.length > MAX_INSNS)
    throw new InvalidOptionError(OPTION, `the profile compiles to ${prog.length} BPF instructions, more than the ${MAX_INSNS} the kernel takes`);
  return { program: encode(prog), flags };
}
