// Random host ports: `ports: ['80']`, `['0:80']`, `['127.0.0.1::80']` let the kernel pick a free
// host port, held open by the container's owner for the container's lifetime, so parallel
// starts never collide. Everything runs in a namespace made for this file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container, Wait } from 'ctrkit';
import { Bridge, NetworkNamespace, NFT_TABLE, parsePortMapping } from 'ctrkit/network';
import { rootfs, tempDir } from './helpers.js';

let lab: NetworkNamespace;
let bridge: Bridge;
let dir: string;
let cleanup = () => {};

beforeAll(async () => {
  [dir, cleanup] = tempDir();
  lab = await NetworkNamespace.create(`ctk-ports-${process.pid}`);
  bridge = await Bridge.create({ name: `ctkp${process.pid % 10000}`, subnet: '10.79.0.0/24', netns: lab, stateDir: `${dir}/net` });
});

afterAll(async () => {
  for (const c of await Container.list({ stateRoot: `${dir}/root`, all: true })) await c.remove({ force: true });
  await bridge?.remove();
  await lab?.delete();
  cleanup();
});

const server = (body: string) => ['sh', '-c', `mkdir -p /www; echo ${body} > /www/index.html; exec httpd -f -p 80 -h /www`];
/** An HTTP GET from inside the lab namespace (where the ports are published), by busybox wget. */
const fetchInLab = async (url: string) => (await lab.exec(['busybox', 'wget', '-q', '-O-', url])).stdout;
/** TCP ports listening in the lab namespace. */
const labListening = async () => (await lab.exec(['ss', '-Hltn'])).stdout;

describe('random host ports', () => {
  it('parses 80, 0:80 and 127.0.0.1::80 as "the kernel chooses"', () => {
    expect(parsePortMapping('80')).toEqual({ hostIp: undefined, hostPort: 0, containerPort: 80, protocol: 'tcp' });
    expect(parsePortMapping('0:80/udp')).toEqual({ hostIp: undefined, hostPort: 0, containerPort: 80, protocol: 'udp' });
    expect(parsePortMapping('127.0.0.1::80')).toEqual({ hostIp: '127.0.0.1', hostPort: 0, containerPort: 80, protocol: 'tcp' });
    expect(() => parsePortMapping('1:2:3:4')).toThrow(/not \[\[hostIp:\]hostPort:\]containerPort/);
    expect(() => parsePortMapping('80:0')).toThrow(/container port/);
  });

  it('20 containers each publishing 0:80 get 20 distinct host ports, all reachable', async () => {
    const started = performance.now();
    const containers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        Container.start({
          rootfs,
          stateRoot: `${dir}/root`,
          network: 'bridge',
          bridge,
          ports: ['0:80'],
          command: server(`c${i}`),
          startupTimeout: 60_000,
        }),
      ),
    );
    const ms = performance.now() - started;
    try {
      const ports = containers.map((c) => c.mappedPort(80));
      expect(new Set(ports).size).toBe(20);
      for (const p of ports) expect(p).toBeGreaterThan(0);
      console.log(`20 containers with random host ports started and ready in ${Math.round(ms)} ms: ${ports.join(' ')}`);
      // The chosen ports are in the record, for every reader, and each leads to its own container.
      for (const [i, c] of containers.entries()) {
        expect((await Container.get(c.id, { stateRoot: `${dir}/root` })).mappedPort(80)).toBe(ports[i]);
        expect(await fetchInLab(`http://${c.host}:${ports[i]}/`)).toBe(`c${i}\n`);
      }
      // Held the way docker-proxy holds them: a listening socket per port in the bridge's namespace.
      const listening = await labListening();
      for (const p of ports) expect(listening).toContain(`:${p} `);
    } finally {
      await Promise.all(containers.map((c) => c.remove({ force: true })));
    }
    const rules = (await lab.exec(['nft', 'list', 'table', 'ip', NFT_TABLE])).stdout;
    expect(rules).not.toMatch(/dport \d+ dnat/);
  }, 180_000);

  it('a port bound to 127.0.0.1 is reachable there and released with the container', async () => {
    let port: number;
    {
      await using c = await Container.start({
        rootfs,
        stateRoot: `${dir}/root`,
        network: 'bridge',
        bridge,
        ports: ['127.0.0.1::80'],
        command: server('local'),
      });
      port = c.mappedPort(80);
      expect(c.host).toBe('127.0.0.1');
      expect((await c.inspect()).ports).toEqual([{ hostIp: '127.0.0.1', hostPort: port, containerPort: 80, protocol: 'tcp' }]);
      expect(await fetchInLab(`http://127.0.0.1:${port}/`)).toBe('local\n');
    }
    expect(await labListening()).not.toContain(`:${port} `);
    // The port is free again: a fixed mapping may take it.
    await using _again = await Container.start({
      rootfs,
      stateRoot: `${dir}/root`,
      network: 'bridge',
      bridge,
      ports: [`${port}:80`],
      command: server('again'),
    });
    expect(await fetchInLab(`http://127.0.0.1:${port}/`)).toBe('again\n');
  });

  it('a port nobody listens on inside is not waited for with Wait.forStarted()', async () => {
    await using c = await Container.start({
      rootfs,
      stateRoot: `${dir}/root`,
      network: 'bridge',
      bridge,
      ports: ['80'],
      command: ['sleep', '30'],
      waitFor: Wait.forStarted(),
    });
    expect(c.mappedPort(80)).toBeGreaterThan(0);
  });
});
