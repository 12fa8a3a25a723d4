/**
 * The release of an init that a held start (./held.ts) left waiting at its barrier, from any
 * process: file system calls only, so an OCI runtime's `start` loads nothing more.
 * @internal
 */
import { closeSync, constants as fsConstants, openSync, readFileSync } from 'node:fs';

/**
 * Lets a held init go on to exec its command: opens `fifo` for writing, which succeeds only
 * while the init is opening it for reading (a non-blocking open fails with ENXIO before), and
 * wakes it. Retries until `timeoutMs`; throws once the process `pid` is gone or the time is up.
 */
export function releaseHeld(fifo: string, pid: number, timeoutMs = 10_000): void {
  const deadline = Date.now() + timeoutMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      closeSync(openSync(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK));
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENXIO') throw e;
    }
    if (!alive(pid)) throw new Error(`the container's init (pid ${pid}) is gone`);
    if (Date.now() > deadline) throw new Error(`the container's init (pid ${pid}) did not reach its barrier within ${timeoutMs} ms`);
    Atomics.wait(pause, 0, 0, 1);
  }
}

/** Whether `pid` runs (not a zombie). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX] /s.test(stat);
  } catch {
    return false;
  }
}
