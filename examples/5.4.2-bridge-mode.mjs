// Chapter 5.4.2 — network modes. bridge: containers on a Linux bridge with addresses from an
// IPAM, a default route via the bridge, and masquerade for traffic leaving the host. none:
// only lo. host: no network namespace at all.
// The lab: "the host" is a namespace made for the run (ctk-host-PID), and "an outside host"
// (ctk-out-PID, 198.51.100.2) is connected to it, so no packet leaves this machine's own
// namespaces and this machine's firewall and ip_forward stay as they are.
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Container, defaultRootfs } from 'ctrkit';
import { Bridge, NetworkNamespace, Rtnetlink, connectContainer } from 'ctrkit/network';

const busybox = `${await defaultRootfs()}/bin/busybox`;
const stateDir = mkdtempSync('/tmp/ctk-net-');
const host = await NetworkNamespace.create(`ctk-host-${process.pid}`);
const outside = await NetworkNamespace.create(`ctk-out-${process.pid}`);
const server = createServer((req, res) => res.end(req.socket.remoteAddress.replace(/^::ffff:/, '')));
const stop = [];
try {
  const rt = Rtnetlink.open({ netns: host });
  rt.createVeth({ name: 'ctkup', peer: { name: 'ctkout', netns: outside } });
  rt.addAddress('ctkup', '198.51.100.1/24');
  rt.setLink('ctkup', { up: true });
  rt.close();
  const ro = Rtnetlink.open({ netns: outside });
  ro.addAddress('ctkout', '198.51.100.2/24');
  ro.setLink('ctkout', { up: true });
  ro.close();
  outside.runSync(() => server.listen(9000)); // a web server on the outside host

  // stateDir: IPAM leases and locks (default /run/ctrkit/network), here a throwaway one.
  const bridge = await Bridge.create({ name: 'ctkbr0', subnet: '10.88.0.0/24', netns: host, stateDir });
  stop.push(() => bridge.remove());
  const start = async (mode) => {
    let net;
    const c = await Container.start({
      command: ['sleep', '30'],
      stdio: 'ignore',
      onNamespaces: async ({ pid }) => {
        net = await connectContainer({ pid, mode, bridge, netns: host });
      },
    });
    stop.unshift(async () => {
      await net.detach();
      await c[Symbol.asyncDispose]();
    });
    return { c, net, ns: NetworkNamespace.open(c.pid) };
  };
  const a = await start('bridge');
  const b = await start('bridge');
  console.log(`bridge: container A ${a.net.address}, container B ${b.net.address}, gateway ${a.net.gateway}`);
  const ping = await a.ns.exec([busybox, 'ping', '-c', '1', '-W', '2', b.net.address]);
  console.log(`bridge: A pings B: ${ping.exitCode === 0 ? 'ok' : 'FAILED'}`);
  const seen = await a.ns.exec([busybox, 'wget', '-q', '-O', '-', 'http://198.51.100.2:9000/']);
  console.log(`bridge: the outside host saw A as ${seen.stdout.trim()} (the host's address: masquerade)`);
  const n = await start('none');
  const links = await n.ns.exec([busybox, 'ip', '-o', 'link']);
  console.log(
    `none: ${links.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(': ')[1])
      .join(' ')}`,
  );
  // host mode (`docker run --network host`): the container gets no network namespace of its
  // own and uses the host's. "The host" here is the lab namespace, so the container joins
  // that one (through a process holding it) instead of this machine's: it sees the lab
  // host's interfaces, and its port 80 is the lab host's port 80.
  const hostIfs = (await host.exec([busybox, 'ip', '-o', 'link'])).stdout
    .trim()
    .split('\n')
    .map((l) => l.split(': ')[1].split('@')[0]);
  const holder = host.spawn('sleep', ['30'], { stdio: 'ignore' });
  stop.push(async () => {
    holder.kill();
  });
  const web = await Container.start({
    command: [
      'sh',
      '-c',
      'echo "$(ip -o link | cut -d: -f2 | cut -d@ -f1 | tr -d " " | tr "\\n" " ")" > /ifs; mkdir /www; echo host-mode httpd > /www/index.html; exec httpd -f -p 80 -h /www',
    ],
    network: { container: holder.pid },
    stdio: 'ignore',
  });
  stop.unshift(() => web[Symbol.asyncDispose]());
  console.log(`host: the lab host's interfaces: ${hostIfs.join(' ')}`);
  let answer = '';
  for (let i = 0; i < 50 && !answer; i++) answer = (await outside.exec([busybox, 'wget', '-q', '-O', '-', 'http://198.51.100.1:80/'])).stdout.trim();
  const seenInside = readFileSync(`/proc/${web.pid}/root/ifs`, 'utf8').trim(); // written before httpd started
  console.log(`host: the host-mode container sees: ${seenInside}`);
  console.log(`host: outside -> 198.51.100.1:80 (the lab host's port 80): ${answer}`);
  process.exitCode = ping.exitCode === 0 && seen.stdout.trim() === '198.51.100.1' && answer === 'host-mode httpd' ? 0 : 1;
} finally {
  server.close();
  for (const f of stop) await f();
  await outside.delete();
  await host.delete();
  rmSync(stateDir, { recursive: true, force: true });
}
