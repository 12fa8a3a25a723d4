import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
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
