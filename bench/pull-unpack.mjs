// Pull + unpack of one image from a local registry, side by side in one run:
//   ctrkit (flat)     ImageStore.open(fresh) → store.pull(ref, { unpack: false }) → store.unpack(image, dir)
//                     (download, verify, unpack every layer in order into one rootfs, whiteouts applied)
//   ctrkit (lowers)   ImageStore.open(fresh) → store.pull(ref) (download + each layer unpacked once, overlay form)
//   skopeo + umoci    skopeo copy docker://REF oci:fresh:tag → umoci unpack --image fresh:tag bundle
// The image: a busybox rootfs layer, /usr/lib/python3.11 and /usr/share/perl as two more layers (built with
// umoci, pushed with skopeo to Debian's docker-registry on 127.0.0.1). Every subject starts from an empty
// store and an empty page-cache-warm registry; runs are interleaved so drift hits all alike.
// Median of N runs after a warm-up; ratio = subject / ctrkit (flat).
// Usage: node bench/pull-unpack.mjs [runs]   (as root; scripts/install-oci-deps.sh installs the tools)
import { execFile, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ImageStore } from 'ctrkit/oci';

const runs = Number(process.argv[2] ?? 5);
const work = mkdtempSync('/tmp/ctk-bench-pull-');
const exec = promisify(execFile);
const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

let registry;
try {
  // --- the image
  const root = join(work, 'rootfs');
  mkdirSync(join(root, 'bin'), { recursive: true });
  copyFileSync(existsSync('/bin/busybox') ? '/bin/busybox' : '/usr/bin/busybox', join(root, 'bin/busybox'));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  for (const a of ['sh', 'ls', 'cat']) symlinkSync('busybox', join(root, 'bin', a));
  const layout = join(work, 'layout');
  await exec('umoci', ['init', '--layout', layout]);
  await exec('umoci', ['new', '--image', `${layout}:t`]);
  await exec('umoci', ['insert', '--image', `${layout}:t`, root, '/']);
  for (const dir of ['/usr/lib/python3.11', '/usr/share/perl']) if (existsSync(dir)) await exec('umoci', ['insert', '--image', `${layout}:t`, dir, dir]);
  // --- the registry
  const port = await freePort();
  const config = join(work, 'registry.yml');
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${join(work, 'registry')}\nhttp:\n  addr: 127.0.0.1:${port}\n`,
  );
  registry = spawn('docker-registry', ['serve', config], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/v2/`)).ok) break;
    } catch {
      /* starting */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const ref = `127.0.0.1:${port}/bench/image:t`;
  await exec('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:t`, `docker://${ref}`]);
  const { stdout } = await exec('du', ['-sb', '--apparent-size', join(work, 'registry')]);
  console.log(`image: 3 layers, ${(Number(stdout.split('\t')[0]) / 1e6).toFixed(1)} MB compressed in the registry; ${runs} runs + 1 warm-up`);

  let n = 0;
  const subjects = {
    'ctrkit (flat)': async () => {
      const store = await ImageStore.open(join(work, `s${++n}`));
      const image = await store.pull(ref, { unpack: false, dockerConfig: false });
      const dir = join(work, `r${n}`);
      mkdirSync(dir);
      await store.unpack(image, dir);
      return [store.dir, dir];
    },
    'ctrkit (lowers)': async () => {
      const store = await ImageStore.open(join(work, `s${++n}`));
      await store.pull(ref, { dockerConfig: false });
      return [store.dir];
    },
    'skopeo + umoci': async () => {
      const dir = join(work, `s${++n}`);
      await exec('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${dir}:t`]);
      await exec('umoci', ['unpack', '--image', `${dir}:t`, join(work, `b${n}`)]);
      return [dir, join(work, `b${n}`)];
    },
  };
  const times = Object.fromEntries(Object.keys(subjects).map((k) => [k, []]));
  for (let i = 0; i <= runs; i++) {
    for (const [name, fn] of Object.entries(subjects)) {
      const t0 = process.hrtime.bigint();
      const made = await fn();
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (i > 0) times[name].push(ms);
      for (const d of made) rmSync(d, { recursive: true, force: true });
    }
  }
  const base = median(times['ctrkit (flat)']);
  console.log('subject            median ms   ratio');
  for (const [name, t] of Object.entries(times)) console.log(`${name.padEnd(18)} ${median(t).toFixed(0).padStart(9)}   ${(median(t) / base).toFixed(2)}`);
} finally {
  if (registry && registry.exitCode === null) {
    const exited = new Promise((r) => registry.once('exit', r));
    registry.kill('SIGTERM');
    await exited;
  }
  rmSync(work, { recursive: true, force: true });
}
