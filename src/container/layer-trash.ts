/**
 * Discarded writable layers and container records: renamed out of the way at once, deleted in the
 * background (by the thread start path's builder thread while it runs: see
 * ../namespaces/fast/deferred-delete.ts). A rename is one call; deleting even an untouched
 * layer is about a dozen (its directories, the /etc files, the ownership files), each a
 * journal update on a disk filesystem (about 1.2 ms together on this project's test
 * machine), and a layer the container wrote to may take much longer. A record is two (its
 * file and its directory), but on ext4 unlinking a file that replaced another by rename costs a
 * disk write (its blocks are allocated at that rename): 0.27 ms together, against 0.03 ms for
 * the rename into the trash (measured here). The trash is named after
 * the process that deletes it: a trash directory whose process is gone (killed mid-way) is
 * deleted by its owner helper, by the next process that prepares a layer in the same state
 * directory, and by `prune()`.
 * @internal
 */
import { readdirSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { logger } from '../log.js';
import { refuseWhileMounted } from '../overlay/layer-dirs.js';
import { removeTree } from '../overlay/remove-tree.js';
import { deleteOnBuilder } from '../namespaces/fast/deferred-delete.js';
import { isAlive, selfIdentity } from '../sys/liveness.js';

const log = logger('ctrkit:container');
/**
 * `ctk-trash-PID-START-NAME`: the deleting process's identity, then the layer's own name; and
 * `ctk-spare-PID-START-NAME`, a layer that process kept for its next container
 * (./layer-pool.ts), which is its to delete likewise.
 */
const TRASH = /^ctk-(?:trash|spare)-(\d+)-(\d+)-/;
const pending = new Set<Promise<void>>();
/** The trash directories being deleted, by path. */
const inFlight = new Set<string>();
let exitHook = false;

/** Directories to remove once empty, after the deletion of a trash directory that was in them. */
const thenIfEmpty = new Map<string, readonly string[]>();

/** At exit, whatever is still being deleted goes now, synchronously: the process leaves no trash behind. */
function deleteLeftNow(): void {
  for (const trash of inFlight) {
    try {
      rmSync(trash, { recursive: true, force: true });
    } catch {
      // the next process preparing a layer here, or prune, deletes it
    }
    removeIfEmpty(thenIfEmpty.get(trash));
  }
}

/** Removes each directory that is empty (another process may be filling one: ENOTEMPTY and ENOENT are fine). */
function removeIfEmpty(dirs: readonly string[] | undefined): void {
  for (const d of dirs ?? []) {
    try {
      rmdirSync(d);
    } catch {
      // not empty, or gone
    }
  }
}
const swept = new Set<string>();

/** This process's trash name in `dir` for the layer named `name`. */
function trashOf(dir: string, name: string): string {
  const self = selfIdentity();
  return join(dir, `ctk-trash-${self.pid}-${self.start}-${name}`);
}

/** Whether a state directory entry is a trash directory or a kept layer (not a layer `prune` should read). */
export function isTrash(name: string): boolean {
  return TRASH.test(name);
}

/**
 * Moves a layer directory into the trash and deletes it from there; the promise resolves once
 * it is gone (a caller in a hurry need not wait: the directory is out of the way). Refuses
 * while its merged view is still mounted on the host; the container's own mount namespace is
 * gone by now.
 */
export function discardLayer(dir: string, merged: string): Promise<void> {
  refuseWhileMounted(dir, merged);
  return discardDirectory(dir, dirname(dir));
}

/**
 * Moves `dir` into the trash in `into` (on the same file system) and deletes it from there,
 * then removes each of `thenIfEmpty` that is empty; the promise resolves once that is done.
 */
export function discardDirectory(dir: string, into: string, thenIfEmpty: readonly string[] = []): Promise<void> {
  const trash = trashOf(into, basename(dir));
  try {
    renameSync(dir, trash);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return Promise.resolve(); // removed already
    throw e;
  }
  return remove(trash, thenIfEmpty);
}

/**
 * Deletes a trash directory: on the thread start path's builder thread while it runs (nothing
 * of it on this thread's event loop), else here; the promise resolves once it is gone (or
 * failed: logged, left for prune).
 */
function remove(trash: string, thenRemoveIfEmpty: readonly string[] = []): Promise<void> {
  if (!exitHook) {
    exitHook = true;
    process.once('exit', deleteLeftNow);
  }
  inFlight.add(trash);
  if (thenRemoveIfEmpty.length) thenIfEmpty.set(trash, thenRemoveIfEmpty);
  const deleting = deleteOnBuilder(trash) ?? removeTree(trash).catch((e: unknown) => log('deleting %s: %s', trash, (e as Error).message));
  const done: Promise<void> = deleting.finally(() => {
    pending.delete(done);
    inFlight.delete(trash);
    thenIfEmpty.delete(trash);
    removeIfEmpty(thenRemoveIfEmpty);
  });
  pending.add(done);
  return done;
}

/**
 * Deletes (in the background) the trash in `stateDir` left by processes that are gone; once
 * per directory and process unless `again`. Returns the directories it took on.
 */
export function sweepTrash(stateDir: string, again = false): string[] {
  if (swept.has(stateDir) && !again) return [];
  swept.add(stateDir);
  const taken: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(stateDir);
  } catch {
    return taken;
  }
  for (const e of entries) {
    const m = TRASH.exec(e);
    if (!m || isAlive({ pid: Number(m[1]), start: Number(m[2]) })) continue;
    // Taken over under this process's name first: two sweepers never delete one tree twice.
    const mine = trashOf(stateDir, e.slice(m[0].length));
    try {
      renameSync(join(stateDir, e), mine);
    } catch {
      continue; // another sweeper took it
    }
    void remove(mine);
    taken.push(join(stateDir, e));
  }
  return taken;
}

/** Resolves once every deletion this process started has ended. */
export async function trashSettled(): Promise<void> {
  while (pending.size) await Promise.all([...pending]);
}
