/**
 * Which start path a spawn request takes. Kept apart from ./threads.ts so that a process
 * whose containers all take the stage path never loads the thread machinery.
 * @internal
 */
import type { SpawnRequest } from '../spawn-request.js';
import { failsOnlyWithErrno } from '../seccomp-actions.js';

/**
 * Why `req` must take the stage path, or undefined when the thread path can start it.
 * `CTRKIT_START_PATH=stage` forces the stage path for every container (the test suite runs
 * both ways with it).
 * @internal
 */
export function threadStartRefusal(req: SpawnRequest): string | undefined {
  const c = req.config;
  if (process.env.CTRKIT_START_PATH === 'stage') return 'CTRKIT_START_PATH=stage';
  if (req.join || c.mode !== 'create') return 'joins existing namespaces';
  if (process.getuid?.() !== 0) return 'not root';
  if (c.userns || c.namespaces.includes('user')) return 'a user namespace';
  if (c.namespaces.includes('time')) return 'a time namespace';
  if (!c.rootfs) return 'no rootfs';
  // The owner helper reclaims a start whose caller died at the barrier through its cgroup.
  if (!c.cgroupTasks?.length) return 'no v1 cgroup to join';
  if (!c.namespaces.includes('mnt') || !c.namespaces.includes('pid')) return 'needs new mount and PID namespaces';
  if (c.tty) return 'a terminal';
  if (c.joinNetOf !== undefined) return "another container's network";
  if (req.startPath === 'stage') return 'the stage path was asked for';
  if (c.seccomp && !failsOnlyWithErrno(Buffer.from(c.seccomp, 'base64'))) return 'a seccomp profile that kills, traps or traces';
  if (!['x64', 'arm64'].includes(process.arch)) return `architecture ${process.arch}`;
  return undefined;
}
