// Chapter 5.3.3 — the chapter's mount listing, with two read-only layers:
//   mount -t overlay overlay -o lowerdir=/lower1:/lower2,upperdir=/upper,workdir=/work /merged
// lowerdir lists the layers top first: a file in both lowers is seen from lower1, files of
// either show up in merged, and writes go to upper only.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Overlay } from 'ctrkit/overlay';

const dir = mkdtempSync('/tmp/ctk-example-lowers-');
try {
  const [lower1, lower2, upper, work, merged] = ['lower1', 'lower2', 'upper', 'work', 'merged'].map((d) => join(dir, d));
  for (const d of [lower1, lower2, upper, work, merged]) mkdirSync(d);
  writeFileSync(join(lower1, 'shared.txt'), 'from lower1\n');
  writeFileSync(join(lower2, 'shared.txt'), 'from lower2\n');
  writeFileSync(join(lower1, 'only-in-lower1.txt'), '1\n');
  writeFileSync(join(lower2, 'only-in-lower2.txt'), '2\n');

  const m = await Overlay.mount({ lower: [lower1, lower2], upper, work, target: merged, source: 'ctk-example' });
  try {
    // What the kernel was given, as /proc/self/mountinfo shows it (the fsconfig API passes
    // each layer on its own, `lowerdir+=`, so there is no length limit on the list).
    const line = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .find((l) => l.split(' ')[4] === merged);
    const opts = line
      .split(' - ')[1]
      .split(' ')[2]
      .split(',')
      .filter((o) => /^(lowerdir|upperdir|workdir)/.test(o));
    console.log(`mounted via ${m.api}: ${opts.map((o) => o.replaceAll(dir, '')).join(',')}`);
    const lowers = opts.filter((o) => o.startsWith('lowerdir')).map((o) => o.split('=')[1].replaceAll(dir, ''));
    console.log(
      `the chapter's form: lowerdir=${lowers.join(':')},${opts
        .filter((o) => !o.startsWith('lowerdir'))
        .map((o) => o.replaceAll(dir, ''))
        .join(',')}`,
    );
    console.log(`ls merged: ${readdirSync(merged).sort().join(' ')}`);
    console.log(`cat merged/shared.txt: ${readFileSync(join(merged, 'shared.txt'), 'utf8').trim()}`);
    writeFileSync(join(merged, 'only-in-lower2.txt'), 'changed\n');
    console.log(
      `after a write to merged/only-in-lower2.txt: upper has [${readdirSync(upper).join(' ')}], lower2 still says ${readFileSync(join(lower2, 'only-in-lower2.txt'), 'utf8').trim()}`,
    );
  } finally {
    await m.unmount();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
