// Container.run's network options, end to end. Everything happens in a namespace made for
// this file that plays "the host": this machine's own network is never touched.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container } from 'ctrkit';
import { Bridge, NetworkNamespace } from 'ctrkit/network';
import { rootfs, tempDir } from './helpers.js';

let lab: NetworkNamespace;
let bridge: Bridge;
let cleanupState = () => {};

beforeAll(async () => {
  lab = await NetworkNamespace.create(`ctk-lab-${process.pid}`);
  let stateDir: string;
  [stateDir, cleanupState] = tempDir();
  bridge = await Bridge.create({ name: `ctkc${process.pid % 10000}`, subnet: '10.77.0.0/24', netns: lab, stateDir });
});

afterAll(async () => {
  await bridge?.remove();
  await lab?.delete();
  cleanupState();
});

describe('Container.run networking', () => {
  it('bridge: containers get addresses, /etc files, and reach each other; container mode shares a namespace', async () => {
    await using a = await Container.start({ rootfs, hostname: 'alpha', network: 'bridge', bridge, command: ['sleep', '30'], stdio: 'ignore' });
    const address = a.network!.address!;
    expect(address).toMatch(/^10\.77\.0\.\d+$/);
    const b = await Container.run({
      rootfs,
      hostname: 'beta',
      network: 'bridge',
      bridge,
      command: [
        'sh',
        '-c',
        `ping -c 1 -W 3 ${address} > /dev/null && echo reached; cat /etc/hostname; grep beta /etc/hosts; ip -o -4 addr show eth0 | awk '{print $4}'`,
      ],
    });
    const [reached, hostname, hostsLine, cidr] = b.stdout.trim().split('\n');
    expect(reached).toBe('reached');
    expect(hostname).toBe('beta');
    expect(hostsLine).toBe(`${b.address}\tbeta`);
    expect(cidr).toBe(`${b.address}/24`);
    expect(b.address).not.toBe(address);
    const c = await Container.run({ rootfs, network: { container: a }, command: ['sh', '-c', "ip -o -4 addr show eth0 | awk '{print $4}'"] });
    expect(c.stdout.trim()).toBe(`${address}/24`);
  });

  it('the address goes back to the pool when the container ends', async () => {
    const before = (await bridge.leases()).length;
    const r = await Container.run({ rootfs, network: 'bridge', bridge, command: ['true'] });
    expect(r.address).toMatch(/^10\.77\.0\./);
    expect((await bridge.leases()).length).toBe(before);
  });

  it('bad ports are refused and nothing is left', async () => {
    const leases = (await bridge.leases()).length;
    await expect(Container.run({ rootfs, network: 'bridge', bridge, ports: ['99999:80'], command: ['true'] })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
    });
    await expect(Container.run({ rootfs, network: 'none', ports: ['8080:80'], command: ['true'] })).rejects.toThrow(/ports need bridge or cni/);
    expect((await bridge.leases()).length).toBe(leases);
  });
});
