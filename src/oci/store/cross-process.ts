/**
 * What keeps several processes sharing one image store from losing each other's work: a
 * flock around index.json updates and gc, and hold files naming the blobs a pull has
 * fetched but not yet named, so that another process's gc leaves them.
 * @internal
 */
import { closeSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { identify, isAlive, type ProcessIdentity } from '../../sys/liveness.js';
import { ImageStoreError } from '../errors.js';

/** Name prefix of hold files in the store's tmp directory. */
export const HOLD_PREFIX = 'hold-';
let holds = 0;

/** Runs `fn` holding an exclusive flock on `lockPath` (loaded lazily: flock needs the FFI layer). */
export async function withStoreLock<T>(lockPath: string, fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const { tryLockExclusive, unlock } = await import('../../sys/flock.js');
  const fd = openSync(lockPath, 'a', 0o644);
  try {
    const deadline = Date.now() + timeoutMs;
    for (let wait = 1; !tryLockExclusive(fd, lockPath); wait = Math.min(wait * 2, 50)) {
      if (Date.now() > deadline) throw new ImageStoreError('ERR_STORE_LOCKED', `another process held ${lockPath} for ${timeoutMs} ms`);
      await sleep(wait);
    }
    try {
      return await fn();
    } finally {
      unlock(fd);
    }
  } finally {
    closeSync(fd);
  }
}

/** Writes a hold file for `digests`; returns its path. */
export function writeHoldFile(tmpDir: string, digests: readonly string[]): string {
  const file = join(tmpDir, `${HOLD_PREFIX}${process.pid}-${++holds}.json`);
  writeFileSync(file, JSON.stringify({ owner: identify(process.pid), digests }));
  return file;
}

/** Removes a hold file (gone already is fine). */
export function removeHoldFile(file: string): void {
  rmSync(file, { force: true });
}

/** The digests held by live processes; hold files of dead ones are deleted on the way. */
export async function readLiveHolds(tmpDir: string): Promise<Set<string>> {
  const held = new Set<string>();
  for (const name of readdirSync(tmpDir)) {
    if (!name.startsWith(HOLD_PREFIX)) continue;
    const file = join(tmpDir, name);
    let hold: { owner?: ProcessIdentity; digests?: string[] };
    try {
      hold = JSON.parse(readFileSync(file, 'utf8')) as typeof hold;
    } catch {
      continue; // being written, or just removed
    }
    if (hold.owner && isAlive(hold.owner)) for (const d of hold.digests ?? []) held.add(d);
    else removeHoldFile(file);
  }
  return held;
}
