import { spawnSync } from 'node:child_process';
import { defaultRootfs } from '../../dist/container/rootfs/default-rootfs.js';

/**
 * Before any test file: build the default rootfs once (instead of every file racing to), and
 * make sure the unprivileged user of the rootless tests exists, with the subordinate id
 * ranges useradd delegates (/etc/subuid, /etc/subgid).
 */
export default async function setup(): Promise<void> {
  await defaultRootfs();
  if (process.getuid?.() === 0 && spawnSync('id', ['-u', 'ctkuser']).status !== 0) {
    const r = spawnSync('useradd', ['--create-home', '--shell', '/bin/sh', 'ctkuser'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`useradd ctkuser failed: ${r.stderr}`);
  }
}
