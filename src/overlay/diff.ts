/**
 * What a writable layer changed, like `docker diff`.
 *
 * overlay driver: only the upper dir is walked; the lowers are consulted per name. A
 * whiteout is a deletion, an opaque directory lists every lower entry it hides as deleted,
 * anything else in the upper is "modified" when the lowers have that path and "added"
 * otherwise — so a chmod-only or metadata-only (metacopy) copy-up is a modification. A
 * directory that is in the upper only because something below it was copied up is not
 * reported unless a name was added to or deleted from it, or its own mode, owner or mtime
 * changed — as docker does.
 *
 * copy driver: the copy is compared with the merged lowers name by name; an entry is
 * modified when its type, mode, owner, size, mtime (to the nanosecond), device or symlink
 * target differs — the copy preserved all of them exactly, so any difference is the
 * container's. Directories follow the same rule as above.
 */
import { readlink } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { LayerError } from './errors.js';
import { comparePaths, type Change, type ChangeKind } from './changes.js';
import { LowerStack, type LowerEntry } from './lower-stack.js';
import { isOpaqueSync, isWhiteoutStats, readOverlayXattr } from './markers.js';
import { checkAbort, entryType, joinRel, lstatOrNull, sortedNames } from './tree.js';

/**
 * The storage drivers: overlayfs, a full copy of the lowers (Docker's "vfs"), or a btrfs
 * snapshot of them. A btrfs snapshot is a full tree, compared with the lowers like a copy.
 */
export type StorageDriver = 'overlay' | 'copy' | 'btrfs';

/** Options of {@link diff}. */
export interface DiffOptions {
  /** The writable layer: an overlay upper dir, or the copy driver's copy. */
  readonly upper: string;
  /** The lowers it was made over, topmost first (as mounted). */
  readonly lower: readonly string[];
  /** Which driver produced `upper`. @defaultValue `'overlay'` */
  readonly driver?: StorageDriver;
  /**
   * The xattr namespace of the overlay markers: true for `user.overlay.*` (userxattr),
   * false for `trusted.overlay.*`. @defaultValue either is accepted
   */
  readonly userxattr?: boolean;
  /** Cancels the walk. */
  readonly signal?: AbortSignal;
}

/** A change with what the archive writer needs to emit it. @internal */
export interface ScannedChange extends Change {
  /** The path without its leading slash. */
  readonly rel: string;
  /** The entry in the writable layer (absent for deletions). */
  readonly stats?: BigIntStats;
  /** Where a regular file's data is: the upper itself, or a lower for a metacopy. */
  readonly dataFrom?: string;
}

class Scan {
  readonly out: ScannedChange[] = [];
  readonly lower: LowerStack;

  constructor(
    readonly root: string,
    lowers: readonly string[],
    readonly userxattr: boolean | undefined,
    readonly signal: AbortSignal | undefined,
  ) {
    this.lower = new LowerStack(lowers, userxattr);
  }

  push(rel: string, kind: ChangeKind, stats: BigIntStats, extra: { opaque?: boolean; dataFrom?: string } = {}): void {
    const current = kind !== 'deleted';
    this.out.push({
      path: `/${rel}`,
      rel,
      kind,
      type: entryType(stats),
      ...(extra.opaque ? { opaque: true } : {}),
      ...(current ? { stats } : {}),
      ...(extra.dataFrom ? { dataFrom: extra.dataFrom } : {}),
    });
  }

  /** Lists every lower entry of `rel` that the layer's directory does not have as deleted; true if any. */
  async hiddenLowers(rel: string, present: ReadonlySet<string>): Promise<boolean> {
    let any = false;
    for (const [name, entry] of await this.lower.list(rel)) {
      if (!present.has(name)) {
        this.push(joinRel(rel, name), 'deleted', entry.stats);
        any = true;
      }
    }
    return any;
  }

  /** Everything below a directory that has no lower counterpart is added. */
  async allAdded(rel: string): Promise<void> {
    checkAbort(this.signal);
    for (const name of await sortedNames(join(this.root, rel))) {
      const child = joinRel(rel, name);
      const st = (await lstatOrNull(join(this.root, child)))!;
      if (isWhiteoutStats(st)) continue; // a stale marker: there is nothing below it to hide
      this.push(child, 'added', st);
      if (st.isDirectory()) await this.allAdded(child);
    }
  }
}

/** Mode, owner or mtime (to the nanosecond: copy-up and the copy driver keep it exactly). */
function metadataDiffers(a: BigIntStats, b: BigIntStats): boolean {
  return a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid || a.mtimeNs !== b.mtimeNs;
}

/** Where the data of an upper file lives: itself, or (metacopy) the lower it was copied up from. */
async function dataSource(scan: Scan, rel: string, abs: string): Promise<string> {
  if (readOverlayXattr(abs, 'metacopy', scan.userxattr) === null) return abs;
  // A metadata-only copy-up: the data is in the lower at the same path, or at the path
  // `overlay.redirect` names (absolute from the layer root) if the file was renamed.
  const redirect = readOverlayXattr(abs, 'redirect', scan.userxattr)?.toString();
  const originRel = redirect?.startsWith('/') ? redirect.slice(1) : rel;
  const origin = await scan.lower.lookup(originRel);
  if (!origin?.stats.isFile()) {
    throw new LayerError(
      'ERR_LAYER_METACOPY_ORIGIN',
      `${abs} is a metadata-only copy-up but /${originRel} is not a regular file in any lower: diff and commit need the lowers the upper was mounted with`,
      abs,
    );
  }
  return origin.abs;
}

/**
 * Scans one directory of an overlay upper. `replaced`: the lower's content of this
 * directory is hidden (it or an ancestor is opaque). Returns whether a name was added to
 * or deleted from it — which makes the directory itself "modified", as in docker.
 */
async function scanOverlayDir(scan: Scan, rel: string, replaced: boolean): Promise<boolean> {
  checkAbort(scan.signal);
  const names = await sortedNames(join(scan.root, rel));
  const stats = new Map<string, BigIntStats>();
  for (const name of names) stats.set(name, (await lstatOrNull(join(scan.root, rel, name)))!);
  let namesChanged = false;
  if (replaced) {
    const present = new Set(names.filter((n) => !isWhiteoutStats(stats.get(n)!)));
    namesChanged = await scan.hiddenLowers(rel, present);
  }
  for (const name of names) {
    const child = joinRel(rel, name);
    const abs = join(scan.root, child);
    const st = stats.get(name)!;
    if (isWhiteoutStats(st)) {
      const hidden = replaced ? null : await scan.lower.lookup(child);
      if (hidden) {
        scan.push(child, 'deleted', hidden.stats);
        namesChanged = true;
      }
      continue;
    }
    const before: LowerEntry | null = await scan.lower.lookup(child);
    if (!before) namesChanged = true;
    if (!st.isDirectory()) {
      const dataFrom = st.isFile() ? await dataSource(scan, child, abs) : undefined;
      scan.push(child, before ? 'modified' : 'added', st, dataFrom && dataFrom !== abs ? { dataFrom } : {});
      continue;
    }
    if (readOverlayXattr(abs, 'redirect', scan.userxattr) !== null) {
      throw new LayerError(
        'ERR_LAYER_REDIRECT',
        `${abs} is a renamed lower directory (overlay.redirect): its content lives in the lower and cannot be expressed as a diff. Mount without redirect_dir (and metacopy) to commit such changes`,
        abs,
      );
    }
    const opaque = isOpaqueSync(abs, scan.userxattr);
    if (before?.stats.isDirectory()) {
      const inside = await scanOverlayDir(scan, child, replaced || opaque);
      if (opaque || inside || metadataDiffers(st, before.stats)) scan.push(child, 'modified', st, { opaque });
    } else {
      scan.push(child, before ? 'modified' : 'added', st, { opaque });
      await scan.allAdded(child);
    }
  }
  return namesChanged;
}

async function nonDirDiffers(st: BigIntStats, abs: string, before: LowerEntry): Promise<boolean> {
  const b = before.stats;
  if (entryType(st) !== entryType(b) || metadataDiffers(st, b) || st.size !== b.size || st.rdev !== b.rdev) return true;
  return st.isSymbolicLink() && (await readlink(abs)) !== (await readlink(before.abs));
}

/** Scans one directory of the copy driver's copy against the merged lowers; returns whether names changed. */
async function scanCopyDir(scan: Scan, rel: string): Promise<boolean> {
  checkAbort(scan.signal);
  const names = await sortedNames(join(scan.root, rel));
  const lowers = await scan.lower.list(rel);
  let namesChanged = await scan.hiddenLowers(rel, new Set(names));
  for (const name of names) {
    const child = joinRel(rel, name);
    const abs = join(scan.root, child);
    const st = (await lstatOrNull(abs))!;
    const before = lowers.get(name);
    if (!before) {
      namesChanged = true;
      scan.push(child, 'added', st);
      if (st.isDirectory()) await scan.allAdded(child);
    } else if (st.isDirectory() && before.stats.isDirectory()) {
      const inside = await scanCopyDir(scan, child);
      if (inside || metadataDiffers(st, before.stats)) scan.push(child, 'modified', st);
    } else if (st.isDirectory()) {
      scan.push(child, 'modified', st); // a file replaced by a directory
      await scan.allAdded(child);
    } else if (await nonDirDiffers(st, abs, before)) {
      scan.push(child, 'modified', st);
    }
  }
  return namesChanged;
}

/** The changes with what commit needs; {@link diff} is its public face. @internal */
export async function scanChanges(options: DiffOptions): Promise<ScannedChange[]> {
  checkAbort(options.signal);
  const root = options.upper;
  const st = await lstatOrNull(root);
  if (!st?.isDirectory()) throw new LayerError('ERR_LAYER_NOT_FOUND', `upper ${root} is not a directory (does it exist?)`, root);
  const scan = new Scan(root, options.lower, options.userxattr, options.signal);
  if ((options.driver ?? 'overlay') === 'overlay') await scanOverlayDir(scan, '', isOpaqueSync(root, options.userxattr));
  else await scanCopyDir(scan, '');
  return scan.out.sort((a, b) => comparePaths(a.rel, b.rel));
}

/**
 * The changes a writable layer makes to its lowers — added, modified and deleted paths,
 * like `docker diff` — sorted so that a directory precedes its contents.
 *
 * @example
 * ```ts
 * const changes = await diff({ upper: '/srv/c1/upper', lower: ['/srv/rootfs'] });
 * console.log(formatChanges(changes)); // C /etc\nA /etc/new\nD /etc/old ...
 * ```
 */
export async function diff(options: DiffOptions): Promise<Change[]> {
  return (await scanChanges(options)).map(({ path, kind, type, opaque }) => (opaque ? { path, kind, type, opaque } : { path, kind, type }));
}
