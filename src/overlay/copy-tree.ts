/**
 * Copies the merged view of a lower stack into a directory, keeping what a diff compares:
 * type, mode, owner, mtime, symlink targets, device numbers, hard links within a layer, and
 * extended attributes other than overlay's own markers. Regular files are cloned (reflink)
 * where the filesystem can, so on btrfs or xfs the copy costs little space.
 * @internal
 */
import { chmod, copyFile, link, lchown, lstat, mkdir, readlink, symlink, constants as fsc } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { logger } from '../log.js';
import { lgetxattr, llistxattr, lsetxattr, lutimensNs, mknodat } from '../sys/libc.js';
import { AT_FDCWD } from '../sys/constants.js';
import type { LowerStack } from './lower-stack.js';
import { checkAbort, joinRel } from './tree.js';

const log = logger('ctrkit:overlay');

async function copyOwner(dst: string, st: BigIntStats): Promise<void> {
  try {
    await lchown(dst, Number(st.uid), Number(st.gid));
  } catch (e) {
    // Unprivileged, or an id not mapped in this user namespace: the copy keeps the caller's ids.
    log('copy: cannot chown %s to %d:%d (%s)', dst, st.uid, st.gid, (e as NodeJS.ErrnoException).code);
  }
}

function copyXattrs(src: string, dst: string): void {
  for (const name of llistxattr(src)) {
    if (/^(trusted|user)\.overlay\./.test(name)) continue; // overlay's markers mean nothing in a copy
    const value = lgetxattr(src, name);
    if (value === null) continue;
    try {
      lsetxattr(dst, name, value);
    } catch (e) {
      log('copy: cannot set %s on %s (%s)', name, dst, (e as Error).message);
    }
  }
}

/**
 * Owner, then mode (chown clears setuid), xattrs (after chown, which clears capabilities),
 * then times, to the nanosecond (the diff compares them exactly).
 */
async function copyMetadata(src: string, dst: string, st: BigIntStats): Promise<void> {
  await copyOwner(dst, st);
  if (!st.isSymbolicLink()) await chmod(dst, Number(st.mode & 0o7777n));
  copyXattrs(src, dst);
  lutimensNs(dst, st.atimeNs, st.mtimeNs);
}

/** Copies one directory level of the merged lowers, then its subdirectories. */
async function copyDir(stack: LowerStack, rel: string, target: string, links: Map<string, string>, signal?: AbortSignal): Promise<void> {
  checkAbort(signal);
  for (const [name, { abs, stats: st }] of await stack.list(rel)) {
    const childRel = joinRel(rel, name);
    const dst = join(target, childRel);
    if (st.isDirectory()) {
      await mkdir(dst, { mode: 0o700 });
      await copyDir(stack, childRel, target, links, signal);
      // Its metadata is set below, after its contents: creating them changed its mtime.
    } else if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1n ? links.get(key) : undefined;
      if (first !== undefined) {
        await link(first, dst);
        continue; // the same inode: its metadata is already set
      }
      if (st.nlink > 1n) links.set(key, dst);
      await copyFile(abs, dst, fsc.COPYFILE_FICLONE);
    } else if (st.isSymbolicLink()) {
      await symlink(await readlink(abs), dst);
    } else if (st.isCharacterDevice() || st.isBlockDevice() || st.isFIFO()) {
      mknodat(AT_FDCWD, dst, Number(st.mode), st.rdev, dst);
    } else {
      log('copy: skipping socket %s', abs);
      continue;
    }
    await copyMetadata(abs, dst, st);
  }
}

/** Copies the merged view of `stack` into the existing, empty directory `target`. */
export async function copyMerged(stack: LowerStack, target: string, signal?: AbortSignal): Promise<void> {
  await copyDir(stack, '', target, new Map(), signal);
  const top = stack.layers[0]!;
  await copyMetadata(top, target, await lstat(top, { bigint: true }));
}
