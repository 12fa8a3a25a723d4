/**
 * A thread's way back: the namespaces it started in, opened once, and re-entered after each
 * container. A thread that cannot get back must not serve another container: it exits.
 * @internal
 */
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUTS } from '../../sys/constants.js';
import { gettid } from '../../sys/spawn.js';
import { NAMESPACES } from '../types.js';

/** The namespace types a thread of the start path leaves and returns to. */
export type ThreadNamespace = 'mnt' | 'uts' | 'ipc' | 'net' | 'cgroup' | 'pid';

/** CLONE_NEW* of each type. */
export const NS_FLAG: Readonly<Record<ThreadNamespace, number>> = {
  mnt: CLONE_NEWNS,
  uts: CLONE_NEWUTS,
  ipc: CLONE_NEWIPC,
  net: CLONE_NEWNET,
  cgroup: CLONE_NEWCGROUP,
  // A thread's PID namespace for children: setns to its own resets it.
  pid: CLONE_NEWPID,
};

/** The /proc path of a namespace of a thread of this process. */
export function threadNsPath(tid: number, type: ThreadNamespace | 'pid_for_children'): string {
  return `/proc/${process.pid}/task/${tid}/ns/${type}`;
}

/** The namespaces the calling thread stands in now, held open (close-on-exec). */
export function openHome(types: readonly ThreadNamespace[]): Map<ThreadNamespace, number> {
  const tid = gettid();
  return new Map(types.map((t) => [t, openSync(threadNsPath(tid, t), 'r')]));
}

/** Opens `path`, passes the fd to `use`, closes it. */
export function withFd<T>(path: string, use: (fd: number) => T): T {
  const fd = openSync(path, 'r');
  try {
    return use(fd);
  } finally {
    closeSync(fd);
  }
}

/** The children of a thread of this process (/proc/PID/task/TID/children). */
export function threadChildren(tid: number): number[] {
  return readFileSync(`/proc/${process.pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
}

/**
 * The inode of each of `pid`'s namespaces, by type (a type the kernel lacks left out), through
 * /proc as the calling thread sees it: the builder's read of a process it lets go, the main
 * thread's of one still at the barrier.
 */
export function namespaceInodes(pid: number): Record<string, number> {
  const inodes: Record<string, number> = {};
  for (const { type } of NAMESPACES) {
    try {
      inodes[type] = statSync(`/proc/${pid}/ns/${type}`).ino;
    } catch {
      // a kernel without that type
    }
  }
  return inodes;
}
