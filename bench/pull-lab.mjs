// The pull benchmark's lab: a large image built from this host's own files (no internet), a
// loopback registry serving it, and the tools. Used by bench/pull-unpack.mjs.
//
// The image: four gzip layers, built with GNU tar + gzip into an OCI layout and pushed with
// skopeo to Debian's docker-registry on 127.0.0.1 (a port the kernel picks, storage in the
// bench's own temp dir). Layers: files of /usr/share, of /usr/lib, of node_modules (each taken
// in sorted order up to a byte budget), and generated data (incompressible 1 MiB files and
// thousands of small ones). Everything lives under one /tmp/ctk-bench-pull-* dir.
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, lstatSync, mkdirSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const exec = promisify(execFile);
/** This repository: its node_modules make one of the layers. */
const repo = fileURLToPath(new URL('..', import.meta.url));

/** Installs skopeo, umoci and docker-registry through apt when missing. */
export async function ensureTools() {
  const missing = [];
  for (const [cmd, pkg] of [
    ['skopeo', 'skopeo'],
    ['umoci', 'umoci'],
    ['docker-registry', 'docker-registry'],
  ]) {
    if ((await exec('sh', ['-c', `command -v ${cmd}`]).catch(() => null)) === null) missing.push(pkg);
  }
  if (missing.length === 0) return;
  console.log(`installing ${missing.join(' ')} (apt)`);
  await exec('apt-get', ['update', '-qq']);
  await exec('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts docker-registry on 127.0.0.1 with its storage under `dir`; returns { host, stop }. */
export async function startRegistry(dir) {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\nhttp:\n  addr: 127.0.0.1:${port}\n`,
  );
  const child = spawn('docker-registry', ['serve', config], { stdio: 'ignore' });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  };
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error('docker-registry exited at start');
    try {
      if ((await fetch(`http://127.0.0.1:${port}/v2/`)).ok) return { host: `127.0.0.1:${port}`, stop };
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await stop();
  throw new Error('docker-registry did not answer');
}

/** Files larger than this are left out: a layer of a few huge files says little about unpacking. */
const MAX_FILE = 4 << 20;

/**
 * Paths (relative to `base`) of `sub` and what is below it, depth first in sorted order,
 * until `budget` bytes of regular files: directories, files up to MAX_FILE and symlinks.
 */
function collect(base, sub, budget) {
  const out = [];
  const parts = sub.split('/');
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join('/')); // the parents
  let bytes = 0;
  let files = 0;
  const walk = (rel) => {
    out.push(rel);
    let names;
    try {
      names = readdirSync(join(base, rel)).sort();
    } catch {
      return;
    }
    for (const name of names) {
      if (bytes >= budget) return;
      const r = `${rel}/${name}`;
      const st = lstatSync(join(base, r));
      if (st.isDirectory()) walk(r);
      else if ((st.isFile() && st.size <= MAX_FILE) || st.isSymbolicLink()) {
        out.push(r);
        files++;
        if (st.isFile()) bytes += st.size;
      }
    }
  };
  walk(sub);
  return { paths: out, bytes, files };
}

/** Generated content: `big` incompressible 1 MiB files and `small` random 0.5-8 KiB ones. */
function generate(dir, big, small) {
  const root = join(dir, 'gen');
  mkdirSync(join(root, 'data/blobs'), { recursive: true });
  for (let i = 0; i < big; i++) writeFileSync(join(root, 'data/blobs', `b${i}.bin`), randomBytes(1 << 20));
  for (let d = 0; d < small / 100; d++) {
    const sd = join(root, 'data/small', `d${d}`);
    mkdirSync(sd, { recursive: true });
    for (let i = 0; i < 100; i++) writeFileSync(join(sd, `f${i}.txt`), randomBytes(512 + ((d * 100 + i) % 16) * 480).toString('base64'));
  }
  return root;
}

async function sha256File(file) {
  const h = createHash('sha256');
  for await (const c of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(c);
  return h.digest('hex');
}

/** One layer: tar of `paths` below `base` (no recursion: the list is complete), then gzip -6. */
async function buildLayer(work, blobs, i, base, paths) {
  const list = join(work, `layer${i}.list`);
  writeFileSync(list, `${paths.join('\n')}\n`);
  const tar = join(work, `layer${i}.tar`);
  await exec('tar', ['-C', base, '--no-recursion', '--numeric-owner', '-T', list, '-cf', tar]);
  const diffID = `sha256:${await sha256File(tar)}`;
  await exec('gzip', ['-6', '-n', tar]);
  const gz = `${tar}.gz`;
  const hex = await sha256File(gz);
  const size = statSync(gz).size;
  renameSync(gz, join(blobs, hex));
  return { diffID, descriptor: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${hex}`, size } };
}

/**
 * Builds the image in an OCI layout under `work` and pushes it to `registry` as `ref`.
 * Returns what it holds: layers, bytes and files unpacked, bytes compressed.
 */
export async function buildAndPushImage(work, registryHost, repoTag) {
  const sources = [
    { base: '/', ...collect('/', 'usr/share', 300e6) },
    { base: '/', ...collect('/', 'usr/lib', 200e6) },
    ...(existsSync(join(repo, 'node_modules')) ? [{ base: repo, ...collect(repo, 'node_modules', 80e6) }] : []),
  ];
  const gen = generate(work, 64, 15_000);
  sources.push({ base: gen, ...collect(gen, 'data', Number.POSITIVE_INFINITY) });
  const layout = join(work, 'layout');
  const blobs = join(layout, 'blobs/sha256');
  mkdirSync(blobs, { recursive: true });
  // Two at a time: this machine has two cores, and gzip is the slow part.
  const layers = new Array(sources.length);
  for (let i = 0; i < sources.length; i += 2) {
    await Promise.all(sources.slice(i, i + 2).map(async (s, j) => (layers[i + j] = await buildLayer(work, blobs, i + j, s.base, s.paths))));
  }
  const put = (doc) => {
    const bytes = Buffer.from(JSON.stringify(doc));
    const hex = createHash('sha256').update(bytes).digest('hex');
    writeFileSync(join(blobs, hex), bytes);
    return { digest: `sha256:${hex}`, size: bytes.length };
  };
  const config = put({
    architecture: 'amd64',
    os: 'linux',
    config: { Cmd: ['/bin/sh'], Env: ['PATH=/usr/bin:/bin'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffID) },
  });
  const manifest = put({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: layers.map((l) => l.descriptor),
  });
  writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 't' } }],
    }),
  );
  await exec('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:t`, `docker://${registryHost}/${repoTag}`]);
  return {
    layers: layers.length,
    files: sources.reduce((n, s) => n + s.files, 0),
    entries: sources.reduce((n, s) => n + s.paths.length, 0),
    bytes: sources.reduce((n, s) => n + s.bytes, 0),
    compressed: layers.reduce((n, l) => n + l.descriptor.size, 0),
    layout,
  };
}
