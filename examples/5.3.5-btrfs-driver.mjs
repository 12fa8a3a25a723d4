// Chapter 5.3.5 — other storage drivers: btrfs. On a btrfs of its own (a loop file, mounted
// under /tmp/ctk-example-btrfs-*), containers get the btrfs driver by themselves: the image
// is copied once into a read-only base subvolume, and each container runs on a writable
// snapshot of it. Then 5.3.1's question, measured on btrfs: what do N containers on one
// base cost on disk? (statfs of the filesystem, and `btrfs filesystem du` per container.)
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Container, defaultRootfs } from 'ctrkit';
import { removeBtrfsBases } from 'ctrkit/overlay';

const N = Number(process.env.CTK_CONTAINERS ?? process.argv[2] ?? 5);
const MiB = 2 ** 20;
const mib = (n) => `${(n / MiB).toFixed(1)} MiB`;
const dir = mkdtempSync('/tmp/ctk-example-btrfs-');
const img = join(dir, 'fs.img');
const mnt = join(dir, 'mnt');
let device;
let mounted = false;
const containers = [];
try {
  writeFileSync(img, '');
  execFileSync('truncate', ['-s', '512M', img]);
  execFileSync('mkfs.btrfs', ['-q', '-L', 'ctk-example', img]);
  device = execFileSync('losetup', ['--find', '--show', img], { encoding: 'utf8' }).trim();
  mkdirSync(mnt);
  execFileSync('mount', ['-t', 'btrfs', device, mnt]);
  mounted = true;
  const used = () => {
    execFileSync('sync', ['-f', mnt]); // btrfs accounts at transaction commit
    const s = statfsSync(mnt);
    return (s.blocks - s.bfree) * s.bsize;
  };

  // The "image": the busybox rootfs plus 32 MiB of libraries, outside the btrfs.
  const image = join(dir, 'image');
  cpSync(await defaultRootfs(), image, { recursive: true, verbatimSymlinks: true });
  mkdirSync(join(image, 'usr/lib/app'), { recursive: true });
  for (let i = 0; i < 8; i++) writeFileSync(join(image, `usr/lib/app/lib${i}.so`), randomBytes(4 * MiB));

  const stateDir = join(mnt, 'containers');
  const empty = used();
  console.log(`btrfs on ${device}, mounted at ${mnt}; image: ${mib(Number(execFileSync('du', ['-sb', image], { encoding: 'utf8' }).split('\t')[0]))}`);
  for (let i = 0; i < N; i++) {
    containers.push(
      await Container.start({
        rootfs: image,
        stateDir,
        stateRoot: join(dir, 'state'),
        network: 'none',
        stdio: 'ignore',
        command: ['sh', '-c', `head -c 102400 /dev/urandom > /data-${i} && sync && exec sleep 600`],
        keepLayer: false,
      }),
    );
  }
  // Each container wrote its 100 KiB: wait until all are on disk.
  for (const [i, c] of containers.entries()) {
    while ((await c.exec({ command: ['sh', '-c', `test -s /data-${i} && echo ok`] })).stdout !== 'ok\n') await new Promise((r) => setTimeout(r, 50));
  }
  const withContainers = used();
  const layers = readdirSync(stateDir)
    .filter((e) => /^ctk-(?!btrfs-bases)/.test(e))
    .map((e) => join(stateDir, e, 'root'));
  const bases = readdirSync(join(stateDir, 'ctk-btrfs-bases'));
  console.log(`driver: btrfs (chosen by itself: ${stateDir} is on btrfs)`);
  console.log(
    `base subvolumes: ${bases.length} (read-only: ${execFileSync('btrfs', ['property', 'get', join(stateDir, 'ctk-btrfs-bases', bases[0]), 'ro'], { encoding: 'utf8' }).trim()})`,
  );
  console.log(`container roots: ${layers.length}, each a snapshot (subvolume root inode ${statSync(layers[0]).ino})`);
  console.log('\nbtrfs filesystem du -s of each container root:');
  console.log(execFileSync('btrfs', ['filesystem', 'du', '-s', ...layers], { encoding: 'utf8' }).trimEnd());
  const growth = withContainers - empty;
  const imageBytes = Number(execFileSync('du', ['-sb', image], { encoding: 'utf8' }).split('\t')[0]);
  console.log(`\n${N} containers on one base, each writing 100 KiB of its own:`);
  console.log(`  disk used before the first container: ${mib(empty)}`);
  console.log(`  disk used with ${N} containers running:  ${mib(withContainers)} (+${mib(growth)}: the base once, ${N} snapshots, ${N} × 100 KiB)`);
  console.log(`  ${N} full copies (the copy driver) would add: ${mib(N * imageBytes)}`);
  console.log(`growth bytes: ${growth}, image bytes: ${imageBytes}, containers: ${N}`);

  for (const c of containers.splice(0)) await c.remove({ force: true });
  const left = readdirSync(stateDir).filter((e) => /^ctk-(?!btrfs-bases)/.test(e));
  console.log(
    `\nafter the containers ended: ${left.length} container snapshots left; subvolumes: ${execFileSync('btrfs', ['subvolume', 'list', '-o', stateDir], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).length} (the base, kept for the next container)`,
  );
  await removeBtrfsBases(join(stateDir, 'ctk-btrfs-bases'));
} finally {
  for (const c of containers) await c.remove({ force: true }).catch(() => {});
  if (mounted) execFileSync('umount', [mnt]);
  if (device) execFileSync('losetup', ['-d', device]);
  rmSync(dir, { recursive: true, force: true });
}
