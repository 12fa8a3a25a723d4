/** `state ID`: the OCI state object on stdout. @internal */
import { writeSync } from 'node:fs';
import { containerId, type CommandLine } from '../args.js';
import type { Context } from '../context.js';
import { ociState, readRecord, statusOf } from '../state.js';

export default function state(cl: CommandLine, ctx: Context): number {
  const rec = readRecord(ctx.root, containerId(cl));
  writeSync(1, `${JSON.stringify(ociState(rec, statusOf(ctx.root, rec)), null, 2)}\n`);
  return 0;
}
