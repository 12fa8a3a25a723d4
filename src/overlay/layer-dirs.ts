/**
 * A throwaway place for one overlay's upper, work and merged directories — what a
 * container with a disposable writable layer needs. Created beside each other so that
 * work and upper are on one mount, as overlayfs requires.
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mountFacts } from '../sys/mountapi.js';
import { OverlayError } from './errors.js';
import { removeSmallTreeSync, removeTree } from './remove-tree.js';
import { checkAbort } from './tree.js';

/** Options of {@link LayerDirs.create}. */
export interface LayerDirsOptions {
  /**
   * The directory to create them in; its filesystem must be able to hold an overlay upper
   * (see {@link chooseDriver}). @defaultValue `os.tmpdir()`
   */
  readonly parent?: string;
  /** The name prefix of the new directory. @defaultValue `'ctk-overlay-'` */
  readonly prefix?: string;
  /** Cancels the creation. */
  readonly signal?: AbortSignal;
}

/**
 * `DIR/upper`, `DIR/work` and `DIR/merged` in a fresh `DIR`; dispose (or {@link LayerDirs.remove})
 * deletes them all. Removal refuses while `merged` is still a mount point, so a forgotten
 * unmount can never turn into deleting through the merged view.
 *
 * @example
 * ```ts
 * await using dirs = await LayerDirs.create();
 * await using m = await Overlay.mount({ lower: [rootfs], upper: dirs.upper, work: dirs.work, target: dirs.merged });
 * ```
 */
export class LayerDirs implements AsyncDisposable {
  private removed = false;

  private constructor(
    /** The directory holding the three. */
    readonly dir: string,
  ) {}

  /** The upper dir (initially empty). */
  get upper(): string {
    return join(this.dir, 'upper');
  }

  /** The work dir (initially empty). */
  get work(): string {
    return join(this.dir, 'work');
  }

  /** The mount target (initially empty). */
  get merged(): string {
    return join(this.dir, 'merged');
  }

  /** Creates `PARENT/PREFIXxxxxxx/{upper,work,merged}`. */
  static async create(options: LayerDirsOptions = {}): Promise<LayerDirs> {
    checkAbort(options.signal);
    // Four empty directories, on every container start: synchronous calls take microseconds,
    // less than one thread-pool round trip each.
    const dir = mkdtempSync(join(options.parent ?? tmpdir(), options.prefix ?? 'ctk-overlay-'));
    const dirs = new LayerDirs(dir);
    for (const d of [dirs.upper, dirs.work, dirs.merged]) mkdirSync(d, { mode: 0o755 });
    return dirs;
  }

  /** The three in `dir`, made by someone else just as {@link LayerDirs.create} makes them. @internal */
  static adopt(dir: string): LayerDirs {
    return new LayerDirs(dir);
  }

  /** Deletes the directory and everything in it. */
  async remove(): Promise<void> {
    if (this.removed) return;
    refuseWhileMounted(this.dir, this.merged);
    // A container that wrote little: gone at once, synchronously; else rm -rf.
    if (!removeSmallTreeSync(this.dir)) await removeTree(this.dir);
    this.removed = true;
  }

  /** Same as {@link LayerDirs.remove}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove();
  }
}

/**
 * Throws ERR_OVERLAY_BUSY while `merged` is a mount point on the host: a forgotten unmount must
 * never turn into deleting through the merged view (of `dir`, about to be removed). @internal
 */
export function refuseWhileMounted(dir: string, merged: string): void {
  let mounted = false;
  try {
    mounted = mountFacts(merged).isMountRoot;
  } catch {
    // merged is gone already: nothing can be mounted there
  }
  if (mounted) throw new OverlayError('ERR_OVERLAY_BUSY', `not removing ${dir}: ${merged} is still mounted (unmount the overlay first)`, { path: merged });
}
