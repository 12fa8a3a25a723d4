// Chapter 5.4.4 — port mapping, `docker run -p 8080:80`: an HTTP server on port 80 in a
// container answers a client on another host that connects to the host's address on 8080,
// and it sees that client's real address (DNAT, no proxy).
// The lab: "the host" is a namespace made for the run (ctk-host-PID, 198.51.100.1), the
// client runs in "an outside host" (ctk-out-PID, 198.51.100.2). The NAT rules live in the
// lab host's own nftables table `ctk`; this machine's ruleset is never touched.
import { mkdtempSync, rmSync } from 'node:fs';
import { Container, defaultRootfs } from 'ctrkit';
import { Bridge, NetworkNamespace, Rtnetlink } from 'ctrkit/network';

const busybox = `${await defaultRootfs()}/bin/busybox`;
const stateDir = mkdtempSync('/tmp/ctk-net-');
const host = await NetworkNamespace.create(`ctk-host-${process.pid}`);
const outside = await NetworkNamespace.create(`ctk-out-${process.pid}`);
let bridge, container, attachment;
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

  // stateDir: IPAM leases and locks (default /run/ctrkit/network), here a throwaway one.
  bridge = await Bridge.create({ name: 'ctkbr0', subnet: '10.88.0.0/24', netns: host, stateDir });
  // A CGI script that prints the client address the server sees.
  const httpd =
    'mkdir -p /www/cgi-bin && printf "#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho \\$REMOTE_ADDR\\n" > /www/cgi-bin/ip' +
    ' && chmod +x /www/cgi-bin/ip && exec busybox httpd -f -p 80 -h /www';
  container = await Container.start({
    command: ['sh', '-c', httpd],
    stdio: 'ignore',
    onNamespaces: async ({ pid }) => {
      attachment = await bridge.attach(pid, { ports: ['8080:80'] });
    },
  });
  console.log(`container ${attachment.address}, published ${attachment.ports.map((p) => `${p.hostPort}->${p.containerPort}/${p.protocol}`).join(' ')}`);
  let answer = '';
  for (let i = 0; i < 50 && !answer; i++) {
    answer = (await outside.exec([busybox, 'wget', '-q', '-O', '-', 'http://198.51.100.1:8080/cgi-bin/ip'])).stdout.trim();
  }
  const client = answer.replace(/^\[?(::ffff:)?/, '').replace(/\]$/, '');
  console.log(`client 198.51.100.2 -> 198.51.100.1:8080: the server saw ${client}`);
  const local = await host.exec([busybox, 'wget', '-q', '-O', '-', 'http://127.0.0.1:8080/cgi-bin/ip']);
  console.log(`from the host through 127.0.0.1:8080: ${local.exitCode === 0 ? 'ok' : 'FAILED'}`);
  process.exitCode = client === '198.51.100.2' && local.exitCode === 0 ? 0 : 1;
} finally {
  await attachment?.detach();
  await container?.[Symbol.asyncDispose]();
  await bridge?.remove();
  await outside.delete();
  await host.delete();
  rmSync(stateDir, { recursive: true, force: true });
}
