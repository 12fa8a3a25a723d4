/**
 * `run --bundle DIR [--detach] ID`: create and start in one call; without --detach, waits for
 * the container's process and exits with its status (128+N for a signal), then deletes it
 * (unless --keep).
 * @internal
 */
import { bool, type CommandLine } from '../args.js';
import type { Context } from '../context.js';
import { RuntimeError } from '../errors.js';
import { createContainer } from './create.js';
import { startContainer } from './start.js';

export default async function run(cl: CommandLine, ctx: Context): Promise<number> {
  const { pid, record } = await createContainer(cl, ctx);
  const { pidfdOpen } = await import('../../sys/libc.js');
  const { watchPidfd } = await import('../../sys/spawn.js');
  // Ours until this process ends: it was spawned from one of our threads.
  const pidfd = pidfdOpen(pid);
  if (record.hooks?.startContainer?.length) {
    // Those run on a spawner thread, and this process's one waits in posix_spawn for the init:
    // another process starts it.
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(process.execPath, [process.argv[1]!, '--root', ctx.root, 'start', record.id], { stdio: 'inherit' });
    if (r.status !== 0) throw new RuntimeError('ERR_RUNTIME_HOOK', `start of ${record.id} failed (status ${r.status})`);
  } else await startContainer(ctx.root, record, ctx);
  if (bool(cl.flags, 'detach')) return 0;
  const exit = await new Promise<{ exitCode: number | null; signal: number | null }>((resolve) => watchPidfd(pidfd, resolve));
  if (!bool(cl.flags, 'keep')) {
    const { default: del } = await import('./delete.js');
    await del({ ...cl, command: 'delete', flags: new Map([['force', true]]) }, ctx);
  }
  return exit.exitCode ?? 128 + (exit.signal ?? 0);
}
