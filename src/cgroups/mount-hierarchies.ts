/**
 * The host's cgroup hierarchies as a container's mount plan re-creates them under
 * /sys/fs/cgroup (the `cgroupfs` operation): for `Container` and for ctrkit-runtime.
 * @internal
 */
import type { CgroupHierarchy } from '../namespaces/mount-plan.js';
import { detectCgroupLayoutSync } from './detect.js';

/** The host's cgroup hierarchies as the stage re-creates them under /sys/fs/cgroup. */
export function cgroupHierarchies(): CgroupHierarchy[] {
  return detectCgroupLayoutSync()
    .mounts.filter((m) => m.path.startsWith('/sys/fs/cgroup'))
    .map((m) => ({
      dir: m.path.slice('/sys/fs/cgroup'.length).replace(/^\//, ''),
      fstype: m.version === 2 ? ('cgroup2' as const) : ('cgroup' as const),
      options: m.version === 2 ? '' : m.controllers.map((c) => (c.startsWith('name=') ? `none,${c}` : c)).join(','),
    }));
}
