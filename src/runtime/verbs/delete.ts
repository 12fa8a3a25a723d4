/**
 * `delete [--force] ID`: removes a stopped or created container (with --force a running or
 * paused one too, killed first): its processes, cgroup and state; then the poststop hooks.
 * With --force, an id that does not exist is no error (containerd's shim deletes twice).
 * @internal
 */
import { rmSync } from 'node:fs';
import { bool, containerId, type CommandLine } from '../args.js';
import type { Context } from '../context.js';
import { RuntimeError } from '../errors.js';
import { removeDefaultParent, removeEmptyCgroup } from '../hierarchies.js';
import { containerDir, ociState, readRecord, statusOf, type ContainerRecord } from '../state.js';

/** The container's cgroup in every hierarchy, its processes killed first when it has any. */
async function removeCgroup(rec: ContainerRecord): Promise<void> {
  // The common case, a container that ended: one rmdir per hierarchy, and nothing else loaded.
  if (removeEmptyCgroup(rec.cgroupPath)) return;
  const [{ Cgroup }, { extraDirs, removeExtraDirs }] = await Promise.all([import('../../cgroups/index.js'), import('../hierarchies.js')]);
  const cgroup = Cgroup.forHost(rec.cgroupPath);
  if (!(await cgroup.exists())) return;
  await cgroup.open();
  const extra = cgroup.version === 1 ? extraDirs(cgroup, rec.cgroupPath) : undefined;
  // A created or forced container's processes: killed (thawed first, or the kill waits), then the directories go.
  await cgroup.remove({ kill: true, force: true });
  if (extra) removeExtraDirs(extra);
}

export default async function del(cl: CommandLine, ctx: Context): Promise<number> {
  const id = containerId(cl);
  const force = bool(cl.flags, 'force');
  let rec: ContainerRecord;
  try {
    rec = readRecord(ctx.root, id);
  } catch (e) {
    if (force && (e as RuntimeError).code === 'ERR_RUNTIME_NOT_FOUND') return 0;
    throw e;
  }
  const status = statusOf(ctx.root, rec);
  if ((status === 'running' || status === 'paused' || status === 'creating') && !force) {
    throw new RuntimeError('ERR_RUNTIME_STATE', `cannot delete container ${id} that is not stopped: ${status}`);
  }
  await removeCgroup(rec);
  removeDefaultParent(rec.cgroupPath);
  rmSync(containerDir(ctx.root, id), { recursive: true, force: true });
  if (rec.hooks?.poststop?.length) {
    const { runHooks } = await import('../hooks.js');
    try {
      await runHooks('poststop', rec.hooks.poststop, ociState(rec, 'stopped'));
    } catch (e) {
      ctx.log.warn((e as Error).message);
    }
  }
  return 0;
}
