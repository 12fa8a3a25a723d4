/**
 * flock(2), for state files shared by several processes (IPAM leases, port mappings). The
 * kernel drops a flock when its holder dies, so a crashed process never leaves a stale lock.
 * @internal
 */
import { constants } from 'node:os';
import { koffi } from './koffi.js';
import { SysError } from './sys-error.js';

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
const { EWOULDBLOCK, EINTR } = constants.errno;

let flockFn: ((fd: number, op: number) => number) | undefined;

function fn(): (fd: number, op: number) => number {
  flockFn ??= koffi().load('libc.so.6').func('int flock(int fd, int op)') as (fd: number, op: number) => number;
  return flockFn;
}

/**
 * Tries to take an exclusive lock without blocking (the event loop must never wait on
 * another process). Returns false when someone else holds it.
 * @internal
 */
export function tryLockExclusive(fd: number, path?: string): boolean {
  for (;;) {
    if (Number(fn()(fd, LOCK_EX | LOCK_NB)) === 0) return true;
    const e = koffi().errno();
    if (e === EINTR) continue;
    if (e === EWOULDBLOCK) return false;
    throw new SysError('flock', e, path);
  }
}

/** Releases a lock taken with {@link tryLockExclusive}. @internal */
export function unlock(fd: number): void {
  fn()(fd, LOCK_UN);
}
