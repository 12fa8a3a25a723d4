import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Cgroup, detectCgroupLayout } from '../cgroups/index.js';
import { logger } from '../log.js';
import { isAlive, type ProcessIdentity } from '../sys/liveness.js';
import { defaultStateDir } from './writable-root.js';

const log = logger('ctrkit:prune');

/** What `Container.prune` removed. */
export interface PruneResult {
  /** Cgroup paths (below each hierarchy root) that were removed. */
  readonly cgroups: readonly string[];
  /** Writable-layer directories that were removed. */
  readonly layers: readonly string[];
}

/** Options of `Container.prune`. */
export interface PruneOptions {
  /** The state directory to sweep. @defaultValue {@link defaultStateDir} */
  readonly stateDir?: string;
}

async function readIdentity(file: string): Promise<ProcessIdentity | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as ProcessIdentity;
  } catch {
    return undefined;
  }
}

/**
 * Removes what containers of crashed callers left behind: cgroups named `ctk-PID-N` whose
 * creating process is gone and which hold no process, and writable layers in the state
 * directory whose creator and container are both gone. A container that still runs (its
 * parent died, it did not) is left alone.
 */
export async function prune(options: PruneOptions = {}): Promise<PruneResult> {
  const cgroups: string[] = [];
  const layout = await detectCgroupLayout();
  const names = new Set<string>();
  for (const m of layout.mounts) {
    if (m.version === 1 && m.controllers.every((c) => c.startsWith('name='))) continue;
    for (const e of await readdir(m.path).catch(() => [] as string[])) if (/^ctk-\d+-\d+$/.test(e)) names.add(e);
  }
  for (const name of names) {
    const owner = Number(name.split('-')[1]);
    if (await readFile(`/proc/${owner}/stat`).then(() => true, () => false)) continue; // its creator lives
    for (const cg of layout.mode === 'v2' ? [Cgroup.v2(name)] : [Cgroup.v1(name), ...(layout.unified ? [Cgroup.v2(name)] : [])]) {
      try {
        if (!(await cg.exists())) continue;
        await cg.open();
        await cg.remove({ force: true, kill: false });
        cgroups.push(name);
        log('pruned cgroup %s', name);
      } catch (e) {
        log('left cgroup %s: %s', name, (e as Error).message);
      }
    }
  }

  const layers: string[] = [];
  const stateDir = options.stateDir ?? defaultStateDir();
  const mounts = await readFile('/proc/self/mountinfo', 'utf8');
  for (const e of await readdir(stateDir).catch(() => [] as string[])) {
    if (!e.startsWith('ctk-')) continue;
    const dir = join(stateDir, e);
    const owner = await readIdentity(join(dir, 'owner.json'));
    const container = await readIdentity(join(dir, 'container.json'));
    if (!owner) continue; // not ours to judge (or still being set up)
    if (isAlive(owner) || (container && isAlive(container))) continue;
    if (mounts.includes(` ${dir}/`)) continue; // something is mounted inside: leave it
    await rm(dir, { recursive: true, force: true });
    layers.push(dir);
    log('pruned layer %s', dir);
  }
  return { cgroups: [...new Set(cgroups)], layers };
}
