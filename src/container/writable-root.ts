import { mkdirSync, writeFileSync } from 'node:fs';
import { identify, selfIdentity } from '../sys/liveness.js';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { logger } from '../log.js';
// The overlay pieces by file: its index also pulls in diff and commit (tar, gzip), which a
// container start never needs.
import { chooseDriver, type DriverChoice } from '../overlay/driver.js';
import { LayerDirs } from '../overlay/layer-dirs.js';
import { discardLayer, sweepTrash } from './layer-trash.js';
import { offerLayer, takeLayer } from './layer-pool.js';
import type { StorageDriver } from '../overlay/index.js';
import type { IdmappedPath } from '../namespaces/index.js';

const log = logger('ctrkit:container');

/** Where a container's writable layer was kept (`keepLayer: true`). */
export interface ContainerLayer {
  /** `overlay`: `upper` holds only the container's changes; `copy`: `upper` is a full copy; `btrfs`: a snapshot. */
  readonly driver: StorageDriver;
  /** The container's writes, ready for `diff()` or `commit()` from `ctrkit/overlay`. */
  readonly upper: string;
  /** The read-only layers under it, topmost first (the rootfs, or an image's layers). */
  readonly lower: readonly string[];
  /** The directory holding it all; remove it when done. */
  readonly dir: string;
}

/** A container root that never writes to the rootfs it came from. @internal */
export interface WritableRoot {
  /** What to pass as the container's rootfs. */
  readonly rootfs: string;
  /** For the overlay driver: the layers the init stage mounts onto `rootfs`. */
  readonly overlay: { lower: string[]; upper: string; work: string } | undefined;
  /** Where the writes are. */
  readonly layer: ContainerLayer;
  /**
   * What a user namespace must see through idmapped mounts for the root to look as it does
   * on disk: the lowers (read-only) and the layer directory (upper and work, or the copy).
   */
  readonly idmapped: readonly IdmappedPath[];
  /**
   * Deletes it (unless kept). `background`: moved out of the way at once and deleted after
   * the returned promise resolved (see ./layer-trash.ts): an ended container's release.
   * `reusable`: the container's record goes with it, so an untouched layer may be kept for the
   * next container (./layer-pool.ts).
   */
  dispose(background?: boolean, reusable?: boolean): Promise<void>;
  /** Records the container's init, so that `prune` can tell a running container from a dead one. */
  recordContainer(pid: number): Promise<void>;
}

/** The default place for containers' writable layers: on disk, not in memory. */
export function defaultStateDir(): string {
  if (process.getuid?.() === 0) return '/var/lib/ctrkit/containers';
  const data = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(data, 'ctrkit', 'containers');
}

// The driver depends on the state directory's filesystem, which does not change: probe once.
const drivers = new Map<string, Promise<DriverChoice>>();

/**
 * Prepares a copy-on-write root over `lower` (topmost first): a btrfs snapshot when `stateDir` is on
 * btrfs, an overlay upper in `stateDir` when the filesystem can hold one (the init stage mounts it,
 * inside the container's mount namespace), else a full copy (the copy driver). `forced` skips the choice.
 * @internal
 */
export async function prepareWritableRoot(
  lower: readonly string[],
  stateDir: string,
  keep: boolean,
  signal?: AbortSignal,
  forced?: StorageDriver,
): Promise<WritableRoot> {
  mkdirSync(stateDir, { recursive: true, mode: 0o711 });
  sweepTrash(stateDir); // once per process: what a killed process left in the trash
  let choice = drivers.get(stateDir);
  if (!choice && !forced) {
    choice = chooseDriver({ dir: stateDir, signal });
    drivers.set(stateDir, choice);
    choice.then(
      (c) => log('writable layers in %s: %s driver (%s)', stateDir, c.driver, c.reason),
      () => drivers.delete(stateDir),
    );
  }
  const driver = forced ?? (await choice!).driver;
  // One an earlier container of this process left untouched, owner.json included; or a new one.
  const kept = driver === 'overlay' ? takeLayer(stateDir) : undefined;
  const dirs = kept ? LayerDirs.adopt(kept) : await LayerDirs.create({ parent: stateDir, prefix: 'ctk-', signal });
  const dispose = async (background = false, reusable = false) => {
    if (keep) return;
    if (background && reusable && driver === 'overlay' && offerLayer(stateDir, dirs.dir)) return;
    const deleted = discardLayer(dirs.dir, dirs.merged);
    if (!background) await deleted;
  };
  // Small files written synchronously, like the directories (../overlay/layer-dirs.ts).
  const recordContainer = async (pid: number) => writeFileSync(join(dirs.dir, 'container.json'), JSON.stringify(identify(pid)));
  try {
    // Who made it: `prune` removes it once this process and the container are both gone.
    if (!kept) writeFileSync(join(dirs.dir, 'owner.json'), JSON.stringify(selfIdentity()));
    // A user namespace whose root is another uid outside sees all of it through idmapped mounts
    // (nothing is chowned): the directory itself (upper and work; merged is reached through it).
    const own: IdmappedPath = { path: dirs.dir };
    if (driver === 'overlay') {
      return {
        rootfs: dirs.merged,
        overlay: { lower: [...lower], upper: dirs.upper, work: dirs.work },
        layer: { driver, upper: dirs.upper, lower, dir: dirs.dir },
        idmapped: [...[...new Set(lower)].map((path) => ({ path, readonly: true })), own],
        dispose,
        recordContainer,
      };
    }
    if (driver === 'btrfs') {
      // A snapshot of the lowers' base subvolume; the bases are kept in the state dir for the next container.
      const { BtrfsLayer } = await import('../overlay/btrfs-layer.js');
      const snap = await BtrfsLayer.create({ lower, target: join(dirs.dir, 'root'), basesDir: join(stateDir, 'ctk-btrfs-bases'), keep: true, signal });
      const disposeSnapshot = async () => {
        if (keep) return;
        await snap.remove(); // one ioctl, instead of rm -rf of the whole tree
        await dirs.remove();
      };
      return {
        rootfs: snap.target,
        overlay: undefined,
        layer: { driver, upper: snap.target, lower, dir: dirs.dir },
        idmapped: [own],
        dispose: disposeSnapshot,
        recordContainer,
      };
    }
    const { CopyLayer } = await import('../overlay/copy-layer.js'); // brings diff and commit along
    const copy = await CopyLayer.create({ lower, target: join(dirs.dir, 'root'), keep: true, signal });
    return {
      rootfs: copy.target,
      overlay: undefined,
      layer: { driver, upper: copy.target, lower, dir: dirs.dir },
      idmapped: [own],
      dispose,
      recordContainer,
    };
  } catch (e) {
    await dirs.remove().catch(() => undefined);
    throw e;
  }
}
