import type { CgroupOptions } from './base.js';
import { detectCgroupLayoutSync } from './detect.js';
import { CgroupV1 } from './v1.js';
import { CgroupV2 } from './v2.js';

/** A cgroup of either version; both have the same surface. */
export type Cgroup = CgroupV1 | CgroupV2;

/**
 * Entry points to cgroups.
 *
 * @example
 * ```ts
 * import { Cgroup } from 'ctrkit/cgroups';
 * await using cg = await Cgroup.forHost('ctk/demo').memoryMax('512m').cpus(0.5).pidsMax(64).create();
 * await cg.addProcess(pid);
 * console.log(await cg.stats());
 * ```
 */
export const Cgroup = {
  /** A cgroup in the unified (v2) hierarchy, at `path` below its root. Nothing is created yet. */
  v2(path: string, options?: CgroupOptions): CgroupV2 {
    return new CgroupV2(path, options);
  },
  /** A cgroup in the legacy (v1) per-controller hierarchies, at `path` below each root. */
  v1(path: string, options?: CgroupOptions): CgroupV1 {
    return new CgroupV1(path, options);
  },
  /**
   * The right kind for this host: v2 where the unified hierarchy has the resource
   * controllers, v1 where they are bound to v1 (v1-only and hybrid hosts).
   */
  forHost(path: string): Cgroup {
    // Read once: the kind is chosen and the directories are found from the same mount table.
    const layout = detectCgroupLayoutSync();
    return layout.mode === 'v2' ? new CgroupV2(path, { layout }) : new CgroupV1(path, { layout });
  },
} as const;
