/**
 * The cgroup v2 device filter: rules in, a BPF_PROG_TYPE_CGROUP_DEVICE program out (the
 * instructions runc generates, in the same shape). Pure: nothing here touches the kernel.
 *
 * The program sees `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
 * (access_type: the device type in the low 16 bits, BLOCK=1 CHAR=2; the access in the high
 * 16 bits, MKNOD=1 READ=2 WRITE=4) and returns 1 to allow, 0 to deny.
 *
 *     r2 = type, r3 = access, r4 = major, r5 = minor      (loaded once)
 *     per exception:  if r2 != TYPE goto next
 *                     [access test]   [if r4 != MAJOR goto next]   [if r5 != MINOR goto next]
 *                     r0 = verdict; exit
 *     r0 = default; exit
 */
import { ACC_ALL, reduceDeviceRules, type DeviceException } from './device-rules.js';
import type { DeviceCgroupRule } from './resources.js';

/** Values of `struct bpf_cgroup_dev_ctx.access_type`'s low half. @internal */
export const BPF_DEVCG_DEV_BLOCK = 1;
/** @internal */
export const BPF_DEVCG_DEV_CHAR = 2;

// Opcodes: class | operation | source (linux/bpf_common.h, linux/bpf.h).
const LDX_MEM_W = 0x61; // dst = *(u32 *)(src + off)
const ALU32_AND_K = 0x54; // w(dst) &= imm
const ALU32_RSH_K = 0x74; // w(dst) >>= imm
const ALU32_MOV_K = 0xb4; // w(dst) = imm
const ALU32_MOV_X = 0xbc; // w(dst) = w(src)
const JMP_JEQ_K = 0x15; // if dst == imm goto +off
const JMP_JNE_K = 0x55; // if dst != imm goto +off
const JMP_JNE_X = 0x5d; // if dst != src goto +off
const JMP_EXIT = 0x95;

/** One `struct bpf_insn`, with a jump to a label resolved once the block's length is known. */
interface Insn {
  readonly code: number;
  readonly dst: number;
  readonly src: number;
  readonly imm: number;
  /** A memory offset (loads). */
  readonly off?: number;
  /** For jumps: the target is the end of the current block. */
  readonly toNext?: true;
}

const ins = (code: number, dst: number, src: number, imm: number): Insn => ({ code, dst, src, imm });
const load = (dst: number, off: number): Insn => ({ code: LDX_MEM_W, dst, src: 1, imm: 0, off });
const jumpNext = (code: number, dst: number, src: number, imm: number): Insn => ({ code, dst, src, imm, toNext: true });

/** The instructions of one exception: falls through to the verdict when it matches. */
function block(e: DeviceException, verdict: 0 | 1): Insn[] {
  const out: Insn[] = [jumpNext(JMP_JNE_K, 2, 0, e.type === 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR)];
  if (verdict === 1 && e.access !== ACC_ALL) {
    // An allow exception must cover the whole access asked for: (access & mine) == access.
    out.push(ins(ALU32_MOV_X, 1, 3, 0), ins(ALU32_AND_K, 1, 0, e.access), jumpNext(JMP_JNE_X, 1, 3, 0));
  }
  if (verdict === 0 && e.access !== ACC_ALL) {
    // A deny exception applies as soon as it shares any bit with the access (v1's partial match).
    out.push(ins(ALU32_MOV_X, 1, 3, 0), ins(ALU32_AND_K, 1, 0, e.access), jumpNext(JMP_JEQ_K, 1, 0, 0));
  }
  if (e.major !== '*') out.push(jumpNext(JMP_JNE_K, 4, 0, e.major));
  if (e.minor !== '*') out.push(jumpNext(JMP_JNE_K, 5, 0, e.minor));
  out.push(ins(ALU32_MOV_K, 0, 0, verdict), ins(JMP_EXIT, 0, 0, 0));
  return out;
}

/** Encodes instructions as the kernel reads them (little-endian on x86_64 and arm64). */
function encode(blocks: Insn[][]): Buffer {
  const total = blocks.reduce((n, b) => n + b.length, 0);
  const buf = Buffer.alloc(total * 8);
  let pc = 0;
  for (const b of blocks) {
    const next = pc + b.length;
    for (const i of b) {
      const off = i.toNext ? next - (pc + 1) : (i.off ?? 0);
      buf.writeUInt8(i.code, pc * 8);
      buf.writeUInt8((i.src << 4) | i.dst, pc * 8 + 1);
      buf.writeInt16LE(off, pc * 8 + 2);
      buf.writeInt32LE(i.imm, pc * 8 + 4);
      pc++;
    }
  }
  return buf;
}

/**
 * The device filter program for a rule list (applied in order after an implicit "deny
 * everything", exactly as the v1 controller would apply them), as `struct bpf_insn`s ready
 * for BPF_PROG_LOAD.
 * @internal
 */
export function deviceProgram(rules: readonly DeviceCgroupRule[]): Buffer {
  const set = reduceDeviceRules(rules);
  const prologue: Insn[] = [
    load(2, 0),
    ins(ALU32_AND_K, 2, 0, 0xffff), // r2 = access_type & 0xffff (type)
    load(3, 0),
    ins(ALU32_RSH_K, 3, 0, 16), //     r3 = access_type >> 16    (access)
    load(4, 4), //                                 r4 = major
    load(5, 8), //                                 r5 = minor
  ];
  const verdict = set.defaultAllow ? 0 : 1;
  const blocks = [prologue, ...set.exceptions.map((e) => block(e, verdict)), [ins(ALU32_MOV_K, 0, 0, set.defaultAllow ? 1 : 0), ins(JMP_EXIT, 0, 0, 0)]];
  return encode(blocks);
}
