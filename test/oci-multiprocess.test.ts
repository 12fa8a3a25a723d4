// Several processes sharing one image store: index.json updates are not lost, and one
// process's gc keeps the blobs another live process's pull holds.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ImageStore } from 'ctrkit/oci';
import { createHash } from 'node:crypto';
import { tempDir } from './helpers.js';

const [dir, cleanup] = tempDir();
mkdirSync(join(dir, 'node_modules'));
symlinkSync(process.cwd(), join(dir, 'node_modules', 'ctrkit'));
afterAll(() => cleanup());

/** Runs an ES module from `dir` (so `import 'ctrkit/oci'` resolves); resolves with its stdout. */
function child(code: string): { done: Promise<string>; kill: () => void; ready: Promise<void> } {
  const p = spawn(process.execPath, ['--input-type=module', '-e', code], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let ready: () => void = () => {};
  const readyP = new Promise<void>((r) => (ready = r));
  p.stdout.on('data', (d: Buffer) => {
    out += d;
    if (out.includes('ready')) ready();
  });
  return { done: new Promise((r) => p.on('exit', () => r(out))), kill: () => p.kill('SIGKILL'), ready: readyP };
}

describe('one store, several processes', () => {
  it('concurrent tags from two processes all land in index.json', async () => {
    const storeDir = join(dir, 'tags');
    await ImageStore.open(storeDir);
    const tagger = (who: string) =>
      child(`
      import { ImageStore } from 'ctrkit/oci';
      const s = await ImageStore.open(${JSON.stringify(storeDir)});
      const d = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: 'sha256:' + '0'.repeat(64), size: 1 };
      await Promise.all(Array.from({ length: 25 }, (_, i) => s.tag('${who}-' + i, d)));
      console.log('done');
    `);
    await Promise.all([tagger('a').done, tagger('b').done]);
    const index = JSON.parse(readFileSync(join(storeDir, 'index.json'), 'utf8')) as { manifests: { annotations: Record<string, string> }[] };
    const names = index.manifests.map((m) => m.annotations['org.opencontainers.image.ref.name']);
    expect(new Set(names).size).toBe(50);
  });

  it('gc keeps blobs a live process holds, and collects them once it is gone', async () => {
    const storeDir = join(dir, 'holds');
    const store = await ImageStore.open(storeDir);
    const bytes = Buffer.from('an unreferenced blob');
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    await store.writeBlob(digest, bytes);
    const holder = child(`
      import { ImageStore } from 'ctrkit/oci';
      const s = await ImageStore.open(${JSON.stringify(storeDir)});
      s.hold(['${digest}']);
      console.log('ready');
      setInterval(() => {}, 1000);
    `);
    await holder.ready;
    await store.gc();
    expect(await store.hasBlob(digest)).toBe(true);
    holder.kill();
    await holder.done;
    await store.gc();
    expect(await store.hasBlob(digest)).toBe(false);
  });
});
