/**
 * `start ID`: lets a created container's init go on to exec its process (it waits opening
 * ROOT/ID/exec.fifo for reading; opening it for writing wakes it), then runs the poststart hooks.
 * @internal
 */
import { unlinkSync } from 'node:fs';
import { containerId, type CommandLine } from '../args.js';
import type { Context } from '../context.js';
import { RuntimeError } from '../errors.js';
import { execFifo, ociState, readRecord, statusOf, type ContainerRecord } from '../state.js';

/** Releases a created container; throws unless it is `created`. */
export async function startContainer(root: string, rec: ContainerRecord, ctx: Context): Promise<void> {
  const status = statusOf(root, rec);
  if (status !== 'created') {
    throw new RuntimeError(
      'ERR_RUNTIME_STATE',
      status === 'stopped' ? 'cannot start a container that has stopped' : `cannot start an already ${status} container`,
    );
  }
  const fifo = execFifo(root, rec.id);
  if (rec.hooks?.startContainer?.length) {
    // In the container, before its process: a failure stops it there (killed, never run).
    const { runContainerHooks } = await import('../container-hooks.js');
    try {
      await runContainerHooks(rec, rec.hooks.startContainer, ociState(rec, 'created'));
    } catch (e) {
      process.kill(rec.pid, 'SIGKILL');
      throw e;
    }
  }
  const { releaseHeld } = await import('../../namespaces/release.js');
  releaseHeld(fifo, rec.pid);
  unlinkSync(fifo);
  if (!rec.hooks?.poststart?.length) return;
  const { runHooks } = await import('../hooks.js');
  try {
    await runHooks('poststart', rec.hooks.poststart, ociState(rec, 'running'));
  } catch (e) {
    // The process runs already: a failed poststart hook is reported, not undone (runc's way).
    ctx.log.warn((e as Error).message);
  }
}

export default async function start(cl: CommandLine, ctx: Context): Promise<number> {
  await startContainer(ctx.root, readRecord(ctx.root, containerId(cl)), ctx);
  return 0;
}
