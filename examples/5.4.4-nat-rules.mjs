// Chapters 5.4.2 and 5.4.4 — the NAT rules behind bridge mode and `-p 8080:80`, listed the
// way the chapter lists them. The chapter reads them with iptables:
//   iptables -t nat -L -n            -> MASQUERADE for the bridge's subnet
//   iptables -t nat -L DOCKER -n     -> DNAT tcp dpt:8080 to:172.17.0.2:80
// ctrkit writes the same rules as nftables rules, over netlink, into a table of its own
// (`table ip ctk`), so `nft list table ip ctk` is their listing. All of it happens in a lab
// "host" namespace (ctk-host-PID) made for the run; this machine's ruleset is never read
// or changed.
import { mkdtempSync, rmSync } from 'node:fs';
import { Container } from 'ctrkit';
import { Bridge, NFT_TABLE, NetworkNamespace } from 'ctrkit/network';

const stateDir = mkdtempSync('/tmp/ctk-net-');
const host = await NetworkNamespace.create(`ctk-host-${process.pid}`);
let bridge, container, attachment;
try {
  bridge = await Bridge.create({ name: 'ctkbr0', subnet: '10.88.0.0/24', netns: host, stateDir });
  container = await Container.start({
    command: ['sleep', '30'],
    stdio: 'ignore',
    onNamespaces: async ({ pid }) => {
      attachment = await bridge.attach(pid, { ports: ['8080:80'] });
    },
  });
  console.log(`container ${attachment.address} on ctkbr0 (10.88.0.0/24), -p 8080:80`);

  // The nft binary reads the ruleset back from the kernel (inside the lab host namespace).
  const nft = await host.exec(['nft', 'list', 'table', 'ip', NFT_TABLE]);
  console.log(`$ nft list table ip ${NFT_TABLE}\n${nft.stdout.trimEnd()}`);

  // iptables-nft reads the same nftables kernel state, but only its own tables (`table ip
  // nat` with chains PREROUTING, POSTROUTING ...) and only rules built from the xtables
  // expressions it knows. ctrkit's rules live in `table ip ctk` and use native nft
  // expressions (fib, ct status, comments as userdata), so iptables shows none of them.
  const ipt = await host.exec(['iptables-nft', '-t', 'nat', '-S']);
  console.log(`$ iptables-nft -t nat -S   (exit ${ipt.exitCode})\n${(ipt.stdout + ipt.stderr).trimEnd() || '(nothing)'}`);
  const tables = await host.exec(['nft', 'list', 'tables']);
  console.log(`$ nft list tables\n${tables.stdout.trimEnd()}`);
  const natTable = /^table ip nat$/m.test(tables.stdout);
  console.log(
    `iptables' nat table: ${natTable ? 'present' : "absent (iptables printed only its built-in chains' default policies)"}; ` +
      `the MASQUERADE and DNAT rules are in "table ip ${NFT_TABLE}", nftables-native, which iptables does not list`,
  );
} finally {
  await attachment?.detach();
  await container?.[Symbol.asyncDispose]();
  await bridge?.remove();
  await host.delete();
  rmSync(stateDir, { recursive: true, force: true });
}
