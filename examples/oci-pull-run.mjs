// Pull an image from a registry into an image store, with one progress line per layer, then
// run it with runc from a runtime bundle ctrkit writes — `docker pull` + `docker run`, daemonless.
// Usage: node examples/oci-pull-run.mjs REFERENCE [COMMAND...]   (as root; runc installed)
//   e.g. node examples/oci-pull-run.mjs 127.0.0.1:5000/test/busybox:v1 sh -c 'echo hi'
// Plain HTTP is used for loopback registries only; credentials come from ~/.docker/config.json.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ImageStore, createBundle, imageConfig } from 'ctrkit/oci';

const [ref, ...command] = process.argv.slice(2);
if (!ref) {
  console.error('usage: node examples/oci-pull-run.mjs REFERENCE [COMMAND...]');
  process.exit(2);
}
const dir = mkdtempSync('/tmp/ctk-example-oci-');
try {
  const store = await ImageStore.open(join(dir, 'store'));
  const shown = new Map();
  const image = await store.pull(ref, {
    onProgress: (e) => {
      if (e.type === 'resolved') console.log(`${e.reference}: ${e.digest} (${e.platform}, ${e.layers} layers)`);
      if (e.type === 'layer-downloaded' || e.type === 'layer-cached')
        shown.set(e.digest, `${e.digest.slice(7, 19)}: ${e.type === 'layer-cached' ? 'already here' : 'downloaded'} ${e.total} bytes`);
      if (e.type === 'layer-unpacked') console.log(`${shown.get(e.digest)}, unpacked`);
    },
  });
  console.log('lowers (topmost first):', (await store.lowers(image)).length);
  console.log('config:', JSON.stringify(imageConfig(image)));
  const bundle = join(dir, 'bundle');
  await createBundle(store, image, bundle, command.length ? { command } : {});
  const id = `ctk-example-${process.pid}`;
  try {
    process.stdout.write(execFileSync('runc', ['run', '--bundle', bundle, id], { encoding: 'utf8' }));
  } finally {
    try {
      execFileSync('runc', ['delete', '--force', id], { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
