/** `ps [--format table|json] ID`: the container's processes (host PIDs). @internal */
import { readFileSync, writeSync } from 'node:fs';
import { containerId, str, type CommandLine } from '../args.js';
import type { Context } from '../context.js';
import { RuntimeError } from '../errors.js';
import { readRecord, statusOf } from '../state.js';
import { cgroupPids } from './kill.js';

export default function ps(cl: CommandLine, ctx: Context): number {
  const rec = readRecord(ctx.root, containerId(cl));
  if (statusOf(ctx.root, rec) === 'stopped') throw new RuntimeError('ERR_RUNTIME_STATE', 'container not running');
  const pids = cgroupPids(rec.cgroupPath);
  const format = str(cl.flags, 'format') ?? 'table';
  if (format === 'json') writeSync(1, `${JSON.stringify(pids)}\n`);
  else if (format === 'table') {
    const rows = pids.map((pid) => {
      let cmd = '';
      try {
        cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
      } catch {
        // ended meanwhile
      }
      return `${String(pid).padStart(7)}  ${cmd}\n`;
    });
    writeSync(1, `    PID  CMD\n${rows.join('')}`);
  } else throw new RuntimeError('ERR_RUNTIME_USAGE', `invalid format "${format}" (table or json)`);
  return 0;
}
