// Chapter 5.1.4 — NET namespace: a new network namespace has its own stack, with only `lo`.
// The chapter's commands:  ip netns add container1 ; ip netns exec container1 ip addr
// Here: ctrkit creates the namespace and keeps it alive with a bind mount under /run/netns,
// exactly where `ip netns` looks, so iproute2 sees it too. (veth, bridges and addresses come
// with ctrkit/network.)
import { execFileSync } from 'node:child_process';
import { unshare } from 'ctrkit/namespaces';
import { interfacesOf } from 'ctrkit/network';

const name = `ctk-container1-${process.pid}`;
const holder = await unshare({ command: ['sleep', '60'], namespaces: ['net'], stdio: 'ignore' });
console.log(`interfaces seen by ctrkit inside: ${(await interfacesOf(holder.pid)).map((i) => i.name).join(' ')}`);
const named = await holder.namespaces.net.persist(`/run/netns/${name}`);
// The bind mount keeps the namespace alive without any process in it.
await holder[Symbol.asyncDispose]();
try {
  console.log(
    `ip netns list: ${execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.startsWith(name))
      .join(' ')}`,
  );
  const addr = execFileSync('ip', ['netns', 'exec', name, 'ip', '-o', 'link'], { encoding: 'utf8' }).trim();
  console.log(`ip netns exec ${name} ip -o link:\n${addr}`);
  console.log(`host interfaces for comparison: ${(await interfacesOf('self')).map((i) => i.name).join(' ')}`);
} finally {
  await named.release();
}
