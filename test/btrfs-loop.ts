import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statfsSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A btrfs filesystem on a loop device, mounted under /tmp/ctk-btrfs-*; `dispose()` undoes it all. */
export interface BtrfsLoop {
  readonly mnt: string;
  readonly device: string;
  dispose(): void;
}

/** Makes a `size`-byte btrfs (label ctk-test) on a loop file and mounts it; cleans up whatever it made if a step fails. */
export function mountBtrfsLoop(size = 512 * 2 ** 20): BtrfsLoop {
  const dir = mkdtempSync('/tmp/ctk-btrfs-');
  const img = join(dir, 'fs.img');
  const mnt = join(dir, 'mnt');
  let device: string | undefined;
  let mounted = false;
  const dispose = () => {
    if (mounted) {
      try {
        execFileSync('umount', [mnt], { stdio: 'pipe' });
      } catch {
        execFileSync('umount', ['-l', mnt], { stdio: 'pipe' }); // busy: detach now, freed when unused
      }
      mounted = false;
    }
    if (device) {
      execFileSync('losetup', ['-d', device], { stdio: 'pipe' });
      device = undefined;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    writeFileSync(img, '');
    truncateSync(img, size);
    execFileSync('mkfs.btrfs', ['-q', '-L', 'ctk-test', img], { stdio: 'pipe' });
    device = execFileSync('losetup', ['--find', '--show', img], { encoding: 'utf8' }).trim();
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'btrfs', device, mnt], { stdio: 'pipe' });
    mounted = true;
    return { mnt, device, dispose };
  } catch (e) {
    dispose();
    throw e;
  }
}

/** Bytes in use on the filesystem of `path`, after its pending writes are committed (btrfs accounts lazily). */
export function usedBytes(path: string): number {
  execFileSync('sync', ['-f', path]);
  const s = statfsSync(path);
  return (s.blocks - s.bfree) * s.bsize;
}
