/**
 * What a seccomp program can do to the thread that installs it. The thread start path puts a
 * container's filter on a spawner thread of the caller's own process, which then goes on
 * running Node under it: a program whose only verdicts are allow, log and an errno can make
 * one of that thread's calls fail (which the thread reports), but a program that kills,
 * traps or traces could end the thread or the whole process. Those go to the stage path,
 * which installs the filter in the container's own process just before exec.
 * @internal
 */

const RET_K = 0x06;
const RET_A = 0x16;
const ACTION_MASK = 0xffff0000;
const SAFE = new Set([0x7fff0000 /* ALLOW */, 0x7ffc0000 /* LOG */, 0x00050000 /* ERRNO */]);

/** True when every return of `program` (classic BPF) allows, logs, or fails the call with an errno. */
export function failsOnlyWithErrno(program: Buffer): boolean {
  for (let at = 0; at + 8 <= program.length; at += 8) {
    const code = program.readUInt16LE(at);
    if (code === RET_A) return false; // a verdict computed at run time
    if (code === RET_K && !SAFE.has((program.readUInt32LE(at + 4) & ACTION_MASK) >>> 0)) return false;
  }
  return true;
}
