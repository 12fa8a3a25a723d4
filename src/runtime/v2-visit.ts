/**
 * On a cgroup v2 host a thread cannot join a cgroup alone (only a threaded subtree takes single
 * threads), so the spawner thread cannot put itself into the container's cgroup the way it
 * does with v1's `tasks` files. Instead this whole short-lived process visits the container's
 * cgroup while it spawns there: the spawned process inherits the cgroup, and the PID and cgroup
 * namespaces the spawner makes then are rooted at it; then this process goes back where it
 * came from. (runc's init too runs in the container's cgroup while it sets the container up.)
 * What this process allocates meanwhile is charged to the container.
 * @internal
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** This process's v2 cgroup (the `0::` line of /proc/self/cgroup). */
function ownCgroup(): string {
  const line = readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('0::'));
  return line ? line.slice(3) : '/';
}

/** A visit of the container's v2 cgroup at `dir` (its directory under /sys/fs/cgroup). */
export interface CgroupVisit {
  /** Back to where this process was (idempotent). */
  leave(): void;
}

/** Moves this process into `dir`; `leave()` moves it back. `mount`: where the v2 hierarchy is mounted. */
export function visitCgroup(dir: string, mount = '/sys/fs/cgroup'): CgroupVisit {
  const home = join(mount, ownCgroup(), 'cgroup.procs');
  writeFileSync(join(dir, 'cgroup.procs'), String(process.pid));
  let left = false;
  return {
    leave() {
      if (left) return;
      left = true;
      writeFileSync(home, String(process.pid));
    },
  };
}
