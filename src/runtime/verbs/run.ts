/**
 * `run --bundle DIR [--detach] ID`: create and start in one call; without --detach, waits for
 * the container's process and exits with its status (128+N for a signal), then deletes it
 * (unless --keep).
 * @internal
 */
import { bool, type CommandLine } from '../args.js';
import type { Context } from '../context.js';
import { createContainer } from './create.js';
import { startContainer } from './start.js';

export default async function run(cl: CommandLine, ctx: Context): Promise<number> {
  const { pid, record } = await createContainer(cl, ctx);
  const { pidfdOpen } = await import('../../sys/libc.js');
  const { watchPidfd } = await import('../../sys/spawn.js');
  // Ours until this process ends: it was spawned from one of our threads.
  const pidfd = pidfdOpen(pid);
  await startContainer(ctx.root, record, ctx);
  if (bool(cl.flags, 'detach')) return 0;
  const exit = await new Promise<{ exitCode: number | null; signal: number | null }>((resolve) => watchPidfd(pidfd, resolve));
  if (!bool(cl.flags, 'keep')) {
    const { default: del } = await import('./delete.js');
    await del({ ...cl, command: 'delete', flags: new Map([['force', true]]) }, ctx);
  }
  return exit.exitCode ?? 128 + (exit.signal ?? 0);
}
