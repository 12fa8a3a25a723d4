// Chapter 5.4.3 — CNI: the same container, attached by the standard CNI plugins (bridge with
// host-local IPAM, then portmap) run by ctrkit's CNI runtime, per the CNI spec 1.0.
// Needs Debian's containernetworking-plugins (/usr/lib/cni). The plugins run inside the lab
// host namespace (ctk-host-PID); their state goes to a temporary directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Container, defaultRootfs } from 'ctrkit';
import { CniNetwork, NetworkNamespace, Rtnetlink, connectContainer } from 'ctrkit/network';

const busybox = `${await defaultRootfs()}/bin/busybox`;
const state = mkdtempSync('/tmp/ctk-cni-');
const host = await NetworkNamespace.create(`ctk-host-${process.pid}`);
const outside = await NetworkNamespace.create(`ctk-out-${process.pid}`);
let container, net;
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

  const cni = await CniNetwork.load(
    {
      cniVersion: '1.0.0',
      name: 'ctk-cni',
      plugins: [
        {
          type: 'bridge',
          bridge: 'ctkcni0',
          isGateway: true,
          ipMasq: true,
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: '10.22.0.0/24' }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: join(state, 'ipam') },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    },
    { netns: host, cacheDir: join(state, 'cache') },
  );
  console.log(`bridge plugin speaks: ${(await cni.version('bridge')).supportedVersions.join(' ')}`);
  container = await Container.start({
    command: ['sh', '-c', 'echo ok > /index.html && exec busybox httpd -f -p 80 -h /'],
    stdio: 'ignore',
    onNamespaces: async ({ pid }) => {
      net = await connectContainer({ pid, mode: 'cni', cni, ports: ['8080:80'], netns: host });
    },
  });
  console.log(`CNI ADD: ${net.address}/${net.prefix} via ${net.gateway} (interfaces: ${net.cni.result.interfaces.map((i) => i.name).join(' ')})`);
  let body = '';
  for (let i = 0; i < 50 && !body; i++) body = (await outside.exec([busybox, 'wget', '-q', '-O', '-', 'http://198.51.100.1:8080/'])).stdout.trim();
  console.log(`outside -> 198.51.100.1:8080: ${body}`);
  process.exitCode = body === 'ok' ? 0 : 1;
} finally {
  await net?.detach(); // CNI DEL, with the cached result
  await container?.[Symbol.asyncDispose]();
  const rt = Rtnetlink.open({ netns: host });
  rt.deleteLink('ctkcni0', { ifExists: true }); // the bridge plugin never removes its bridge
  rt.close();
  await outside.delete();
  await host.delete();
  rmSync(state, { recursive: true, force: true });
}
