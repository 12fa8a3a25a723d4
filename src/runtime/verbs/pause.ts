/** `pause ID`: freezes the container's cgroup. @internal */
import { containerId, type CommandLine } from '../args.js';
import type { Context } from '../context.js';
import { RuntimeError } from '../errors.js';
import { readRecord, statusOf } from '../state.js';

export default async function pause(cl: CommandLine, ctx: Context): Promise<number> {
  const rec = readRecord(ctx.root, containerId(cl));
  const status = statusOf(ctx.root, rec);
  if (status !== 'running')
    throw new RuntimeError('ERR_RUNTIME_STATE', status === 'stopped' ? 'container not running' : `cannot pause a container that is ${status}`);
  const { openCgroup } = await import('../cgroup.js');
  await (await openCgroup(rec.cgroupPath)).freeze();
  return 0;
}
