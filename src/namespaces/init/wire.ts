import { SysError } from '../../sys/sys-error.js';
import type { WireError } from '../protocol.js';

/** An error as plain data, to cross a process or thread boundary and become typed again. @internal */
export function toWire(e: unknown): WireError {
  if (e instanceof SysError) {
    return { name: e.name, message: e.message, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path };
  }
  const err = e as NodeJS.ErrnoException;
  return { name: err?.name ?? 'Error', message: err?.message ?? String(e), code: err?.code, syscall: err?.syscall, path: err?.path };
}
