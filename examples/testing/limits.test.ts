// Limits and failures: an OOM kill, a container that never gets ready, a second network.
import { expect, test } from 'vitest';
import { Container, StartupError, Wait } from 'ctrkit';
import type { Network } from 'ctrkit/network';
import { networkFixture } from 'ctrkit/testing';

const it = test.extend<{ net: Network }>({
  net: [networkFixture({ name: `limits-${process.pid}` }), { scope: 'file' }],
});

it('a container over its memory limit is OOM-killed', async () => {
  const r = await Container.run({ memory: '32m', memorySwap: '32m', command: ['sh', '-c', 'head -c 64m /dev/zero | tail'] });
  expect(r.oomKilled).toBe(true);
  expect(r.exitCode === 0).toBe(false);
});

it('a server that never answers fails its start with its logs, on a network', async ({ net }) => {
  const err = await Container.start({
    network: net,
    command: ['sh', '-c', 'echo still booting; sleep 30'],
    waitFor: Wait.forHttp('/', 80),
    startupTimeout: 1000,
  }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StartupError);
  expect((err as StartupError).logs).toBe('still booting\n');
  expect(await net.members()).toEqual([]);
});

it('two servers on a network get distinct random host ports', async ({ net }) => {
  const start = () => Container.start({ network: net, ports: ['80'], command: ['httpd', '-f', '-p', '80'] });
  const [a, b] = await Promise.all([start(), start()]);
  try {
    expect(a.mappedPort(80)).not.toBe(b.mappedPort(80));
  } finally {
    await Promise.all([a.remove({ force: true }), b.remove({ force: true })]);
  }
});
