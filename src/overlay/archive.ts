/**
 * Writes a layer's changes as a tar stream in the OCI layer form: the changed entries with
 * every parent directory, `.wh.NAME` for deletions and `.wh..wh..opq` for opaque
 * directories, in an order where a directory precedes its contents and, inside it, the
 * opaque marker and whiteouts precede the other entries (as the OCI spec asks).
 * Deterministic: the same tree gives the same bytes.
 * @internal
 */
import { createReadStream, type BigIntStats } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import { once } from 'node:events';
import { join, posix } from 'node:path';
import { logger } from '../log.js';
import type { Headers, Pack } from 'tar-stream';
import type { ScannedChange } from './diff.js';
import { OCI_OPAQUE_WHITEOUT, OCI_WHITEOUT_PREFIX, ociOpaqueName, ociWhiteoutName } from './oci-whiteouts.js';
import { checkAbort } from './tree.js';

const log = logger('ctrkit:overlay');

/** The largest id a ustar header field holds (6 octal digits); larger ones go in a PAX record. */
const USTAR_ID_MAX = 0o777777;

type Planned =
  | { readonly kind: 'entry'; readonly stats: BigIntStats; readonly dataFrom?: string | undefined }
  | { readonly kind: 'marker'; readonly dir: BigIntStats; readonly opaque: boolean };

function rank(name: string): number {
  if (name === OCI_OPAQUE_WHITEOUT) return 0;
  return name.startsWith(OCI_WHITEOUT_PREFIX) ? 1 : 2;
}

/** Archive order: parents first; in a directory the opaque marker, then whiteouts, then the rest by name. */
function archiveOrder(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (x === y) continue;
    return rank(x) - rank(y) || (x < y ? -1 : 1);
  }
  return pa.length - pb.length;
}

/** Major and minor of a Linux dev_t (glibc's gnu_dev_major/minor bit layout). */
function deviceNumbers(d: bigint): { devmajor: number; devminor: number } {
  return {
    devmajor: Number(((d & 0xfff00n) >> 8n) | ((d & 0xfffff00000000000n) >> 32n)),
    devminor: Number((d & 0xffn) | ((d & 0xffffff00000n) >> 12n)),
  };
}

function parentOf(rel: string): string {
  const d = posix.dirname(rel);
  return d === '.' ? '' : d;
}

/** Decides every archive entry: the changes, their parent directories, the markers. */
async function plan(root: string, changes: readonly ScannedChange[]): Promise<Map<string, Planned>> {
  const planned = new Map<string, Planned>();
  const dirStats = async (rel: string): Promise<BigIntStats> => {
    const p = planned.get(rel);
    return p?.kind === 'entry' ? p.stats : lstat(join(root, rel), { bigint: true });
  };
  const withParents = async (rel: string): Promise<void> => {
    for (let d = parentOf(rel); d !== '' && !planned.has(d); d = parentOf(d)) {
      planned.set(d, { kind: 'entry', stats: await lstat(join(root, d), { bigint: true }) });
    }
  };
  const opaque = new Set<string>();
  const underOpaque = (rel: string): boolean => {
    for (let d = parentOf(rel); d !== ''; d = parentOf(d)) if (opaque.has(d)) return true;
    return false;
  };
  for (const c of changes) {
    // parents come first, so an opaque dir is known before its contents
    if (c.kind === 'deleted') {
      if (underOpaque(c.rel)) continue; // the opaque marker already hides everything below
      const parent = parentOf(c.rel);
      planned.set(ociWhiteoutName(c.rel), { kind: 'marker', dir: await dirStats(parent), opaque: false });
      await withParents(c.rel);
      continue;
    }
    planned.set(c.rel, { kind: 'entry', stats: c.stats!, dataFrom: c.dataFrom });
    if (c.opaque) {
      opaque.add(c.rel);
      planned.set(ociOpaqueName(c.rel), { kind: 'marker', dir: c.stats!, opaque: true });
    }
    await withParents(c.rel);
  }
  return planned;
}

function ids(st: BigIntStats): Pick<Headers, 'uid' | 'gid'> & { pax?: Record<string, string> } {
  const [uid, gid] = [Number(st.uid), Number(st.gid)];
  const big = uid > USTAR_ID_MAX || gid > USTAR_ID_MAX;
  return { uid, gid, ...(big ? { pax: { uid: String(uid), gid: String(gid) } } : {}) };
}

/** Adds one entry and resolves once tar-stream has taken all of it. */
async function add(pack: Pack, header: Headers, data?: string): Promise<void> {
  const done = new Promise<void>((resolve, reject) => {
    const sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
    if (data === undefined) {
      if (header.type === 'file') sink.end(); // an empty regular file
      return;
    }
    void (async () => {
      try {
        for await (const chunk of createReadStream(data)) {
          if (!sink.write(chunk as Buffer)) await once(sink, 'drain');
        }
        sink.end();
      } catch (e) {
        sink.destroy(e as Error);
        reject(e);
      }
    })();
  });
  await done;
}

/**
 * Writes the archive of `changes` (found in the tree at `root`) into `pack`, then finalizes it.
 * @returns the number of entries written
 */
export async function writeArchive(pack: Pack, root: string, changes: readonly ScannedChange[], signal?: AbortSignal): Promise<number> {
  const planned = await plan(root, changes);
  const names = [...planned.keys()].sort(archiveOrder);
  const firstLinkOf = new Map<string, string>();
  let count = 0;
  for (const rel of names) {
    checkAbort(signal);
    const p = planned.get(rel)!;
    if (p.kind === 'marker') {
      // tar-stream turns a falsy mode into 0644: pass the type bits too so that 0 stays 0.
      const mode = p.opaque ? Number(p.dir.mode & 0o7777n) : 0o600;
      await add(pack, { name: rel, type: 'file', size: 0, mode: mode | 0o100000, ...ids(p.dir), mtime: p.dir.mtime });
      count++;
      continue;
    }
    const st = p.stats;
    const header: Headers & { pax?: Record<string, string> } = { name: rel, mode: Number(st.mode), ...ids(st), mtime: st.mtime };
    let data: string | undefined;
    if (st.isDirectory()) {
      Object.assign(header, { name: `${rel}/`, type: 'directory' });
    } else if (st.isSymbolicLink()) {
      Object.assign(header, { type: 'symlink', linkname: await readlink(join(root, rel)) });
    } else if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1n ? firstLinkOf.get(key) : undefined;
      if (first !== undefined) {
        Object.assign(header, { type: 'link', linkname: first, size: 0 });
      } else {
        if (st.nlink > 1n) firstLinkOf.set(key, rel);
        const from = p.dataFrom ?? join(root, rel);
        const size = p.dataFrom ? (await lstat(p.dataFrom)).size : Number(st.size);
        Object.assign(header, { type: 'file', size });
        if (size > 0) data = from;
      }
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      Object.assign(header, { type: st.isCharacterDevice() ? 'character-device' : 'block-device', ...deviceNumbers(st.rdev) });
    } else if (st.isFIFO()) {
      header.type = 'fifo';
    } else {
      log('commit: skipping socket /%s (a tar cannot hold one)', rel);
      continue;
    }
    await add(pack, header, data);
    count++;
  }
  pack.finalize();
  return count;
}
