// Chapter 5.4.1, question 4 — how do containers on different hosts reach each other?
// The chapter's answer (5.4.3's table) is an overlay such as flannel's VXLAN backend. Here it
// is built from the kernel's parts, the way flannel builds it:
//
//   host A (ctk-hosta-PID)                                   host B (ctk-hostb-PID)
//   container 10.244.1.2                                     container 10.244.2.2
//      | veth                                                   | veth
//   ctkbr0 10.244.1.1/24                                     ctkbr0 10.244.2.1/24
//   ctk.1  10.244.1.0/32  (vxlan id 1 dstport 8472 nolearning)  ctk.1 10.244.2.0/32
//   ctkwire 192.0.2.1/24  <========= the "wire" (a veth) =========>  ctkwire 192.0.2.2/24
//
// On each host, for the other one (what flannel's daemon writes from the other host's lease):
//   ip neigh replace 10.244.2.0 lladdr <B's vtep mac> dev ctk.1 nud permanent
//   bridge fdb replace <B's vtep mac> dev ctk.1 dst 192.0.2.2 self permanent
//   ip route add 10.244.2.0/24 via 10.244.2.0 dev ctk.1 onlink
//
// The two "hosts" are network namespaces made for the run; no packet reaches this machine's
// own network, and everything is removed at the end, also on failure.
import { mkdtempSync, rmSync } from 'node:fs';
import { Container, defaultRootfs } from 'ctrkit';
import { Bridge, NetworkNamespace, Rtnetlink, VxlanOverlay } from 'ctrkit/network';

const stateDir = mkdtempSync('/tmp/ctk-net-');
const hosts = [];
const stop = [];
const sh = (ns, cmd) => ns.exec(['sh', '-c', cmd]).then((r) => r.stdout.trim());
try {
  // Two machines and the wire between them.
  for (const [i, letter] of ['a', 'b'].entries()) {
    hosts.push({ letter, ns: await NetworkNamespace.create(`ctk-host${letter}-${process.pid}`), wire: `192.0.2.${i + 1}`, subnet: `10.244.${i + 1}.0/24` });
  }
  const [a, b] = hosts;
  {
    const rt = Rtnetlink.open({ netns: a.ns });
    rt.createVeth({ name: 'ctkwire', peer: { name: 'ctkwire', netns: b.ns } });
    rt.close();
  }
  for (const h of hosts) {
    const rt = Rtnetlink.open({ netns: h.ns });
    rt.addAddress('ctkwire', `${h.wire}/24`);
    rt.setLink('ctkwire', { up: true });
    rt.close();
  }

  // Per host: the container bridge (no masquerade: overlay traffic keeps the container's
  // address, as with flannel's default) and the VXLAN device. MTU 1450 leaves room for the
  // 50 bytes of VXLAN, UDP, IP and Ethernet headers on a 1500-byte wire.
  for (const h of hosts) {
    h.bridge = await Bridge.create({ name: 'ctkbr0', subnet: h.subnet, netns: h.ns, stateDir, masquerade: false, mtu: 1450 });
    stop.unshift(() => h.bridge.remove());
    h.vxlan = VxlanOverlay.create({ subnet: h.subnet, local: h.wire, device: 'ctkwire', netns: h.ns });
    stop.unshift(async () => h.vxlan.remove());
  }
  // The control plane: each host learns the other's lease.
  a.vxlan.addPeer(b.vxlan.self);
  b.vxlan.addPeer(a.vxlan.self);
  for (const h of hosts) {
    console.log(
      `host ${h.letter.toUpperCase()} (${h.ns.name}): wire ${h.wire}, containers ${h.subnet}, vtep ${h.vxlan.name} ${h.vxlan.address}/32 mac ${h.vxlan.mac}`,
    );
    const link = await sh(h.ns, 'ip -d -o link show ctk.1');
    console.log(`  ip -d link: ${link.match(/vxlan id \d+ .*?dstport \d+/)?.[0]} ${/nolearning/.test(link) ? 'nolearning' : 'learning'}`);
    console.log(`  bridge fdb show dev ctk.1: ${await sh(h.ns, 'bridge fdb show dev ctk.1')}`);
    console.log(`  ip neigh show dev ctk.1: ${await sh(h.ns, 'ip neigh show dev ctk.1')}`);
    console.log(`  ip route show dev ctk.1: ${await sh(h.ns, 'ip route show dev ctk.1')}`);
  }

  // A web server in a container on host B: a CGI script answers with the client address it sees.
  const httpd =
    'mkdir -p /www/cgi-bin && printf "#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho \\$REMOTE_ADDR on $(hostname)\\n" > /www/cgi-bin/ip' +
    ' && chmod +x /www/cgi-bin/ip && exec busybox httpd -f -p 80 -h /www';
  let serverNet;
  const server = await Container.start({
    command: ['sh', '-c', httpd],
    hostname: 'web-on-b',
    stdio: 'ignore',
    onNamespaces: async ({ pid }) => {
      serverNet = await b.bridge.attach(pid);
    },
  });
  stop.unshift(async () => {
    await serverNet?.detach();
    await server[Symbol.asyncDispose]();
  });
  console.log(`container on host B: ${serverNet.address} (busybox httpd on :80)`);

  // A client container on host A: ping, then TCP (HTTP), across the overlay. (No `wget -T`:
  // Debian's busybox 1.35 wget crashes with it.)
  const busybox = `${await defaultRootfs()}/bin/busybox`;
  const bNs = NetworkNamespace.open(server.pid);
  for (let i = 0; i < 100; i++) {
    // wait until httpd answers (no fixed sleep)
    if ((await bNs.exec([busybox, 'wget', '-q', '-O', '/dev/null', 'http://127.0.0.1/cgi-bin/ip'])).exitCode === 0) break;
  }
  let clientNet;
  const client = await Container.run({
    hostname: 'client-on-a',
    command: [
      'sh',
      '-c',
      `ping -c 2 -W 2 ${serverNet.address} | grep -E "packets|ttl"; echo "wget: $(wget -q -O - http://${serverNet.address}/cgi-bin/ip 2>&1)"`,
    ],
    onNamespaces: async ({ pid }) => {
      clientNet = await a.bridge.attach(pid);
    },
  });
  await clientNet?.detach();
  console.log(`container on host A: ${clientNet.address}`);
  // httpd listens on IPv6 too and writes an IPv4 client as [::ffff:a.b.c.d].
  const said = client.stdout.replace(/\[::ffff:([\d.]+)\]/g, '$1').trimEnd();
  console.log(said.replace(/^/gm, '  '));

  // Proof that it went through the tunnel: host B's wire received VXLAN (UDP 8472) datagrams.
  const [stats] = JSON.parse(await sh(b.ns, 'ip -j -s link show ctk.1'));
  console.log(`host B ${b.vxlan.name} received ${stats.stats64.rx.packets} packets from the tunnel`);
  process.exitCode = client.exitCode === 0 && said.includes(`wget: ${clientNet.address} on web-on-b`) ? 0 : 1;
} finally {
  for (const f of stop) await f().catch((e) => console.error(`cleanup: ${e.message}`));
  for (const h of hosts) await h.ns.delete();
  rmSync(stateDir, { recursive: true, force: true });
}
