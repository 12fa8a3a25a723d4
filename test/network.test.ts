/**
 * ctrkit/network on the real kernel. Every test runs inside a lab made for this run: a
 * network namespace that plays "the host" (ctk-host-PID) and one that plays "the outside
 * world" (ctk-out-PID), joined by a veth pair on 198.51.100.0/24 (TEST-NET-2). No packet
 * goes anywhere else, and the machine's own interfaces, ruleset and ip_forward are untouched
 * (the last test checks that).
 */
import { execFileSync, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container, InvalidOptionError, type RunningContainer } from 'ctrkit';
import { unshare } from 'ctrkit/namespaces';
import {
  Bridge,
  NetlinkError,
  NetworkError,
  NetworkNamespace,
  Rtnetlink,
  connectContainer,
  writeNetworkFiles,
  parsePortMapping,
  NFT_TABLE,
} from 'ctrkit/network';
import { rootfs, tempDir } from './helpers.js';
import { createLab, HOST_IP, OUTSIDE_IP, type Lab } from './network-lab.js';

const BUSYBOX = join(rootfs, 'bin', 'busybox');

const realForward = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
const realTables = nftTables();
let lab: Lab;
let host: NetworkNamespace;
let outside: NetworkNamespace;
let stateDir: string;
let cleanState: () => void;
let echo: Server; // in the outside world: answers with the address it sees

function nftTables(): string {
  try {
    return execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' });
  } catch {
    return '';
  }
}

/** Runs busybox (the host's copy in the rootfs) inside a namespace. */
function bb(ns: NetworkNamespace, ...args: string[]) {
  // (busybox wget -T crashes this static busybox: the timeout is exec's instead)
  return ns.exec([BUSYBOX, ...args], { timeoutMs: 10_000 });
}

/** A container (copy-on-write root, default capabilities) whose hook runs `attach`. */
function container(command: string, attach: (pid: number) => Promise<unknown>): Promise<RunningContainer> {
  return Container.start({ command: ['sh', '-c', command], stdio: ['ignore', 'pipe', 'pipe'], onNamespaces: ({ pid }) => attach(pid).then(() => undefined) });
}

/** busybox httpd listens on IPv6 and reports `[::ffff:a.b.c.d]`. */
function plain(remoteAddr: string): string {
  return remoteAddr
    .trim()
    .replace(/^\[?(::ffff:)?/, '')
    .replace(/\]$/, '');
}

function hostLinks(): string[] {
  using rt = Rtnetlink.open({ netns: host });
  return rt.links().map((l) => l.name);
}

beforeAll(async () => {
  [stateDir, cleanState] = tempDir();
  lab = await createLab('');
  ({ host, outside } = lab);
  echo = createServer((req, res) => res.end(`${req.socket.remoteAddress?.replace(/^::ffff:/, '')}\n`));
  // listen() without a host makes its socket synchronously: inside the outside world.
  outside.runSync(() => echo.listen(9000));
});

afterAll(async () => {
  echo?.close();
  await lab?.dispose();
  cleanState?.();
});

describe('5.1.4: network namespace and veth', () => {
  it('a named netns shows only lo; a veth end moved inside with 10.1.1.2/24 answers ping', async () => {
    await using ns = await NetworkNamespace.create(`ctk-c1-${process.pid}`);
    expect(readdirSync('/run/netns')).toContain(`ctk-c1-${process.pid}`);
    using inner = Rtnetlink.open({ netns: ns });
    expect(inner.links().map((l) => l.name)).toEqual(['lo']);
    using rt = Rtnetlink.open({ netns: host });
    rt.createVeth({ name: 'ctkveth0', peer: { name: 'ctkveth1' } });
    rt.setLink('ctkveth1', { netns: ns }); // moved inside, like `ip link set veth1 netns container1`
    expect(rt.link('ctkveth1')).toBeUndefined();
    rt.addAddress('ctkveth0', '10.1.1.1/24');
    rt.setLink('ctkveth0', { up: true });
    inner.addAddress('ctkveth1', '10.1.1.2/24');
    inner.setLink('ctkveth1', { up: true });
    expect(inner.links().map((l) => l.name)).toEqual(['lo', 'ctkveth1']);
    expect(inner.addresses().map((a) => a.cidr)).toContain('10.1.1.2/24');
    const ping = await bb(host, 'ping', '-c', '2', '-W', '2', '10.1.1.2');
    expect(ping.stdout).toContain('2 packets received');
    const mac = inner.link('ctkveth1')!.mac;
    expect(rt.neighbours()).toContainEqual(expect.objectContaining({ address: '10.1.1.2', mac, index: rt.indexOf('ctkveth0') }));
    rt.deleteLink('ctkveth0');
    expect(inner.links().map((l) => l.name)).toEqual(['lo']); // the pair goes together
  });
});

describe('rtnetlink client', () => {
  it('creates, renames, sets MTU and master, dumps, and deletes; kernel refusals are typed', () => {
    using rt = Rtnetlink.open({ netns: host });
    rt.createBridge('ctkbrx');
    rt.createVeth({ name: 'ctkva', peer: { name: 'ctkvb' }, mtu: 1400 });
    try {
      rt.setLink('ctkva', { name: 'ctkvc', mtu: 1300, master: 'ctkbrx', up: true });
      const l = rt.link('ctkvc')!;
      expect(l).toMatchObject({ name: 'ctkvc', mtu: 1300, up: true, kind: 'veth', master: rt.indexOf('ctkbrx') });
      expect(rt.link('ctkvb')?.mtu).toBe(1400);
      let err: unknown;
      try {
        rt.createVeth({ name: 'ctkvc', peer: { name: 'ctkvd' } });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(NetlinkError);
      expect(err).toMatchObject({ code: 'ERR_NETLINK', errno: 17, errnoName: 'EEXIST' });
      expect(() => rt.deleteLink('ctknothere')).toThrow(expect.objectContaining({ errnoName: 'ENODEV' }) as Error);
      expect(() => rt.addRoute({ destination: 'default', gateway: '10.77.0.1' })).toThrow(expect.objectContaining({ errnoName: 'ENETUNREACH' }) as Error);
      expect(() => rt.createBridge('ctk-this-is-too-long')).toThrow(InvalidOptionError);
      rt.addAddress('ctkvc', '10.77.0.2/24');
      rt.addRoute({ destination: '10.78.0.0/16', gateway: '10.77.0.1' });
      expect(rt.routes()).toContainEqual(expect.objectContaining({ destination: '10.78.0.0/16', gateway: '10.77.0.1' }));
      rt.deleteRoute({ destination: '10.78.0.0/16', gateway: '10.77.0.1' });
      expect(rt.routes().some((r) => r.destination === '10.78.0.0/16')).toBe(false);
      expect(Array.isArray(rt.neighbours())).toBe(true);
      rt.setLink('ctkvc', { master: null });
      expect(rt.link('ctkvc')?.master).toBeUndefined();
    } finally {
      rt.deleteLink('ctkvc', { ifExists: true });
      rt.deleteLink('ctkbrx', { ifExists: true });
    }
    expect(hostLinks().filter((n) => n !== 'ctkup' && n.startsWith('ctk'))).toEqual([]);
  });
});

describe('5.4.2: bridge mode', () => {
  it('two containers on one bridge reach each other; outbound traffic leaves with the host address', async () => {
    await using br = await Bridge.create({ name: 'ctkbr0', subnet: '10.88.0.0/24', netns: host, stateDir });
    const atts: Awaited<ReturnType<Bridge['attach']>>[] = [];
    await using a = await container('sleep 30', async (pid) => atts.push(await br.attach(pid)));
    await using _b = await container('sleep 30', async (pid) => atts.push(await br.attach(pid)));
    try {
      const [ia, ib] = atts;
      expect(ia!.address).not.toBe(ib!.address);
      expect(ia!.gateway).toBe('10.88.0.1');
      const inA = NetworkNamespace.open(a.pid);
      const ping = await bb(inA, 'ping', '-c', '1', '-W', '2', ib!.address);
      expect(ping.stdout).toContain('1 packets received');
      const ifaces = await bb(inA, 'ip', '-o', 'addr', 'show', 'eth0');
      expect(ifaces.stdout).toContain(`${ia!.address}/24`);
      const route = await bb(inA, 'ip', 'route');
      expect(route.stdout).toContain('default via 10.88.0.1 dev eth0');
      // The outside world sees the host's address, not the container's: masquerade.
      const seen = await bb(inA, 'wget', '-q', '-O', '-', `http://${OUTSIDE_IP}:9000/`);
      expect(seen.stdout.trim()).toBe(HOST_IP);
      expect(await br.leases()).toHaveLength(2);
    } finally {
      for (const att of atts) await att.detach();
    }
    expect(await br.leases()).toHaveLength(0);
  });

  it('20 containers started in parallel get distinct addresses and all reach each other', async () => {
    await using br = await Bridge.create({ name: 'ctkbr1', subnet: '10.89.0.0/24', netns: host, stateDir });
    const addresses = new Map<number, string>();
    const cs = await Promise.all(
      Array.from({ length: 20 }, () =>
        container('sleep 60', async (pid) => {
          addresses.set(pid, (await br.attach(pid)).address);
        }),
      ),
    );
    try {
      const ips = [...addresses.values()];
      expect(new Set(ips).size).toBe(20);
      const results = await Promise.all(
        cs.map((c) => {
          const others = ips.filter((ip) => ip !== addresses.get(c.pid));
          return bb(
            NetworkNamespace.open(c.pid),
            'sh',
            '-c',
            `n=0; for ip in ${others.join(' ')}; do ping -c 1 -W 2 $ip >/dev/null && n=$((n+1)); done; echo $n`,
          );
        }),
      );
      expect(results.map((r) => Number(r.stdout.trim()))).toEqual(Array(20).fill(19));
    } finally {
      await Promise.all(cs.map((c) => c[Symbol.asyncDispose]()));
    }
    // The containers ended without a detach: their addresses come back by themselves.
    expect(await br.leases()).toHaveLength(0);
  }, 120_000);

  it('none mode has only lo, up; host mode shares the host namespace', async () => {
    let att: Awaited<ReturnType<typeof connectContainer>> | undefined;
    await using c = await container('sleep 30', async (pid) => (att = await connectContainer({ pid, mode: 'none', netns: host })));
    expect(att).toMatchObject({ mode: 'none', address: undefined });
    const links = await bb(NetworkNamespace.open(c.pid), 'ip', '-o', 'link');
    expect(links.stdout.trim().split('\n')).toHaveLength(1);
    expect(links.stdout).toMatch(/lo: <LOOPBACK,UP,LOWER_UP>/);
    // host mode: no network namespace of its own. Started from inside the lab host, so
    // "the host" it shares is the lab's, not the machine's.
    const dist = new URL('../dist/', import.meta.url).pathname;
    const script = `const { unshare } = await import('${dist}namespaces/index.js'); const { connectContainer } = await import('${dist}network/index.js');
      const p = await unshare({ command: ['ip', '-o', 'addr'], namespaces: ['pid', 'mnt', 'uts', 'ipc'], rootfs: '${rootfs}', stdio: ['ignore', 'inherit', 'inherit'],
        onNamespaces: async ({ pid }) => { const a = await connectContainer({ pid, mode: 'host' }); if (a.address !== undefined) throw new Error('host mode got an address'); } });
      await p.exited;`;
    const r = await host.exec([process.execPath, '--input-type=module', '-e', script], { timeoutMs: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`inet ${HOST_IP}/24`);
    // A container that has a namespace of its own is not in host mode: refused, not ignored.
    await expect(container('sleep 30', (pid) => connectContainer({ pid, mode: 'host', netns: host }))).rejects.toMatchObject({ code: 'ERR_NETWORK_NAMESPACE' });
  });

  it('an aborted attach leaves nothing', async () => {
    await using br = await Bridge.create({ name: 'ctkbr8', subnet: '10.97.0.0/24', netns: host, stateDir });
    const before = hostLinks();
    await expect(container('sleep 30', (pid) => br.attach(pid, { signal: AbortSignal.abort() }))).rejects.toMatchObject({ code: 'ABORT_ERR' });
    const ac = new AbortController();
    await expect(
      container('sleep 30', (pid) => {
        const p = br.attach(pid, { ports: ['8084:80'], signal: ac.signal });
        ac.abort(); // mid-way: after the veth, before or during nft
        return p;
      }),
    ).rejects.toMatchObject({ code: 'ABORT_ERR' });
    expect(hostLinks()).toEqual(before);
    expect(await br.leases()).toEqual([]);
    expect((await host.exec(['nft', 'list', 'table', 'ip', NFT_TABLE])).stdout).not.toContain('8084');
  });

  it("a container can join another container's network namespace", async () => {
    let addr = '';
    await using br = await Bridge.create({ name: 'ctkbr5', subnet: '10.93.0.0/24', netns: host, stateDir });
    await using a = await container('sleep 30', async (pid) => (addr = (await br.attach(pid)).address));
    // mode "container": spawned into a's netns (nsenter), connectContainer has nothing to build.
    const { nsenter } = await import('ctrkit/namespaces');
    await using j = await nsenter({
      target: a.pid,
      namespaces: ['net'],
      command: [BUSYBOX, 'ip', '-o', 'addr', 'show', 'eth0'],
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let out = '';
    j.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await j.exited;
    expect(out).toContain(`${addr}/24`);
    expect((await connectContainer({ pid: j.pid, mode: 'container' })).address).toBeUndefined();
  });
});

describe('IPAM', () => {
  it('four processes allocating at once never hand out the same address; releases and dead owners free them', async () => {
    const dist = new URL('../dist/', import.meta.url).pathname;
    // Each also creates the same bridge first: one creates it, the others adopt it.
    const script = `const { Ipam, Bridge } = await import('${dist}network/index.js');
      await Bridge.create({ name: 'ctkmp', subnet: '10.98.0.0/24', stateDir: '${stateDir}' });
      const ipam = Ipam.open({ name: 'ctk-mp', subnet: '10.99.0.0/24', stateDir: '${stateDir}' });
      const out = [];
      for (let i = 0; i < 15; i++) out.push((await ipam.allocate({ pid: ${process.pid}, id: process.pid + '-' + i })).address);
      console.log(out.join(' '));`;
    const runs = await Promise.all(Array.from({ length: 4 }, () => host.exec([process.execPath, '--input-type=module', '-e', script], { timeoutMs: 30_000 })));
    const all = runs.flatMap((r) => r.stdout.trim().split(' '));
    expect(runs.map((r) => r.stderr)).toEqual(['', '', '', '']);
    expect(all).toHaveLength(60);
    expect(new Set(all).size).toBe(60);
    expect(hostLinks().filter((n) => n === 'ctkmp')).toHaveLength(1);
    await (await Bridge.create({ name: 'ctkmp', subnet: '10.98.0.0/24', netns: host, stateDir })).remove();
    const { Ipam } = await import('ctrkit/network');
    const ipam = Ipam.open({ name: 'ctk-mp', subnet: '10.99.0.0/24', stateDir });
    for (const a of all) await ipam.release(a);
    expect(await ipam.leases()).toEqual([]);
    // A lease whose owner is gone is free again without any release.
    const gone = await unshare({ command: ['sleep', '30'], namespaces: ['net'], stdio: 'ignore' });
    await ipam.allocate({ pid: gone.pid, address: '10.99.0.50' });
    await expect(ipam.allocate({ pid: process.pid, address: '10.99.0.50' })).rejects.toMatchObject({ code: 'ERR_NETWORK_ADDRESS_IN_USE' });
    await gone[Symbol.asyncDispose]();
    expect((await ipam.allocate({ pid: process.pid, address: '10.99.0.50' })).address).toBe('10.99.0.50');
    await ipam.destroy();
  });
});

describe('5.4.4: published ports', () => {
  const httpd =
    'mkdir -p /www/cgi-bin && printf "#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho \\$REMOTE_ADDR\\n" > /www/cgi-bin/ip' +
    ' && chmod +x /www/cgi-bin/ip && exec busybox httpd -f -p 80 -h /www';

  it('-p 8080:80 reaches an HTTP server in the container from outside (real client address), the host, 127.0.0.1 and the container itself', async () => {
    await using br = await Bridge.create({ name: 'ctkbr2', subnet: '10.90.0.0/24', netns: host, stateDir });
    let att: Awaited<ReturnType<typeof connectContainer>> | undefined;
    await using c = await container(httpd, async (pid) => (att = await connectContainer({ pid, bridge: br, ports: ['8080:80'], netns: host })));
    try {
      const get = (ns: NetworkNamespace, url: string) => bb(ns, 'wget', '-q', '-O', '-', url).then((r) => ({ ...r, stdout: plain(r.stdout) }));
      let first = '';
      for (let i = 0; i < 50 && !first; i++) first = (await get(outside, `http://${HOST_IP}:8080/cgi-bin/ip`)).stdout.trim(); // httpd may still be starting
      expect(first).toBe(OUTSIDE_IP); // DNAT only: the server sees the real client
      expect((await get(host, `http://${HOST_IP}:8080/cgi-bin/ip`)).stdout).toBe(HOST_IP); // from the host itself
      expect((await get(host, 'http://127.0.0.1:8080/cgi-bin/ip')).stdout.trim()).toBe('10.90.0.1');
      expect((await get(NetworkNamespace.open(c.pid), `http://${HOST_IP}:8080/cgi-bin/ip`)).stdout.trim()).toBe('10.90.0.1'); // hairpin
      // The same host port again: refused, and nothing of the second container is left.
      const before = hostLinks().length;
      await expect(container('sleep 30', (pid) => br.attach(pid, { ports: ['8080:80'] }))).rejects.toMatchObject({ code: 'ERR_NETWORK_PORT_IN_USE' });
      expect(hostLinks()).toHaveLength(before);
      expect(await br.leases()).toHaveLength(1);
    } finally {
      await att?.detach();
    }
    expect(await host.exec(['nft', 'list', 'table', 'ip', NFT_TABLE]).then((r) => r.stdout)).not.toContain('8080');
  }, 90_000);

  it('the ports and address of a container that ended without a detach (a crashed parent) come back', async () => {
    await using br = await Bridge.create({ name: 'ctkbr7', subnet: '10.96.0.0/24', netns: host, stateDir });
    const first = await container('sleep 30', (pid) => br.attach(pid, { ports: ['8083:80'], address: '10.96.0.9' }));
    await first[Symbol.asyncDispose](); // killed, never detached
    await using second = await container('sleep 30', (pid) => br.attach(pid, { ports: ['8083:80'], address: '10.96.0.9' }));
    const rules = (await host.exec(['nft', 'list', 'table', 'ip', NFT_TABLE])).stdout;
    expect(rules.match(/dport 8083/g)).toHaveLength(2); // prerouting and output, the second container's only
    expect(rules).toContain(`:${second.pid}.`);
    expect((await br.leases()).map((l) => [l.address, l.owner.pid])).toEqual([['10.96.0.9', second.pid]]);
  });

  it('a host IP restricts the mapping; a listening host port is refused', async () => {
    await using br = await Bridge.create({ name: 'ctkbr3', subnet: '10.91.0.0/24', netns: host, stateDir });
    const busy = createServer();
    host.runSync(() => busy.listen(8081));
    try {
      await expect(container('sleep 30', (pid) => br.attach(pid, { ports: ['8081:80'] }))).rejects.toMatchObject({ code: 'ERR_NETWORK_PORT_IN_USE' });
    } finally {
      busy.close();
    }
    expect(parsePortMapping('127.0.0.1:8082:80/udp')).toEqual({ hostIp: '127.0.0.1', hostPort: 8082, containerPort: 80, protocol: 'udp' });
    expect(() => parsePortMapping('8082:')).toThrow(InvalidOptionError);
    expect(() => parsePortMapping('8082:99999')).toThrow(InvalidOptionError);
    await using _c = await container(httpd, (pid) => br.attach(pid, { ports: [`${HOST_IP}:8082:80`] }));
    let got = '';
    for (let i = 0; i < 50 && !got; i++) got = plain((await bb(outside, 'wget', '-q', '-O', '-', `http://${HOST_IP}:8082/cgi-bin/ip`)).stdout);
    expect(got).toBe(OUTSIDE_IP);
    const viaLoopback = await bb(host, 'wget', '-q', '-O', '-', 'http://127.0.0.1:8082/cgi-bin/ip');
    expect(viaLoopback.exitCode).not.toBe(0); // only the given host address is published
  }, 90_000);
});

describe('bad input and faults leave nothing behind', () => {
  it('an overlapping subnet, a long interface name, an exhausted subnet, a container that is gone', async () => {
    const overlap = await Bridge.create({ name: 'ctkbr9', subnet: '198.51.100.128/25', netns: host, stateDir }).catch((e: unknown) => e);
    expect(overlap).toBeInstanceOf(NetworkError);
    expect(overlap).toMatchObject({ code: 'ERR_NETWORK_SUBNET_OVERLAP' });
    expect(hostLinks()).not.toContain('ctkbr9');
    await expect(Bridge.create({ name: 'ctk-bridge-too-long', subnet: '10.95.0.0/24', netns: host, stateDir })).rejects.toBeInstanceOf(InvalidOptionError);

    await using br = await Bridge.create({ name: 'ctkbr4', subnet: '10.92.0.0/30', netns: host, stateDir });
    // The same bridge again (another process would do this): adopted. Another subnet: refused.
    const again = await Bridge.create({ name: 'ctkbr4', subnet: '10.92.0.0/30', netns: host, stateDir });
    expect(again.gateway).toBe('10.92.0.1');
    await expect(Bridge.create({ name: 'ctkbr4', subnet: '10.93.5.0/24', netns: host, stateDir })).rejects.toMatchObject({ code: 'ERR_NETWORK_BRIDGE' });
    await expect(container('sleep 30', (pid) => br.attach(pid, { ifname: 'eth0-is-way-too-long' }))).rejects.toBeInstanceOf(InvalidOptionError);
    await using _one = await container('sleep 30', (pid) => br.attach(pid));
    const before = hostLinks();
    await expect(container('sleep 30', (pid) => br.attach(pid))).rejects.toMatchObject({ code: 'ERR_NETWORK_SUBNET_EXHAUSTED' });
    expect(hostLinks()).toEqual(before);
    expect(await br.leases()).toHaveLength(1);

    // A process that has exited: refused before anything is made.
    const gone = await unshare({ command: ['true'], namespaces: ['net'], stdio: 'ignore' });
    await gone.exited;
    await expect(br.attach(gone.pid)).rejects.toMatchObject({ code: 'ERR_NETWORK_CONTAINER_GONE' });
    // One that dies while the attach is under way: the IPAM lock is held by another process
    // (util-linux flock) so the attach is stuck waiting when the container is killed.
    await using br2 = await Bridge.create({ name: 'ctkbr6', subnet: '10.94.0.0/24', netns: host, stateDir });
    const dying = await unshare({ command: ['sleep', '30'], namespaces: ['net'], stdio: 'ignore' });
    const lockFile = join(stateDir, 'ipam', `ctkbr6-${host.inode}.lock`);
    const holder = spawn('flock', [lockFile, 'sleep', '0.5'], { stdio: 'ignore' });
    const released = new Promise((r) => holder.on('close', r));
    await new Promise((r) => setTimeout(r, 100));
    const attaching = br2.attach(dying.pid).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 100));
    dying.kill('SIGKILL');
    await dying.exited;
    expect(await attaching).toMatchObject({ code: 'ERR_NETWORK_CONTAINER_GONE' });
    await released;
    expect(hostLinks().filter((n) => /^ctk[0-9a-f]{8}$/.test(n))).toEqual(before.filter((n) => /^ctk[0-9a-f]{8}$/.test(n)));
    expect(await br2.leases()).toHaveLength(0);
  }, 60_000);

  it('writes hosts, hostname and resolv.conf', async () => {
    const [dir, clean] = tempDir();
    try {
      const f = await writeNetworkFiles(dir, { hostname: 'web', address: '10.88.0.5', extraHosts: { db: '10.88.0.6' }, dns: ['192.0.2.53'] });
      expect(readFileSync(f.hostname, 'utf8')).toBe('web\n');
      expect(readFileSync(f.hosts, 'utf8')).toMatch(/^127\.0\.0\.1\tlocalhost$/m);
      expect(readFileSync(f.hosts, 'utf8')).toMatch(/^10\.88\.0\.5\tweb$/m);
      expect(readFileSync(f.hosts, 'utf8')).toMatch(/^10\.88\.0\.6\tdb$/m);
      expect(readFileSync(f.resolvConf, 'utf8')).toMatch(/^nameserver 192\.0\.2\.53$/m);
      await expect(writeNetworkFiles(dir, { hostname: 'bad name' })).rejects.toBeInstanceOf(InvalidOptionError);
    } finally {
      clean();
    }
  });
});

describe('nothing left', () => {
  it('no lab-made link, table or lease remains; the machine was never touched', async () => {
    expect(hostLinks().filter((n) => n.startsWith('ctk') && n !== 'ctkup')).toEqual([]);
    const tables = await host.exec(['nft', 'list', 'tables']);
    expect(tables.stdout).not.toContain(NFT_TABLE);
    const ipam = join(stateDir, 'ipam');
    expect(existsSync(ipam) ? readdirSync(ipam).filter((f) => f.endsWith('.json')) : []).toEqual([]);
    expect(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8')).toBe(realForward);
    expect(nftTables()).toBe(realTables);
    expect(execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })).not.toMatch(/ctk/);
  });
});
