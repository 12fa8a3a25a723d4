import { constants } from 'node:os';

let byNumber: Map<number, string> | undefined;

/**
 * The symbolic name of a Linux errno value (`1` → `EPERM`).
 * Built from Node's own table so it always matches the running platform.
 * @internal
 */
export function errnoName(errno: number): string {
  if (!byNumber) {
    byNumber = new Map();
    for (const [name, value] of Object.entries(constants.errno)) {
      // Several names share a number (EWOULDBLOCK = EAGAIN); keep the first, canonical one.
      if (!byNumber.has(value)) byNumber.set(value, name);
    }
  }
  return byNumber.get(errno) ?? `E${errno}`;
}

/** The errno number of a symbolic name (`EPERM` → `1`). @internal */
export function errnoNumber(name: string): number | undefined {
  return (constants.errno as Record<string, number>)[name];
}
