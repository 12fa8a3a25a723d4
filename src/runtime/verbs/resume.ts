/** `resume ID`: thaws the container's cgroup. @internal */
import { containerId, type CommandLine } from '../args.js';
import type { Context } from '../context.js';
import { RuntimeError } from '../errors.js';
import { readRecord, statusOf } from '../state.js';

export default async function resume(cl: CommandLine, ctx: Context): Promise<number> {
  const rec = readRecord(ctx.root, containerId(cl));
  const status = statusOf(ctx.root, rec);
  if (status !== 'paused') throw new RuntimeError('ERR_RUNTIME_STATE', status === 'stopped' ? 'container not running' : 'container not paused');
  const { openCgroup } = await import('../cgroup.js');
  await (await openCgroup(rec.cgroupPath)).thaw();
  return 0;
}
