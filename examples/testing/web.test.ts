// A web server and a client on one network: readiness, names, a random host port, logs, exec.
import { expect, test } from 'vitest';
import { Wait, type RunningContainer } from 'ctrkit';
import type { Network } from 'ctrkit/network';
import { networkFixture, withContainer } from 'ctrkit/testing';

const it = test.extend<{ net: Network; web: RunningContainer; client: RunningContainer }>({
  // One network for the file; a server and a client for each test.
  net: [networkFixture({ name: `web-${process.pid}` }), { scope: 'file' }],
  web: async ({ net }, use) =>
    withContainer(
      {
        network: net,
        aliases: ['web'],
        ports: ['0:80'],
        command: ['sh', '-c', 'mkdir -p /www; echo hello from web > /www/index.html; echo serving; exec httpd -f -v -p 80 -h /www'],
        waitFor: Wait.forAll([Wait.forLogMessage('serving'), Wait.forHttp('/', 80, { body: 'hello' })]),
        startupTimeout: 20_000,
      },
      use,
    ),
  client: async ({ net }, use) => withContainer({ network: net, command: ['sleep', '60'] }, use),
});

it('the client reaches the server by its alias', async ({ web, client }) => {
  const r = await client.exec({ command: ['wget', '-q', '-O-', 'http://web/'] });
  expect(r).toMatchObject({ exitCode: 0, stdout: 'hello from web\n' });
  expect(await web.logs()).toContain('serving');
});

it('the test reaches the server through its random host port', async ({ web }) => {
  const port = web.mappedPort(80);
  expect(port).toBeGreaterThan(0);
  const res = await fetch(`http://${web.host}:${port}/`);
  expect(await res.text()).toBe('hello from web\n');
});

it('exec runs in the container, with its environment', async ({ web }) => {
  const r = await web.exec({ command: ['sh', '-c', 'cat /www/index.html; hostname'] });
  expect(r.exitCode).toBe(0);
  expect(r.stdout.split('\n')[0]).toBe('hello from web');
});
