/**
 * Park cgroups: where a process's start-path spawner thread waits between containers
 * (`ctkpark-<pid>` beside the containers' cgroups in each v1 hierarchy; see
 * ../namespaces/fast/threads.ts). The process removes its own once its threads stop; these
 * are the removals for a process that could not: by its owner helper, and by prune.
 * @internal
 */
import { readdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { detectCgroupLayout } from '../cgroups/index.js';

const PARK = /^ctkpark-(\d+)$/;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the parks of `pid`, or with `'dead'` those of every process that is gone. A park
 * is empty once its process's threads have ended; a few retries cover a process that is
 * still exiting. Returns the directories removed.
 */
export async function removeParks(which: number | 'dead', retries = 20): Promise<string[]> {
  const layout = await detectCgroupLayout();
  const removed: string[] = [];
  for (const m of layout.mounts) {
    if (m.version !== 1) continue;
    for (const e of await readdir(m.path).catch(() => [] as string[])) {
      const pid = Number(PARK.exec(e)?.[1] ?? Number.NaN);
      if (Number.isNaN(pid) || (which === 'dead' ? alive(pid) : pid !== which)) continue;
      const dir = join(m.path, e);
      for (let i = 0; ; i++) {
        try {
          await rmdir(dir);
          removed.push(dir);
          break;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOENT' || code !== 'EBUSY' || i >= retries) break;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }
  }
  return removed;
}
