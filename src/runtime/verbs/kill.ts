/** `kill [--all] ID [SIGNAL]`: a signal to the init, or to every process of the container. @internal */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants } from 'node:os';
import { bool, containerId, type CommandLine } from '../args.js';
import type { Context } from '../context.js';
import { RuntimeError } from '../errors.js';
import { readRecord, statusOf } from '../state.js';

/** A signal as a number, from `9`, `KILL`, `SIGKILL` or `sigkill`. */
export function parseSignal(text: string): number {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n > 0 && n < 65) return n;
  } else {
    const name = text.toUpperCase().startsWith('SIG') ? text.toUpperCase() : `SIG${text.toUpperCase()}`;
    const n = (constants.signals as Record<string, number>)[name];
    if (n !== undefined) return n;
  }
  throw new RuntimeError('ERR_RUNTIME_USAGE', `invalid signal "${text}"`);
}

/** The PIDs in the container's cgroup (its first hierarchy that has the file). */
export function cgroupPids(cgroupPath: string): number[] {
  for (const h of ['freezer', 'pids', 'memory', 'unified', '']) {
    try {
      const text = readFileSync(join('/sys/fs/cgroup', h, cgroupPath, 'cgroup.procs'), 'utf8');
      return text.split('\n').filter(Boolean).map(Number);
    } catch {
      // not in this hierarchy
    }
  }
  return [];
}

export default function kill(cl: CommandLine, ctx: Context): number {
  const id = containerId(cl);
  const rec = readRecord(ctx.root, id);
  const sig = parseSignal(cl.args[1] ?? 'SIGTERM');
  const status = statusOf(ctx.root, rec);
  // (A PID of 0 would signal this command's own process group.)
  if (status === 'stopped' || status === 'creating' || rec.pid <= 0) throw new RuntimeError('ERR_RUNTIME_STATE', 'container not running');
  const pids = bool(cl.flags, 'all') ? cgroupPids(rec.cgroupPath) : [rec.pid];
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
      if (pid === rec.pid) throw new RuntimeError('ERR_RUNTIME_STATE', 'container not running');
    }
  }
  return 0;
}
