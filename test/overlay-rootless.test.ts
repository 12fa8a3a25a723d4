import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, lstatSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isOpaque, isWhiteout, listWhiteouts } from 'ctrkit/overlay';
import { hostMounts, ROOTLESS_USER, rootlessPackageCopy, rootlessUid } from './helpers.js';

// An unprivileged user mounts an overlay in its own user namespace, as rootless container
// engines do. ctrkit runs from a copy of the package that user can read (the checkout may
// sit under a directory only root can enter).
let dir = '';
let cleanup = () => {};
const uid = rootlessUid();

beforeAll(() => {
  expect(uid, `user ${ROOTLESS_USER} must exist (test/setup/global.ts creates it)`).toBeDefined();
  [dir, cleanup] = rootlessPackageCopy();
});
afterAll(() => {
  const left = hostMounts().filter((m) => m.startsWith(dir));
  cleanup();
  expect(left).toEqual([]);
});

const SCRIPT = `
import { lstatSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { Overlay, inUserNamespace, isOpaque, isWhiteout, listWhiteouts } from 'ctrkit/overlay';
const [lower, upper, work, merged, layer] = process.argv.slice(2);
const out = { inUserNamespace: inUserNamespace(), uid: process.getuid() };
const m = await Overlay.mount({ lower: [lower], upper, work, target: merged, source: 'ctk-rootless' });
try {
  Object.assign(out, { userxattr: m.userxattr, api: m.api });
  rmSync(merged + '/gone.txt');
  rmSync(merged + '/opq', { recursive: true });
  mkdirSync(merged + '/opq');
  writeFileSync(merged + '/opq/new', 'n');
  const st = lstatSync(upper + '/gone.txt');
  out.whiteout = { characterDevice: st.isCharacterDevice(), rdev: st.rdev, isWhiteout: await isWhiteout(upper + '/gone.txt') };
  out.opaque = { user: await isOpaque(upper + '/opq', { userxattr: true }), trusted: await isOpaque(upper + '/opq', { userxattr: false }) };
  out.listed = await listWhiteouts(upper);
  out.mergedOpq = readdirSync(merged + '/opq');
  out.changes = (await m.diff()).map((c) => c.kind + ' ' + c.path);
  out.digest = (await m.commit({ output: layer })).digest;
} finally {
  await m.unmount();
}
console.log(JSON.stringify(out));
`;

describe('rootless: an overlay in a user namespace uses userxattr', () => {
  it('a whiteout appears as a 0:0 character device and an opaque dir as user.overlay.opaque', async () => {
    const lower = join(dir, 'lower');
    mkdirSync(join(lower, 'opq'), { recursive: true });
    writeFileSync(join(lower, 'gone.txt'), 'gone\n');
    writeFileSync(join(lower, 'opq/old'), 'old\n');
    writeFileSync(join(lower, 'kept'), 'kept\n');
    // A rootless user's layers are its own (a root-owned dir would be "nobody" in its namespace).
    execFileSync('chown', ['-R', `${uid}:${uid}`, lower]);
    const own = join(dir, 'own'); // the user's own directory for upper, work and the mount point
    mkdirSync(own);
    chownSync(own, uid!, uid!);
    const [upper, work, merged, layer] = ['upper', 'work', 'merged', 'layer.tar.gz'].map((d) => join(own, d));
    for (const d of [upper, work, merged]) {
      mkdirSync(d!);
      chownSync(d!, uid!, uid!);
    }
    const script = join(dir, 'rootless-overlay.mjs');
    writeFileSync(script, SCRIPT, { mode: 0o644 });
    const r = spawnSync('unshare', ['--user', '--map-root-user', '--mount', process.execPath, script, lower, upper!, work!, merged!, layer!], {
      uid,
      gid: uid,
      cwd: dir,
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: `/home/${ROOTLESS_USER}` },
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    expect(out).toMatchObject({
      inUserNamespace: true,
      uid: 0, // root inside
      userxattr: true, // chosen automatically
      api: 'fsconfig',
      whiteout: { characterDevice: true, rdev: 0, isWhiteout: true },
      opaque: { user: true, trusted: false },
      listed: [
        { path: '/gone.txt', kind: 'whiteout' },
        { path: '/opq', kind: 'opaque' },
      ],
      mergedOpq: ['new'],
      changes: ['deleted /gone.txt', 'modified /opq', 'added /opq/new', 'deleted /opq/old'],
    });

    // Seen from the host: the same markers, owned by the unprivileged user.
    const wh = lstatSync(join(upper!, 'gone.txt'));
    expect([wh.isCharacterDevice(), wh.rdev, wh.uid]).toEqual([true, 0, uid]);
    expect(await isWhiteout(join(upper!, 'gone.txt'))).toBe(true);
    expect(await isOpaque(join(upper!, 'opq'), { userxattr: true })).toBe(true);
    expect(await isOpaque(join(upper!, 'opq'), { userxattr: false })).toBe(false);
    expect(await listWhiteouts(upper!)).toEqual([
      { path: '/gone.txt', kind: 'whiteout' },
      { path: '/opq', kind: 'opaque' },
    ]);
    expect(readdirSync(lower).sort()).toEqual(['gone.txt', 'kept', 'opq']); // the lower is untouched
    // The committed layer carries the OCI forms of both.
    const tar = gunzipSync(readFileSync(layer!)).toString('latin1');
    expect(tar).toContain('.wh.gone.txt');
    expect(tar).toContain('opq/.wh..wh..opq');
    expect(execFileSync('cat', ['/proc/self/mountinfo'], { encoding: 'utf8' })).not.toContain('ctk-rootless');
  });

  it('without a user namespace an unprivileged mount is ERR_OVERLAY_PERMISSION, naming what is needed', () => {
    const own = join(dir, 'plain');
    mkdirSync(own);
    chownSync(own, uid!, uid!);
    const script = join(dir, 'unprivileged-overlay.mjs');
    writeFileSync(
      script,
      `
      import { mkdirSync } from 'node:fs';
      import { Overlay } from 'ctrkit/overlay';
      const d = process.argv[2];
      for (const x of ['l1', 'l2', 'm']) mkdirSync(d + '/' + x);
      try {
        await Overlay.mount({ lower: [d + '/l1', d + '/l2'], target: d + '/m' });
        console.log(JSON.stringify({ mounted: true }));
      } catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, errno: e.errno, errnoName: e.errnoName, message: e.message })); }
    `,
      { mode: 0o644 },
    );
    const r = spawnSync(process.execPath, [script, own], { uid, gid: uid, cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout.trim()) as Record<string, string>;
    expect(out).toMatchObject({ name: 'OverlayError', code: 'ERR_OVERLAY_PERMISSION', errno: 1, errnoName: 'EPERM' });
    expect(out.message).toMatch(/needs CAP_SYS_ADMIN over the mount namespace/);
  });
});
