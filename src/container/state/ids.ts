import { randomBytes } from 'node:crypto';
import { InvalidOptionError } from '../../errors.js';

/**
 * A new container id: 32 random bytes as 64 hex digits, like Docker's. Random rather than
 * derived from a PID and a counter, so ids of a run that crashed can never collide with
 * those of a later one (its records may still be on disk).
 * @internal
 */
export function newContainerId(): string {
  return randomBytes(32).toString('hex');
}

/** The 12-digit prefix that `ctrkit ps` shows, as Docker does. @internal */
export function shortId(id: string): string {
  return id.slice(0, 12);
}

// Docker's rule for names: a letter or digit first, then letters, digits, `_`, `.` or `-`.
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

/** Refuses a container name Docker would refuse; ids (64 hex digits) cannot be names either. @internal */
export function checkContainerName(name: string): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new InvalidOptionError('name', `"${String(name)}" is not a valid name: a letter or digit, then letters, digits, "_", "." or "-" (at most 128)`);
  }
  if (/^[0-9a-f]{64}$/.test(name)) throw new InvalidOptionError('name', 'a name may not look like a container id');
  return name;
}
