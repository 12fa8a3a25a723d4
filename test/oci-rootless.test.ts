import { execFileSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOTLESS_USER, rootlessPackageCopy, rootlessUid } from './helpers.js';
import { makeTar } from './oci/tar.js';

const uid = rootlessUid();
const [dir, cleanup] = uid === undefined ? ['', () => {}] : rootlessPackageCopy();
afterAll(() => cleanup());

// As an unprivileged user, outside any user namespace: the store's lowers use the userxattr
// form (user.overlay.opaque; 0:0 whiteout devices, which anyone may make since Linux 5.8).
const script = `
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync } from 'node:fs';
import { ImageStore } from 'ctrkit/oci';
import { isOpaque } from 'ctrkit/overlay';
const sha = (b) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const layer = readFileSync('layer.tar');
const config = Buffer.from(JSON.stringify({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [sha(layer)] } }));
const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
  layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(layer), size: layer.length }] }));
const store = await ImageStore.open('store');
for (const b of [layer, config, manifest]) await store.writeBlob(sha(b), b);
await store.tag('local/rootless:1', { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(manifest), size: manifest.length });
const [lower] = await store.lowers(await store.get('local/rootless:1'));
const wh = lstatSync(lower + '/etc/gone');
console.log(JSON.stringify({ whiteout: wh.isCharacterDevice() && wh.rdev === 0, opaque: await isOpaque(lower + '/opq', { userxattr: true }), owner: lstatSync(lower + '/f').uid, big: lstatSync(lower + '/big').size }));
`;

describe.skipIf(uid === undefined)('rootless image layers', () => {
  it('an unprivileged user gets lowers in the userxattr form, owned by itself', async () => {
    writeFileSync(
      join(dir, 'layer.tar'),
      await makeTar([
        { name: 'etc/', type: 'directory' },
        { name: 'etc/.wh.gone', data: '' },
        { name: 'opq/', type: 'directory' },
        { name: 'opq/.wh..wh..opq', data: '' },
        { name: 'f', data: 'x', uid: 0, gid: 0 },
        { name: 'big', data: 'b'.repeat(3 * 1024 * 1024) }, // a layer over 2 MiB: unpacked in a worker thread
      ]),
    );
    writeFileSync(join(dir, 'check.mjs'), script);
    chmodSync(dir, 0o777);
    const out = execFileSync('su', [ROOTLESS_USER, '-s', '/bin/sh', '-c', `cd ${dir} && ${process.execPath} check.mjs`], { encoding: 'utf8' });
    expect(JSON.parse(out.trim().split('\n').at(-1)!)).toEqual({ whiteout: true, opaque: true, owner: uid, big: 3 * 1024 * 1024 });
  });
});
