/**
 * An exclusive flock on a file, shared by every process that uses the same path: the kernel
 * drops it when its holder dies, so a crash never wedges the others. The file may be removed
 * by a holder once it guards nothing any more ({@link removeLockFile}): a waiter that locked
 * the removed file notices and tries again on the path's new file.
 * @internal
 */
import { closeSync, fstatSync, mkdirSync, openSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortError } from '../errors.js';
import { tryLockExclusive, unlock } from './flock.js';

/** Whether the open `fd` is still the file at `path` (not removed, not replaced). */
function stillThere(fd: number, path: string): boolean {
  try {
    const st = statSync(path);
    const own = fstatSync(fd);
    return st.ino === own.ino && st.dev === own.dev;
  } catch {
    return false;
  }
}

/**
 * Runs `fn` holding the lock, awaiting it if it is async (the fd holds the flock until `fn`
 * settles). Polls while another process holds it, up to `timeoutMs`.
 */
export async function withFileLock<T>(
  lockPath: string,
  fn: () => T | Promise<T>,
  options: { readonly signal?: AbortSignal | undefined; readonly timeoutMs?: number; readonly timedOut: (ms: number) => Error },
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
    if (options.signal?.aborted) throw new AbortError(options.signal.reason);
    mkdirSync(dirname(lockPath), { recursive: true, mode: 0o700 });
    const fd = openSync(lockPath, 'a', 0o600);
    try {
      if (tryLockExclusive(fd, lockPath)) {
        try {
          // Locked a file its last holder removed: it guards nothing; the path's new one does.
          if (stillThere(fd, lockPath)) return await fn();
          continue;
        } finally {
          unlock(fd);
        }
      }
    } finally {
      closeSync(fd);
    }
    if (Date.now() > deadline) throw options.timedOut(timeoutMs);
    await sleep(wait);
  }
}

/**
 * Called while holding the lock, once the state it guards is gone: removes the lock file and
 * its directory if that is then empty, so nothing is left on the machine.
 */
export function removeLockFile(lockPath: string): void {
  try {
    unlinkSync(lockPath);
    rmdirSync(dirname(lockPath));
  } catch {
    // other files remain beside it, or someone removed it first
  }
}
