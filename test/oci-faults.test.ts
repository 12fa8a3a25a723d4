import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError } from 'ctrkit';
import { DigestMismatchError, ImageStore, type ManifestError, RegistryError, UnsafeLayerError } from 'ctrkit/oci';
import { startFaultServer, type FaultServer } from './oci/fault-server.js';

const dir = mkdtempSync('/tmp/ctk-oci-faults-');
let server: FaultServer;
let authServer: FaultServer;
let n = 0;
const fast = { dockerConfig: false as const, retries: 2, retryDelay: 10, unpack: false };

beforeAll(async () => {
  server = await startFaultServer();
  authServer = await startFaultServer({ basicAuth: 'u:p' });
});
afterAll(async () => {
  await Promise.allSettled([server?.stop(), authServer?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

/** Pulls `repo` into a fresh store; returns the error, and checks nothing partial entered the store. */
async function failingPull(repo: string, extra: Record<string, unknown> = {}): Promise<unknown> {
  const store = await ImageStore.open(join(dir, String(++n)));
  const err = await store.pull(`${server.host}/${repo}:t`, { ...fast, ...extra }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeDefined();
  expect(await store.list()).toEqual([]);
  expect(existsSync(store.blobPath(server.layerDigest))).toBe(false);
  expect(readdirSync(join(store.dir, '.ctrkit/tmp'))).toEqual([]);
  expect(readdirSync(join(store.dir, '.ctrkit/layers'))).toEqual([]);
  return err;
}

describe('a registry that misbehaves', () => {
  it('sanity: the well-behaved repository pulls', async () => {
    const store = await ImageStore.open(join(dir, String(++n)));
    const image = await store.pull(`${server.host}/ok:t`, { ...fast, unpack: true });
    expect(image.layers[0]!.digest).toBe(server.layerDigest);
  });

  it('a blob with the wrong bytes is ERR_DIGEST_MISMATCH and never stored', async () => {
    const err = await failingPull('wrongdigest');
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect((err as DigestMismatchError).expected).toBe(server.layerDigest);
  });

  it('a blob that always breaks off is ERR_REGISTRY_TRUNCATED after the retries', async () => {
    const err = await failingPull('truncated');
    expect((err as RegistryError).code).toBe('ERR_REGISTRY_TRUNCATED');
  });

  it('a broken-off blob is resumed with Range', async () => {
    const store = await ImageStore.open(join(dir, String(++n)));
    await store.pull(`${server.host}/resume:t`, fast);
    expect(server.ranges).toHaveLength(1);
    expect(Number(/\d+/.exec(server.ranges[0]!)![0])).toBeGreaterThan(0);
  });

  it('500s are retried with backoff, then reported with the status', async () => {
    const store = await ImageStore.open(join(dir, String(++n)));
    await store.pull(`${server.host}/flaky:t`, fast); // 500, 500, then fine
    const err = await failingPull('fail500');
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).code).toBe('ERR_REGISTRY_HTTP');
    expect((err as RegistryError).status).toBe(500);
  });

  it('a body that stalls is ERR_REGISTRY_TIMEOUT, and an abort stops it at once', async () => {
    // The body never ends: only the idle timeout can end this pull (a hang fails the test's own timeout).
    const err = await failingPull('slow', { idleTimeout: 300, retries: 0 });
    expect((err as RegistryError).code).toBe('ERR_REGISTRY_TIMEOUT');
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const aborted = await failingPull('slow', { signal: ac.signal });
    expect(aborted).toBeInstanceOf(AbortError);
  });

  it('a mediaType that differs from the Content-Type is refused', async () => {
    const err = await failingPull('mediatype');
    expect((err as ManifestError).code).toBe('ERR_MANIFEST_MEDIA_TYPE');
  });

  it('a document with both manifests and layers is refused', async () => {
    const err = await failingPull('ambiguous');
    expect((err as ManifestError).code).toBe('ERR_MANIFEST_AMBIGUOUS');
  });

  it('follows a blob redirect to another host without sending it the Authorization header', async () => {
    const store = await ImageStore.open(join(dir, String(++n)));
    await store.pull(`${authServer.host}/redirect:t`, { ...fast, credentials: { username: 'u', password: 'p' } });
    expect(authServer.redirectAuth).toEqual(['none']);
  });

  it('a pull killed mid-blob (SIGKILL) leaves no blob under its digest and no name', async () => {
    const storeDir = join(dir, String(++n));
    const oci = fileURLToPath(new URL('../dist/oci/index.js', import.meta.url));
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `
      import { ImageStore } from ${JSON.stringify(oci)};
      const store = await ImageStore.open(${JSON.stringify(storeDir)});
      await store.pull('${server.host}/slow:t', { dockerConfig: false, idleTimeout: 60000, unpack: false });`,
      ],
      { stdio: 'ignore' },
    );
    try {
      const tmp = join(storeDir, '.ctrkit/tmp');
      const deadline = Date.now() + 10_000;
      // wait until the blob download is under way (its temp file open, the first bytes sent), then kill outright
      const downloading = () => existsSync(tmp) && readdirSync(tmp).some((f) => f.startsWith('blob-'));
      while (Date.now() < deadline && !downloading()) await new Promise((r) => setTimeout(r, 20));
      expect(downloading()).toBe(true);
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    const store = await ImageStore.open(storeDir);
    expect(existsSync(store.blobPath(server.layerDigest))).toBe(false);
    expect(await store.list()).toEqual([]);
    expect(JSON.parse(readFileSync(join(storeDir, 'index.json'), 'utf8')).manifests).toEqual([]);
    await store.pull(`${server.host}/ok:t`, fast); // the store is fine afterwards
    expect(existsSync(store.blobPath(server.layerDigest))).toBe(true);
  });

  it('a registry that is not listening is ERR_REGISTRY_UNREACHABLE', async () => {
    const store = await ImageStore.open(join(dir, String(++n)));
    const err = await store.pull('127.0.0.1:1/x:t', fast).catch((e: unknown) => e);
    expect((err as RegistryError).code).toBe('ERR_REGISTRY_UNREACHABLE');
  });
});

describe('unpacking while downloading', () => {
  const unpacking = { ...fast, unpack: true };

  it('wrong bytes are ERR_DIGEST_MISMATCH, not what unpacking them did, and no layer dir is left', async () => {
    const err = await failingPull('wrongdigest', unpacking);
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect((err as DigestMismatchError).expected).toBe(server.layerDigest);
    const big = await failingPull('bigwrong', unpacking); // the same in a worker thread
    expect(big).toBeInstanceOf(DigestMismatchError);
    expect((big as DigestMismatchError).expected).toBe(server.images.bigwrong!.layerDigest);
  });

  it('a download that breaks off and restarts from byte 0 restarts the unpacking; one that stays short leaves nothing', async () => {
    const err = await failingPull('truncated', unpacking); // never resumed: every retry starts over
    expect((err as RegistryError).code).toBe('ERR_REGISTRY_TRUNCATED');
    const store = await ImageStore.open(join(dir, String(++n)));
    const image = await store.pull(`${server.host}/resume:t`, unpacking); // resumed with Range, unnoticed by the unpacking
    const [lower] = await store.lowers(image);
    expect(readFileSync(join(lower!, 'hello'), 'utf8')).toBe('hello\n'.repeat(20_000));
  });

  it('an unsafe entry fails the pull with ERR_UNSAFE_LAYER: no name, no blob, no layer dir, nothing outside', async () => {
    for (const repo of ['unsafe', 'bigunsafe']) {
      const err = await failingPull(repo, unpacking);
      expect(err).toBeInstanceOf(UnsafeLayerError);
      expect((err as UnsafeLayerError).code).toBe('ERR_UNSAFE_LAYER');
      expect((err as UnsafeLayerError).entry).toBe('../escape');
      expect(existsSync(join(dir, String(n), '.ctrkit', 'escape'))).toBe(false);
      expect(existsSync(join(dir, String(n), '.ctrkit', 'tmp', 'escape'))).toBe(false);
    }
  });

  it('a large layer (unpacked in a worker thread while it downloads) lands whole under its diffID', async () => {
    const big = server.images.big!;
    expect(big.size).toBeGreaterThan(2 * 1024 * 1024);
    const store = await ImageStore.open(join(dir, String(++n)));
    const events: string[] = [];
    const image = await store.pull(`${server.host}/big:t`, { ...unpacking, onProgress: (e) => events.push(e.type) });
    expect(events.filter((t) => t === 'layer-downloaded' || t === 'layer-unpacked')).toEqual(['layer-downloaded', 'layer-unpacked']);
    const [lower] = await store.lowers(image);
    expect(lower).toBe(join(store.dir, '.ctrkit/layers', big.diffID.slice(7)));
    expect(readFileSync(join(lower!, 'data/small'), 'utf8')).toBe('small\n');
    expect(readFileSync(join(lower!, 'data/big.txt')).length).toBe(4 * 1024 * 1024);
    expect(readdirSync(join(store.dir, '.ctrkit/tmp'))).toEqual([]);
  });

  it('an abort stops a pull mid-layer and leaves no layer dir, whichever thread was unpacking it', async () => {
    for (const repo of ['slow', 'bigslow']) {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 300);
      const err = await failingPull(repo, { ...unpacking, signal: ac.signal });
      expect(err).toBeInstanceOf(AbortError);
      await new Promise((r) => setTimeout(r, 100)); // and nothing comes back afterwards
      expect(readdirSync(join(dir, String(n), '.ctrkit/tmp'))).toEqual([]);
    }
  });
});
