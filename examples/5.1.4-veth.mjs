// Chapter 5.1.4 — a veth pair into a network namespace.
// The chapter's commands:
//   ip netns add container1 ; ip netns exec container1 ip link
//   ip link add veth0 type veth peer name veth1 ; ip link set veth1 netns container1
//   ip netns exec container1 ip addr add 10.1.1.2/24 dev veth1 ; ip netns exec container1 ip link set veth1 up
//   ip addr add 10.1.1.1/24 dev veth0 ; ip link set veth0 up ; ping 10.1.1.2
// Here every step is ctrkit's rtnetlink client (no `ip`). So that nothing touches this
// machine's own network, "the host" side is a namespace made for the run (ctk-host-PID).
import { NetworkNamespace, Rtnetlink } from 'ctrkit/network';
import { defaultRootfs } from 'ctrkit';

const busybox = `${await defaultRootfs()}/bin/busybox`; // its ping, run inside the namespaces
const host = await NetworkNamespace.create(`ctk-host-${process.pid}`);
const container1 = await NetworkNamespace.create(`ctk-container1-${process.pid}`);
const rt = Rtnetlink.open({ netns: host });
const inner = Rtnetlink.open({ netns: container1 });
try {
  console.log(
    `links in ${container1.name}: ${inner
      .links()
      .map((l) => l.name)
      .join(' ')}`,
  );
  rt.createVeth({ name: 'ctkveth0', peer: { name: 'ctkveth1' } });
  rt.setLink('ctkveth1', { netns: container1 });
  inner.addAddress('ctkveth1', '10.1.1.2/24');
  inner.setLink('ctkveth1', { up: true });
  rt.addAddress('ctkveth0', '10.1.1.1/24');
  rt.setLink('ctkveth0', { up: true });
  console.log(
    `links in ${container1.name} now: ${inner
      .links()
      .map((l) => `${l.name}${l.up ? '(up)' : ''}`)
      .join(' ')}`,
  );
  console.log(
    `addresses in ${container1.name}: ${inner
      .addresses()
      .map((a) => a.cidr)
      .join(' ')}`,
  );
  const ping = await host.exec([busybox, 'ping', '-c', '2', '-W', '2', '10.1.1.2']);
  console.log(ping.stdout.trim());
  process.exitCode = ping.exitCode ?? 1;
} finally {
  rt.close();
  inner.close();
  await container1.delete(); // the veth pair goes with it
  await host.delete();
}
