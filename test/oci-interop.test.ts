import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BundleError, ImageStore, createBundle, readBundle } from 'ctrkit/oci';
import { buildImage, push, sh, startRegistry, type Registry } from './oci/lab.js';

const run = promisify(execFile);
const lab = mkdtempSync('/tmp/ctk-oci-interop-');
let layout = '';
let registry: Registry;
const noConfig = { dockerConfig: false as const };

beforeAll(async () => {
  layout = buildImage(lab);
  registry = await startRegistry(join(lab, 'reg'));
  await push(layout, 'v1', `${registry.host}/test/busybox:v1`);
}, 120_000);

afterAll(async () => {
  await registry?.stop();
  rmSync(lab, { recursive: true, force: true });
});

/** Runs a bundle with the real runc; returns its stdout. The container's cgroup is one level, which runc removes. */
async function runc(bundle: string): Promise<string> {
  const id = `ctk-oci-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    const { stdout } = await run('runc', ['run', '--bundle', bundle, id], { timeout: 30_000 });
    return stdout;
  } finally {
    await run('runc', ['delete', '--force', id]).catch(() => undefined);
    expect(existsSync(`/sys/fs/cgroup/memory/${id}`)).toBe(false);
  }
}

describe('skopeo and umoci interoperate with the store', () => {
  it('ctrkit reads an image skopeo copied into the store', async () => {
    const store = await ImageStore.open(join(lab, 'store-skopeo'));
    sh('skopeo', ['copy', '--quiet', `oci:${layout}:v1`, `oci:${store.dir}:from-skopeo`]);
    const image = await store.get('from-skopeo');
    expect(image.layers).toHaveLength(4);
    const lowers = await store.lowers(image);
    expect(readFileSync(join(lowers[2]!, 'etc/hello.txt'), 'utf8')).toBe('hello from layer 2\n');
  });

  it('ctrkit opens a layout umoci built as a store, names and all', async () => {
    const store = await ImageStore.open(layout);
    expect((await store.list()).map((i) => i.name).sort()).toEqual(['arm', 'base', 'v1']);
    const arm = await store.get('arm');
    expect(arm.platform.architecture).toBe('arm64');
    const flat = join(lab, 'flat-umoci');
    sh('mkdir', [flat]);
    await store.unpack(await store.get('v1'), flat);
    expect(readdirSync(join(flat, 'opt'))).toEqual(['new']);
    sh('umoci', ['stat', '--image', `${layout}:v1`]); // and umoci still reads it after ctrkit did
  });

  it('skopeo and umoci read an image ctrkit pulled', async () => {
    const store = await ImageStore.open(join(lab, 'store-pulled'));
    const ref = `${registry.host}/test/busybox:v1`;
    const image = await store.pull(ref, { ...noConfig, unpack: false });
    const raw = JSON.parse(sh('skopeo', ['inspect', '--raw', `oci:${store.dir}:${ref}`])) as { config: { digest: string } };
    expect(raw.config.digest).toBe(image.configDigest);
    const out = join(lab, 'copied');
    sh('skopeo', ['copy', '--quiet', `oci:${store.dir}:${ref}`, `oci:${out}:x`]);
    expect(existsSync(join(out, 'index.json'))).toBe(true);
    const bundle = join(lab, 'umoci-bundle');
    sh('umoci', ['unpack', '--image', `${store.dir}:${ref}`, bundle]);
    expect(readdirSync(join(bundle, 'rootfs/var/cache'))).toEqual(['keep']);
    // and readBundle reads the bundle umoci wrote
    const b = await readBundle(bundle);
    expect(b.args).toEqual(['/bin/sh', '-c', 'echo hi from $GREETING in $(pwd)']);
    expect(b.env.GREETING).toBe('ctrkit');
    expect(b.cwd).toBe('/tmp');
    expect(b.rootfs).toBe(join(bundle, 'rootfs'));
  });
});

describe('runtime bundles', () => {
  it('runc runs a bundle ctrkit wrote, with the image config applied', async () => {
    const store = await ImageStore.open(join(lab, 'store-bundle'));
    const image = await store.pull(`${registry.host}/test/busybox:v1`, { ...noConfig, unpack: false });
    const dir = join(lab, 'bundle');
    const bundle = await createBundle(store, image, dir);
    expect(bundle.args).toEqual(['/bin/sh', '-c', 'echo hi from $GREETING in $(pwd)']);
    expect(bundle.rootfs).toBe(join(dir, 'rootfs'));
    expect(await runc(dir)).toBe('hi from ctrkit in /tmp\n');

    const dir2 = join(lab, 'bundle2');
    await createBundle(store, image, dir2, {
      command: ['hostname; id -u; cat /etc/hello.txt; ls /opt; ls /var/cache'],
      user: 'nobody',
      cwd: '/',
      hostname: 'ctk-bundle',
      cgroupsPath: `/ctk-oci-${process.pid}`,
    });
    // the whiteout and the opaque /opt of layers 3 and 4 are applied in the flat rootfs
    expect(await runc(dir2)).toBe('ctk-bundle\n65534\nhello from layer 2\nnew\nkeep\n');
    expect(existsSync(`/sys/fs/cgroup/memory/ctk-oci-${process.pid}`)).toBe(false);
    expect((await readBundle(dir2)).user).toEqual({ uid: 65534, gid: 65534, additionalGids: [] });
  });

  it('refuses a bundle dir that is not empty, and reads only valid config.json files', async () => {
    const store = await ImageStore.open(join(lab, 'store-bundle'));
    const image = await store.get(`${registry.host}/test/busybox:v1`);
    const err = await createBundle(store, image, join(lab, 'bundle')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BundleError);
    expect((err as BundleError).code).toBe('ERR_BUNDLE_INVALID');
    const bad = await readBundle(join(lab, 'rootfs')).catch((e: unknown) => e);
    expect((bad as BundleError).code).toBe('ERR_BUNDLE_INVALID');
  });
});
