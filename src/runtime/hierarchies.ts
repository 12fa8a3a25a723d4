/**
 * The hierarchies a runtime container joins besides those its cgroup handle spans. ctrkit's
 * own containers join only the v1 controllers they use (and skip cpu without a CPU limit:
 * moving a process there costs an RCU grace period); a container of an OCI runtime is expected
 * in every hierarchy, as runc puts it: cpu and cpuset, named ones (name=systemd) and, on a
 * hybrid host, the v2 tree, under the same path.
 * @internal
 */
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { CgroupV1 } from '../cgroups/index.js';
import { detectCgroupLayoutSync } from '../cgroups/detect.js';

/** The container's directories outside `cgroup`'s: v1 ones (joined through `tasks`) and the v2 one of a hybrid host. */
export interface ExtraDirs {
  readonly v1: readonly string[];
  readonly v2: string | undefined;
}

/** Where `path` lies in the hierarchies `cgroup` does not span. */
export function extraDirs(cgroup: CgroupV1, path: string): ExtraDirs {
  const own = new Set(cgroup.directories());
  const v1: string[] = [];
  let v2: string | undefined;
  for (const m of detectCgroupLayoutSync().mounts) {
    const dir = join(m.path, path);
    if (own.has(dir)) continue;
    if (m.version === 1) v1.push(dir);
    else v2 = dir;
  }
  return { v1, v2 };
}

/** Makes the directories, level by level (a new cpuset level gets its parent's cpus and mems, or no task may join it). */
export function makeExtraDirs(extra: ExtraDirs): void {
  for (const dir of [...extra.v1, ...(extra.v2 ? [extra.v2] : [])]) {
    const made = mkdirSync(dir, { recursive: true });
    if (!made || !dir.includes('/cpuset')) continue;
    const levels: string[] = [];
    for (let d = dir; d.length >= made.length; d = join(d, '..')) levels.unshift(d);
    for (const level of levels) {
      for (const file of ['cpuset.cpus', 'cpuset.mems']) {
        if (readFileSync(join(level, file), 'utf8').trim() === '') writeFileSync(join(level, file), readFileSync(join(level, '..', file), 'utf8').trim());
      }
    }
  }
}

/** The `tasks` files a thread joins the v1 directories through. */
export function extraTasks(extra: ExtraDirs): string[] {
  return extra.v1.map((d) => join(d, 'tasks'));
}

/** Moves process `pid` into the v2 directory (a thread cannot join a v2 cgroup alone). */
export function joinExtraV2(extra: ExtraDirs, pid: number): void {
  if (extra.v2) writeFileSync(join(extra.v2, 'cgroup.procs'), String(pid));
}

/**
 * The parents of a container's cgroup that ctrkit-runtime made below its own `ctk-runtime`
 * (a relative cgroupsPath's levels, and `ctk-runtime` itself), removed from every hierarchy
 * once empty: they go with their last container.
 */
export function removeDefaultParent(path: string): void {
  if (!path.startsWith('/ctk-runtime/')) return;
  for (const m of detectCgroupLayoutSync().mounts) {
    for (let dir = dirname(path); dir !== '/'; dir = dirname(dir)) {
      try {
        rmdirSync(join(m.path, dir));
      } catch {
        break; // other containers still in it, or never made there
      }
    }
  }
}

/**
 * Removes the container's directory from every hierarchy with one rmdir each, when all are
 * empty (no process, no child cgroup). False when any is busy: the caller kills and retries.
 */
export function removeEmptyCgroup(path: string): boolean {
  let done = true;
  for (const m of detectCgroupLayoutSync().mounts) {
    try {
      rmdirSync(join(m.path, path));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') done = false;
    }
  }
  return done;
}

/** Removes the directories (once their processes ended); missing ones are no error. */
export function removeExtraDirs(extra: ExtraDirs): void {
  for (const dir of [...extra.v1, ...(extra.v2 ? [extra.v2] : [])]) {
    try {
      rmdirSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
}
