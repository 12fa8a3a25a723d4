// Chapter 5.1.7 — several namespaces at once: the chapter's Go program sets
// CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWUTS and runs a shell.
import { NAMESPACES, NamespaceRef } from 'ctrkit/namespaces';
import { Container } from 'ctrkit';

const flags = ['pid', 'net', 'mnt', 'uts'];
const proc = await Container.start({
  command: ['sh', '-c', 'echo "pid: $$, hostname: $(hostname), interfaces: $(ls /sys/class/net)"'],
  namespaces: flags,
  hostname: 'multi',
  stdio: ['ignore', 'inherit', 'inherit'],
});
for (const { type, flagName } of NAMESPACES) {
  const mine = proc.namespaces[type];
  const host = NamespaceRef.host(type);
  console.log(
    `${type.padEnd(6)} ${flagName.padEnd(16)} container ${String(mine).padEnd(18)} host ${String(host).padEnd(18)} ${mine.sameAs(host) ? 'shared' : 'NEW'}`,
  );
}
await proc.exited;
