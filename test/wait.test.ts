// Readiness: Container.start({ waitFor }) resolves once the container is ready, and rejects
// with a typed error carrying its last log lines when it exits first or never gets ready —
// leaving nothing behind. Networks live in a namespace made for this file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container, StartupError, Wait } from 'ctrkit';
import { Network, NetworkNamespace } from 'ctrkit/network';
import { rootfs, tempDir } from './helpers.js';

let lab: NetworkNamespace;
let net: Network;
let dir: string;
let cleanup = () => {};

beforeAll(async () => {
  [dir, cleanup] = tempDir();
  lab = await NetworkNamespace.create(`ctk-wait-${process.pid}`);
  net = await Network.create({ name: `ctk-wait-${process.pid}`, netns: lab, stateDir: `${dir}/net` });
});

afterAll(async () => {
  for (const c of await Container.list({ stateRoot: `${dir}/root`, all: true })) await c.remove({ force: true });
  await net?.remove({ force: true });
  await lab?.delete();
  cleanup();
});

const common = () => ({ rootfs, stateRoot: `${dir}/root`, network: net });
// Prints `ready` after 2 s, then serves "hello" over HTTP on port 80.
const slowServer = ['sh', '-c', 'sleep 2; echo ready; mkdir -p /www; echo hello > /www/index.html; exec httpd -f -p 80 -h /www'];

async function leftovers(): Promise<number> {
  return (await Container.list({ stateRoot: `${dir}/root`, all: true })).length;
}

describe('waitFor', () => {
  it.each([
    ['a log message', () => Wait.forLogMessage(/^ready$/)],
    ['a listening port', () => Wait.forListeningPorts([80])],
    ['an HTTP answer', () => Wait.forHttp('/', 80, { status: 200, body: 'hello' })],
  ])('waits for %s of a container that gets ready after 2 s', async (_what, strategy) => {
    const started = performance.now();
    await using c = await Container.start({ ...common(), command: slowServer, waitFor: strategy(), startupTimeout: 20_000 });
    expect(performance.now() - started).toBeGreaterThanOrEqual(2000);
    expect(await c.logs()).toContain('ready');
    // Ready means ready: the server answers now, from a second container on the network.
    const r = await Container.run({ ...common(), command: ['wget', '-q', '-O-', `http://${c.address}/`] });
    expect(r.stdout).toBe('hello\n');
  });

  it('waits for all of several strategies, and for a successful command', async () => {
    await using c = await Container.start({
      ...common(),
      command: slowServer,
      startupTimeout: 20_000,
      waitFor: Wait.forAll([Wait.forLogMessage('ready'), Wait.forHttp('/', 80), Wait.forSuccessfulCommand('test -f /www/index.html')]),
    });
    expect(await c.exec({ command: ['cat', '/www/index.html'] })).toMatchObject({ exitCode: 0, stdout: 'hello\n' });
  });

  it('waits for the published ports by default', async () => {
    const started = performance.now();
    await using c = await Container.start({ ...common(), command: slowServer, ports: ['80'], startupTimeout: 20_000 });
    expect(performance.now() - started).toBeGreaterThanOrEqual(2000);
    expect(c.mappedPort(80)).toBeGreaterThan(0);
  });

  it('a container that exits at once rejects with its logs, and nothing is left', async () => {
    const started = performance.now();
    const err = await Container.start({
      ...common(),
      command: ['sh', '-c', 'echo starting; echo "config missing" >&2; exit 3'],
      waitFor: Wait.forLogMessage('ready'),
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    const ms = performance.now() - started;
    expect(err).toBeInstanceOf(StartupError);
    const e = err as StartupError;
    expect(e.code).toBe('ERR_STARTUP_EXITED');
    expect(e.logs).toContain('starting');
    expect(e.logs).toContain('config missing');
    expect(e.message).toContain('config missing');
    expect(e.exit?.exitCode).toBe(3);
    console.log(`an exiting container was rejected after ${Math.round(ms)} ms`);
    expect(await leftovers()).toBe(0);
    expect(await net.members()).toEqual([]);
  });

  it('a container that never gets ready rejects at startupTimeout, killed and removed', async () => {
    const started = performance.now();
    const err = await Container.start({
      ...common(),
      command: ['sh', '-c', 'echo waiting; sleep 60'],
      waitFor: Wait.forHttp('/', 80),
      startupTimeout: 1500,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(performance.now() - started).toBeGreaterThanOrEqual(1500);
    expect(err).toMatchObject({ code: 'ERR_STARTUP_TIMEOUT', logs: 'waiting\n' });
    expect(await leftovers()).toBe(0);
  });

  it('health checks: status in inspect(), Wait.forHealthCheck() waits for healthy and fails on unhealthy', async () => {
    await using c = await Container.start({
      ...common(),
      command: slowServer,
      healthcheck: { test: ['CMD-SHELL', 'wget -q -O- http://127.0.0.1/ | grep -q hello'], interval: 300, retries: 30 },
      waitFor: Wait.forHealthCheck(),
      startupTimeout: 20_000,
    });
    const info = await c.inspect();
    expect(info.health?.status).toBe('healthy');
    expect(info.health?.log.at(-1)?.exitCode).toBe(0);
    const err = await Container.start({
      ...common(),
      command: ['sleep', '60'],
      healthcheck: { test: 'exit 1', interval: 100, retries: 2 },
      waitFor: Wait.forHealthCheck(),
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'ERR_STARTUP_FAILED' });
    expect((err as Error).message).toMatch(/unhealthy/);
    expect(await leftovers()).toBe(1);
  });

  it('a detached container is waited for from the caller, and removed when it fails', async () => {
    await using c = await Container.start({ ...common(), detach: true, command: slowServer, waitFor: Wait.forHttp('/', 80), startupTimeout: 20_000 });
    expect(c.detached).toBe(true);
    expect(await c.logs()).toContain('ready');
    await c.stop({ timeout: 100 });
    await c.remove();
    await expect(Container.start({ ...common(), detach: true, command: ['false'], waitFor: Wait.forHttp('/', 80) })).rejects.toMatchObject({
      code: 'ERR_STARTUP_EXITED',
    });
    expect(await leftovers()).toBe(0);
  });

  it('refuses bad strategies and options before anything starts', async () => {
    expect(() => Wait.forHttp('no-slash', 80)).toThrow(/must start with/);
    expect(() => Wait.forLogMessage('x', 0)).toThrow(/positive integer/);
    await expect(Container.start({ ...common(), command: ['true'], startupTimeout: -1 })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
      option: 'startupTimeout',
    });
    await expect(Container.start({ ...common(), command: ['true'], healthcheck: { test: [] } })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
    expect(await leftovers()).toBe(0);
  });
});
