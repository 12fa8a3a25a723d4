/**
 * The btrfs storage driver (Docker's "btrfs"): the lowers are copied once into a read-only
 * base subvolume, and each container's root is a writable snapshot of it. A snapshot costs
 * no copy and no space until the container writes: the filesystem shares every unchanged
 * extent, which is the sharing overlayfs gets from its lower dirs, at the block level.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, realpath, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { logger } from '../log.js';
import { InvalidOptionError } from '../errors.js';
import { createSubvolume, destroySubvolume, isOnBtrfs, isSubvolume, snapshotSubvolume } from '../sys/btrfs.js';
import { BtrfsError } from './btrfs-error.js';
import type { Change } from './changes.js';
import { commit, type CommittedLayer } from './commit.js';
import { copyMerged } from './copy-tree.js';
import { diff } from './diff.js';
import { LayerError, OverlayError } from './errors.js';
import type { LayerCommitOptions, LayerDiffOptions, WritableLayer } from './layer.js';
import { LowerStack } from './lower-stack.js';
import { removeTree } from './remove-tree.js';
import { checkAbort, lstatOrNull } from './tree.js';

const log = logger('ctrkit:overlay');

/** Options of {@link BtrfsLayer.create}. */
export interface BtrfsLayerOptions {
  /** The layers the root is made of, topmost first (overlay form: whiteouts and opaque dirs are honoured). */
  readonly lower: readonly string[];
  /** Where the container's snapshot goes: a missing path on btrfs (its parent must exist). */
  readonly target: string;
  /**
   * The directory of base subvolumes, one per distinct `lower` stack, kept and reused by
   * later containers. It must be on the same btrfs filesystem as `target`.
   * @defaultValue `ctk-btrfs-bases` beside `target`'s parent directory
   */
  readonly basesDir?: string;
  /** Leave the snapshot in place when the handle is disposed. @defaultValue false */
  readonly keep?: boolean;
  /** Which xattr namespace marks opaque dirs in the lowers. @defaultValue either */
  readonly userxattr?: boolean;
  /** Cancels the creation; a half-made base is removed. */
  readonly signal?: AbortSignal;
}

function subvolumeError(what: string, path: string, e: unknown): BtrfsError {
  return new BtrfsError('ERR_BTRFS_SUBVOLUME', `${what} ${path}: ${(e as Error).message}`, path, { cause: e });
}

/** The base's name: the lowers' real paths and identities (a replaced rootfs gets a new base). */
async function baseName(lower: readonly string[]): Promise<string> {
  const h = createHash('sha256');
  for (const l of lower) {
    const st = await stat(l);
    h.update(`${await realpath(l)}\0${st.dev}\0${st.ino}\0${st.ctimeMs}\n`);
  }
  return `base-${h.digest('hex').slice(0, 24)}`;
}

/** Deletes a subvolume: one ioctl, or, where that is not allowed, emptying it and rmdir (kernel ≥ 4.18). */
async function removeSubvolume(path: string): Promise<void> {
  try {
    destroySubvolume(path);
  } catch (e) {
    log('BTRFS_IOC_SNAP_DESTROY %s: %s; removing it file by file', path, (e as Error).message);
    await removeTree(path);
  }
}

/**
 * The read-only base subvolume for `lower` in `basesDir`, made on first use: the merged
 * lowers copied into a fresh subvolume, then frozen as a read-only snapshot under its final
 * name. Concurrent creators race harmlessly: the snapshot to the final name succeeds once,
 * the loser finds it there.
 */
async function ensureBase(lower: readonly string[], basesDir: string, userxattr: boolean | undefined, signal: AbortSignal | undefined): Promise<string> {
  await mkdir(basesDir, { recursive: true, mode: 0o700 });
  const base = join(basesDir, await baseName(lower));
  if (isSubvolume(base)) return base;
  const scratch = `${base}.tmp-${process.pid}-${Date.now()}`;
  try {
    createSubvolume(scratch);
  } catch (e) {
    throw subvolumeError('creating subvolume', scratch, e);
  }
  try {
    const started = performance.now();
    await copyMerged(new LowerStack(lower, userxattr), scratch, signal);
    try {
      snapshotSubvolume(scratch, base, true);
      log('btrfs base %s made from %d lower(s) in %d ms', base, lower.length, Math.round(performance.now() - started));
    } catch (e) {
      if (!isSubvolume(base)) throw subvolumeError('snapshotting into', base, e); // not just a lost race
    }
    return base;
  } finally {
    await removeSubvolume(scratch);
  }
}

/**
 * A writable container root on btrfs: a snapshot of a read-only base subvolume holding the
 * lowers. Like the copy driver's copy, `target` is both root and writable layer, so
 * {@link BtrfsLayer.diff} and {@link BtrfsLayer.commit} compare it with the lowers; unlike
 * it, making one takes one ioctl and no space.
 *
 * @example
 * ```ts
 * await using root = await BtrfsLayer.create({ lower: ['/srv/rootfs'], target: '/mnt/btrfs/c1' });
 * // ... run a container in root.target ...
 * ```
 */
export class BtrfsLayer implements WritableLayer {
  /** Always `'btrfs'`. */
  readonly driver = 'btrfs' as const;
  private removed = false;

  private constructor(
    /** The snapshot: the container's root and its writable layer. */
    readonly target: string,
    /** The read-only base subvolume it is a snapshot of. */
    readonly base: string,
    /** The lowers the base was made from, topmost first. */
    readonly lower: readonly string[],
    private readonly keep: boolean,
    private readonly userxattr: boolean | undefined,
  ) {}

  /** The writable layer: the snapshot itself. */
  get upper(): string {
    return this.target;
  }

  /** Makes (or reuses) the base for `lower` and snapshots it to `target`. */
  static async create(options: BtrfsLayerOptions): Promise<BtrfsLayer> {
    checkAbort(options.signal);
    if (!Array.isArray(options.lower) || options.lower.length === 0) throw new InvalidOptionError('lower', 'expected at least one lower directory');
    for (const l of options.lower) {
      if (!(await lstatOrNull(l))?.isDirectory())
        throw new OverlayError('ERR_OVERLAY_LOWER_MISSING', `lower ${l} does not exist or is not a directory`, { path: l });
    }
    const parent = dirname(options.target);
    if (!isOnBtrfs(parent))
      throw new BtrfsError(
        'ERR_BTRFS_NOT_BTRFS',
        `${parent} is not on a btrfs filesystem: the btrfs driver needs one (use the overlay or copy driver)`,
        parent,
      );
    if (await lstatOrNull(options.target)) {
      throw new LayerError('ERR_LAYER_TARGET_NOT_EMPTY', `snapshot target ${options.target} must not exist yet`, options.target);
    }
    const basesDir = options.basesDir ?? join(dirname(parent), 'ctk-btrfs-bases');
    const base = await ensureBase(options.lower, basesDir, options.userxattr, options.signal);
    checkAbort(options.signal);
    try {
      snapshotSubvolume(base, options.target);
    } catch (e) {
      throw subvolumeError('snapshotting into', options.target, e);
    }
    log('btrfs snapshot %s of %s', options.target, base);
    return new BtrfsLayer(options.target, base, options.lower, options.keep ?? false, options.userxattr);
  }

  /** What the container changed, compared with the lowers. */
  diff(options: LayerDiffOptions = {}): Promise<Change[]> {
    return diff({ upper: this.target, lower: this.lower, driver: 'btrfs', userxattr: this.userxattr, signal: options.signal });
  }

  /** Writes the changes as an OCI layer. */
  commit(options: LayerCommitOptions): Promise<CommittedLayer> {
    return commit({ ...options, upper: this.target, lower: this.lower, driver: 'btrfs', userxattr: this.userxattr });
  }

  /** Deletes the snapshot (the base stays for the next container). */
  async remove(): Promise<void> {
    if (this.removed) return;
    if (await lstatOrNull(this.target)) await removeSubvolume(this.target);
    this.removed = true;
  }

  /** Removes the snapshot, unless it was created with `keep`. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.keep) await this.remove();
  }
}

/**
 * Removes the base subvolumes in `basesDir` (the cache the btrfs driver keeps), e.g. before
 * unmounting a filesystem. Containers running on snapshots of them are not affected: a
 * snapshot does not depend on its source. Returns the removed paths.
 */
export async function removeBtrfsBases(basesDir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const e of await readdir(basesDir).catch(() => [] as string[])) {
    const p = join(basesDir, e);
    if (isSubvolume(p)) {
      await removeSubvolume(p);
      removed.push(p);
    }
  }
  return removed;
}
