import { readFileSync } from 'node:fs';

/** A process identity that survives PID reuse: the PID and its start time (in clock ticks since boot). */
export interface ProcessIdentity {
  readonly pid: number;
  readonly start: number;
}

/** The start time of a process from /proc/PID/stat (field 22), or undefined when it is gone. @internal */
export function startTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[19]);
  } catch {
    return undefined;
  }
}

/** The identity of a live process. @internal */
export function identify(pid: number): ProcessIdentity | undefined {
  const start = startTime(pid);
  return start === undefined ? undefined : { pid, start };
}

let self: ProcessIdentity | undefined;

/** This process's identity (read once: its PID and start time never change). @internal */
export function selfIdentity(): ProcessIdentity {
  self ??= identify(process.pid)!;
  return self;
}

/** True while that very process (not a later one with the same PID) exists. @internal */
export function isAlive(id: ProcessIdentity): boolean {
  return startTime(id.pid) === id.start;
}
