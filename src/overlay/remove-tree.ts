import { chmod, rm } from 'node:fs/promises';
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
