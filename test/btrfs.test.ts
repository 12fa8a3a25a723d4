// 5.3.5, another storage driver: btrfs. A base subvolume per lower stack, a writable snapshot
// per container, on a loop-mounted btrfs of this file's own.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container } from 'ctrkit';
import { BtrfsLayer, chooseDriver, removeBtrfsBases } from 'ctrkit/overlay';
import { alive, rootfs, tempDir } from './helpers.js';
import { mountBtrfsLoop, usedBytes, type BtrfsLoop } from './btrfs-loop.js';

const MiB = 2 ** 20;
let fs: BtrfsLoop;
let dir: string;
let cleanup = () => {};
const stateRoot = () => join(dir, 'state');
const inits: number[] = [];

beforeAll(() => {
  [dir, cleanup] = tempDir();
  fs = mountBtrfsLoop();
});
afterAll(async () => {
  try {
    for (const c of await Container.list({ stateRoot: stateRoot(), all: true })) await c.remove({ force: true });
    if (fs) await removeBtrfsBases(join(fs.mnt, 'containers', 'ctk-btrfs-bases'));
  } finally {
    fs?.dispose();
    cleanup();
  }
  expect(inits.filter(alive)).toEqual([]);
  if (fs) expect(execFileSync('losetup', ['-a'], { encoding: 'utf8' })).not.toContain(fs.mnt.replace(/\/mnt$/, ''));
});

/** The inode number of a btrfs subvolume's root directory. */
const isSubvolume = (p: string) => statSync(p).ino === 256;
/** The writable-layer directories of running containers in `stateDir`. */
const layerDirs = (stateDir: string) =>
  readdirSync(stateDir)
    .filter((e) => /^ctk-(?!btrfs-bases)/.test(e))
    .map((e) => join(stateDir, e));

describe('the btrfs storage driver (5.3.5)', () => {
  it('is chosen for a state dir on btrfs', async () => {
    const d = join(fs.mnt, 'probe');
    mkdirSync(d);
    const choice = await chooseDriver({ dir: d });
    expect(choice).toMatchObject({ driver: 'btrfs', filesystem: 'btrfs' });
    expect(readdirSync(d)).toEqual([]); // the probe subvolume is gone
  });

  it('containers run on snapshots of one read-only base: they see it, write only to their own, and their snapshot goes with them', async () => {
    const stateDir = join(fs.mnt, 'containers');
    const start = (n: number) =>
      Container.start({
        rootfs,
        stateRoot: stateRoot(),
        stateDir,
        network: 'none',
        stdio: 'ignore',
        command: ['sh', '-c', `echo container-${n} > /mine && echo changed-by-${n} > /etc/hostname-copy && exec sleep 600`],
      });
    const a = await start(1);
    const b = await start(2);
    inits.push(a.pid, b.pid);
    const layers = layerDirs(stateDir);
    expect(layers).toHaveLength(2);
    const bases = readdirSync(join(stateDir, 'ctk-btrfs-bases'));
    expect(bases).toHaveLength(1); // one base for both: the same lower
    const base = join(stateDir, 'ctk-btrfs-bases', bases[0]!);
    expect(isSubvolume(base)).toBe(true);
    for (const l of layers) expect(isSubvolume(join(l, 'root'))).toBe(true);

    // They see the base (busybox, the rootfs's files) ...
    for (const c of [a, b])
      expect((await c.exec({ command: ['sh', '-c', 'ls /bin/busybox && cat /etc/passwd | head -n 1'] })).stdout).toMatch(/^\/bin\/busybox\nroot:/);
    // ... each its own writes only.
    await expect.poll(async () => (await a.exec({ command: ['cat', '/mine'] })).stdout).toBe('container-1\n');
    await expect.poll(async () => (await b.exec({ command: ['cat', '/mine'] })).stdout).toBe('container-2\n');
    const inRoots = layers.map((l) => execFileSync('cat', [join(l, 'root', 'mine')], { encoding: 'utf8' })).sort();
    expect(inRoots).toEqual(['container-1\n', 'container-2\n']);
    // The base is unchanged, and read-only: not even root writes to it.
    expect(existsSync(join(base, 'mine'))).toBe(false);
    expect(existsSync(join(rootfs, 'mine'))).toBe(false);
    expect(() => writeFileSync(join(base, 'x'), 'x')).toThrow(/EROFS/);
    expect(execFileSync('btrfs', ['property', 'get', base, 'ro'], { encoding: 'utf8' }).trim()).toBe('ro=true');

    // Ended and removed: its snapshot and layer dir are gone; the base stays for the next one.
    await a.remove({ force: true });
    await b.remove({ force: true });
    expect(layerDirs(stateDir)).toEqual([]);
    expect(execFileSync('btrfs', ['subvolume', 'list', '-o', fs.mnt], { encoding: 'utf8' })).not.toMatch(/ctk-[0-9a-zA-Z]{6}\/root/);
    expect(execFileSync('btrfs', ['subvolume', 'list', fs.mnt], { encoding: 'utf8' }).trim().split('\n')).toHaveLength(1);
    expect(isSubvolume(base)).toBe(true);
  });

  it('Container.run: storageDriver chooses, keepLayer reports it; btrfs elsewhere is refused with a typed error', async () => {
    const stateDir = join(fs.mnt, 'containers');
    const r = await Container.run({
      rootfs,
      stateRoot: stateRoot(),
      stateDir,
      network: 'none',
      keepLayer: true,
      command: ['sh', '-c', 'echo hi > /new; rm /etc/passwd'],
    });
    expect(r.exitCode).toBe(0);
    expect(r.layer?.driver).toBe('btrfs');
    const kept = new BtrfsLayerView(r.layer!.upper, r.layer!.lower);
    expect(await kept.changes()).toEqual(['added /new', 'deleted /etc/passwd', 'modified /etc']);
    execFileSync('btrfs', ['subvolume', 'delete', r.layer!.upper], { stdio: 'pipe' });
    execFileSync('rm', ['-rf', r.layer!.dir]);

    const copy = await Container.run({ rootfs, stateRoot: stateRoot(), stateDir, storageDriver: 'copy', network: 'none', keepLayer: true, command: ['true'] });
    expect(copy.layer?.driver).toBe('copy');
    expect(isSubvolume(copy.layer!.upper)).toBe(false);
    execFileSync('rm', ['-rf', copy.layer!.dir]);

    const elsewhere = join(dir, 'not-btrfs');
    await expect(
      Container.run({ rootfs, stateRoot: stateRoot(), stateDir: elsewhere, storageDriver: 'btrfs', network: 'none', command: ['true'] }),
    ).rejects.toMatchObject({ name: 'BtrfsError', code: 'ERR_BTRFS_NOT_BTRFS' });
    expect(readdirSync(elsewhere)).toEqual([]); // nothing left behind
    await expect(Container.run({ rootfs, stateRoot: stateRoot(), storageDriver: 'zfs' as 'btrfs', command: ['true'] })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
      option: 'storageDriver',
    });
  });

  it('5.3.1 on btrfs: N snapshots of one base cost their own writes, not N copies', async () => {
    const lower = join(dir, 'image');
    mkdirSync(join(lower, 'usr/lib'), { recursive: true });
    for (let i = 0; i < 8; i++) writeFileSync(join(lower, `usr/lib/lib${i}.so`), randomBytes(4 * MiB));
    const area = join(fs.mnt, 'share');
    mkdirSync(area);
    const empty = usedBytes(area);
    const layers: BtrfsLayer[] = [];
    try {
      layers.push(await BtrfsLayer.create({ lower: [lower], target: join(area, 'c0'), basesDir: join(area, 'bases') }));
      const withBase = usedBytes(area);
      const baseBytes = withBase - empty;
      expect(baseBytes).toBeGreaterThan(30 * MiB); // the 32 MiB base, once
      for (let i = 1; i < 10; i++) layers.push(await BtrfsLayer.create({ lower: [lower], target: join(area, `c${i}`), basesDir: join(area, 'bases') }));
      for (const [i, l] of layers.entries()) writeFileSync(join(l.target, `data-${i}`), randomBytes(100 * 1024));
      const growth = usedBytes(area) - withBase;
      // Ten containers' own 1000 KiB plus snapshot metadata: far below even one more copy of the base.
      expect(growth).toBeLessThan(baseBytes / 4);
      expect(growth).toBeGreaterThan(0);
      const du = execFileSync('btrfs', ['filesystem', 'du', '-s', '--raw', join(area, 'c3')], { encoding: 'utf8' })
        .trim()
        .split('\n')[1]!
        .trim()
        .split(/\s+/)
        .map(Number);
      const [total, exclusive] = du as [number, number];
      expect(total).toBeGreaterThan(32 * MiB); // it sees the whole image ...
      expect(exclusive).toBeLessThan(MiB); // ... and owns only its own write
    } finally {
      for (const l of layers) await l.remove();
      await removeBtrfsBases(join(area, 'bases'));
    }
    expect(readdirSync(area)).toEqual(['bases']);
  });
});

/** diff() of a kept btrfs layer, through the public overlay API. */
class BtrfsLayerView {
  constructor(
    readonly upper: string,
    readonly lower: readonly string[],
  ) {}
  async changes(): Promise<string[]> {
    const { diff } = await import('ctrkit/overlay');
    return (await diff({ upper: this.upper, lower: this.lower, driver: 'btrfs' })).map((c) => `${c.kind} ${c.path}`).sort();
  }
}

describe('examples/5.3.5-btrfs-driver.mjs', () => {
  it('builds its own btrfs, runs containers on snapshots, and prints what sharing saved', () => {
    const out = execFileSync(process.execPath, ['examples/5.3.5-btrfs-driver.mjs', '3'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    expect(out).toMatch(/^driver: btrfs \(chosen by itself: .* is on btrfs\)$/m);
    expect(out).toMatch(/^base subvolumes: 1 \(read-only: ro=true\)$/m);
    expect(out).toMatch(/^container roots: 3, each a snapshot \(subvolume root inode 256\)$/m);
    const [, growth, image, n] = /^growth bytes: (\d+), image bytes: (\d+), containers: (\d+)$/m.exec(out)!.map(Number) as [number, number, number, number];
    expect(n).toBe(3);
    // The base once plus small snapshots: well below two copies of the image, let alone three.
    expect(growth).toBeGreaterThan(image * 0.9);
    expect(growth).toBeLessThan(image * 1.5);
    expect(out).toMatch(/^after the containers ended: 0 container snapshots left; subvolumes: 1 /m);
    expect(readdirSync('/tmp').filter((e) => e.startsWith('ctk-example-btrfs-'))).toEqual([]);
  });
});
