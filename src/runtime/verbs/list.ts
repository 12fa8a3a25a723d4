/** `list`: the containers under --root, as a table, ids (-q) or JSON. @internal */
import { writeSync } from 'node:fs';
import { bool, str, type CommandLine } from '../args.js';
import type { Context } from '../context.js';
import { RuntimeError } from '../errors.js';
import { listIds, ociState, readRecord, statusOf, type OciState } from '../state.js';

export default function list(cl: CommandLine, ctx: Context): number {
  const states: OciState[] = [];
  for (const id of listIds(ctx.root)) {
    try {
      const rec = readRecord(ctx.root, id);
      states.push(ociState(rec, statusOf(ctx.root, rec)));
    } catch {
      // removed meanwhile
    }
  }
  const format = str(cl.flags, 'format') ?? 'table';
  let out: string;
  if (bool(cl.flags, 'quiet')) out = states.map((s) => `${s.id}\n`).join('');
  else if (format === 'json') out = `${states.length ? JSON.stringify(states) : 'null'}\n`;
  else if (format === 'table') {
    const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'], ...states.map((s) => [s.id, String(s.pid), s.status, s.bundle, s.created, 'root'])];
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    out = rows
      .map(
        (r) =>
          `${r
            .map((c, i) => c.padEnd(widths[i]! + 3))
            .join('')
            .trimEnd()}\n`,
      )
      .join('');
  } else throw new RuntimeError('ERR_RUNTIME_USAGE', `invalid format "${format}" (table or json)`);
  writeSync(1, out);
  return 0;
}
