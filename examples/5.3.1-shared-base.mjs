// Chapter 5.3.1 — Why UnionFS: ten containers on one base image share it. Each container
// gets its own overlay (the base as the lower, a fresh upper) and writes its own change;
// the disk grows by those changes, not by ten copies of the base. Measured with statfs on
// a tmpfs of its own, so nothing else on the machine moves the numbers.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Overlay } from 'ctrkit/overlay';

const MiB = 1024 * 1024;
const mib = (n) => `${(n / MiB).toFixed(1)} MiB`;
const dir = mkdtempSync('/tmp/ctk-example-shared-');
const fs = join(dir, 'fs');
mkdirSync(fs);
execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512m', 'ctk-example-shared', fs]);
const mounts = [];
try {
  const used = () => {
    const s = statfsSync(fs);
    return (s.blocks - s.bfree) * s.bsize;
  };
  const empty = used();
  const base = join(fs, 'base');
  mkdirSync(join(base, 'usr/lib'), { recursive: true });
  for (let i = 0; i < 8; i++) writeFileSync(join(base, `usr/lib/lib${i}.so`), randomBytes(4 * MiB));
  const baseBytes = used() - empty;
  console.log(`base image: ${mib(baseBytes)}`);

  const change = 100 * 1024;
  for (let i = 0; i < 10; i++) {
    const c = join(fs, `container${i}`);
    mounts.push(await Overlay.mount({ lower: [base], upper: join(c, 'upper'), work: join(c, 'work'), target: join(c, 'merged'), source: 'ctk-example' }));
  }
  for (const [i, m] of mounts.entries()) writeFileSync(join(m.target, `data-${i}`), randomBytes(change));

  const seen = Number(execFileSync('du', ['-sb', mounts[0].target], { encoding: 'utf8' }).split('\t')[0]);
  const growth = used() - empty - baseBytes;
  console.log(`containers: ${mounts.length}, each writing ${change / 1024} KiB of its own`);
  console.log(`each container sees: ${mib(seen)} (du of its merged view)`);
  console.log(`ten full copies would need: ${mib(10 * baseBytes)}`);
  console.log(`disk used by the ten containers: ${mib(growth)} (their own changes: ${mib(10 * change)})`);
  console.log(`growth bytes: ${growth}, base bytes: ${baseBytes}, change bytes: ${10 * change}`);
} finally {
  for (const m of mounts) await m.unmount();
  execFileSync('umount', [fs]);
  rmSync(dir, { recursive: true, force: true });
}
