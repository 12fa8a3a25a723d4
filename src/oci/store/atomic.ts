/**
 * Crash-safe writes: content goes to a temp file in the store's own tmp dir (same
 * filesystem), is fsynced, and only then renamed to its final name, and the directory is
 * fsynced — so a crash leaves either nothing or the whole file under its name, never half.
 * @internal
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** A fresh, unused temp path in `tmpDir`. */
export function tempPath(tmpDir: string, hint: string): string {
  return join(tmpDir, `${hint}.${process.pid}.${randomBytes(6).toString('hex')}`);
}

/** fsync of a directory, so a rename in it survives a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Renames a finished temp file into place and makes the rename durable. */
export async function commitFile(temp: string, final: string): Promise<void> {
  await rename(temp, final);
  await fsyncDir(dirname(final));
}

/** Writes `data` to `final` atomically through a temp file in `tmpDir`. */
export async function writeFileAtomic(tmpDir: string, final: string, data: Buffer | string): Promise<void> {
  const temp = tempPath(tmpDir, 'write');
  try {
    const fh = await open(temp, 'wx', 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await commitFile(temp, final);
  } catch (e) {
    await rm(temp, { force: true });
    throw e;
  }
}
