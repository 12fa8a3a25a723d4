/**
 * An image's `User` (`1000`, `1000:100`, `app`, `app:staff`) to numeric ids, looked up in the
 * rootfs's own /etc/passwd and /etc/group — never the host's.
 * @internal
 */
import { constants as fsc } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidOptionError } from '../../errors.js';
import { lstatOrNull, resolveDirInRoot } from '../unpack/resolve.js';

/** Numeric ids to run as. */
export interface ResolvedUser {
  /** User id. */
  readonly uid: number;
  /** Primary group id. */
  readonly gid: number;
}

/**
 * The rows of /etc/`file` from the first of `roots` that has it: a flat rootfs, or overlay
 * lowers topmost first (a whiteout there means the file was deleted). An opaque /etc in a
 * layer without the file is not honoured: the next layer's file is used.
 */
async function table(roots: readonly string[], file: string): Promise<string[][]> {
  for (const root of roots) {
    const rows = await tableIn(root, file);
    if (rows !== undefined) return rows;
  }
  return [];
}

async function tableIn(rootfs: string, file: string): Promise<string[][] | undefined> {
  try {
    // The rootfs is an image's: /etc is resolved inside it and the file opened O_NOFOLLOW,
    // so a hostile image cannot point the lookup at the host's files.
    const etc = resolveDirInRoot(rootfs, ['etc'], `/etc/${file}`, false);
    if (!etc) return undefined;
    const st = lstatOrNull(join(rootfs, ...etc, file));
    if (!st) return undefined;
    if (!st.isFile()) return []; // a whiteout (or a symlink, not followed): no such file
    const fh = await open(join(rootfs, ...etc, file), fsc.O_RDONLY | fsc.O_NOFOLLOW);
    try {
      const text = await fh.readFile('utf8');
      return text
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => l.split(':'));
    } finally {
      await fh.close();
    }
  } catch {
    return undefined;
  }
}

/**
 * Resolves `user` (`''` is root) in the image's files: `roots` is a flat rootfs, or the
 * overlay lowers topmost first.
 * @throws {@link InvalidOptionError} for a name the image does not know
 */
export async function resolveUser(roots: string | readonly string[], user: string): Promise<ResolvedUser> {
  const rootfs = typeof roots === 'string' ? [roots] : roots;
  if (user === '') return { uid: 0, gid: 0 };
  const [u = '', g] = user.split(':');
  let uid: number;
  let gid: number | undefined;
  if (/^\d+$/.test(u)) {
    uid = Number(u);
    const row = (await table(rootfs, 'passwd')).find((r) => r[2] === u);
    gid = row ? Number(row[3]) : 0;
  } else {
    const row = (await table(rootfs, 'passwd')).find((r) => r[0] === u);
    if (!row) throw new InvalidOptionError('user', `"${u}" is not in the image's /etc/passwd`);
    uid = Number(row[2]);
    gid = Number(row[3]);
  }
  if (g !== undefined) {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const row = (await table(rootfs, 'group')).find((r) => r[0] === g);
      if (!row) throw new InvalidOptionError('user', `group "${g}" is not in the image's /etc/group`);
      gid = Number(row[2]);
    }
  }
  return { uid, gid: gid ?? 0 };
}
