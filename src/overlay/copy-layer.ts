/**
 * The copy-based storage driver (Docker's "vfs"): the container's root is a full copy of
 * the merged lowers, and that copy is its writable layer. Works on any filesystem —
 * including on top of another overlay, where overlayfs refuses an upper — at the price of
 * one copy per container (reflinked where the filesystem can clone).
 */
import { mkdir, readdir } from 'node:fs/promises';
import { logger } from '../log.js';
import { InvalidOptionError } from '../errors.js';
import type { Change } from './changes.js';
import { commit, type CommittedLayer } from './commit.js';
import { copyMerged } from './copy-tree.js';
import { diff } from './diff.js';
import { LayerError, OverlayError } from './errors.js';
import { LowerStack } from './lower-stack.js';
import type { LayerCommitOptions, LayerDiffOptions, WritableLayer } from './layer.js';
import { removeTree } from './remove-tree.js';
import { checkAbort, lstatOrNull } from './tree.js';

const log = logger('ctrkit:overlay');

/** Options of {@link CopyLayer.create}. */
export interface CopyLayerOptions {
  /** The layers to copy, topmost first (overlay form: whiteouts and opaque dirs are honoured). */
  readonly lower: readonly string[];
  /** The directory to copy into: missing (it is created) or empty. */
  readonly target: string;
  /**
   * Leave the copy in place when the handle is disposed (to inspect or commit it later).
   * @defaultValue false: disposing removes the copy
   */
  readonly keep?: boolean;
  /** Which xattr namespace marks opaque dirs in the lowers. @defaultValue either */
  readonly userxattr?: boolean;
  /** Cancels the copy; what was copied so far is removed. */
  readonly signal?: AbortSignal;
}

/**
 * A writable root made by copying its lowers. `target` is both the container's root and
 * its writable layer, so {@link CopyLayer.diff} and {@link CopyLayer.commit} compare it
 * with the lowers.
 *
 * @example
 * ```ts
 * await using root = await CopyLayer.create({ lower: ['/srv/rootfs'], target: '/srv/c1/root' });
 * // ... run a container in root.target ...
 * const layer = await root.commit({ output: '/srv/c1/layer.tar.gz' });
 * ```
 */
export class CopyLayer implements WritableLayer {
  /** Always `'copy'`. */
  readonly driver = 'copy' as const;
  private removed = false;

  private constructor(
    /** The copy: the container's root and its writable layer. */
    readonly target: string,
    /** The lowers it was copied from, topmost first. */
    readonly lower: readonly string[],
    private readonly keep: boolean,
    private readonly userxattr: boolean | undefined,
  ) {}

  /** The writable layer: the copy itself. */
  get upper(): string {
    return this.target;
  }

  /** Copies the merged lowers into `target` and returns the handle. */
  static async create(options: CopyLayerOptions): Promise<CopyLayer> {
    checkAbort(options.signal);
    if (!Array.isArray(options.lower) || options.lower.length === 0) throw new InvalidOptionError('lower', 'expected at least one lower directory');
    for (const l of options.lower) {
      if (!(await lstatOrNull(l))?.isDirectory())
        throw new OverlayError('ERR_OVERLAY_LOWER_MISSING', `lower ${l} does not exist or is not a directory`, { path: l });
    }
    const existing = await lstatOrNull(options.target);
    if (existing && (!existing.isDirectory() || (await readdir(options.target)).length > 0)) {
      throw new LayerError('ERR_LAYER_TARGET_NOT_EMPTY', `copy target ${options.target} must be missing or an empty directory`, options.target);
    }
    if (!existing) await mkdir(options.target, { recursive: true });
    const started = performance.now();
    try {
      await copyMerged(new LowerStack(options.lower, options.userxattr), options.target, options.signal);
    } catch (e) {
      await removeTree(options.target);
      throw e;
    }
    log('copied %d lower(s) into %s in %d ms', options.lower.length, options.target, Math.round(performance.now() - started));
    return new CopyLayer(options.target, options.lower, options.keep ?? false, options.userxattr);
  }

  /** What the container changed, compared with the lowers. */
  diff(options: LayerDiffOptions = {}): Promise<Change[]> {
    return diff({ upper: this.target, lower: this.lower, driver: 'copy', userxattr: this.userxattr, signal: options.signal });
  }

  /** Writes the changes as an OCI layer. */
  commit(options: LayerCommitOptions): Promise<CommittedLayer> {
    return commit({ ...options, upper: this.target, lower: this.lower, driver: 'copy', userxattr: this.userxattr });
  }

  /** Deletes the copy. */
  async remove(): Promise<void> {
    if (this.removed) return;
    await removeTree(this.target);
    this.removed = true;
  }

  /** Removes the copy, unless it was created with `keep`. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.keep) await this.remove();
  }
}
