// Mount + unmount time of an overlay with 1, 16 and 128 lowers, side by side in one run:
//   ctrkit        await Overlay.mount(...) then await m.unmount()     (checks, upper probe, fsconfig lowerdir+)
//   ctrkit sync   mountOverlaySync(...) then unmountOverlaySync(...)  (what an init stage calls: checks, no probe)
//   mount(8)      spawn `mount -t overlay ... -o lowerdir=...` then spawn `umount`  (util-linux; mount(2) with the
//                 option string: lowers given relative to the layers dir, or 128 of them would not fit one page)
// Every subject mounts the same dirs with an upper and work dir; runs are interleaved so drift hits all alike.
// Median of N runs after a warm-up; ratio = subject / ctrkit. The Container.run start-time cost is measured
// separately, once Container.run mounts an overlay.
// Usage: node bench/overlay-mount.mjs [runs]   (as root)
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Overlay, mountOverlaySync, unmountOverlaySync } from 'ctrkit/overlay';

const runs = Number(process.argv[2] ?? 50);
const work = mkdtempSync('/tmp/ctk-bench-overlay-');

function exec(cmd, args, cwd) {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d) => (err += d));
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${err.trim()}`))));
  });
}

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

try {
  const layersDir = join(work, 'layers');
  const names = Array.from({ length: 128 }, (_, i) => `l${String(i).padStart(3, '0')}`);
  for (const [i, n] of names.entries()) {
    mkdirSync(join(layersDir, n), { recursive: true });
    writeFileSync(join(layersDir, n, `f${i}`), `${i}\n`);
  }
  const upper = join(work, 'upper');
  const workdir = join(work, 'work');
  const target = join(work, 'merged');
  for (const d of [upper, workdir, target]) mkdirSync(d);

  const results = [];
  for (const count of [1, 16, 128]) {
    const lower = names.slice(0, count).map((n) => join(layersDir, n));
    const spec = { lower, upper, work: workdir, target, source: 'ctk-bench' };
    const options = `lowerdir=${names.slice(0, count).join(':')},upperdir=${upper},workdir=${workdir}`;
    const subjects = [
      [
        'ctrkit',
        async () => {
          const m = await Overlay.mount(spec);
          await m.unmount();
        },
      ],
      [
        'ctrkit sync',
        async () => {
          mountOverlaySync(spec);
          unmountOverlaySync(target);
        },
      ],
      [
        'mount(8)',
        async () => {
          await exec('mount', ['-t', 'overlay', 'ctk-bench', '-o', options, target], layersDir);
          await exec('umount', [target]);
        },
      ],
    ];
    const times = Object.fromEntries(subjects.map(([name]) => [name, []]));
    for (const [, fn] of subjects) await fn(); // warm-up
    for (let i = 0; i < runs; i++) {
      for (const [name, fn] of subjects) {
        const t = performance.now();
        await fn();
        times[name].push(performance.now() - t);
      }
    }
    const base = median(times.ctrkit);
    for (const [name] of subjects) results.push({ count, name, t: times[name], ratio: median(times[name]) / base });
  }

  const kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  console.log(`overlay mount + unmount, ${runs} runs each (median, min-max in ms); ratio = subject / ctrkit; Linux ${kernel}`);
  console.log(`${'lowers'.padEnd(7)} ${'subject'.padEnd(12)} ${'median'.padStart(8)}   ${'min-max'.padEnd(13)} ratio`);
  for (const { count, name, t, ratio } of results) {
    console.log(
      `${String(count).padEnd(7)} ${name.padEnd(12)} ${median(t).toFixed(3).padStart(8)}   ${`(${Math.min(...t).toFixed(2)}-${Math.max(...t).toFixed(2)})`.padEnd(13)} ${ratio.toFixed(2)}`,
    );
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
