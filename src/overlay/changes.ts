import type { EntryType } from './tree.js';

/** How a path differs from the lower layers: `docker diff`'s A, C and D. */
export type ChangeKind = 'added' | 'modified' | 'deleted';

/** One changed path of a writable layer, relative to its lowers. */
export interface Change {
  /** The path as the container sees it, e.g. `/etc/passwd`. */
  readonly path: string;
  /** Added (not in the lowers), modified (in the lowers, changed), or deleted. */
  readonly kind: ChangeKind;
  /** The entry's type now; for a deletion, the type of what was deleted. */
  readonly type: EntryType;
  /**
   * True for a directory that replaced the lower one wholesale (an opaque directory, e.g.
   * after `rm -rf d && mkdir d`): nothing of the lower's content shows through. Each lower
   * entry it hid is listed as deleted.
   */
  readonly opaque?: boolean;
}

const LETTER: Record<ChangeKind, string> = { added: 'A', modified: 'C', deleted: 'D' };

/** Formats changes as `docker diff` prints them: one `A /path`, `C /path` or `D /path` per line. */
export function formatChanges(changes: readonly Change[]): string {
  return changes.map((c) => `${LETTER[c.kind]} ${c.path}`).join('\n');
}

/**
 * Orders paths so that a directory comes before everything in it, siblings by name.
 * @internal
 */
export function comparePaths(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    if (pa[i] !== pb[i]) return pa[i]! < pb[i]! ? -1 : 1;
  }
  return pa.length - pb.length;
}
