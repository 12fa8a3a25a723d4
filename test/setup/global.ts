import { spawnSync } from 'node:child_process';
import { defaultRootfs } from '../../dist/container/rootfs/default-rootfs.js';

/** helpers.ts's ROOTLESS_USER (not imported: helpers.ts loads the whole package at import time). */
const ROOTLESS_USER = 'ctkuser';

/**
 * Before any test file: build the default rootfs once (instead of every file racing to), and
 * check that the unprivileged user of the rootless tests exists. Creating it (with its
 * /etc/subuid and /etc/subgid ranges) is the setup script's job, not a side effect of a test
 * run: scripts/install-test-deps.sh (`npm run setup:test`).
 */
export default async function setup(): Promise<void> {
  await defaultRootfs();
  if (process.getuid?.() === 0 && spawnSync('id', ['-u', ROOTLESS_USER]).status !== 0) {
    throw new Error(`the rootless tests need the host user ${ROOTLESS_USER}: run \`npm run setup:test\` (scripts/install-test-deps.sh creates it)`);
  }
}
