import { isAbsolute, normalize } from 'node:path';
import { InvalidOptionError } from '../errors.js';

/** How the mount is handed to the kernel. */
export type OverlayMountApi = 'fsconfig' | 'legacy';

/**
 * What to mount: the chapter's lowerdir / upperdir / workdir / merged, as data. Plain,
 * JSON-serialisable, so it can cross into a container's init stage.
 */
export interface OverlaySpec {
  /**
   * The read-only layers, **topmost first** — the order of `lowerdir=/l1:/l2` (l1 on top).
   * An OCI manifest lists layers bottom first: reverse it. At most 500 (the kernel's stack limit).
   */
  readonly lower: readonly string[];
  /** The writable layer. Without it (and `work`) the mount is read-only and needs two or more lowers. */
  readonly upper?: string | undefined;
  /** overlayfs's scratch directory: empty, on the same mount as `upper`. Required with `upper`. */
  readonly work?: string | undefined;
  /** Where the merged view appears (an existing directory that is not a mount point). */
  readonly target: string;
  /**
   * Keep overlay's markers in `user.overlay.*` instead of `trusted.overlay.*` — required in
   * a user namespace, where trusted xattrs cannot be written.
   * @defaultValue true inside a non-initial user namespace ({@link inUserNamespace}), else false
   */
  readonly userxattr?: boolean | undefined;
  /**
   * Metadata-only copy-up (`metacopy=on`): a chmod/chown of a lower file copies only its
   * metadata; the data stays in the lower. Not allowed with `userxattr`.
   * @defaultValue the kernel's default (the overlay module's `metacopy` parameter)
   */
  readonly metacopy?: boolean | undefined;
  /** The mount's source, shown in /proc/self/mountinfo. @defaultValue `'overlay'` */
  readonly source?: string | undefined;
  /**
   * `fsconfig`: the new mount API, one `lowerdir+` per layer (Linux 6.8+; any number of layers,
   * any characters). `legacy`: mount(2) with an option string (one page; escaped).
   * @defaultValue `fsconfig` when the kernel accepts `lowerdir+`, else `legacy`
   */
  readonly api?: OverlayMountApi | 'auto' | undefined;
}

/** A spec with every path absolute and normalised, and the defaults decided. @internal */
export interface ResolvedSpec {
  readonly lower: readonly string[];
  readonly upper: string | undefined;
  readonly work: string | undefined;
  readonly target: string;
  readonly userxattr: boolean;
  readonly metacopy: boolean | undefined;
  readonly source: string;
  readonly api: OverlayMountApi | 'auto';
}

/** The kernel's limit on stacked lower layers (OVL_MAX_STACK). */
export const MAX_LOWER_LAYERS = 500;

function checkPath(option: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') throw new InvalidOptionError(option, 'expected a non-empty path');
  if (!isAbsolute(value))
    throw new InvalidOptionError(
      option,
      `"${value}" is relative; give an absolute path (it is resolved by the kernel, not against the cwd of the caller's choice)`,
    );
  if (value.includes('\0')) throw new InvalidOptionError(option, 'contains a NUL byte, which no path can hold');
  // Trailing slashes and `//` would otherwise make two spellings of one layer differ.
  return normalize(value).replace(/(.)\/+$/, '$1');
}

/**
 * Checks a spec without touching the filesystem. ':' and ',' in paths are allowed: they
 * are escaped for the legacy option string, and need no escaping with fsconfig.
 * @internal
 */
export function resolveSpec(spec: OverlaySpec, userxattrDefault: () => boolean): ResolvedSpec {
  if (!Array.isArray(spec.lower) || spec.lower.length === 0) throw new InvalidOptionError('lower', 'expected at least one lower directory');
  if (spec.lower.length > MAX_LOWER_LAYERS) {
    throw new InvalidOptionError('lower', `${spec.lower.length} layers; overlayfs stacks at most ${MAX_LOWER_LAYERS} (flatten some layers first)`);
  }
  const lower = spec.lower.map((l, i) => checkPath(`lower[${i}]`, l));
  const upper = spec.upper === undefined ? undefined : checkPath('upper', spec.upper);
  const work = spec.work === undefined ? undefined : checkPath('work', spec.work);
  if ((upper === undefined) !== (work === undefined)) {
    throw new InvalidOptionError(
      upper === undefined ? 'upper' : 'work',
      'upper and work go together: give both for a writable overlay, neither for a read-only one',
    );
  }
  if (upper === undefined && lower.length < 2) {
    throw new InvalidOptionError('lower', 'a read-only overlay (no upper) needs at least two lowers; for one directory use a read-only bind mount');
  }
  const target = checkPath('target', spec.target);
  const userxattr = spec.userxattr ?? userxattrDefault();
  if (userxattr && spec.metacopy) {
    throw new InvalidOptionError(
      'metacopy',
      'cannot be combined with userxattr: the kernel allows metacopy only with trusted xattrs (not in a user namespace)',
    );
  }
  const source = spec.source ?? 'overlay';
  if (source === '' || /[\0\s]/.test(source)) throw new InvalidOptionError('source', `"${source}" must be a non-empty name without whitespace`);
  const api = spec.api ?? 'auto';
  if (api !== 'auto' && api !== 'fsconfig' && api !== 'legacy') throw new InvalidOptionError('api', `"${String(api)}" is not one of auto, fsconfig, legacy`);
  return { lower, upper, work, target, userxattr, metacopy: spec.metacopy, source, api };
}
