import { readdir, readFile, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Cgroup, detectCgroupLayout } from '../cgroups/index.js';
import { delegatedParent } from '../cgroups/delegation.js';
import { logger } from '../log.js';
import { isAlive, type ProcessIdentity } from '../sys/liveness.js';
import { defaultStateDir } from './writable-root.js';
import { isTrash, sweepTrash, trashSettled } from './layer-trash.js';
import { StateStore } from './state/store.js';
import { releaseRecord } from './state/release.js';
import { liveStatus } from './running.js';

const log = logger('ctrkit:prune');

/** What `Container.prune` removed. */
export interface PruneResult {
  /** Ids of containers that were ended (their owner was gone) or had exited, and were removed. */
  readonly containers: readonly string[];
  /** Cgroup paths (below each hierarchy root) that were removed. */
  readonly cgroups: readonly string[];
  /** Writable-layer directories that were removed. */
  readonly layers: readonly string[];
}

/** Options of `Container.prune`. */
export interface PruneOptions {
  /** The directory of writable layers to sweep. @defaultValue {@link defaultStateDir} */
  readonly stateDir?: string;
  /** The state root of container records. @defaultValue `/run/ctrkit` as root, `$XDG_RUNTIME_DIR/ctrkit` otherwise */
  readonly stateRoot?: string;
}

async function readIdentity(file: string): Promise<ProcessIdentity | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as ProcessIdentity;
  } catch {
    return undefined;
  }
}

/**
 * Ends and removes the containers whose owner is gone (an owner helper that was killed
 * itself cannot have released them), and removes the records of exited containers, like
 * `docker container prune`. A container whose owner lives is left alone.
 */
async function pruneRecords(root: string | undefined): Promise<{ containers: string[]; known: Set<string> }> {
  const store = new StateStore(root);
  sweepTrash(store.root, true); // records that a process had discarded and was deleting when it ended
  const containers: string[] = [];
  const known = new Set<string>();
  for (const r of await store.list()) {
    const status = liveStatus(r);
    if (status === 'running' && isAlive(r.owner)) {
      known.add(r.id);
      continue;
    }
    if (status === 'creating') {
      known.add(r.id); // its owner is still making it
      continue;
    }
    await releaseRecord(store, r, { removeRecord: true });
    containers.push(r.id);
    log('pruned container %s (%s)', r.id, status);
  }
  return { containers, known };
}

/**
 * Removes what containers of crashed callers left behind: containers whose owner is gone
 * (see above), cgroups of ctrkit's whose container has no record and which hold no process,
 * and writable layers in the state directory whose creator and container are both gone.
 */
export async function prune(options: PruneOptions = {}): Promise<PruneResult> {
  const { containers, known } = await pruneRecords(options.stateRoot);
  const cgroups: string[] = [];
  const layout = await detectCgroupLayout();
  const names = new Set<string>();
  for (const m of layout.mounts) {
    if (m.version === 1 && m.controllers.every((c) => c.startsWith('name='))) continue;
    for (const e of await readdir(m.path).catch(() => [] as string[])) if (/^ctk-(\d+-\d+|[0-9a-f]{64})$/.test(e)) names.add(e);
  }
  // A rootless caller's containers have their cgroups in the v2 subtree delegated to it.
  if (process.getuid?.() !== 0 && layout.mode === 'v2' && layout.unified) {
    const root = layout.unified.path;
    const base = (() => {
      try {
        return delegatedParent(root, undefined, { move: false });
      } catch {
        return undefined; // nothing delegated: nothing of ours there
      }
    })();
    if (base) for (const e of await readdir(join(root, base)).catch(() => [] as string[])) if (/^ctk-[0-9a-f]{64}$/.test(e)) names.add(`${base}/${e}`);
  }
  for (const name of names) {
    if (/^ctk-\d+-\d+$/.test(name)) {
      // Named by an earlier version after its creator's PID.
      const owner = Number(name.split('-')[1]);
      if (
        await readFile(`/proc/${owner}/stat`).then(
          () => true,
          () => false,
        )
      )
        continue; // its creator lives
    } else if (known.has(basename(name).slice(4))) continue; // a container that still runs
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

  // Parks of processes that ended without removing them (see ./parks.ts).
  if (layout.mode !== 'v2') for (const dir of await (await import('./parks.js')).removeParks('dead', 0)) cgroups.push(dir);
  // userns: 'auto' ranges whose owner and container are both gone (free anyway; the files go).
  if (process.getuid?.() === 0) await (await import('./userns.js')).pruneUsernsClaims().catch((e: unknown) => log('userns ranges: %s', (e as Error).message));
  const layers: string[] = [];
  const stateDir = options.stateDir ?? defaultStateDir();
  const mounts = await readFile('/proc/self/mountinfo', 'utf8');
  // Layers that a process had discarded and was deleting when it ended.
  for (const dir of sweepTrash(stateDir, true)) layers.push(dir);
  await trashSettled();
  for (const e of await readdir(stateDir).catch(() => [] as string[])) {
    if (!e.startsWith('ctk-') || isTrash(e)) continue;
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
  return { containers, cgroups: [...new Set(cgroups)], layers };
}
