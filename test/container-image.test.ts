// Images end to end: a real registry on loopback, an image built with umoci and pushed with
// skopeo, then Container.run({ image }), a runtime bundle, and the CLI's pull/images/run/rmi.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container } from 'ctrkit';
import { createBundle, ImageStore } from 'ctrkit/oci';
import { tempDir } from './helpers.js';
import { buildImage, push, startRegistry, type Registry } from './oci/lab.js';

let dir = '';
let cleanup = () => {};
let registry: Registry;
let ref = '';

beforeAll(async () => {
  [dir, cleanup] = tempDir();
  registry = await startRegistry(join(dir, 'registry'));
  const layout = buildImage(join(dir, 'build'));
  ref = `${registry.host}/ctk/app:v1`;
  await push(layout, 'v1', ref);
}, 120_000);

afterAll(async () => {
  await registry?.stop();
  cleanup();
});

describe('Container.run({ image })', () => {
  it('pulls when missing, layers the image under a copy-on-write root, and applies its config', async () => {
    const store = join(dir, 'store');
    const events: string[] = [];
    const r = await Container.run({ image: ref, store, pullOptions: { onProgress: (e) => events.push(e.type) } });
    // The image's entrypoint + cmd, env and working dir.
    expect(r.stdout).toBe('hi from ctrkit in /tmp\n');
    expect(r.exitCode).toBe(0);
    expect(events).toContain('resolved');
    expect(events).toContain('done');
    // Its layers: layer 2's file, layer 3's whiteout, layer 4's opaque /opt.
    const look = await Container.run({
      image: ref,
      store,
      pull: 'never',
      entrypoint: ['/bin/sh'],
      command: ['-c', 'cat /etc/hello.txt; ls /var/cache; ls /opt; id -u'],
    });
    expect(look.stdout.split('\n')).toEqual(['hello from layer 2', 'keep', 'new', '0', '']);
    // Writes never reach the shared layers.
    await Container.run({ image: ref, store, entrypoint: ['/bin/sh'], command: ['-c', 'echo x > /etc/hello.txt'] });
    const again = await Container.run({ image: ref, store, entrypoint: ['/bin/cat'], command: ['/etc/hello.txt'] });
    expect(again.stdout).toBe('hello from layer 2\n');
  });

  it('runs as the user asked for, and refuses a missing image with pull: never', async () => {
    const store = join(dir, 'store');
    const r = await Container.run({ image: ref, store, user: 'nobody', entrypoint: ['/bin/id'], command: [] });
    expect(r.stdout).toMatch(/^uid=65534/);
    await expect(Container.run({ image: `${registry.host}/ctk/none:v1`, store, pull: 'never' })).rejects.toMatchObject({ name: 'ImageStoreError' });
  });

  it('runs an OCI runtime bundle written from the image', async () => {
    const store = await ImageStore.open(join(dir, 'store'));
    const image = await store.get(ref);
    const bundle = join(dir, 'bundle');
    await createBundle(store, image, bundle);
    const r = await Container.run({ bundle });
    expect(r.stdout).toBe('hi from ctrkit in /tmp\n');
  });
});

describe('the CLI image verbs', () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, ['dist/cli/main.js', ...args], { encoding: 'utf8', env: { ...process.env, CTRKIT_IMAGES: join(dir, 'cli-store') } });

  it('pull, images, run IMAGE, rmi', () => {
    const pulled = cli('pull', ref);
    expect(pulled.status).toBe(0);
    expect(pulled.stderr).toMatch(new RegExp(`^pulled ${ref.replace(/[.]/g, '\\.')}`, 'm'));
    const list = cli('images');
    expect(list.stdout).toContain('ctk/app:v1');
    const run = cli('run', '--network', 'none', ref);
    expect(run.stdout).toBe('hi from ctrkit in /tmp\n');
    expect(run.status).toBe(0);
    const cmd = cli('run', '--network', 'none', '--entrypoint', '/bin/cat', ref, '/etc/hello.txt');
    expect(cmd.stdout).toBe('hello from layer 2\n');
    expect(cli('rmi', ref).status).toBe(0);
    expect(cli('images').stdout).not.toContain('ctk/app:v1');
  });
});
