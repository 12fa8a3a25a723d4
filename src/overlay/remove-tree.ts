import { chmod, rm } from 'node:fs/promises';
import { readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { walk } from './tree.js';

/**
 * rm -rf that also copes with overlayfs's work dir, which leaves a `work/work` directory of
 * mode 000: an unprivileged owner (a rootless run) cannot list it until it is made
 * accessible again. Root is not held back by modes and takes the first path.
 * @internal
 */
export async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM') throw e;
    await chmod(path, 0o700);
    await walk(path, async (rel, st) => {
      if (st.isDirectory()) await chmod(`${path}/${rel}`, 0o700);
    });
    await rm(path, { recursive: true, force: true });
  }
}

/**
 * The same for a tree of at most `budget` entries, synchronously and with about half the calls
 * of rm -rf (no lstat of every entry): a container that wrote little leaves a handful of
 * files. False, with nothing removed, for a larger tree or one that cannot be listed (a
 * rootless owner's `work/work`): {@link removeTree} takes it then.
 * @internal
 */
export function removeSmallTreeSync(path: string, budget = 64): boolean {
  const files: string[] = [];
  const dirs: string[] = [];
  const list = (dir: string): boolean => {
    dirs.push(dir);
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (files.length + dirs.length >= budget) return false;
      const p = `${dir}/${e.name}`;
      if (e.isDirectory()) {
        if (!list(p)) return false;
      } else files.push(p);
    }
    return true;
  };
  try {
    if (!list(path)) return false;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && dirs.length === 1) return true; // gone already
    return false;
  }
  for (const f of files) unlinkSync(f);
  for (const d of dirs.reverse()) rmdirSync(d); // deepest first
  return true;
}
