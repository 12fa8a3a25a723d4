import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortError } from '../errors.js';
import { tryLockExclusive, unlock } from '../sys/flock.js';
import { NetworkError } from './errors.js';

/** Where ctrkit keeps network state (IPAM leases, locks) unless told otherwise. */
export const DEFAULT_NETWORK_STATE_DIR = '/run/ctrkit/network';

/** The network state directory in use: `$CTRKIT_STATE_ROOT/network` when that is set, else {@link DEFAULT_NETWORK_STATE_DIR}. @internal */
export function networkStateDir(): string {
  const root = process.env.CTRKIT_STATE_ROOT;
  return root ? `${root}/network` : DEFAULT_NETWORK_STATE_DIR;
}

/**
 * Runs `fn` holding an exclusive flock on `lockPath`, shared with every other process that
 * uses the same file. The kernel drops the lock when its holder dies, so a crash never
 * wedges the others. `fn` is synchronous: the critical section never yields the event loop,
 * which also serializes callers inside this process.
 * @internal
 */
export async function withFileLock<T>(lockPath: string, fn: () => T, signal?: AbortSignal, timeoutMs = 30_000): Promise<T> {
  mkdirSync(dirname(lockPath), { recursive: true, mode: 0o700 });
  const deadline = Date.now() + timeoutMs;
  for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
    if (signal?.aborted) throw new AbortError(signal.reason);
    const fd = openSync(lockPath, 'a', 0o600);
    try {
      if (tryLockExclusive(fd, lockPath)) {
        try {
          // Awaited inside: an async fn keeps the lock until it settles (the fd holds the flock).
          return await fn();
        } finally {
          unlock(fd);
        }
      }
    } finally {
      closeSync(fd);
    }
    if (Date.now() > deadline) throw new NetworkError('ERR_NETWORK_STATE', `timed out after ${timeoutMs} ms waiting for the lock ${lockPath}`);
    await sleep(wait);
  }
}
