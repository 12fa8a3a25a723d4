/**
 * 5.4.3: the same container networking through the standard CNI plugins (Debian's
 * containernetworking-plugins: bridge, host-local, portmap, loopback, tuning), run by
 * ctrkit's CNI runtime. Same lab as network.test.ts: a namespace that plays the host, one
 * that plays the outside world, nothing sent anywhere else.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container, type RunningContainer } from 'ctrkit';
import { CniError, CniNetwork, NetworkNamespace, Rtnetlink, connectContainer, type CniConfigList } from 'ctrkit/network';
import { rootfs, tempDir } from './helpers.js';
import { createLab, HOST_IP, OUTSIDE_IP, type Lab } from './network-lab.js';

const BUSYBOX = join(rootfs, 'bin', 'busybox');
const hasPlugins = ['bridge', 'host-local', 'portmap', 'loopback', 'tuning'].every((p) => existsSync(`/usr/lib/cni/${p}`));

let lab: Lab;
let host: NetworkNamespace;
let outside: NetworkNamespace;
let stateDir: string;
let cleanState: () => void;

const realForward = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');

function config(extra: CniConfigList['plugins'] = []): CniConfigList {
  return {
    cniVersion: '1.0.0',
    name: `ctk-cni-${process.pid}`,
    plugins: [
      {
        type: 'bridge',
        bridge: 'ctkcni0',
        isGateway: true,
        ipMasq: true,
        hairpinMode: true,
        ipam: { type: 'host-local', ranges: [[{ subnet: '10.96.0.0/24' }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: join(stateDir, 'host-local') },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
      ...extra,
    ],
  };
}

function leasedAddresses(): string[] {
  const dir = join(stateDir, 'host-local', `ctk-cni-${process.pid}`);
  return existsSync(dir) ? readdirSync(dir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : [];
}

function hostLinks(): string[] {
  using rt = Rtnetlink.open({ netns: host });
  return rt.links().map((l) => l.name);
}

function container(command: string, hook: (pid: number) => Promise<unknown>): Promise<RunningContainer> {
  return Container.start({ command: ['sh', '-c', command], stdio: 'ignore', onNamespaces: ({ pid }) => hook(pid).then(() => undefined) });
}

beforeAll(async () => {
  [stateDir, cleanState] = tempDir();
  lab = await createLab('c');
  ({ host, outside } = lab);
});

afterAll(async () => {
  if (host) {
    using rt = Rtnetlink.open({ netns: host });
    rt.deleteLink('ctkcni0', { ifExists: true }); // the bridge plugin never removes its bridge
  }
  await lab?.dispose();
  cleanState?.();
});

describe.skipIf(!hasPlugins)('5.4.3: CNI', () => {
  it('VERSION: the plugins speak CNI 1.0.0 (configuration list read from a .conflist file)', async () => {
    const file = join(stateDir, 'ctk.conflist');
    writeFileSync(file, JSON.stringify(config()));
    const net = await CniNetwork.load(file, { netns: host, cacheDir: join(stateDir, 'cni') });
    expect(net.config.plugins.map((p) => p.type)).toEqual(['bridge', 'portmap']);
    await expect(CniNetwork.load(join(stateDir, 'missing.conflist'))).rejects.toMatchObject({ code: 'ERR_NETWORK_CNI_CONFIG' });
    for (const p of ['bridge', 'host-local', 'portmap', 'loopback']) {
      expect((await net.version(p)).supportedVersions).toContain('1.0.0');
    }
  });

  it('ADD through bridge + host-local + portmap: -p 8090:80 from outside sees the real client; DEL leaves nothing', async () => {
    const cacheDir = join(stateDir, 'cni');
    const net = await CniNetwork.load(config(), { netns: host, cacheDir });
    const lo = await CniNetwork.load({ cniVersion: '1.0.0', name: 'ctk-lo', plugins: [{ type: 'loopback' }] }, { netns: host, cacheDir });
    let address: string | undefined;
    let att: Awaited<ReturnType<typeof connectContainer>> | undefined;
    const httpd =
      'mkdir -p /www/cgi-bin && printf "#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho \\$REMOTE_ADDR\\n" > /www/cgi-bin/ip' +
      ' && chmod +x /www/cgi-bin/ip && exec busybox httpd -f -p 80 -h /www';
    await using c = await container(httpd, async (pid) => {
      await lo.add({ containerId: `ctk-${pid}`, netns: `/proc/${pid}/ns/net`, ifname: 'lo' });
      att = await connectContainer({ pid, mode: 'cni', cni: net, ports: ['8090:80'], containerId: `ctk-${pid}`, netns: host });
      address = att.address;
    });
    expect(address).toMatch(/^10\.96\.0\.\d+$/);
    expect(att?.gateway).toBe('10.96.0.1');
    expect(leasedAddresses()).toEqual([address]);
    const inside = await NetworkNamespace.open(c.pid).exec([BUSYBOX, 'ip', '-o', 'addr', 'show', 'eth0']);
    expect(inside.stdout).toContain(`${address}/24`);
    let seen = '';
    for (let i = 0; i < 50 && !seen; i++) {
      const r = await outside.exec([BUSYBOX, 'wget', '-q', '-O', '-', `http://${HOST_IP}:8090/cgi-bin/ip`], { timeoutMs: 10_000 });
      seen = r.stdout
        .trim()
        .replace(/^\[?(::ffff:)?/, '')
        .replace(/\]$/, '');
    }
    expect(seen).toBe(OUTSIDE_IP);
    // (no CHECK here: portmap 1.1.1's CHECK also looks for an ip6tables chain it never made; see the next test)
    const vethsBefore = hostLinks().filter((n) => n.startsWith('veth'));
    expect(vethsBefore).toHaveLength(1);
    await att!.detach();
    await lo.del(`ctk-${c.pid}`, 'lo');
    expect(hostLinks().filter((n) => n.startsWith('veth'))).toEqual([]);
    expect(leasedAddresses()).toEqual([]);
    expect(existsSync(join(cacheDir, 'results')) ? readdirSync(join(cacheDir, 'results')) : []).toEqual([]);
  }, 60_000);

  it('CHECK verifies an attachment against the cached result; DEL uses it', async () => {
    const list = config();
    const net = await CniNetwork.load(
      { ...list, name: `ctk-cni-${process.pid}`, plugins: list.plugins.slice(0, 1) },
      { netns: host, cacheDir: join(stateDir, 'cni') },
    );
    let id = '';
    await using c = await container('sleep 30', async (pid) => {
      id = `ctk-${pid}`;
      await net.add({ containerId: id, netns: `/proc/${pid}/ns/net` });
    });
    await net.check(id);
    // CHECK fails once what ADD made is gone.
    await NetworkNamespace.open(c.pid).exec([BUSYBOX, 'ip', 'addr', 'flush', 'dev', 'eth0']);
    await expect(net.check(id)).rejects.toMatchObject({ code: 'ERR_NETWORK_CNI_PLUGIN', plugin: 'bridge' });
    await net.del(id);
    expect(leasedAddresses()).toEqual([]);
  }, 60_000);

  it('a missing plugin, and a plugin that fails mid-chain: typed errors, and DEL undid what the chain made', async () => {
    await expect(CniNetwork.load(config([{ type: 'ctk-no-such-plugin' }]), { netns: host })).rejects.toMatchObject({
      code: 'ERR_NETWORK_CNI_PLUGIN_NOT_FOUND',
    });
    const net = await CniNetwork.load(config([{ type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.ctk_no_such_sysctl': '1' } }]), {
      netns: host,
      cacheDir: join(stateDir, 'cni'),
    });
    let err: unknown;
    await container('sleep 30', (pid) => net.add({ containerId: `ctk-${pid}`, netns: `/proc/${pid}/ns/net` })).catch((e: unknown) => (err = e));
    expect(err).toBeInstanceOf(CniError);
    expect(err).toMatchObject({ code: 'ERR_NETWORK_CNI_PLUGIN', plugin: 'tuning' });
    expect(hostLinks().filter((n) => n.startsWith('veth'))).toEqual([]);
    expect(leasedAddresses()).toEqual([]);
  }, 60_000);

  it('the machine itself was never touched', () => {
    expect(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8')).toBe(realForward);
  });
});
