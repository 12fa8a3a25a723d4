/**
 * Runs a classic-BPF seccomp program over one seccomp_data, as the kernel would: only the
 * instructions ctrkit's compiler emits, and an error for anything else (or a jump out of the
 * program), so a compiler bug cannot hide behind a lenient simulator.
 */
export type SeccompData = { nr: number; arch: number; arg0?: number };

export function runFilter(prog: Buffer, data: SeccompData): number {
  const word = (off: number): number => (off === 0 ? data.nr : off === 4 ? data.arch : off === 16 ? (data.arg0 ?? 0) : 0);
  const n = prog.length / 8;
  let acc = 0;
  for (let pc = 0; pc < n; pc++) {
    const code = prog.readUInt16LE(pc * 8);
    const jt = prog.readUInt8(pc * 8 + 2);
    const jf = prog.readUInt8(pc * 8 + 3);
    const k = prog.readUInt32LE(pc * 8 + 4);
    if (code === 0x20) acc = word(k) >>> 0;
    else if (code === 0x05) pc += k;
    else if (code === 0x15) pc += acc === k ? jt : jf;
    else if (code === 0x25) pc += acc > k ? jt : jf;
    else if (code === 0x35) pc += acc >= k ? jt : jf;
    else if (code === 0x45) pc += (acc & k) !== 0 ? jt : jf;
    else if (code === 0x06) return k;
    else throw new Error(`unexpected opcode 0x${code.toString(16)} at ${pc}`);
    if (pc + 1 >= n) throw new Error(`jump past the end at ${pc}`);
  }
  throw new Error('fell off the end');
}

export const ALLOW = 0x7fff0000;
export const EPERM = 0x00050001;
export const ENOSYS = 0x00050026;
