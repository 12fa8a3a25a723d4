// Chapter 5.2.4 — limiting disk IO: `--device-read-bps /dev/sda:10mb --device-write-bps /dev/sda:10mb`.
// On a loop device made for the occasion, 20 MiB read and written with direct IO take ~2 s each.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Container } from 'ctrkit';

const dir = mkdtempSync('/tmp/ctk-io-');
const image = join(dir, 'disk.img');
execFileSync('dd', ['if=/dev/zero', `of=${image}`, 'bs=1M', 'count=48', 'status=none']);
const loop = execFileSync('losetup', ['--find', '--show', image], { encoding: 'utf8' }).trim();
try {
  const r = await Container.run({
    devices: [loop],
    deviceReadBps: [`${loop}:10mb`],
    deviceWriteBps: [`${loop}:10mb`],
    command: ['sh', '-c', `time dd if=${loop} of=/dev/null bs=1M count=20 iflag=direct; time dd if=/dev/zero of=${loop} bs=1M count=20 oflag=direct`],
  });
  const secs = [...r.stderr.matchAll(/^real\s+(\d+)m ([\d.]+)s$/gm)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  console.log(`device ${loop}, limit 10 MiB/s`);
  console.log(`read  20 MiB: ${secs[0].toFixed(2)} s = ${(20 / secs[0]).toFixed(1)} MiB/s`);
  console.log(`write 20 MiB: ${secs[1].toFixed(2)} s = ${(20 / secs[1]).toFixed(1)} MiB/s`);
} finally {
  execFileSync('losetup', ['-d', loop]);
  rmSync(dir, { recursive: true, force: true });
}
