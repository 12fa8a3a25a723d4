/**
 * VXLAN devices, FDB and ARP entries and onlink routes through ctrkit's rtnetlink client,
 * checked against what iproute2 reads back from the kernel. Everything happens in network
 * namespaces made for this run (ctk-vx...-PID), deleted at the end.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidOptionError } from 'ctrkit';
import { NetlinkError, NetworkError, NetworkNamespace, Rtnetlink, VxlanOverlay } from 'ctrkit/network';

let ns: NetworkNamespace;
let peerNs: NetworkNamespace;
let rt: Rtnetlink;

/** iproute2's JSON view of the lab namespace. */
function ipj<T>(...args: string[]): T {
  return JSON.parse(execFileSync('ip', ['netns', 'exec', ns.name!, ...args], { encoding: 'utf8' }) || '[]') as T;
}

beforeAll(async () => {
  ns = await NetworkNamespace.create(`ctk-vx-${process.pid}`);
  peerNs = await NetworkNamespace.create(`ctk-vxpeer-${process.pid}`);
  rt = Rtnetlink.open({ netns: ns });
  rt.createVeth({ name: 'ctkwire', peer: { name: 'ctkwire', netns: peerNs } });
  rt.addAddress('ctkwire', '192.0.2.1/24');
  rt.setLink('ctkwire', { up: true });
});

afterAll(async () => {
  rt?.close();
  await ns?.delete();
  await peerNs?.delete();
  expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(`ctk-vx-${process.pid}`);
});

describe('Rtnetlink: vxlan links', () => {
  it('creates a vxlan device that iproute2 sees with the same VNI, port, local, underlay and nolearning', () => {
    rt.createVxlan({ name: 'ctkvx0', vni: 42, port: 4789, local: '192.0.2.1', device: 'ctkwire', mac: '02:00:00:00:00:2a' });
    const [link] = ipj<{ ifname: string; address: string; linkinfo: { info_kind: string; info_data: Record<string, unknown> } }[]>(
      'ip',
      '-d',
      '-j',
      'link',
      'show',
      'ctkvx0',
    );
    expect(link!.address).toBe('02:00:00:00:00:2a');
    expect(link!.linkinfo.info_kind).toBe('vxlan');
    expect(link!.linkinfo.info_data).toMatchObject({ id: 42, port: 4789, local: '192.0.2.1', link: 'ctkwire', learning: false });
    // ...and ctrkit reads the same back.
    expect(rt.vxlan('ctkvx0')).toEqual({ vni: 42, port: 4789, local: '192.0.2.1', device: rt.indexOf('ctkwire'), learning: false });
    expect(rt.link('ctkvx0')!.kind).toBe('vxlan');
    expect(rt.vxlan('ctkwire')).toBeUndefined(); // a veth is not a vxlan
    expect(rt.vxlan('ctknothere')).toBeUndefined();
  });

  it('defaults to UDP 8472 with learning off; the kernel refuses a second device with the same VNI and port', () => {
    rt.createVxlan({ name: 'ctkvx1', vni: 7, local: '192.0.2.1' });
    expect(rt.vxlan('ctkvx1')).toMatchObject({ vni: 7, port: 8472, learning: false, device: undefined });
    const dup = (() => {
      try {
        rt.createVxlan({ name: 'ctkvx2', vni: 7, local: '192.0.2.1' });
      } catch (e) {
        return e;
      }
    })();
    expect(dup).toBeInstanceOf(NetlinkError);
    expect((dup as NetlinkError).errnoName).toBe('EEXIST');
    expect(rt.link('ctkvx2')).toBeUndefined();
    rt.deleteLink('ctkvx1');
    expect(rt.link('ctkvx1')).toBeUndefined();
  });

  it('refuses bad options before asking the kernel', () => {
    expect(() => rt.createVxlan({ name: 'ctkvx3', vni: 1 << 24 })).toThrow(InvalidOptionError);
    expect(() => rt.createVxlan({ name: 'ctkvx3', vni: 1, port: 0 })).toThrow(InvalidOptionError);
    expect(() => rt.createVxlan({ name: 'ctkvx3', vni: 1, mac: '02:00:00:00:00' })).toThrow(InvalidOptionError);
    expect(rt.link('ctkvx3')).toBeUndefined();
  });
});

describe('Rtnetlink: FDB and neighbour entries, onlink routes', () => {
  const mac = '02:00:00:00:00:b2';

  it('adds a device FDB entry (self, permanent) that `bridge fdb` shows, and deletes it', () => {
    rt.setLink('ctkvx0', { up: true });
    rt.setFdbEntry({ device: 'ctkvx0', mac, destination: '192.0.2.2' });
    rt.setFdbEntry({ device: 'ctkvx0', mac, destination: '192.0.2.2' }); // replace: idempotent
    const shown = execFileSync('ip', ['netns', 'exec', ns.name!, 'bridge', 'fdb', 'show', 'dev', 'ctkvx0'], { encoding: 'utf8' });
    expect(shown).toContain(`${mac} dst 192.0.2.2 self permanent`);
    expect(rt.fdb('ctkvx0').filter((e) => e.mac === mac)).toEqual([
      { index: rt.indexOf('ctkvx0'), mac, destination: '192.0.2.2', permanent: true, self: true },
    ]);
    rt.deleteFdbEntry({ device: 'ctkvx0', mac, destination: '192.0.2.2' });
    expect(rt.fdb('ctkvx0').some((e) => e.mac === mac)).toBe(false);
    expect(() => rt.deleteFdbEntry({ device: 'ctkvx0', mac, destination: '192.0.2.2' })).toThrow(NetlinkError);
    expect(() => rt.deleteFdbEntry({ device: 'ctkvx0', mac, destination: '192.0.2.2' }, { ifExists: true })).not.toThrow();
  });

  it('adds a permanent ARP entry that `ip neigh` shows, and deletes it', () => {
    rt.setNeighbour({ device: 'ctkvx0', address: '10.244.9.0', mac });
    const [n] = ipj<{ dst: string; lladdr: string; state: string[] }[]>('ip', '-j', 'neigh', 'show', 'dev', 'ctkvx0');
    expect(n).toMatchObject({ dst: '10.244.9.0', lladdr: mac, state: ['PERMANENT'] });
    expect(rt.neighbours().find((x) => x.address === '10.244.9.0')).toMatchObject({ mac, index: rt.indexOf('ctkvx0') });
    rt.deleteNeighbour({ device: 'ctkvx0', address: '10.244.9.0' });
    expect(rt.neighbours().some((x) => x.address === '10.244.9.0')).toBe(false);
    expect(() => rt.setNeighbour({ device: 'ctkvx0', address: '10.244.9.0' })).toThrow(InvalidOptionError);
  });

  it("adds an onlink route through a device with no address on the gateway's subnet (refused without onlink)", () => {
    const route = { destination: '10.244.9.0/24', gateway: '10.244.9.0', device: 'ctkvx0' };
    const refused = (() => {
      try {
        rt.addRoute(route);
      } catch (e) {
        return e;
      }
    })();
    expect((refused as NetlinkError).errnoName).toBe('ENETUNREACH');
    rt.addRoute({ ...route, onlink: true });
    const [r] = ipj<{ dst: string; gateway: string; flags: string[] }[]>('ip', '-j', 'route', 'show', 'dev', 'ctkvx0');
    expect(r).toMatchObject({ dst: '10.244.9.0/24', gateway: '10.244.9.0', flags: ['onlink'] });
    expect(rt.routes().find((x) => x.destination === '10.244.9.0/24')).toMatchObject({ gateway: '10.244.9.0', onlink: true });
    rt.deleteRoute(route);
    expect(rt.routes().some((x) => x.destination === '10.244.9.0/24')).toBe(false);
  });
});

describe('VxlanOverlay', () => {
  it("creates the device with SUBNET/32, writes ARP, FDB and route per peer, and removes a peer's entries", () => {
    const o = VxlanOverlay.create({ subnet: '10.244.1.0/24', local: '192.0.2.1', device: 'ctkwire', netns: ns, name: 'ctk.5', vni: 5 });
    try {
      expect(o.self).toEqual({ subnet: '10.244.1.0/24', underlay: '192.0.2.1', mac: rt.link('ctk.5')!.mac });
      expect(
        rt
          .addresses()
          .filter((a) => a.index === rt.indexOf('ctk.5'))
          .map((a) => a.cidr),
      ).toEqual(['10.244.1.0/32']);
      expect(rt.link('ctk.5')!.up).toBe(true);
      expect(rt.link('ctk.5')!.mtu).toBe(1450); // the wire's 1500 minus 50 bytes of encapsulation
      const peer = { subnet: '10.244.2.0/24', underlay: '192.0.2.2', mac: '02:00:00:00:02:00' };
      o.addPeer(peer);
      expect(rt.neighbours().find((n) => n.address === '10.244.2.0')?.mac).toBe(peer.mac);
      expect(rt.fdb('ctk.5').find((e) => e.mac === peer.mac)?.destination).toBe('192.0.2.2');
      expect(rt.routes().find((r) => r.destination === '10.244.2.0/24')).toMatchObject({ gateway: '10.244.2.0', onlink: true, index: rt.indexOf('ctk.5') });
      expect(o.peers()).toEqual([peer]);

      const overlap = (() => {
        try {
          o.addPeer({ ...peer, subnet: '10.244.1.128/25' });
        } catch (e) {
          return e;
        }
      })();
      expect(overlap).toBeInstanceOf(NetworkError);
      expect((overlap as NetworkError).code).toBe('ERR_NETWORK_SUBNET_OVERLAP');

      o.removePeer(peer);
      expect(rt.routes().some((r) => r.destination === '10.244.2.0/24')).toBe(false);
      expect(rt.fdb('ctk.5').some((e) => e.mac === peer.mac)).toBe(false);
      expect(rt.neighbours().some((n) => n.address === '10.244.2.0')).toBe(false);
      expect(o.peers()).toEqual([]);
    } finally {
      o.remove();
    }
    expect(rt.link('ctk.5')).toBeUndefined();
    expect(() => o.addPeer({ subnet: '10.244.3.0/24', underlay: '192.0.2.3', mac: '02:00:00:00:03:00' })).toThrow(NetworkError);
  });

  it('a device the kernel cannot make is an ERR_NETWORK_VXLAN NetworkError, and nothing is left', () => {
    const e = (() => {
      try {
        VxlanOverlay.create({ subnet: '10.244.1.0/24', local: '192.0.2.1', device: 'ctknowire', netns: ns });
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(NetworkError);
    expect((e as NetworkError).code).toBe('ERR_NETWORK_VXLAN');
    expect((e as NetworkError).cause).toBeInstanceOf(NetlinkError);
    expect(rt.link('ctk.1')).toBeUndefined();
  });
});
