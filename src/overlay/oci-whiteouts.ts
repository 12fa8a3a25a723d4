/**
 * The OCI image-layer form of deletions, and conversion between it and overlayfs's form.
 *
 * | meaning | overlayfs (on disk) | OCI layer (in the tar) |
 * |---|---|---|
 * | `d/x` deleted | `d/x`: character device 0:0 | `d/.wh.x`: empty file |
 * | everything of the lowers below `d` hidden | xattr `trusted.overlay.opaque=y` on `d` | `d/.wh..wh..opq`: empty file |
 *
 * Whiteouts apply only to the layers below; a name the same layer also holds stays.
 */
import { unlink, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { lremovexattr } from '../sys/libc.js';
import { LayerError } from './errors.js';
import { createWhiteoutSync, isOpaqueSync, isWhiteoutStats, markOpaqueSync, opaqueXattrName } from './markers.js';
import { checkAbort, lstatOrNull, walk } from './tree.js';
import { inUserNamespace } from './userns.js';

/** The prefix of an OCI whiteout file: `.wh.NAME` deletes `NAME`. */
export const OCI_WHITEOUT_PREFIX = '.wh.';
/** The OCI opaque-directory marker: a file of this name hides the directory's lower content. */
export const OCI_OPAQUE_WHITEOUT = '.wh..wh..opq';

/** What an OCI whiteout entry means. */
export interface OciWhiteout {
  /** `whiteout`: `path` is deleted. `opaque`: directory `path` hides all of its lower content. */
  readonly kind: 'whiteout' | 'opaque';
  /** The path it applies to, relative, without a leading slash (`''` is the root). */
  readonly path: string;
}

/** Options of the whiteout conversions. */
export interface WhiteoutConversionOptions {
  /**
   * Opaque markers in `user.overlay.*` (for a layer mounted with userxattr).
   * @defaultValue true inside a user namespace, else false
   */
  readonly userxattr?: boolean;
  /** Cancels the walk. */
  readonly signal?: AbortSignal;
}

function cleanRelative(path: string): string {
  const norm = posix.normalize(`/${path}`).slice(1);
  if (norm.split('/').includes('..') || path.split('/').includes('..')) {
    throw new LayerError('ERR_LAYER_UNSAFE_PATH', `"${path}" climbs out of the layer with ".."`, path);
  }
  return norm.replace(/\/$/, '');
}

/** The OCI whiteout entry name that deletes `path`: `etc/passwd` → `etc/.wh.passwd`. */
export function ociWhiteoutName(path: string): string {
  const rel = cleanRelative(path);
  if (rel === '') throw new LayerError('ERR_LAYER_UNSAFE_PATH', 'the layer root cannot be whited out', path);
  const dir = posix.dirname(rel);
  return `${dir === '.' ? '' : `${dir}/`}${OCI_WHITEOUT_PREFIX}${posix.basename(rel)}`;
}

/** The OCI entry name that marks directory `dir` opaque: `var/cache` → `var/cache/.wh..wh..opq`. */
export function ociOpaqueName(dir: string): string {
  const rel = cleanRelative(dir);
  return rel === '' ? OCI_OPAQUE_WHITEOUT : `${rel}/${OCI_OPAQUE_WHITEOUT}`;
}

/**
 * What a tar entry name means as a whiteout, or null for an ordinary entry.
 * Leading `./` and `/` are ignored; a name with `..` is refused (`ERR_LAYER_UNSAFE_PATH`).
 */
export function parseOciWhiteout(entryName: string): OciWhiteout | null {
  const rel = cleanRelative(entryName);
  const base = posix.basename(rel);
  if (!base.startsWith(OCI_WHITEOUT_PREFIX)) return null;
  const dir = posix.dirname(rel) === '.' ? '' : posix.dirname(rel);
  if (base === OCI_OPAQUE_WHITEOUT) return { kind: 'opaque', path: dir };
  const name = base.slice(OCI_WHITEOUT_PREFIX.length);
  if (name === '' || name === '.' || name === '..') throw new LayerError('ERR_LAYER_UNSAFE_PATH', `"${entryName}" whites out nothing nameable`, entryName);
  return { kind: 'whiteout', path: dir === '' ? name : `${dir}/${name}` };
}

/**
 * Rewrites a directory from overlayfs's form to the OCI form, in place: each 0:0 character
 * device `x` becomes an empty file `.wh.x`, each opaque xattr a `.wh..wh..opq` file.
 * @returns how many markers were converted
 */
export async function convertWhiteoutsToOci(dir: string, options: WhiteoutConversionOptions = {}): Promise<number> {
  const userxattr = options.userxattr ?? inUserNamespace();
  let n = 0;
  await walk(
    dir,
    async (rel, st) => {
      const abs = join(dir, rel);
      if (isWhiteoutStats(st)) {
        await unlink(abs);
        await writeFile(join(dir, ociWhiteoutName(rel)), '', { mode: 0o600, flag: 'wx' });
        n++;
      } else if (st.isDirectory() && isOpaqueSync(abs, userxattr)) {
        lremovexattr(abs, opaqueXattrName(userxattr));
        await writeFile(join(dir, ociOpaqueName(rel)), '', { mode: 0o600, flag: 'wx' });
        n++;
      }
    },
    options.signal,
  );
  if (isOpaqueSync(dir, userxattr)) {
    lremovexattr(dir, opaqueXattrName(userxattr));
    await writeFile(join(dir, OCI_OPAQUE_WHITEOUT), '', { mode: 0o600, flag: 'wx' });
    n++;
  }
  return n;
}

/**
 * Rewrites a directory from the OCI form to overlayfs's form, in place — what an unpacked
 * image layer needs to become an overlay lower: `.wh.x` becomes a 0:0 character device `x`
 * (dropped when the layer itself has an `x`), `.wh..wh..opq` the opaque xattr on its directory.
 * Needs root, or root in a user namespace (whiteout devices; `user.` xattrs there).
 * @returns how many markers were converted
 */
export async function convertWhiteoutsFromOci(dir: string, options: WhiteoutConversionOptions = {}): Promise<number> {
  const userxattr = options.userxattr ?? inUserNamespace();
  const found: OciWhiteout[] = [];
  const markers: string[] = [];
  await walk(
    dir,
    (rel, st) => {
      const w = st.isDirectory() ? null : parseOciWhiteout(rel);
      if (w) {
        found.push(w);
        markers.push(rel);
      }
    },
    options.signal,
  );
  for (const [i, w] of found.entries()) {
    checkAbort(options.signal);
    await unlink(join(dir, markers[i]!));
    const abs = join(dir, w.path);
    if (w.kind === 'opaque') markOpaqueSync(abs, userxattr);
    else if (!(await lstatOrNull(abs))) createWhiteoutSync(abs);
  }
  return found.length;
}
