// Pull + unpack of one large image from a loopback registry, side by side in one interleaved run:
//   ctrkit pull          node dist/cli/main.js pull --store FRESH REF
//                        (every layer downloaded, verified and unpacked at once, each into its own directory)
//   skopeo + umoci raw   skopeo copy docker://REF oci:FRESH:t, then umoci raw unpack (a flat rootfs)
//   skopeo + umoci       skopeo copy docker://REF oci:FRESH:t, then umoci unpack (a runtime bundle: rootfs,
//                        config.json and the mtree manifest umoci keeps to diff it later)
// The image (bench/pull-lab.mjs builds it from this host's files, no internet): four gzip layers, about
// 700 MB and 45,000 files unpacked, served by Debian's docker-registry on 127.0.0.1 (its own storage,
// stopped at the end). Each round runs every subject once, in a rotated order, from an empty output
// directory, with `sync` before each so that no subject pays for another's writeback; outputs are removed
// after the round. Median of N rounds after one warm-up; ratio = median / median of skopeo + umoci raw.
//
// Where the outputs go: by default a fresh ext4 (Debian's mkfs defaults, journalled) on a loop device, made
// for the run and removed after it; `--fs tmp` writes under /tmp instead. On this project's VMs /tmp is an
// ext4 without a journal, where creating files right after many were deleted is several times slower for
// every tool (ext4 skips recently freed inodes one by one when there is no journal), so numbers there swing
// with whatever the machine deleted in the last minutes.
//
// Usage: node bench/pull-unpack.mjs [runs] [--fs loop|tmp]   (as root, after npm run build; installs
// skopeo, umoci and docker-registry with apt when missing)
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildAndPushImage, ensureTools, startRegistry } from './pull-lab.mjs';

const exec = promisify(execFile);
const args = process.argv.slice(2);
const runs = Number(args.find((a) => /^\d+$/.test(a)) ?? 5);
const fsKind = args.includes('--fs') ? args[args.indexOf('--fs') + 1] : 'loop';
if (!['loop', 'tmp'].includes(fsKind)) throw new Error(`--fs ${fsKind}: loop or tmp`);
const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
if (!existsSync(cli)) throw new Error('run npm run build first');

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const countEntries = async (dir) => Number((await exec('sh', ['-c', `find "${dir}" -mindepth 1 | wc -l`])).stdout.trim());

/** A fresh journalled ext4 on a loop device, mounted at `mnt`; returns its removal. */
async function loopFilesystem(work, mnt) {
  const image = join(work, 'ctk-bench-fs.img');
  await exec('truncate', ['-s', '24G', image]); // sparse: only what is written takes space
  await exec('mkfs.ext4', ['-q', '-F', '-L', 'ctk-bench', image]);
  const dev = (await exec('losetup', ['--find', '--show', '--direct-io=on', image])).stdout.trim();
  try {
    mkdirSync(mnt);
    await exec('mount', [dev, mnt]);
  } catch (e) {
    await exec('losetup', ['-d', dev]);
    throw e;
  }
  return async () => {
    await exec('umount', [mnt]);
    await exec('losetup', ['-d', dev]);
    rmSync(image, { force: true });
  };
}

const work = mkdtempSync('/tmp/ctk-bench-pull-');
let registry;
let removeFs = async () => {};
const cleanup = async () => {
  await registry?.stop();
  await removeFs().catch((e) => console.error(`cleanup: ${e.message}`));
  removeFs = async () => {};
  rmSync(work, { recursive: true, force: true });
};
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    void cleanup().finally(() => process.exit(130));
  });
}
try {
  await ensureTools();
  registry = await startRegistry(join(work, 'registry'));
  const t0 = Date.now();
  const image = await buildAndPushImage(work, registry.host, 'ctk-bench/big:t');
  const ref = `${registry.host}/ctk-bench/big:t`;
  rmSync(image.layout, { recursive: true, force: true });
  for (const f of readdirSync(work)) if (/^layer\d+\.list$/.test(f) || f === 'gen') rmSync(join(work, f), { recursive: true, force: true });
  console.log(
    `image: ${image.layers} gzip layers, ${(image.bytes / 1e6).toFixed(0)} MB in ${image.files} files (${image.entries} tar entries) unpacked, ` +
      `${(image.compressed / 1e6).toFixed(0)} MB compressed; built and pushed in ${((Date.now() - t0) / 1000).toFixed(0)} s`,
  );
  const out = join(work, 'out');
  if (fsKind === 'loop') removeFs = await loopFilesystem(work, out);
  else mkdirSync(out);
  console.log(`outputs on ${fsKind === 'loop' ? 'a fresh ext4 (journalled) on a loop device' : '/tmp'}; ${runs} rounds + 1 warm-up, ${Date()}`);

  const subjects = {
    'ctrkit pull': async (dir) => {
      await exec(process.execPath, [cli, 'pull', '--store', join(dir, 'store'), ref]);
      return join(dir, 'store', '.ctrkit', 'layers');
    },
    'skopeo + umoci raw unpack': async (dir) => {
      await exec('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${join(dir, 'oci')}:t`]);
      await exec('umoci', ['raw', 'unpack', '--image', `${join(dir, 'oci')}:t`, join(dir, 'rootfs')]);
      return join(dir, 'rootfs');
    },
    'skopeo + umoci unpack': async (dir) => {
      await exec('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${join(dir, 'oci')}:t`]);
      await exec('umoci', ['unpack', '--image', `${join(dir, 'oci')}:t`, join(dir, 'bundle')]);
      return join(dir, 'bundle', 'rootfs');
    },
  };
  const names = Object.keys(subjects);
  const times = Object.fromEntries(names.map((k) => [k, []]));
  let n = 0;
  for (let round = 0; round <= runs; round++) {
    const order = names.map((_, i) => names[(i + round) % names.length]);
    for (const name of order) {
      const dir = join(out, `r${++n}`);
      mkdirSync(dir);
      await exec('sync');
      const start = process.hrtime.bigint();
      const result = await subjects[name](dir);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      if (round > 0) times[name].push(seconds);
      else console.log(`warm-up: ${name} ${seconds.toFixed(2)} s, ${await countEntries(result)} entries unpacked`);
    }
    for (const d of readdirSync(out)) if (d.startsWith('r')) rmSync(join(out, d), { recursive: true, force: true });
    await exec('sync');
  }
  const base = median(times['skopeo + umoci raw unpack']);
  console.log(`\n${'subject'.padEnd(28)} ${'median s'.padStart(9)}  ${'ratio'.padStart(6)}  all runs (s)`);
  for (const name of names) {
    const m = median(times[name]);
    console.log(`${name.padEnd(28)} ${m.toFixed(2).padStart(9)}  ${(m / base).toFixed(2).padStart(6)}  ${times[name].map((t) => t.toFixed(2)).join(' ')}`);
  }
  console.log('ratio: median / median of skopeo + umoci raw unpack');
} finally {
  await cleanup();
}
