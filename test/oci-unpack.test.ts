import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chownSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { DigestMismatchError, UnsafeLayerError, unpackLayer } from 'ctrkit/oci';
import { isOpaque } from 'ctrkit/overlay';
import { makeTar, type Entry } from './oci/tar.js';

const base = mkdtempSync('/tmp/ctk-oci-unpack-');
afterAll(() => rmSync(base, { recursive: true, force: true }));

let n = 0;
let target = '';
let outside = '';
/** A snapshot of everything beside the target: what an escape would change. */
function outsideState(): string {
  return execFileSync('find', [outside, '-printf', '%p %m %s %y\\n'], { encoding: 'utf8' });
}
let before = '';
beforeEach(() => {
  const dir = join(base, String(++n));
  target = join(dir, 'target');
  outside = join(dir, 'outside');
  mkdirSync(target, { recursive: true });
  mkdirSync(outside, { mode: 0o755 });
  writeFileSync(join(outside, 'secret'), 'host secret\n', { mode: 0o600 });
  writeFileSync(join(outside, 'victim'), 'do not delete\n');
  before = outsideState();
});

async function unpack(entries: Entry[], options: Parameters<typeof unpackLayer>[2] = {}) {
  return unpackLayer(Readable.from([await makeTar(entries)]), target, options);
}

/** Expects the layer to be refused with ERR_UNSAFE_LAYER naming `entry`, and nothing outside to change. */
async function refused(entries: Entry[], entry: string, options: Parameters<typeof unpackLayer>[2] = {}): Promise<UnsafeLayerError> {
  const err = await unpack(entries, options).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UnsafeLayerError);
  expect((err as UnsafeLayerError).code).toBe('ERR_UNSAFE_LAYER');
  expect((err as UnsafeLayerError).entry).toBe(entry);
  expect((err as Error).message).toContain(entry);
  expect(outsideState()).toBe(before);
  expect(readdirSync(join(target, '..')).sort()).toEqual(['outside', 'target']);
  return err as UnsafeLayerError;
}

describe('unpackLayer: malicious layers', () => {
  it('refuses ../ in a name', async () => {
    await refused([{ name: '../escape', data: 'x' }], '../escape');
    await refused([{ name: 'a/../../escape', data: 'x' }], 'a/../../escape');
    await refused(
      [
        { name: 'ok/', type: 'directory' },
        { name: 'ok/../../outside/victim', data: 'x' },
      ],
      'ok/../../outside/victim',
    );
  });

  it('keeps absolute names inside the target', async () => {
    await unpack([
      { name: '/etc/passwd', data: 'root:x:0:0::/:/bin/sh\n' },
      { name: `/${outside.slice(1)}/victim`, data: 'overwritten?' },
    ]);
    expect(readFileSync(join(target, 'etc/passwd'), 'utf8')).toContain('root:x');
    expect(readFileSync(join(target, outside, 'victim'), 'utf8')).toBe('overwritten?');
    expect(outsideState()).toBe(before);
  });

  it('refuses writing through a symlink that climbs out of the target', async () => {
    await refused(
      [
        { name: 'link', type: 'symlink', linkname: '../outside' },
        { name: 'link/pwned', data: 'x' },
      ],
      'link/pwned',
    );
    await refused(
      [
        { name: 'a/', type: 'directory' },
        { name: 'a/up', type: 'symlink', linkname: '../../../outside' },
        { name: 'a/up/victim', data: 'x' },
      ],
      'a/up/victim',
    );
  });

  it('resolves an absolute symlink inside the target, as the container would see it', async () => {
    await unpack([
      { name: 'link', type: 'symlink', linkname: outside },
      { name: 'link/pwned', data: 'contained' },
    ]);
    expect(readFileSync(join(target, outside, 'pwned'), 'utf8')).toBe('contained');
    expect(readlinkSync(join(target, 'link'))).toBe(outside); // the symlink itself is content, kept as is
    expect(outsideState()).toBe(before);
  });

  it('replaces a symlink with a file instead of writing through it', async () => {
    await unpack([
      { name: 'victim', type: 'symlink', linkname: '../outside/victim' },
      { name: 'victim', data: 'replaced' },
    ]);
    expect(lstatSync(join(target, 'victim')).isFile()).toBe(true);
    expect(readFileSync(join(target, 'victim'), 'utf8')).toBe('replaced');
    expect(outsideState()).toBe(before);
  });

  it('a symlink loop is refused, not followed forever', async () => {
    await refused(
      [
        { name: 'a', type: 'symlink', linkname: 'b' },
        { name: 'b', type: 'symlink', linkname: 'a' },
        { name: 'a/x', data: '' },
      ],
      'a/x',
    );
  });

  it('refuses hardlinks that escape or do not name a regular file inside', async () => {
    await refused([{ name: 'h', type: 'link', linkname: '../outside/secret' }], 'h');
    await refused([{ name: 'h', type: 'link', linkname: `${outside}/secret` }], 'h'); // absolute: inside the target, where it is missing
    await refused(
      [
        { name: 'l', type: 'symlink', linkname: '../outside' },
        { name: 'h', type: 'link', linkname: 'l/secret' },
      ],
      'h',
    );
    await refused(
      [
        { name: 's', type: 'symlink', linkname: `${outside}/secret` },
        { name: 'h', type: 'link', linkname: 's' },
      ],
      'h',
    );
    await refused(
      [
        { name: 'd/', type: 'directory' },
        { name: 'h', type: 'link', linkname: 'd' },
      ],
      'h',
    );
  });

  it('a hardlink inside the target works and shares the inode', async () => {
    await unpack([
      { name: 'f', data: 'data', mode: 0o4755 },
      { name: 'g', type: 'link', linkname: 'f' },
    ]);
    expect(statSync(join(target, 'g')).ino).toBe(statSync(join(target, 'f')).ino);
    expect(statSync(join(target, 'g')).mode & 0o7777).toBe(0o4755);
  });

  it('refuses invalid whiteouts: of a parent, of nothing, reserved names, non-files', async () => {
    await refused([{ name: 'a/.wh...', data: '' }], 'a/.wh...');
    await refused([{ name: 'a/.wh..', data: '' }], 'a/.wh..');
    await refused([{ name: '.wh.', data: '' }], '.wh.');
    await refused([{ name: '.wh..wh.plnk', data: '' }], '.wh..wh.plnk');
    await refused([{ name: '.wh.victim/', type: 'directory' }], '.wh.victim/');
    await refused([{ name: '.wh.x', type: 'symlink', linkname: '/' }], '.wh.x');
    await refused([{ name: '../outside/.wh.victim', data: '' }], '../outside/.wh.victim');
  });

  it('refuses a whiteout through a symlink that leaves the target', async () => {
    await refused(
      [
        { name: 'l', type: 'symlink', linkname: '../outside' },
        { name: 'l/.wh.victim', data: '' },
      ],
      'l/.wh.victim',
    );
    // absolute: resolved inside the target, where nothing of that name is: the host file stays
    await unpack([
      { name: 'l', type: 'symlink', linkname: outside },
      { name: 'l/.wh.victim', data: '' },
    ]);
    expect(outsideState()).toBe(before);
  });

  it('refuses an opaque marker that is not a regular file, and one reached through an escaping symlink', async () => {
    await refused([{ name: 'd/.wh..wh..opq/', type: 'directory' }], 'd/.wh..wh..opq/');
    await refused(
      [
        { name: 'l', type: 'symlink', linkname: '../outside' },
        { name: 'l/.wh..wh..opq', data: '' },
      ],
      'l/.wh..wh..opq',
    );
  });

  it('a "/" entry is the target itself: a directory is fine, anything else refused', async () => {
    const mode = statSync(target).mode;
    await unpack([
      { name: '/', type: 'directory', mode: 0o777 },
      { name: './', type: 'directory' },
      { name: 'f', data: 'x' },
    ]);
    expect(statSync(target).mode).toBe(mode);
    await refused([{ name: '/', data: 'x' }], '/');
    await refused([{ name: '/', type: 'symlink', linkname: outside }], '/');
  });

  it('refuses a 0:0 character device (an overlay whiteout in disguise) and overlay xattrs', async () => {
    await refused([{ name: 'wh', type: 'character-device', devmajor: 0, devminor: 0 }], 'wh');
    await refused([{ name: 'd/', type: 'directory', pax: { 'SCHILY.xattr.trusted.overlay.opaque': 'y' } }], 'd/');
    await refused([{ name: 'f', data: '', pax: { 'SCHILY.xattr.user.overlay.redirect': '/etc' } }], 'f');
  });

  it('devices: skipped by default, created or refused as asked; fifos created', async () => {
    await unpack([
      { name: 'sda', type: 'block-device', devmajor: 8, devminor: 0 },
      { name: 'mem', type: 'character-device', devmajor: 1, devminor: 1 },
    ]);
    expect(readdirSync(target)).toEqual([]); // skipped by default
    await unpack(
      [
        { name: 'null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
        { name: 'fifo', type: 'fifo', mode: 0o640 },
      ],
      { devices: 'create' },
    );
    const st = lstatSync(join(target, 'null'));
    expect(st.isCharacterDevice()).toBe(true);
    expect(st.rdev).toBe(statSync('/dev/null').rdev);
    expect(st.mode & 0o777).toBe(0o666);
    expect(lstatSync(join(target, 'fifo')).isFIFO()).toBe(true);
    expect(lstatSync(join(target, 'fifo')).mode & 0o777).toBe(0o640);
    await refused([{ name: 'sda', type: 'block-device', devmajor: 8, devminor: 0 }], 'sda', { devices: 'refuse' });
    await unpack([{ name: 'sdb', type: 'block-device', devmajor: 8, devminor: 16 }], { devices: 'skip' });
    expect(existsSync(join(target, 'sdb'))).toBe(false);
  });

  it('a directory later replaced by a symlink does not get its mode applied through the link', async () => {
    await unpack([
      { name: 'd/', type: 'directory', mode: 0o777 },
      { name: 'd', type: 'symlink', linkname: '../outside' },
    ]);
    expect(lstatSync(join(target, 'd')).isSymbolicLink()).toBe(true);
    expect(outsideState()).toBe(before);
  });

  it('a device or fifo entry named through an escaping symlink is refused', async () => {
    await refused(
      [
        { name: 'l', type: 'symlink', linkname: '../outside' },
        { name: 'l/fifo', type: 'fifo' },
      ],
      'l/fifo',
    );
    await refused(
      [
        { name: 'l', type: 'symlink', linkname: '../outside' },
        { name: 'l/null', type: 'character-device', devmajor: 1, devminor: 3 },
      ],
      'l/null',
      { devices: 'create' },
    );
  });

  it('refuses a name with a NUL byte', async () => {
    const err = await unpack([{ name: 'a\0b', data: '' }]).then(
      () => undefined,
      (e: unknown) => e,
    );
    // tar-stream itself may cut the name at the NUL; either way nothing escapes
    if (err) expect(err).toBeInstanceOf(UnsafeLayerError);
    expect(outsideState()).toBe(before);
  });
});

describe('unpackLayer: ordinary layers', () => {
  it('keeps types, modes, owners, mtimes and reports the diffID; gzip or plain', async () => {
    const entries: Entry[] = [
      { name: 'bin/', type: 'directory', mode: 0o755 },
      { name: 'bin/tool', data: '#!/bin/sh\n', mode: 0o4755, uid: 1000, gid: 100 },
      { name: 'bin/alias', type: 'symlink', linkname: 'tool' },
      { name: 'ro/', type: 'directory', mode: 0o555, uid: 7, gid: 8 },
      { name: 'ro/file', data: 'inside a read-only dir', mode: 0o400 },
    ];
    const tar = await makeTar(entries);
    const { createHash } = await import('node:crypto');
    const diffID = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
    const r = await unpackLayer(Readable.from([await makeTar(entries, { gzip: true })]), target, { diffID });
    expect(r).toMatchObject({ diffID, entries: 5, compression: 'gzip' });
    const tool = statSync(join(target, 'bin/tool'));
    expect([tool.mode & 0o7777, tool.uid, tool.gid]).toEqual([0o4755, 1000, 100]);
    expect(tool.mtimeMs).toBe(1_700_000_000_000);
    expect(readlinkSync(join(target, 'bin/alias'))).toBe('tool');
    const ro = statSync(join(target, 'ro'));
    expect([ro.mode & 0o7777, ro.uid, ro.gid, ro.mtimeMs]).toEqual([0o555, 7, 8, 1_700_000_000_000]);
    const plainTarget = join(target, '..', 'plain');
    mkdirSync(plainTarget);
    const file = join(target, '..', 'layer.tar');
    writeFileSync(file, tar);
    expect((await unpackLayer(file, plainTarget)).compression).toBe('none');
    rmSync(plainTarget, { recursive: true });
    rmSync(file);
  });

  it('reads archives without the closing zero blocks (Go tar writers, umoci) and hashes the real bytes', async () => {
    const full = await makeTar([{ name: 'f', data: 'abc' }]);
    const cut = full.subarray(0, 512 + 3); // header + 3 bytes of data, no padding, no end blocks
    const { createHash } = await import('node:crypto');
    const r = await unpackLayer(Readable.from([cut]), target);
    expect(r.diffID).toBe(`sha256:${createHash('sha256').update(cut).digest('hex')}`);
    expect(readFileSync(join(target, 'f'), 'utf8')).toBe('abc');
  });

  it('recognizes zstd and refuses it with a typed error where Node has no zstd', async () => {
    const zstdFrame = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58, 0x00, 0x00]);
    const err = await unpackLayer(Readable.from([zstdFrame]), target).then(
      () => undefined,
      (e: unknown) => e,
    );
    if (err) expect((err as { code: string }).code).toBe('ERR_MANIFEST_UNSUPPORTED');
    expect(readdirSync(target)).toEqual([]);
  });

  it('an aborted signal stops the unpacking with AbortError', async () => {
    const ac = new AbortController();
    ac.abort();
    const err = await unpack([{ name: 'f', data: 'x' }], { signal: ac.signal }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as { code: string }).code).toBe('ABORT_ERR');
    expect(readdirSync(target)).toEqual([]);
  });

  it('a wrong diffID is ERR_DIGEST_MISMATCH', async () => {
    const err = await unpack([{ name: 'f', data: 'x' }], { diffID: `sha256:${'0'.repeat(64)}` }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect((err as DigestMismatchError).code).toBe('ERR_DIGEST_MISMATCH');
  });

  it('applies whiteouts and opaque markers to a flattened rootfs; only lower content goes', async () => {
    await unpack([
      { name: 'etc/', type: 'directory' },
      { name: 'etc/a', data: 'a' },
      { name: 'etc/b', data: 'b' },
      { name: 'var/', type: 'directory' },
      { name: 'var/old', data: 'old' },
    ]);
    await unpack([
      { name: 'etc/.wh.a', data: '' },
      { name: 'var/new', data: 'new' }, // before the marker: still this layer's, so it stays
      { name: 'var/.wh..wh..opq', data: '' },
      { name: 'etc/.wh.missing', data: '' },
    ]);
    expect(readdirSync(join(target, 'etc'))).toEqual(['b']);
    expect(readdirSync(join(target, 'var'))).toEqual(['new']);
  });

  it('writes whiteouts in overlay form for a lowerdir', async () => {
    await unpack(
      [
        { name: 'etc/', type: 'directory' },
        { name: 'etc/.wh.gone', data: '' },
        { name: 'etc/kept', data: '' },
        { name: 'etc/.wh.kept', data: '' }, // same layer: the entry stays
        { name: 'opq/', type: 'directory' },
        { name: 'opq/.wh..wh..opq', data: '' },
      ],
      { whiteouts: 'overlay' },
    );
    const wh = lstatSync(join(target, 'etc/gone'));
    expect(wh.isCharacterDevice() && wh.rdev === 0).toBe(true);
    expect(lstatSync(join(target, 'etc/kept')).isFile()).toBe(true);
    expect(await isOpaque(join(target, 'opq'), { userxattr: false })).toBe(true);
    expect(readdirSync(join(target, 'opq'))).toEqual([]);
  });
});

/** What a tree holds, as `find` sees it: path, type, mode, owner, whole-second mtime, size, link target. */
function listing(dir: string): string {
  return execFileSync('find', ['.', '-mindepth', '1', '-printf', '%p %y %m %U %G %Ts %s %l\\n'], { cwd: dir, encoding: 'utf8' }).split('\n').sort().join('\n');
}
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('unpackLayer: archives as tar writes them', () => {
  it('reads GNU and PAX archives as GNU tar does: long names and link targets, large ids, setuid, hardlinks', async () => {
    const src = join(base, 'formats-src');
    const long = 'd'.repeat(120);
    const deep = join(src, long, 'e'.repeat(90), 'f'.repeat(80));
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(deep, `${'n'.repeat(150)}.txt`), 'a file with a long name\n');
    writeFileSync(join(src, 'suid'), '#!/bin/sh\n', { mode: 0o4755 });
    writeFileSync(join(src, 'big-ids'), 'owned by 3000000:3000001\n');
    chownSync(join(src, 'big-ids'), 3_000_000, 3_000_001); // over 2097151: base-256 (GNU) or a PAX record
    symlinkSync(join(long, 'e'.repeat(90), 'f'.repeat(80), `${'n'.repeat(150)}.txt`), join(src, 'long-link'));
    linkSync(join(deep, `${'n'.repeat(150)}.txt`), join(src, 'hard'));
    mkdirSync(join(src, 'private'), { mode: 0o700 });
    writeFileSync(join(src, 'private', 'empty'), '');
    utimesSync(join(src, 'suid'), 1_600_000_000.5, 1_600_000_000.5);
    for (const format of ['gnu', 'posix']) {
      const file = join(base, `layer-${format}.tar`);
      execFileSync('tar', ['-C', src, '--numeric-owner', `--format=${format}`, '-cf', file, '.']);
      const reference = join(base, `ref-${format}`);
      mkdirSync(reference);
      execFileSync('tar', ['-C', reference, '--numeric-owner', '-xpf', file]);
      const r = await unpackLayer(file, target, { diffID: sha256(readFileSync(file)) });
      expect(r.compression).toBe('none');
      expect(listing(target)).toBe(listing(reference));
      expect(statSync(join(target, 'hard')).ino).toBe(statSync(join(target, long, 'e'.repeat(90), 'f'.repeat(80), `${'n'.repeat(150)}.txt`)).ino);
      rmSync(target, { recursive: true });
      mkdirSync(target);
    }
  });

  it('gives the same tree however the bytes are cut into chunks', async () => {
    const entries: Entry[] = [
      { name: 'd/', type: 'directory', mode: 0o711 },
      { name: `d/${'x'.repeat(140)}`, data: 'long name: a PAX header first\n'.repeat(40) },
      { name: 'd/empty', data: '' },
      { name: 'd/l', type: 'symlink', linkname: `${'y'.repeat(120)}/target` },
      { name: 'd/h', type: 'link', linkname: `d/${'x'.repeat(140)}` },
      { name: 'e/', type: 'directory' },
      { name: 'e/f', data: 'z'.repeat(1537), mode: 0o600, pax: { 'SCHILY.xattr.user.ctk': 'v' } },
    ];
    const tar = await makeTar(entries);
    const chunked = (bytes: Buffer, size: number) =>
      Readable.from(Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) => bytes.subarray(i * size, (i + 1) * size)));
    await unpackLayer(Readable.from([tar]), target);
    const whole = listing(target);
    for (const [size, gzip] of [
      [1, false],
      [7, false],
      [511, false],
      [513, true],
      [3, true],
    ] as const) {
      const dir = join(target, '..', `chunks-${size}-${gzip}`);
      mkdirSync(dir);
      const r = await unpackLayer(chunked(gzip ? gzipSync(tar) : tar, size), dir, { diffID: sha256(tar) });
      expect(r.entries).toBe(entries.length);
      expect(listing(dir)).toBe(whole);
      expect(readFileSync(join(dir, 'e/f'), 'utf8')).toBe('z'.repeat(1537));
      rmSync(dir, { recursive: true });
    }
  });

  it('refuses a header whose checksum is wrong, or an archive cut inside an entry', async () => {
    const tar = await makeTar([{ name: 'f', data: 'x'.repeat(600) }]);
    const corrupt = Buffer.from(tar);
    corrupt[0] = 0x67; // the name changes, the stored checksum does not
    const bad = await unpackLayer(Readable.from([corrupt]), target).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(UnsafeLayerError);
    expect((bad as Error).message).toContain('checksum');
    const cut = await unpackLayer(Readable.from([tar.subarray(0, 512 + 100)]), target).catch((e: unknown) => e);
    expect(cut).toBeInstanceOf(UnsafeLayerError);
    expect((cut as Error).message).toContain('ends inside an entry');
    expect(outsideState()).toBe(before);
  });
});

describe('unpackLayer: large layers (unpacked in a worker thread)', () => {
  // Over 2 MiB once gzipped: layers that large are unpacked in a worker thread.
  const big = randomBytes(3 * 1024 * 1024).toString('base64');
  const entries: Entry[] = [
    { name: 'd/', type: 'directory', mode: 0o750, uid: 7, gid: 8 },
    { name: 'd/big', data: big, mode: 0o640, uid: 1000, gid: 1001 },
    { name: 'd/link', type: 'symlink', linkname: 'big' },
    { name: 'd/hard', type: 'link', linkname: 'd/big' },
  ];
  const layerFile = async (list: Entry[]) => {
    const tar = await makeTar(list);
    const file = join(target, '..', 'layer.tar.gz');
    writeFileSync(file, gzipSync(tar));
    expect(statSync(file).size).toBeGreaterThan(2 * 1024 * 1024);
    return { file, diffID: sha256(tar), bytes: tar.length };
  };

  it('unpacks the same tree as in the calling thread and reports the diffID', async () => {
    const { file, diffID, bytes } = await layerFile(entries);
    expect(await unpackLayer(file, target, { diffID })).toEqual({ diffID, entries: 4, bytes, compression: 'gzip' });
    const st = statSync(join(target, 'd/big'));
    expect([st.mode & 0o7777, st.uid, st.gid, st.size, st.nlink]).toEqual([0o640, 1000, 1001, big.length, 2]);
    expect(readFileSync(join(target, 'd/big'), 'utf8')).toBe(big);
    expect(readlinkSync(join(target, 'd/link'))).toBe('big');
    const d = statSync(join(target, 'd'));
    expect([d.mode & 0o7777, d.uid, d.gid, d.mtimeMs]).toEqual([0o750, 7, 8, 1_700_000_000_000]);
    const inThread = join(target, '..', 'in-thread');
    mkdirSync(inThread);
    await unpackLayer(Readable.from([readFileSync(file)]), inThread, { diffID }); // a stream: this thread
    expect(listing(inThread)).toBe(listing(target));
    rmSync(inThread, { recursive: true });
  });

  it('refusals and digest mismatches cross the thread as themselves', async () => {
    const { file, diffID } = await layerFile([...entries, { name: 'd/../../escape', data: 'x' }]);
    const err = await unpackLayer(file, target).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafeLayerError);
    expect((err as UnsafeLayerError).code).toBe('ERR_UNSAFE_LAYER');
    expect((err as UnsafeLayerError).entry).toBe('d/../../escape');
    expect(outsideState()).toBe(before);
    expect(readdirSync(join(target, '..')).sort()).toEqual(['layer.tar.gz', 'outside', 'target']);
    const good = await layerFile(entries);
    rmSync(target, { recursive: true });
    mkdirSync(target);
    const wrong = await unpackLayer(good.file, target, { diffID: `sha256:${'0'.repeat(64)}` }).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(DigestMismatchError);
    expect((wrong as DigestMismatchError).actual).toBe(good.diffID);
    expect(diffID).not.toBe(good.diffID);
  });
});
