import { defaultRootfs } from '../../dist/container/rootfs/default-rootfs.js';

/** Builds the default rootfs once, before the test files race to build it. */
export default async function setup(): Promise<void> {
  await defaultRootfs();
}
