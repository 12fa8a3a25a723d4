/**
 * The read-only view of a stack of lower layers, as overlayfs merges it: the topmost layer
 * wins, a whiteout hides the name in every layer below, an opaque directory hides the
 * directories of the same name below, and a non-directory ends the merge of a directory.
 * Used to tell "added" from "modified" and to list what an opaque directory deleted.
 * @internal
 */
import type { BigIntStats } from 'node:fs';
import { join, posix } from 'node:path';
import { isOpaqueSync, isWhiteoutStats } from './markers.js';
import { lstatOrNull, sortedNames } from './tree.js';

/** A name as the lower stack shows it: where it lives and what it is. */
export interface LowerEntry {
  readonly abs: string;
  readonly stats: BigIntStats;
}

export class LowerStack {
  private readonly dirs = new Map<string, Promise<readonly string[]>>();

  /**
   * @param layers - the lower directories, topmost first
   * @param userxattr - which xattr namespace marks opaque dirs in them (undefined: either)
   */
  constructor(
    readonly layers: readonly string[],
    private readonly userxattr?: boolean,
  ) {}

  /** The layers that contribute to directory `rel` ('' = root), topmost first; [] when it is not a directory. */
  dirLayers(rel: string): Promise<readonly string[]> {
    let known = this.dirs.get(rel);
    if (!known) {
      known = this.computeDirLayers(rel);
      this.dirs.set(rel, known);
    }
    return known;
  }

  private async computeDirLayers(rel: string): Promise<readonly string[]> {
    if (rel === '') return this.layers;
    const parentRel = posix.dirname(rel);
    const parent = await this.dirLayers(parentRel === '.' ? '' : parentRel);
    const out: string[] = [];
    for (const layer of parent) {
      const abs = join(layer, rel);
      const st = await lstatOrNull(abs);
      if (!st) continue;
      if (!st.isDirectory()) break; // a whiteout or a file: nothing below it shows through
      out.push(layer);
      if (isOpaqueSync(abs, this.userxattr)) break;
    }
    return out;
  }

  /** What the stack shows at `rel`, or null when nothing (or a whiteout) is there. */
  async lookup(rel: string): Promise<LowerEntry | null> {
    const parentRel = posix.dirname(rel);
    for (const layer of await this.dirLayers(parentRel === '.' ? '' : parentRel)) {
      const abs = join(layer, rel);
      const stats = await lstatOrNull(abs);
      if (!stats) continue;
      return isWhiteoutStats(stats) ? null : { abs, stats };
    }
    return null;
  }

  /** The merged entries of directory `rel`, by name in sorted order. */
  async list(rel: string): Promise<Map<string, LowerEntry>> {
    const seen = new Set<string>();
    const found: Array<[string, LowerEntry]> = [];
    for (const layer of await this.dirLayers(rel)) {
      const dir = join(layer, rel);
      for (const name of await sortedNames(dir)) {
        if (seen.has(name)) continue;
        seen.add(name);
        const abs = join(dir, name);
        const stats = await lstatOrNull(abs);
        if (stats && !isWhiteoutStats(stats)) found.push([name, { abs, stats }]);
      }
    }
    return new Map(found.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }
}
