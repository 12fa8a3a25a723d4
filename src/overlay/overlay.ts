/**
 * The public, async face of overlay mounts: `Overlay.mount(...)` and its handle.
 */
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { logger } from '../log.js';
import { InvalidOptionError } from '../errors.js';
import { mountFacts } from '../sys/mountapi.js';
import type { Change } from './changes.js';
import { commit, type CommittedLayer } from './commit.js';
import { diff } from './diff.js';
import { OverlayError } from './errors.js';
import type { LayerCommitOptions, LayerDiffOptions, WritableLayer } from './layer.js';
import { mountChecked, unmountOverlaySync, type MountedOverlay, type UnmountOptions } from './mount-sync.js';
import { checkLowers, preflight } from './preflight.js';
import { upperProbeFailure } from './probe.js';
import { resolveSpec, type OverlayMountApi, type OverlaySpec } from './spec.js';
import { checkAbort } from './tree.js';
import { inUserNamespace } from './userns.js';

const log = logger('ctrkit:overlay');

/** Options of {@link Overlay.mount}: the {@link OverlaySpec} plus conveniences. */
export interface OverlayMountOptions extends OverlaySpec {
  /** Create `upper`, `work` and `target` when missing (never a lower). @defaultValue true */
  readonly createDirs?: boolean;
  /**
   * First check that the upper's filesystem can hold whiteouts and the opaque xattr
   * (overlayfs would mount anyway and fail at the first deletion): a whiteout and an xattr
   * made and removed in the work dir. @defaultValue true
   */
  readonly probe?: boolean;
  /** Cancels before the mount is made. */
  readonly signal?: AbortSignal;
}

async function stillMounted(mountId: number): Promise<boolean> {
  const table = await readFile('/proc/self/mountinfo', 'utf8');
  return table.split('\n').some((line) => line.startsWith(`${mountId} `));
}

/**
 * A mounted overlay. Unmount it with {@link OverlayMount.unmount} or by leaving an
 * `await using` scope; the upper dir stays, so it can be diffed or committed afterwards.
 */
export class OverlayMount implements WritableLayer {
  /** Always `'overlay'`. */
  readonly driver = 'overlay' as const;
  /** The merged directory. */
  readonly target: string;
  /** The lowers, topmost first. */
  readonly lower: readonly string[];
  /** The upper dir; undefined for a read-only overlay. */
  readonly upper: string | undefined;
  /** The work dir; undefined for a read-only overlay. */
  readonly work: string | undefined;
  /** Whether overlay's markers are `user.overlay.*`. */
  readonly userxattr: boolean;
  /** The kernel interface that mounted it. */
  readonly api: OverlayMountApi;
  /** The mount's id in /proc/self/mountinfo. */
  readonly mountId: number;
  private isMounted = true;

  /** @internal */
  constructor(m: MountedOverlay) {
    this.target = m.target;
    this.lower = m.lower;
    this.upper = m.upper;
    this.work = m.work;
    this.userxattr = m.userxattr;
    this.api = m.api;
    this.mountId = m.mountId;
  }

  /** True for an overlay without an upper: every write fails with EROFS. */
  get readonly(): boolean {
    return this.upper === undefined;
  }

  /** False once unmounted. */
  get mounted(): boolean {
    return this.isMounted;
  }

  /**
   * Unmounts. Refuses (ERR_OVERLAY_BUSY) while the mount is in use, unless `detach`, and
   * when another mount has been stacked on the target since (that one would be unmounted
   * instead). A second call does nothing.
   */
  async unmount(options: UnmountOptions = {}): Promise<void> {
    if (!this.isMounted) return;
    let current: bigint | undefined;
    try {
      current = mountFacts(this.target).mountId;
    } catch {
      current = undefined; // the target itself is gone
    }
    if (current !== BigInt(this.mountId)) {
      if (await stillMounted(this.mountId)) {
        throw new OverlayError('ERR_OVERLAY_BUSY', `cannot unmount the overlay on ${this.target}: another mount now covers it; unmount that one first`, {
          path: this.target,
        });
      }
      log('overlay %d on %s was already unmounted', this.mountId, this.target);
      this.isMounted = false;
      return;
    }
    unmountOverlaySync(this.target, options);
    this.isMounted = false;
  }

  /** The changes in the upper dir (none for a read-only overlay). */
  async diff(options: LayerDiffOptions = {}): Promise<Change[]> {
    if (this.upper === undefined) return [];
    return diff({ upper: this.upper, lower: this.lower, userxattr: this.userxattr, signal: options.signal });
  }

  /** Writes the upper's changes as an OCI layer (works mounted or not). */
  async commit(options: LayerCommitOptions): Promise<CommittedLayer> {
    if (this.upper === undefined) throw new InvalidOptionError('upper', `the overlay on ${this.target} is read-only: it has no upper to commit`);
    return commit({ ...options, upper: this.upper, lower: this.lower, userxattr: this.userxattr });
  }

  /**
   * Unmounts; if the mount is still in use, detaches it lazily (it vanishes from the tree
   * now and is freed when its last user lets go), so leaving a scope never leaves it mounted.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.unmount();
    } catch (e) {
      if (!(e instanceof OverlayError) || e.errnoName !== 'EBUSY') throw e;
      log('overlay on %s busy at dispose: detaching', this.target);
      await this.unmount({ detach: true });
    }
  }
}

/**
 * overlayfs mounts: the chapter's lowerdir/upperdir/workdir/merged.
 *
 * @example
 * ```ts
 * import { Overlay } from 'ctrkit/overlay';
 * await using m = await Overlay.mount({ lower: ['/srv/base'], upper: '/srv/c1/upper', work: '/srv/c1/work', target: '/srv/c1/merged' });
 * // writes to /srv/c1/merged land in /srv/c1/upper; /srv/base never changes
 * ```
 */
export class Overlay {
  private constructor() {}

  /**
   * Mounts an overlay and returns its handle. Without `upper`/`work` the overlay is read-only
   * (two or more lowers). Many lowers are fine: with fsconfig `lowerdir+` (Linux 6.8+) any
   * number up to overlayfs's 500, through mount(2) as many as fit one page.
   *
   * @throws {@link OverlayError} naming the cause (missing lower, unusable upper, work dir on
   * another mount, target already mounted ...), `InvalidOptionError` for a malformed spec,
   * `AbortError`. Nothing is left mounted on failure.
   */
  static async mount(options: OverlayMountOptions): Promise<OverlayMount> {
    checkAbort(options.signal);
    const spec = resolveSpec(options, inUserNamespace);
    checkLowers(spec); // before creating anything
    if (options.createDirs ?? true) {
      // Synchronous on purpose: one cheap syscall each when they exist; the thread pool costs more.
      for (const d of [spec.upper, spec.work, spec.target]) if (d !== undefined) mkdirSync(d, { recursive: true });
    }
    preflight(spec);
    if (spec.upper !== undefined && spec.work !== undefined && (options.probe ?? true)) {
      const failure = upperProbeFailure(spec.work, spec.userxattr);
      if (failure) {
        throw new OverlayError(
          'ERR_OVERLAY_UPPER_UNSUPPORTED',
          `upper ${spec.upper} cannot be an overlay upper: ${failure}. Use another filesystem, or the copy driver (chooseDriver)`,
          { path: spec.upper },
        );
      }
    }
    checkAbort(options.signal);
    return new OverlayMount(mountChecked(spec));
  }
}
