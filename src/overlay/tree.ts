/**
 * Small filesystem-tree helpers shared by the layer tools: entry types, sorted listings,
 * a deterministic walk, cancellation.
 * @internal
 */
import { lstat, readdir } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { AbortError } from '../errors.js';

/** The kind of a filesystem entry, named like tar's entry types. */
export type EntryType = 'file' | 'directory' | 'symlink' | 'character-device' | 'block-device' | 'fifo' | 'socket';

/** The entry type of an lstat result. */
export function entryType(st: BigIntStats): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'character-device';
  if (st.isBlockDevice()) return 'block-device';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

/**
 * lstat with nanosecond times (bigint), or null when nothing is there (ENOENT, or a path
 * component that is not a directory). Bigint because diffs compare times exactly.
 */
export async function lstatOrNull(path: string): Promise<BigIntStats | null> {
  try {
    return await lstat(path, { bigint: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw e;
  }
}

/** The names in a directory, sorted (so every walk, diff and archive is deterministic). */
export async function sortedNames(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

/** Throws ctrkit's AbortError when the signal has fired. */
export function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError(signal.reason);
}

/** `a/b` from a directory's relative path and a name ('' is the root). */
export function joinRel(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/**
 * Visits every entry below `root` (not `root` itself) depth first: each directory, then
 * its subtree, then its next sibling; names in sorted order. `visit` returns false to skip a directory's contents.
 */
export async function walk(
  root: string,
  // biome-ignore lint/suspicious/noConfusingVoidType: void lets a visitor that never skips be a plain statement body
  visit: (rel: string, st: BigIntStats) => Promise<boolean | void> | boolean | void,
  signal?: AbortSignal,
  dir = '',
): Promise<void> {
  checkAbort(signal);
  for (const name of await sortedNames(join(root, dir))) {
    const rel = joinRel(dir, name);
    const st = await lstat(join(root, rel), { bigint: true });
    const descend = await visit(rel, st);
    if (st.isDirectory() && descend !== false) await walk(root, visit, signal, rel);
  }
}
