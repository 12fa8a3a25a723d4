import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CopyLayer,
  LayerError,
  Overlay,
  chooseDriver,
  commit,
  convertWhiteoutsFromOci,
  convertWhiteoutsToOci,
  createWhiteout,
  diff,
  formatChanges,
  isOpaque,
  isWhiteout,
  isWhiteoutStats,
  listWhiteouts,
  markOpaque,
  ociOpaqueName,
  ociWhiteoutName,
  parseOciWhiteout,
  type Change,
  type WritableLayer,
} from 'ctrkit/overlay';
import { fsType, hostMounts, tempDir } from './helpers.js';

function mountsUnder(dir: string): string[] {
  return hostMounts().filter((m) => m === dir || m.startsWith(`${dir}/`));
}

let dir = '';
let removeDir = () => {};
beforeEach(() => {
  [dir, removeDir] = tempDir();
});
afterEach(() => {
  const left = mountsUnder(dir);
  for (const m of left.reverse()) execFileSync('umount', ['--lazy', m]);
  removeDir();
  expect(left, 'mounts left behind by the test').toEqual([]);
});

function write(root: string, rel: string, data: string | Buffer, mode?: number): void {
  mkdirSync(join(root, rel, '..'), { recursive: true });
  writeFileSync(join(root, rel), data);
  if (mode !== undefined) chmodSync(join(root, rel), mode);
}

/** A small root filesystem with the shapes a layer must carry. */
function makeBase(root: string): void {
  write(root, 'etc/hosts', '127.0.0.1 localhost\n');
  write(root, 'etc/passwd', 'root:x:0:0::/root:/bin/sh\n', 0o644);
  write(root, 'etc/shadow', 'secret\n', 0o600);
  write(root, 'etc/motd', 'welcome\n');
  write(root, 'bin/sh', '#!sh\n', 0o755);
  symlinkSync('sh', join(root, 'bin/link-to-sh'));
  write(root, 'usr/lib/libx.so', randomBytes(10_000));
  write(root, 'var/cache/app/a', 'a');
  write(root, 'var/cache/app/b', 'b');
  write(root, 'var/cache/app/c', 'c');
  write(root, 'var/log/old.log', 'old\n');
  write(root, 'data/sub/f2', 'two\n');
  write(root, 'hard/one', 'linked\n');
  linkSync(join(root, 'hard/one'), join(root, 'hard/two'));
  write(root, 'file-to-dir', 'file\n');
  write(root, 'dir-to-file/x', 'x');
  write(root, 'rename-me', 'moving\n');
}

const LONG = `deep/${'d'.repeat(60)}/${'f'.repeat(120)}`;

/** What a container does to its root: every kind of change a layer must express. */
function changeRoot(root: string): void {
  writeFileSync(join(root, 'etc/hosts'), '127.0.0.1 localhost\n10.0.0.1 db\n');
  chmodSync(join(root, 'etc/passwd'), 0o600); // chmod-only copy-up
  rmSync(join(root, 'etc/motd'));
  rmSync(join(root, 'var/log'), { recursive: true });
  rmSync(join(root, 'var/cache/app'), { recursive: true });
  mkdirSync(join(root, 'var/cache/app'));
  writeFileSync(join(root, 'var/cache/app/new'), 'new');
  write(root, 'opt/tool/bin/run', '#!run\n', 0o755);
  write(root, 'opt/tool/README', 'readme\n');
  symlinkSync('/usr/share/zoneinfo/UTC', join(root, 'etc/localtime'));
  rmSync(join(root, 'file-to-dir'));
  write(root, 'file-to-dir/y', 'y');
  rmSync(join(root, 'dir-to-file'), { recursive: true });
  writeFileSync(join(root, 'dir-to-file'), 'now a file\n');
  renameSync(join(root, 'rename-me'), join(root, 'renamed'));
  writeFileSync(join(root, 'hard/new1'), 'new link\n');
  linkSync(join(root, 'hard/new1'), join(root, 'hard/new2'));
  write(root, 'etc/locked', 'nobody reads this\n', 0o000);
  writeFileSync(join(root, 'etc/empty'), '');
  write(root, LONG, 'long name\n');
  writeFileSync(join(root, 'etc/héllo-wörld.txt'), 'unicode\n');
  write(root, 'bin/su', 'su\n', 0o4755);
  writeFileSync(join(root, 'data/sub/f2'), 'TWO\n');
}

const CHANGES: Array<[string, Change['kind'], Change['type']]> = [
  ['/bin', 'modified', 'directory'],
  ['/bin/su', 'added', 'file'],
  ['/data/sub/f2', 'modified', 'file'],
  ['/deep', 'added', 'directory'],
  [`/${LONG.split('/').slice(0, 2).join('/')}`, 'added', 'directory'],
  [`/${LONG}`, 'added', 'file'],
  ['/dir-to-file', 'modified', 'file'],
  ['/etc', 'modified', 'directory'],
  ['/etc/empty', 'added', 'file'],
  ['/etc/hosts', 'modified', 'file'],
  ['/etc/héllo-wörld.txt', 'added', 'file'],
  ['/etc/localtime', 'added', 'symlink'],
  ['/etc/locked', 'added', 'file'],
  ['/etc/motd', 'deleted', 'file'],
  ['/etc/passwd', 'modified', 'file'],
  ['/file-to-dir', 'modified', 'directory'],
  ['/file-to-dir/y', 'added', 'file'],
  ['/hard', 'modified', 'directory'],
  ['/hard/new1', 'added', 'file'],
  ['/hard/new2', 'added', 'file'],
  ['/opt', 'added', 'directory'],
  ['/opt/tool', 'added', 'directory'],
  ['/opt/tool/README', 'added', 'file'],
  ['/opt/tool/bin', 'added', 'directory'],
  ['/opt/tool/bin/run', 'added', 'file'],
  ['/rename-me', 'deleted', 'file'],
  ['/renamed', 'added', 'file'],
  ['/var', 'modified', 'directory'],
  ['/var/cache', 'modified', 'directory'],
  ['/var/cache/app', 'modified', 'directory'],
  ['/var/cache/app/a', 'deleted', 'file'],
  ['/var/cache/app/b', 'deleted', 'file'],
  ['/var/cache/app/c', 'deleted', 'file'],
  ['/var/cache/app/new', 'added', 'file'],
  ['/var/log', 'deleted', 'directory'],
];

/** Names, types, modes, content and symlink targets of a tree. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const visit = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const abs = join(root, r);
      const st = lstatSync(abs);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        out[r] = `dir ${mode}`;
        visit(r);
      } else if (st.isSymbolicLink()) out[r] = `symlink -> ${readlinkSync(abs)}`;
      else if (st.isFile()) out[r] = `file ${mode} ${createHash('sha256').update(readFileSync(abs)).digest('hex').slice(0, 16)}`;
      else out[r] = `other ${st.mode.toString(8)} ${st.rdev}`;
    }
  };
  visit('');
  return out;
}

/**
 * Applies a gzip OCI layer to a directory as the image spec says — written here with
 * tar-stream, independent of the library: `.wh.x` deletes x, `.wh..wh..opq` empties its
 * directory of what came from below, any other entry replaces what is at its path.
 */
async function applyLayer(file: string, root: string): Promise<tar.Headers[]> {
  const headers: tar.Headers[] = [];
  const extract = tar.extract();
  const done = (async () => {
    for await (const entry of extract) {
      const h = entry.header;
      headers.push(h);
      const name = h.name.replace(/\/$/, '');
      const abs = join(root, name);
      const base = name.split('/').pop()!;
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      if (base === '.wh..wh..opq') {
        for (const n of readdirSync(join(abs, '..'))) rmSync(join(abs, '..', n), { recursive: true });
        continue;
      }
      if (base.startsWith('.wh.')) {
        rmSync(join(abs, '..', base.slice(4)), { recursive: true, force: true });
        continue;
      }
      const existing = (() => {
        try {
          return lstatSync(abs);
        } catch {
          return null;
        }
      })();
      if (existing && !(existing.isDirectory() && h.type === 'directory')) rmSync(abs, { recursive: true });
      if (h.type === 'directory') mkdirSync(abs, { recursive: true });
      else if (h.type === 'file') writeFileSync(abs, Buffer.concat(chunks));
      else if (h.type === 'symlink') symlinkSync(h.linkname!, abs);
      else if (h.type === 'link') linkSync(join(root, h.linkname!), abs);
      else throw new Error(`unexpected ${h.type} ${h.name}`);
      if (h.type !== 'symlink' && h.type !== 'link') chmodSync(abs, h.mode!);
    }
  })();
  extract.end(gunzipSync(readFileSync(file)));
  await done;
  return headers;
}

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function copyOf(src: string, dst: string): string {
  execFileSync('cp', ['-a', src, dst]);
  return dst;
}

describe('whiteout and opaque helpers', () => {
  it('create, detect and list, in both xattr namespaces', async () => {
    const layer = join(dir, 'layer');
    mkdirSync(join(layer, 'a/b'), { recursive: true });
    writeFileSync(join(layer, 'a/file'), 'f');
    await createWhiteout(join(layer, 'a/gone'));
    await markOpaque(join(layer, 'a/b'), { userxattr: false });
    mkdirSync(join(layer, 'u'));
    await markOpaque(join(layer, 'u'), { userxattr: true });
    expect(await isWhiteout(join(layer, 'a/gone'))).toBe(true);
    expect(isWhiteoutStats(lstatSync(join(layer, 'a/gone')))).toBe(true);
    expect(await isWhiteout(join(layer, 'a/file'))).toBe(false);
    expect(await isWhiteout(join(layer, 'missing'))).toBe(false);
    expect(await isOpaque(join(layer, 'a/b'))).toBe(true);
    expect(await isOpaque(join(layer, 'a/b'), { userxattr: true })).toBe(false);
    expect(await isOpaque(join(layer, 'u'), { userxattr: true })).toBe(true);
    expect(await isOpaque(join(layer, 'u'), { userxattr: false })).toBe(false);
    expect(await isOpaque(join(layer, 'a'))).toBe(false);
    expect(await listWhiteouts(layer)).toEqual([
      { path: '/a/b', kind: 'opaque' },
      { path: '/a/gone', kind: 'whiteout' },
      { path: '/u', kind: 'opaque' },
    ]);
    expect(await listWhiteouts(layer, { userxattr: false })).toEqual([
      { path: '/a/b', kind: 'opaque' },
      { path: '/a/gone', kind: 'whiteout' },
    ]);
  });

  it('OCI names: .wh.NAME and .wh..wh..opq, both ways; ".." is refused', () => {
    expect(ociWhiteoutName('etc/passwd')).toBe('etc/.wh.passwd');
    expect(ociWhiteoutName('/motd')).toBe('.wh.motd');
    expect(ociOpaqueName('var/cache')).toBe('var/cache/.wh..wh..opq');
    expect(ociOpaqueName('')).toBe('.wh..wh..opq');
    expect(parseOciWhiteout('./etc/.wh.passwd')).toEqual({ kind: 'whiteout', path: 'etc/passwd' });
    expect(parseOciWhiteout('/.wh.motd')).toEqual({ kind: 'whiteout', path: 'motd' });
    expect(parseOciWhiteout('var/cache/.wh..wh..opq')).toEqual({ kind: 'opaque', path: 'var/cache' });
    expect(parseOciWhiteout('.wh..wh..opq')).toEqual({ kind: 'opaque', path: '' });
    expect(parseOciWhiteout('etc/passwd')).toBeNull();
    expect(parseOciWhiteout('etc/')).toBeNull();
    for (const bad of ['../.wh.x', 'a/../../.wh.y', 'a/.wh..', '..']) {
      expect(() => parseOciWhiteout(bad), bad).toThrow(expect.objectContaining({ code: 'ERR_LAYER_UNSAFE_PATH' }));
    }
    expect(() => ociWhiteoutName('')).toThrow(LayerError);
  });

  it('converts a real upper to the OCI form and back, and the kernel reads the result the same', async () => {
    const lower = join(dir, 'lower');
    makeBase(lower);
    const [upper, work, merged] = ['upper', 'work', 'merged'].map((d) => join(dir, d));
    const m = await Overlay.mount({ lower: [lower], upper: upper!, work: work!, target: merged!, source: 'ctk-oci' });
    let view: Record<string, string>;
    try {
      changeRoot(merged!);
      view = snapshot(merged!);
    } finally {
      await m.unmount();
    }
    const markers = await listWhiteouts(upper!);
    expect(markers).toEqual(
      [
        { path: '/dir-to-file', kind: 'whiteout' },
        { path: '/etc/motd', kind: 'whiteout' },
        { path: '/file-to-dir', kind: 'opaque' },
        { path: '/rename-me', kind: 'whiteout' },
        { path: '/var/cache/app', kind: 'opaque' },
        { path: '/var/log', kind: 'whiteout' },
      ].filter((w) => w.path !== '/dir-to-file'),
    ); // a file replaced the whiteout of dir-to-file
    expect(await convertWhiteoutsToOci(upper!, { userxattr: false })).toBe(markers.length);
    expect(await listWhiteouts(upper!)).toEqual([]);
    expect(readdirSync(join(upper!, 'etc'))).toContain('.wh.motd');
    expect(readdirSync(join(upper!, 'var/cache/app'))).toEqual(['.wh..wh..opq', 'new']);
    expect(lstatSync(join(upper!, 'var/.wh.log')).isFile()).toBe(true);
    expect(await convertWhiteoutsFromOci(upper!, { userxattr: false })).toBe(markers.length);
    expect(await listWhiteouts(upper!)).toEqual(markers);
    const m2 = await Overlay.mount({ lower: [lower], upper: upper!, work: work!, target: merged!, source: 'ctk-oci2' });
    try {
      expect(snapshot(merged!)).toEqual(view!);
    } finally {
      await m2.unmount();
    }
  });
});

describe('diff and commit of an overlay upper', () => {
  it('diff reports added, modified (chmod-only copy-up included) and deleted paths like docker diff', async () => {
    const lower = join(dir, 'lower');
    makeBase(lower);
    const [upper, work, merged] = ['upper', 'work', 'merged'].map((d) => join(dir, d));
    const m = await Overlay.mount({ lower: [lower], upper: upper!, work: work!, target: merged!, source: 'ctk-diff' });
    try {
      changeRoot(merged!);
      const changes = await m.diff();
      expect(changes.map((c) => [c.path, c.kind, c.type])).toEqual(CHANGES);
      expect(changes.filter((c) => c.opaque).map((c) => c.path)).toEqual(['/file-to-dir', '/var/cache/app']);
      // the chmod-only copy-up: same data, new mode, reported as a modification
      expect(readFileSync(join(upper!, 'etc/passwd'), 'utf8')).toBe(readFileSync(join(lower, 'etc/passwd'), 'utf8'));
      expect(formatChanges(changes).split('\n')).toContain('C /etc/passwd');
      expect(formatChanges(changes).split('\n')).toContain('D /var/log');
      expect(await diff({ upper: upper!, lower: [lower] })).toEqual(changes); // the same, from the dirs alone
    } finally {
      await m.unmount();
    }
  });

  it('commit writes a gzip tar whose sha256 is the digest and whose uncompressed sha256 is the diffID; it unpacks back to the merged view', async () => {
    const lower = join(dir, 'lower');
    makeBase(lower);
    const [upper, work, merged] = ['upper', 'work', 'merged'].map((d) => join(dir, d));
    const output = join(dir, 'layer.tar.gz');
    const m = await Overlay.mount({ lower: [lower], upper: upper!, work: work!, target: merged!, source: 'ctk-commit' });
    let view: Record<string, string>;
    let layer: Awaited<ReturnType<typeof m.commit>>;
    try {
      changeRoot(merged!);
      view = snapshot(merged!);
      layer = await m.commit({ output });
    } finally {
      await m.unmount();
    }
    const gz = readFileSync(output);
    const tarBytes = gunzipSync(gz);
    expect(layer.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
    expect(layer.digest).toBe(sha256(gz));
    expect(layer.diffID).toBe(sha256(tarBytes));
    expect(layer.size).toBe(gz.length);
    expect(layer.uncompressedSize).toBe(tarBytes.length);
    expect(layer.changes.map((c) => [c.path, c.kind, c.type])).toEqual(CHANGES);
    // deterministic: the same upper gives the same bytes
    expect((await commit({ upper: upper!, lower: [lower], output: join(dir, 'again.tar.gz') })).digest).toBe(layer.digest);

    const unpacked = copyOf(lower, join(dir, 'unpacked'));
    const headers = await applyLayer(output, unpacked);
    expect(snapshot(unpacked)).toEqual(view!);
    const names = headers.map((h) => h.name);
    expect(names).toContain('etc/.wh.motd');
    expect(names).toContain('var/.wh.log');
    expect(names.indexOf('var/cache/app/.wh..wh..opq')).toBe(names.indexOf('var/cache/app/') + 1);
    expect(names.filter((n) => n.startsWith('var/cache/app/'))).toEqual(['var/cache/app/', 'var/cache/app/.wh..wh..opq', 'var/cache/app/new']);
    expect(headers.find((h) => h.name === 'hard/new2')).toMatchObject({ type: 'link', linkname: 'hard/new1' });
    expect(headers.find((h) => h.name === 'bin/su')?.mode).toBe(0o4755);
    expect(headers.find((h) => h.name === 'etc/locked')?.mode).toBe(0);
    expect(headers.some((h) => h.type === 'character-device')).toBe(false);
    expect(names).not.toContain('usr/'); // untouched directories stay out of the layer
  });

  it('metadata-only copy-ups (metacopy=on): the data stays in the lower, yet diff and commit are right', async () => {
    const lower = join(dir, 'lower');
    const big = randomBytes(256 * 1024);
    write(lower, 'usr/lib/big.so', big, 0o644);
    const [upper, work, merged] = ['upper', 'work', 'merged'].map((d) => join(dir, d));
    const output = join(dir, 'layer.tar.gz');
    const m = await Overlay.mount({ lower: [lower], upper: upper!, work: work!, target: merged!, metacopy: true, source: 'ctk-metacopy' });
    try {
      chmodSync(join(merged!, 'usr/lib/big.so'), 0o755);
      const st = lstatSync(join(upper!, 'usr/lib/big.so'));
      expect(st.size).toBe(big.length);
      // Only metadata was copied up: no data blocks (ext4 may spend one block on the xattrs).
      expect(st.blocks * 512).toBeLessThanOrEqual(4096);
      expect(await m.diff()).toEqual([{ path: '/usr/lib/big.so', kind: 'modified', type: 'file' }]);
      await m.commit({ output });
    } finally {
      await m.unmount();
    }
    const unpacked = copyOf(lower, join(dir, 'unpacked'));
    await applyLayer(output, unpacked);
    expect(readFileSync(join(unpacked, 'usr/lib/big.so')).equals(big)).toBe(true);
    expect(lstatSync(join(unpacked, 'usr/lib/big.so')).mode & 0o777).toBe(0o755);
  });

  it('lowers in overlay form (whiteouts, opaque dirs) are honoured when deciding added vs modified', async () => {
    const [bottom, top] = [join(dir, 'bottom'), join(dir, 'top')];
    write(bottom, 'a', 'a');
    write(bottom, 'd/inner', 'i');
    write(bottom, 'x', 'x');
    mkdirSync(top);
    await createWhiteout(join(top, 'a'));
    mkdirSync(join(top, 'd'));
    await markOpaque(join(top, 'd'), { userxattr: false });
    const [upper, work, merged] = ['upper', 'work', 'merged'].map((d) => join(dir, d));
    const m = await Overlay.mount({ lower: [top, bottom], upper: upper!, work: work!, target: merged!, source: 'ctk-stack' });
    try {
      writeFileSync(join(merged!, 'a'), 'again'); // whited out below: a new file
      writeFileSync(join(merged!, 'd/inner'), 'again'); // hidden by the opaque dir: new too
      writeFileSync(join(merged!, 'x'), 'changed'); // visible below: modified
      expect((await m.diff()).filter((c) => c.type === 'file').map((c) => [c.path, c.kind])).toEqual([
        ['/a', 'added'],
        ['/d/inner', 'added'],
        ['/x', 'modified'],
      ]);
    } finally {
      await m.unmount();
    }
  });

  it('a missing upper is a typed error', async () => {
    await expect(diff({ upper: join(dir, 'nope'), lower: [dir] })).rejects.toMatchObject({ code: 'ERR_LAYER_NOT_FOUND' });
    await expect(commit({ upper: join(dir, 'nope'), lower: [dir], output: join(dir, 'x.tgz') })).rejects.toBeInstanceOf(LayerError);
  });

  it('commit honours its AbortSignal and leaves no partial file', async () => {
    const lower = join(dir, 'lower');
    makeBase(lower);
    const upper = join(dir, 'upper');
    write(upper, 'big', randomBytes(1 << 20));
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await expect(commit({ upper, lower: [lower], output: join(dir, 'x.tgz'), signal: ac.signal })).rejects.toMatchObject({ code: 'ABORT_ERR' });
    expect(readdirSync(dir)).not.toContain('x.tgz');
  });
});

describe('the copy driver', () => {
  it('copies the merged lowers, then diff and commit work on the copy as on an upper', async () => {
    const [bottom, top] = [join(dir, 'bottom'), join(dir, 'top')];
    makeBase(bottom);
    mkdirSync(top);
    await createWhiteout(join(top, 'usr')); // the top layer deleted /usr ...
    write(top, 'etc/issue', 'top layer\n'); // ... and added /etc/issue
    const lower = [top, bottom];
    const [upper, work, merged] = ['upper', 'work', 'merged'].map((d) => join(dir, d));
    const m = await Overlay.mount({ lower, upper: upper!, work: work!, target: merged!, source: 'ctk-copycmp' });
    const copy = await CopyLayer.create({ lower, target: join(dir, 'copy') });
    let overlayChanges: Change[];
    let overlayView: Record<string, string>;
    try {
      expect(copy.driver).toBe('copy');
      expect(snapshot(copy.target)).toEqual(snapshot(merged!)); // the copy is the merged view
      expect(readdirSync(copy.target)).not.toContain('usr');
      expect(await copy.diff()).toEqual([]); // an untouched copy has no changes
      expect(lstatSync(join(copy.target, 'hard/one')).ino).toBe(lstatSync(join(copy.target, 'hard/two')).ino);

      changeRoot(merged!);
      changeRoot(copy.target);
      overlayChanges = await m.diff();
      overlayView = snapshot(merged!);
      expect(snapshot(copy.target)).toEqual(overlayView);
      const changes = await copy.diff();
      // The same paths and kinds as overlay reports; a copy cannot know "opaque", it lists the deletions.
      expect(changes.map((c) => [c.path, c.kind, c.type])).toEqual(overlayChanges.map((c) => [c.path, c.kind, c.type]));
      expect(changes.some((c) => c.opaque)).toBe(false);
      const layer = await copy.commit({ output: join(dir, 'copy.tar.gz') });
      expect(layer.digest).toBe(sha256(readFileSync(join(dir, 'copy.tar.gz'))));
    } finally {
      await copy[Symbol.asyncDispose]();
      await m.unmount();
    }
    expect(readdirSync(dir)).not.toContain('copy'); // disposing removed the copy
    // The copy's layer applied over a fresh copy of the lowers gives the changed tree.
    const base = await CopyLayer.create({ lower, target: join(dir, 'base'), keep: true });
    await base[Symbol.asyncDispose]();
    expect(readdirSync(dir)).toContain('base'); // kept
    await applyLayer(join(dir, 'copy.tar.gz'), base.target);
    expect(snapshot(base.target)).toEqual(overlayView!);
  });

  it('refuses a target that is not empty', async () => {
    const l = join(dir, 'l');
    write(l, 'f', 'f');
    await expect(CopyLayer.create({ lower: [l], target: l })).rejects.toMatchObject({ code: 'ERR_LAYER_TARGET_NOT_EMPTY' });
    await expect(CopyLayer.create({ lower: [join(dir, 'none')], target: join(dir, 't') })).rejects.toMatchObject({ code: 'ERR_OVERLAY_LOWER_MISSING' });
  });

  it('chooseDriver picks overlay on the disk and tmpfs, the copy driver inside an overlay and on ramfs', async () => {
    const plain = join(dir, 'plain');
    mkdirSync(plain);
    // The temp dir's own file system (ext4 here, xfs or btrfs elsewhere), named as statfs names it.
    expect(await chooseDriver({ dir: plain })).toMatchObject({ driver: 'overlay', filesystem: fsType(plain) });
    const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((d) => join(dir, d));
    mkdirSync(lower!);
    const outer = await Overlay.mount({ lower: [lower!], upper: upper!, work: work!, target: merged!, source: 'ctk-nested' });
    const ram = join(dir, 'ram');
    const tmp = join(dir, 'tmp');
    mkdirSync(ram);
    mkdirSync(tmp);
    execFileSync('mount', ['-t', 'ramfs', 'ctk-ramfs', ram]);
    execFileSync('mount', ['-t', 'tmpfs', 'ctk-tmpfs', tmp]);
    try {
      const nested = await chooseDriver({ dir: merged! });
      expect(nested).toMatchObject({ driver: 'copy', filesystem: 'overlay' });
      expect(nested.reason).toMatch(/itself an overlay/);
      const onRamfs = await chooseDriver({ dir: ram });
      expect(onRamfs).toMatchObject({ driver: 'copy', filesystem: 'ramfs' });
      expect(onRamfs.reason).toMatch(/cannot store the opaque marker trusted\.overlay\.opaque \((ENOTSUP|EOPNOTSUPP)\)/);
      expect(readdirSync(ram)).toEqual([]); // the probe removed its scratch dir
      expect(await chooseDriver({ dir: tmp })).toMatchObject({ driver: 'overlay', filesystem: 'tmpfs' });
      // ... and the copy driver does work there, where overlay could not
      write(lower!, 'f', 'f');
      const layer: WritableLayer = await CopyLayer.create({ lower: [lower!], target: join(merged!, 'copy') });
      writeFileSync(join(layer.target, 'g'), 'g');
      expect(await layer.diff()).toEqual([{ path: '/g', kind: 'added', type: 'file' }]);
      await layer[Symbol.asyncDispose]();
    } finally {
      execFileSync('umount', [ram]);
      execFileSync('umount', [tmp]);
      await outer.unmount();
    }
  });
});
