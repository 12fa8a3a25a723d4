/**
 * eventfd(2) and readiness polling on it, for cgroup v1 OOM notifications
 * (cgroup.event_control), which have no other interface.
 * @internal
 */
import { readSync } from 'node:fs';
import { koffi } from './koffi.js';
import { SysError } from './sys-error.js';

const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;

let eventfdFn: ((initval: number, flags: number) => number) | undefined;

/** A non-blocking, close-on-exec eventfd. */
export function eventfd(): number {
  const k = koffi();
  eventfdFn ??= k.load('libc.so.6').func('int eventfd(unsigned int initval, int flags)') as (i: number, f: number) => number;
  const fd = eventfdFn(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) throw new SysError('eventfd', k.errno());
  return fd;
}

/** A registration for readability of an fd in Node's event loop (libuv's uv_poll). */
export interface FdWatch {
  close(): void;
}

/**
 * Calls `onReadable` with the eventfd's counter each time it becomes readable, from Node's
 * event loop (no thread is blocked on it).
 */
export function watchEventfd(fd: number, onReadable: (count: bigint) => void): FdWatch {
  const buf = Buffer.alloc(8);
  const handle = koffi().node.poll(fd, { readable: true }, () => {
    try {
      if (readSync(fd, buf, 0, 8, null) === 8) onReadable(buf.readBigUInt64LE(0));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
    }
  });
  return { close: () => handle.close() };
}
