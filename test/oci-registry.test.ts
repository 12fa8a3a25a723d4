import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Overlay, isOpaque } from 'ctrkit/overlay';
import { ImageStore, ManifestError, RegistryClient, type RegistryError, imageConfig, prepareImageRun, resolveCommand, type PullEvent } from 'ctrkit/oci';
import { PASSWORD, USER, buildImage, htpasswdFile, push, sh, startRegistry, startTokenServer, type Registry, type TokenServer } from './oci/lab.js';

const lab = mkdtempSync('/tmp/ctk-oci-reg-');
let layout = '';
let open: Registry;
let basic: Registry;
let tokenAuth: Registry;
let tokens: TokenServer;
let storeN = 0;
const newStore = () => ImageStore.open(join(lab, `store-${++storeN}`));
const noConfig = { dockerConfig: false as const };

beforeAll(async () => {
  layout = buildImage(lab);
  open = await startRegistry(join(lab, 'reg-open'));
  basic = await startRegistry(join(lab, 'reg-basic'), { htpasswd: htpasswdFile(lab) });
  tokens = await startTokenServer(lab);
  tokenAuth = await startRegistry(join(lab, 'reg-token'), { token: tokens });
  await push(layout, 'v1', `${open.host}/test/busybox:v1`);
  await push(layout, 'v1', `${open.host}/test/busybox:docker`, { format: 'v2s2' });
  await push(layout, 'base', `${open.host}/test/base:latest`);
  await push(layout, 'v1', `${basic.host}/private/busybox:v1`, { creds: true });
  await push(layout, 'v1', `${tokenAuth.host}/private/busybox:v1`, { creds: true });
  // A two-platform index: arm64 first, so choosing the host's amd64 must skip an entry.
  await push(layout, 'v1', `${open.host}/test/multi:amd64`);
  await push(layout, 'arm', `${open.host}/test/multi:arm64`);
  const entry = async (tag: string, architecture: string) => {
    const r = await fetch(`http://${open.host}/v2/test/multi/manifests/${tag}`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
    const body = Buffer.from(await r.arrayBuffer());
    return {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: r.headers.get('docker-content-digest'),
      size: body.length,
      platform: { os: 'linux', architecture },
    };
  };
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [await entry('arm64', 'arm64'), await entry('amd64', 'amd64')],
  };
  const put = await fetch(`http://${open.host}/v2/test/multi/manifests/both`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/vnd.oci.image.index.v1+json' },
    body: JSON.stringify(index),
  });
  if (put.status !== 201) throw new Error(`index PUT: ${put.status} ${await put.text()}`);
}, 180_000);

afterAll(async () => {
  await Promise.allSettled([open?.stop(), basic?.stop(), tokenAuth?.stop(), tokens?.stop()]);
  rmSync(lab, { recursive: true, force: true });
});

describe('pull from a real registry (anonymous)', () => {
  it('pulls an OCI image: verified blobs, lowers in overlay form, config, progress events', async () => {
    const store = await newStore();
    const events: PullEvent[] = [];
    const image = await store.pull(`${open.host}/test/busybox:v1`, { onProgress: (e) => events.push(e), ...noConfig });
    expect(image.name).toBe(`${open.host}/test/busybox:v1`);
    expect(image.layers).toHaveLength(4);
    expect(image.platform.architecture).toBe('amd64');
    const lowers = await store.lowers(image);
    expect(lowers).toHaveLength(4);
    const [opaqueLayer, whiteoutLayer, helloLayer, baseLayer] = lowers as [string, string, string, string];
    expect(readFileSync(join(baseLayer, 'bin/busybox')).length).toBeGreaterThan(100_000);
    expect(lstatSync(join(baseLayer, 'bin/sh')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(helloLayer, 'etc/hello.txt'), 'utf8')).toBe('hello from layer 2\n');
    const wh = lstatSync(join(whiteoutLayer, 'var/cache/old'));
    expect(wh.isCharacterDevice() && wh.rdev === 0).toBe(true);
    expect(await isOpaque(join(opaqueLayer, 'opt'), { userxattr: false })).toBe(true);
    const types = new Set(events.map((e) => e.type));
    expect([...types]).toEqual(expect.arrayContaining(['resolved', 'layer-progress', 'layer-downloaded', 'layer-unpacked', 'done']));
    const last = events.filter((e): e is Extract<PullEvent, { type: 'layer-progress' }> => e.type === 'layer-progress').at(-1)!;
    expect(last.bytes).toBeLessThanOrEqual(last.total);
    const run = imageConfig(image);
    expect(run).toMatchObject({
      entrypoint: ['/bin/sh', '-c'],
      env: { GREETING: 'ctrkit', PATH: '/bin' },
      workingDir: '/tmp',
      user: '0:0',
      exposedPorts: ['8080/tcp'],
    });
    expect(resolveCommand(run)).toEqual(['/bin/sh', '-c', 'echo hi from $GREETING in $(pwd)']);
    expect(resolveCommand(run, { command: ['echo', 'x'] })).toEqual(['/bin/sh', '-c', 'echo', 'x']);
    expect(resolveCommand(run, { entrypoint: ['/bin/id'] })).toEqual(['/bin/id']);
    // the lowers, mounted by the kernel as a read-only overlay, show the image's final tree
    const merged = join(lab, 'merged');
    {
      await using ov = await Overlay.mount({ lower: lowers, target: merged });
      expect(readdirSync(join(ov.target, 'var/cache'))).toEqual(['keep']);
      expect(readdirSync(join(ov.target, 'opt'))).toEqual(['new']);
      expect(readFileSync(join(ov.target, 'etc/hello.txt'), 'utf8')).toBe('hello from layer 2\n');
    }
    rmSync(merged, { recursive: true });
    // a flattened rootfs applies the whiteout and the opaque dir
    const flat = join(lab, 'flat');
    sh('mkdir', [flat]);
    await store.unpack(image, flat);
    expect(readdirSync(join(flat, 'var/cache'))).toEqual(['keep']);
    expect(readdirSync(join(flat, 'opt'))).toEqual(['new']);
    rmSync(flat, { recursive: true });
  });

  it('pulls Docker schema 2 too, and shares unpacked layers between images by diffID', async () => {
    const store = await newStore();
    const oci = await store.pull(`${open.host}/test/busybox:v1`, noConfig);
    const events: PullEvent[] = [];
    const docker = await store.pull(`${open.host}/test/busybox:docker`, { onProgress: (e) => events.push(e), ...noConfig });
    expect(docker.manifest.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(docker.layers.map((l) => l.diffID)).toEqual(oci.layers.map((l) => l.diffID));
    expect(await store.lowers(docker)).toEqual(await store.lowers(oci));
    const base = await store.pull(`${open.host}/test/base`, { onProgress: (e) => events.push(e), ...noConfig });
    expect(await store.lowers(base)).toEqual([(await store.lowers(oci)).at(-1)]);
    expect(events.some((e) => e.type === 'layer-cached')).toBe(true);
    expect(readdirSync(join(store.dir, '.ctrkit/layers'))).toHaveLength(4);
  });

  it('chooses the platform from an index', async () => {
    const store = await newStore();
    const amd = await store.pull(`${open.host}/test/multi:both`, noConfig);
    expect(amd.platform.architecture).toBe('amd64');
    const arm = await store.pull(`${open.host}/test/multi:both`, { platform: 'linux/arm64', unpack: false, ...noConfig });
    expect(arm.platform.architecture).toBe('arm64');
    expect(arm.digest).not.toBe(amd.digest);
    const err = await store.pull(`${open.host}/test/multi:both`, { platform: 'linux/s390x', ...noConfig }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ManifestError);
    expect((err as ManifestError).code).toBe('ERR_MANIFEST_PLATFORM');
    expect((err as Error).message).toContain('linux/arm64, linux/amd64');
  });

  it('pulls by digest, lists, removes and garbage-collects', async () => {
    const store = await newStore();
    const a = await store.pull(`${open.host}/test/busybox:v1`, noConfig);
    const byDigest = await store.pull(`${open.host}/test/busybox@${a.digest}`, noConfig);
    expect(byDigest.digest).toBe(a.digest);
    await store.pull(`${open.host}/test/base`, noConfig);
    expect((await store.list()).map((i) => i.name).sort()).toEqual([
      `${open.host}/test/base:latest`,
      `${open.host}/test/busybox:v1`,
      `${open.host}/test/busybox@${a.digest}`,
    ]);
    await store.remove(`${open.host}/test/busybox:v1`);
    expect((await store.gc()).blobsRemoved).toBe(0); // still named by digest
    await store.remove(`${open.host}/test/busybox@${a.digest}`);
    const gc = await store.gc();
    expect(gc).toMatchObject({ blobsRemoved: 5, layersRemoved: 3 }); // 3 layers + config + manifest; base's layer stays
    expect((await store.list()).map((i) => i.name)).toEqual([`${open.host}/test/base:latest`]);
    const err = await store.get(`${open.host}/test/busybox:v1`).catch((e: unknown) => e);
    expect((err as RegistryError).code).toBe('ERR_STORE_IMAGE_NOT_FOUND');
  });

  it('prepareImageRun: lowers, command, env, cwd and the user resolved in the image', async () => {
    const store = await newStore();
    const image = await store.ensure(`${open.host}/test/busybox:v1`, noConfig);
    const run = await prepareImageRun(store, image, { command: ['id'], env: { EXTRA: '1' }, user: 'nobody:nogroup' });
    expect(run.lowers).toEqual(await store.lowers(image));
    expect(run).toMatchObject({ command: ['/bin/sh', '-c', 'id'], cwd: '/tmp', uid: 65534, gid: 65534, exposedPorts: ['8080/tcp'] });
    expect(run.env).toEqual({ GREETING: 'ctrkit', PATH: '/bin', EXTRA: '1' });
    expect(await prepareImageRun(store, image)).toMatchObject({ uid: 0, gid: 0, command: ['/bin/sh', '-c', 'echo hi from $GREETING in $(pwd)'] });
    const err = await prepareImageRun(store, image, { user: 'ghost' }).catch((e: unknown) => e);
    expect((err as RegistryError).code).toBe('ERR_INVALID_OPTION');
  });

  it('concurrent pulls of one image into one store both succeed and share everything', async () => {
    const store = await newStore();
    const ref = `${open.host}/test/busybox:v1`;
    const [a, b] = await Promise.all([store.pull(ref, noConfig), store.pull(ref, noConfig)]);
    expect(a.digest).toBe(b.digest);
    expect(await store.lowers(a)).toEqual(await store.lowers(b));
    expect(readdirSync(join(store.dir, '.ctrkit/tmp'))).toEqual([]);
    expect((await store.ensure(ref, { ...noConfig, retries: 0, insecure: false })).digest).toBe(a.digest); // no network: already there
  });

  it('plain HTTP only for loopback or registries marked insecure', () => {
    expect(new RegistryClient('127.0.0.1:5000').baseUrl).toBe('http://127.0.0.1:5000');
    expect(new RegistryClient('localhost:5000').baseUrl).toBe('http://localhost:5000');
    expect(new RegistryClient('registry.example:5000').baseUrl).toBe('https://registry.example:5000');
    expect(new RegistryClient('registry.example:5000', { insecure: true }).baseUrl).toBe('http://registry.example:5000');
    expect(new RegistryClient('docker.io').baseUrl).toBe('https://registry-1.docker.io');
  });

  it('gc during a pull in this process keeps the blobs the pull has not named yet', async () => {
    const store = await newStore();
    const gcs: Promise<unknown>[] = [];
    const image = await store.pull(`${open.host}/test/busybox:v1`, {
      ...noConfig,
      concurrency: 1,
      unpack: false,
      onProgress: (e) => {
        if (e.type === 'layer-downloaded') gcs.push(store.gc());
      },
    });
    expect(gcs.length).toBe(4);
    await Promise.all(gcs);
    for (const l of image.layers) expect(await store.hasBlob(l.digest)).toBe(true);
    expect(await store.lowers(image)).toHaveLength(4);
  });

  it('a missing tag is ERR_REGISTRY_NOT_FOUND', async () => {
    const store = await newStore();
    const err = await store.pull(`${open.host}/test/busybox:nope`, noConfig).catch((e: unknown) => e);
    expect((err as RegistryError).code).toBe('ERR_REGISTRY_NOT_FOUND');
  });
});

describe('basic auth', () => {
  it('pulls with credentials given in code', async () => {
    const store = await newStore();
    const image = await store.pull(`${basic.host}/private/busybox:v1`, { credentials: { username: USER, password: PASSWORD }, unpack: false, ...noConfig });
    expect(image.layers).toHaveLength(4);
  });

  it('reads credentials from a Docker config.json', async () => {
    const cfg = join(lab, 'docker-config.json');
    writeFileSync(cfg, JSON.stringify({ auths: { [basic.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } }));
    const store = await newStore();
    const image = await store.pull(`${basic.host}/private/busybox:v1`, { dockerConfig: cfg, unpack: false });
    expect(image.layers).toHaveLength(4);
  });

  it('refuses wrong or missing credentials with ERR_REGISTRY_AUTH', async () => {
    const store = await newStore();
    const wrong = await store
      .pull(`${basic.host}/private/busybox:v1`, { credentials: { username: USER, password: 'nope' }, ...noConfig })
      .catch((e: unknown) => e);
    expect((wrong as RegistryError).code).toBe('ERR_REGISTRY_AUTH');
    const none = await store.pull(`${basic.host}/private/busybox:v1`, noConfig).catch((e: unknown) => e);
    expect((none as RegistryError).code).toBe('ERR_REGISTRY_AUTH');
    expect(await store.list()).toEqual([]);
  });
});

describe('token auth', () => {
  it('pulls with a bearer token, one token request per scope', async () => {
    tokens.requests.length = 0;
    const store = await newStore();
    const image = await store.pull(`${tokenAuth.host}/private/busybox:v1`, { credentials: { username: USER, password: PASSWORD }, unpack: false, ...noConfig });
    expect(image.layers).toHaveLength(4);
    expect(tokens.requests.filter((s) => s === 'repository:private/busybox:pull')).toHaveLength(1);
  });

  it('renews a token when it expires', async () => {
    const client = new RegistryClient(tokenAuth.host, { credentials: { username: USER, password: PASSWORD }, ...noConfig });
    tokens.requests.length = 0;
    const doc = await client.getManifest('private/busybox', 'v1');
    expect(doc.kind).toBe('manifest');
    // a token server saying expires_in: 6 s (renewed 5 s early): every request after 1 s needs a new one
    const short = await startTokenServer(lab, { expiresIn: 6 });
    const reg = await startRegistry(join(lab, 'reg-short'), { token: short });
    try {
      await push(layout, 'base', `${reg.host}/p/base:latest`, { creds: true });
      short.requests.length = 0;
      const c = new RegistryClient(reg.host, { credentials: { username: USER, password: PASSWORD }, ...noConfig });
      await c.getManifest('p/base', 'latest');
      await c.getManifest('p/base', 'latest');
      const before = short.requests.length;
      await new Promise((r) => setTimeout(r, 1200));
      await c.getManifest('p/base', 'latest');
      expect(short.requests.length).toBe(before + 1);
    } finally {
      await reg.stop();
      await short.stop();
    }
  });

  it('bad credentials at the token server are ERR_REGISTRY_AUTH', async () => {
    const store = await newStore();
    const err = await store
      .pull(`${tokenAuth.host}/private/busybox:v1`, { credentials: { username: USER, password: 'x' }, ...noConfig })
      .catch((e: unknown) => e);
    expect((err as RegistryError).code).toBe('ERR_REGISTRY_AUTH');
    expect(existsSync(join(store.dir, 'blobs/sha256')) && readdirSync(join(store.dir, 'blobs/sha256'))).toEqual([]);
  });
});
