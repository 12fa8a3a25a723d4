// Named networks: members resolve each other by hostname, container name and alias (hosts
// files rewritten in place on join and leave), unknown names fail, extraHosts, internal
// networks, and a network goes with its creator and last member, taking its bridge, its
// nftables table and ip_forward along. Everything runs in a namespace made for this file.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container, Wait } from 'ctrkit';
import { Network, NetworkNamespace } from 'ctrkit/network';
import { helperGone, rootfs, tempDir } from './helpers.js';

let lab: NetworkNamespace;
let dir: string;
let cleanup = () => {};
const dist = new URL('../dist', import.meta.url).pathname;

beforeAll(async () => {
  [dir, cleanup] = tempDir();
  lab = await NetworkNamespace.create(`ctk-nets-${process.pid}`);
});

afterAll(async () => {
  for (const c of await Container.list({ stateRoot: `${dir}/root`, all: true })) await c.remove({ force: true });
  await lab?.delete();
  cleanup();
});

const stateDir = () => `${dir}/net`;
const common = () => ({ rootfs, stateRoot: `${dir}/root` });
const inLab = async (cmd: string) => (await lab.exec(['sh', '-c', cmd])).stdout;
const server = ['sh', '-c', 'mkdir -p /www; hostname > /www/index.html; exec httpd -f -p 80 -h /www'];

describe('Network', () => {
  it('members reach each other by hostname, name and alias; hosts files follow joins and leaves', async () => {
    await using net = await Network.create({ name: 'app', netns: lab, stateDir: stateDir() });
    expect(Network.list({ stateDir: stateDir() })).toEqual(['app']);
    expect(net.subnet).toMatch(/^10\.89\.\d+\.0\/24$/);
    const db = await Container.start({
      ...common(),
      name: 'ctk-db',
      hostname: 'dbhost',
      network: net,
      aliases: ['db', 'database'],
      command: server,
      waitFor: Wait.forListeningPorts([80]),
    });
    const client = await Container.start({ ...common(), hostname: 'client', network: net, command: ['sleep', '60'] });
    for (const name of ['db', 'database', 'dbhost', 'ctk-db']) {
      expect((await client.exec({ command: ['wget', '-q', '-O-', `http://${name}/`] })).stdout, name).toBe('dbhost\n');
    }
    // The first member's file was rewritten in place when the second joined.
    expect((await db.exec({ command: ['cat', '/etc/hosts'] })).stdout).toContain(`${client.address}\tclient`);
    const unknown = await client.exec({ command: ['wget', '-q', '-O-', 'http://nosuchname/'] });
    expect(unknown.exitCode).not.toBe(0);
    expect(unknown.stderr).toMatch(/bad address/);
    expect((await net.members()).map((m) => m.names).sort()).toEqual([['client'], ['dbhost', 'ctk-db', 'db', 'database']]);
    await db.remove({ force: true });
    expect((await client.exec({ command: ['cat', '/etc/hosts'] })).stdout).not.toContain('dbhost');
    expect((await client.exec({ command: ['wget', '-q', '-O-', 'http://db/'] })).exitCode).not.toBe(0);
    await expect(net.remove()).rejects.toMatchObject({ code: 'ERR_NETWORK_IN_USE' });
    await client.remove({ force: true });
  });

  it('extraHosts add entries; aliases need a network; names are unique', async () => {
    await using net = await Network.create({ name: 'extra', netns: lab, stateDir: stateDir() });
    const r = await Container.run({ ...common(), network: net, extraHosts: ['gateway.test:10.1.2.3'], command: ['grep', 'gateway.test', '/etc/hosts'] });
    expect(r.stdout).toBe('10.1.2.3\tgateway.test\n');
    await expect(Container.run({ ...common(), network: 'none', aliases: ['x'], command: ['true'] })).rejects.toMatchObject({ option: 'aliases' });
    await expect(Container.run({ ...common(), extraHosts: ['nocolon'], command: ['true'] })).rejects.toMatchObject({ option: 'extraHosts' });
    await expect(Network.create({ name: 'extra', netns: lab, stateDir: stateDir() })).rejects.toMatchObject({ code: 'ERR_NETWORK_NAME_IN_USE' });
    expect((await Network.open('extra', { stateDir: stateDir() })).bridge.name).toBe(net.bridge.name);
  });

  it('an internal network reaches only its members and publishes no ports', async () => {
    await using net = await Network.create({ internal: true, netns: lab, stateDir: stateDir() });
    await using _a = await Container.start({ ...common(), hostname: 'a', network: net, command: server, waitFor: Wait.forListeningPorts([80]) });
    const r = await Container.run({ ...common(), network: net, command: ['sh', '-c', 'wget -q -O- http://a/; ping -c1 -W1 198.51.100.1 2>&1; ip route'] });
    expect(r.stdout).toContain('a\n');
    expect(r.stdout).toMatch(/unreachable/i);
    expect(r.stdout).not.toContain('default');
    await expect(Container.start({ ...common(), network: net, ports: ['80'], command: ['true'] })).rejects.toMatchObject({ option: 'ports' });
  });

  it('a network goes with its creator and its last member: no bridge, no nft table, ip_forward back to 0', async () => {
    expect(await inLab('cat /proc/sys/net/ipv4/ip_forward')).toBe('0\n');
    // A creator process: a network, a detached member publishing a random port; then it exits.
    const script = `
      import { Container } from '${dist}/index.js';
      import { Network, NetworkNamespace } from '${dist}/network/index.js';
      const net = await Network.create({ name: 'owned', netns: NetworkNamespace.open('${lab.path}'), stateDir: '${stateDir()}' });
      const c = await Container.start({ rootfs: '${rootfs}', stateRoot: '${dir}/root', detach: true, name: 'ctk-member', network: net, ports: ['80'],
        command: ${JSON.stringify(server)} });
      console.log(net.bridge.name);`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const bridgeName = r.stdout.trim();
    expect(await inLab('ip -o link')).toContain(bridgeName);
    expect(await inLab('cat /proc/sys/net/ipv4/ip_forward')).toBe('1\n');
    // The creator is gone, but a member still runs: the network stays.
    const member = await Container.get('ctk-member', { stateRoot: `${dir}/root` });
    expect(Network.list({ stateDir: stateDir() })).toContain('owned');
    await member.stop({ timeout: 100 });
    await member.remove();
    expect(await helperGone(r.pid)).toBe(true); // the creator's helper ran the member: it ends with it
    const gone = async () => !(await inLab('ip -o link')).includes(bridgeName) && !Network.list({ stateDir: stateDir() }).includes('owned');
    for (let i = 0; i < 100 && !(await gone()); i++) await new Promise((res) => setTimeout(res, 50));
    expect(await gone()).toBe(true);
    expect(await inLab('nft list tables')).not.toContain('ctk');
    expect(await inLab('cat /proc/sys/net/ipv4/ip_forward')).toBe('0\n');
  });

  it('a network with no member goes when its creator exits; a persistent one stays', async () => {
    const script = (name: string, persistent: boolean) => `
      import { Network, NetworkNamespace } from '${dist}/network/index.js';
      await Network.create({ name: '${name}', persistent: ${persistent}, netns: NetworkNamespace.open('${lab.path}'), stateDir: '${stateDir()}' });`;
    for (const [name, persistent] of [
      ['brief', false],
      ['kept', true],
    ] as const) {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script(name, persistent)], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      // Its owner helper sweeps the creator's networks as it exits: wait for it to be done.
      expect(await helperGone(r.pid)).toBe(true);
    }
    for (let i = 0; i < 100 && Network.list({ stateDir: stateDir() }).includes('brief'); i++) await new Promise((res) => setTimeout(res, 50));
    expect(Network.list({ stateDir: stateDir() })).not.toContain('brief');
    expect(Network.list({ stateDir: stateDir() })).toContain('kept');
    const kept = await Network.open('kept', { stateDir: stateDir() });
    await kept.remove();
    expect(await inLab('ip -o link | grep -c ctkn || true')).toBe('0\n');
  });
});
