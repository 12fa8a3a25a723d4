// Time to connect a container's network namespace to a bridge, and to disconnect it, side by side in one run:
//   ctrkit       bridge.attach(ns, { ports: ['PORT:80'] })  veth (peer created inside) + address + route + hairpin
//                + IPAM lease (flock'd JSON) + DNAT rules (one nftables netlink transaction);  detach() undoes it
//   ctrkit -p    the same without a published port (no nftables change)
//   CNI          ADD of bridge + host-local + portmap (Debian's containernetworking-plugins), the same port through
//                the portmap capability;  DEL with the cached result
// Everything runs inside a lab namespace (ctk-bench-PID) that plays the host: the machine's own network is untouched.
// Runs are interleaved so drift hits all alike; median of N after a warm-up; ratio = subject / ctrkit.
// Usage: node bench/network-attach.mjs [runs]   (as root)
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Bridge, CniNetwork, NetworkNamespace, Rtnetlink, parsePortMapping } from 'ctrkit/network';

const runs = Number(process.argv[2] ?? 30);
const state = mkdtempSync('/tmp/ctk-bench-net-');
const host = await NetworkNamespace.create(`ctk-bench-${process.pid}`);
const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const times = { 'ctrkit attach': [], 'ctrkit detach': [], 'ctrkit -p attach': [], 'ctrkit -p detach': [], 'CNI ADD': [], 'CNI DEL': [] };
let bridge;
try {
  bridge = await Bridge.create({ name: 'ctkbench0', subnet: '10.97.0.0/16', netns: host, stateDir: state });
  const cni = await CniNetwork.load(
    {
      cniVersion: '1.0.0',
      name: 'ctk-bench',
      plugins: [
        {
          type: 'bridge',
          bridge: 'ctkbench1',
          isGateway: true,
          ipMasq: true,
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: '10.98.0.0/16' }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: join(state, 'host-local') },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    },
    { netns: host, cacheDir: join(state, 'cni') },
  );
  for (let i = -3; i < runs; i++) {
    const port = 20000 + (i + 3);
    const record = (k, ms) => {
      if (i >= 0) times[k].push(ms);
    };
    {
      const ns = await NetworkNamespace.create(`ctk-bench-c-${process.pid}`);
      let t = performance.now();
      const att = await bridge.attach(ns, { ports: [`${port}:80`] });
      record('ctrkit attach', performance.now() - t);
      t = performance.now();
      await att.detach();
      record('ctrkit detach', performance.now() - t);
      await ns.delete();
    }
    {
      const ns = await NetworkNamespace.create(`ctk-bench-c-${process.pid}`);
      let t = performance.now();
      const att = await bridge.attach(ns);
      record('ctrkit -p attach', performance.now() - t);
      t = performance.now();
      await att.detach();
      record('ctrkit -p detach', performance.now() - t);
      await ns.delete();
    }
    {
      const ns = await NetworkNamespace.create(`ctk-bench-c-${process.pid}`);
      let t = performance.now();
      const att = await cni.add({ containerId: `bench-${i}`, netns: ns.path, ports: [parsePortMapping(`${port}:80`)] });
      record('CNI ADD', performance.now() - t);
      t = performance.now();
      await att.delete();
      record('CNI DEL', performance.now() - t);
      await ns.delete();
    }
  }
  const base = { attach: median(times['ctrkit attach']), detach: median(times['ctrkit detach']) };
  console.log(`runs: ${runs} (after 3 warm-up), medians in ms`);
  for (const [k, v] of Object.entries(times)) {
    const ref = k.endsWith('attach') || k.endsWith('ADD') ? base.attach : base.detach;
    console.log(`${k.padEnd(18)} ${median(v).toFixed(2).padStart(8)}   x${(median(v) / ref).toFixed(2)}`);
  }
} finally {
  await bridge?.remove();
  const rt = Rtnetlink.open({ netns: host });
  rt.deleteLink('ctkbench1', { ifExists: true });
  rt.close();
  await host.delete();
  rmSync(state, { recursive: true, force: true });
}
