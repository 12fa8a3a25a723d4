/**
 * Writable layers that an ended container left as it found them (an empty upper, nothing on its
 * root directory), kept for this process's next container in the same state directory: taking
 * one is a rename, where making one is six entries on a disk file system and deleting it a
 * dozen more, all journal updates. Only a container removed as soon as it ends
 * (`Container.run`) gives its layer back, so no record of an ended container ever names a layer
 * another container uses, and a layer gets a new name when it is taken. At most POOL_MAX per
 * state directory, for IDLE_MS; a kept layer is named `ctk-spare-PID-START-NAME`, swept like
 * trash (./layer-trash.ts) should this process die; at exit they are deleted at once.
 * @internal
 */
import { randomBytes } from 'node:crypto';
import { lstatSync, readdirSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { logger } from '../log.js';
import { llistxattr } from '../sys/libc.js';
import { mountFacts } from '../sys/mountapi.js';
import { selfIdentity } from '../sys/liveness.js';
import { discardDirectory } from './layer-trash.js';

const log = logger('ctrkit:container');
const POOL_MAX = 2;
/** Less than the start threads' idle time: the kept layers go to the trash while the builder still runs. */
const IDLE_MS = 1500;

interface Pool {
  /** Kept and checked: ready to be taken. */
  readonly layers: string[];
  /** Kept, their check still to come (see offerLayer). */
  readonly unchecked: Set<string>;
  timer?: NodeJS.Timeout;
}
const pools = new Map<string, Pool>();
let exitHook = false;

/** What a layer directory holds as prepareWritableRoot made it (container.json aside). */
const ENTRIES = ['etc', 'merged', 'owner.json', 'upper', 'work'];
const ETC_FILES = new Set(['hosts', 'hostname', 'resolv.conf']);
/** What overlayfs itself writes on an upper it mounts: the layer's identity, kept across mounts of it. */
const OVERLAY_OWN = new Set(['trusted.overlay.uuid', 'user.overlay.uuid']);

/** A kept layer of `stateDir`, under a new name, or undefined. */
export function takeLayer(stateDir: string): string | undefined {
  const pool = pools.get(stateDir);
  const spare = pool?.layers.pop();
  if (spare === undefined) return undefined;
  // 12 characters, where a fresh layer's name has 6 (mkdtemp): never one of those.
  const dir = join(stateDir, `ctk-${randomBytes(9).toString('base64url')}`);
  try {
    renameSync(spare, dir);
    return dir;
  } catch (e) {
    log('taking the kept layer %s: %s', spare, (e as Error).message);
    void discardDirectory(spare, stateDir).catch(() => undefined); // out of the pool: deleted, not left behind
    return undefined;
  }
}

/**
 * Takes the layer `dir` of an ended container out of the way with one rename, as the trash
 * does, to keep it for the next container when the pool has room: true when taken (the caller
 * discards it otherwise). Whether the container left it as it was made is checked a moment
 * later, once the caller has its result (a dozen system calls): a layer that fails the check
 * goes to the trash then.
 */
export function offerLayer(stateDir: string, dir: string): boolean {
  let pool = pools.get(stateDir);
  if ((pool ? pool.layers.length + pool.unchecked.size : 0) >= POOL_MAX) return false;
  // A merged view still mounted on the host (never a container's own): the caller refuses to delete it.
  try {
    if (mountFacts(join(dir, 'merged')).isMountRoot) return false;
  } catch {
    return false; // no merged: not as it was made
  }
  const self = selfIdentity();
  const kept = join(stateDir, `ctk-spare-${self.pid}-${self.start}-${basename(dir)}`);
  try {
    renameSync(dir, kept);
  } catch {
    return false;
  }
  if (!pool) {
    pool = { layers: [], unchecked: new Set() };
    pools.set(stateDir, pool);
  }
  const p = pool;
  p.unchecked.add(kept);
  setImmediate(() => {
    if (!p.unchecked.delete(kept)) return; // drained meanwhile
    if (untouched(kept)) {
      try {
        unlinkSync(join(kept, 'container.json')); // the next container records its own
      } catch {
        // none written
      }
      p.layers.push(kept);
    } else void discardDirectory(kept, stateDir).catch(() => undefined);
  });
  clearTimeout(p.timer);
  p.timer = setTimeout(() => drain(stateDir), IDLE_MS).unref();
  if (!exitHook) {
    exitHook = true;
    process.once('exit', deleteKeptNow);
  }
  return true;
}

/**
 * True when the layer is as prepareWritableRoot made it: nothing in `upper` (no file, no
 * whiteout), no attribute or ownership change on `upper` itself (the container's `/`), no
 * leftover in overlayfs's `work`, only the /etc files beside, and `merged` not mounted.
 */
function untouched(dir: string): boolean {
  try {
    const entries = readdirSync(dir).filter((e) => e !== 'container.json');
    if (entries.length !== ENTRIES.length || entries.sort().some((e, i) => e !== ENTRIES[i])) return false;
    const upper = join(dir, 'upper');
    if (readdirSync(upper).length > 0 || llistxattr(upper).some((x) => !OVERLAY_OWN.has(x))) return false;
    const [u, m] = [lstatSync(upper), lstatSync(join(dir, 'merged'))];
    if (u.mode !== m.mode || u.uid !== m.uid || u.gid !== m.gid || u.dev !== m.dev) return false;
    const work = readdirSync(join(dir, 'work'));
    if (work.some((e) => e !== 'work') || (work.length > 0 && readdirSync(join(dir, 'work', 'work')).length > 0)) return false;
    // The /etc files are bound in read-write: their content is written again, their mode must be the same.
    return readdirSync(join(dir, 'etc')).every((e) => {
      const st = lstatSync(join(dir, 'etc', e));
      return ETC_FILES.has(e) && st.isFile() && (st.mode & 0o7777) === 0o644 && st.uid === u.uid && st.gid === u.gid && st.nlink === 1;
    });
  } catch {
    return false; // unreadable (a rootless owner's work/work): not reused
  }
}

/** The layers of `stateDir` kept and not taken within IDLE_MS: to the trash. */
function drain(stateDir: string): void {
  const pool = pools.get(stateDir);
  pools.delete(stateDir);
  for (const dir of [...(pool?.layers ?? []), ...(pool?.unchecked ?? [])]) void discardDirectory(dir, stateDir).catch(() => undefined);
  pool?.unchecked.clear();
}

/** At exit: every kept layer goes now. */
function deleteKeptNow(): void {
  for (const pool of pools.values()) for (const dir of [...pool.layers, ...pool.unchecked]) rmSync(dir, { recursive: true, force: true });
  pools.clear();
}
