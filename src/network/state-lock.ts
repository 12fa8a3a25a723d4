import { withFileLock as lockFile } from '../sys/file-lock.js';
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
export function withFileLock<T>(lockPath: string, fn: () => T, signal?: AbortSignal, timeoutMs = 30_000): Promise<T> {
  return lockFile(lockPath, fn, {
    signal,
    timeoutMs,
    timedOut: (ms) => new NetworkError('ERR_NETWORK_STATE', `timed out after ${ms} ms waiting for the lock ${lockPath}`),
  });
}
