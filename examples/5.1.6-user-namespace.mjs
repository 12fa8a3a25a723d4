// Chapter 5.1.6 — USER namespace: root inside the container is an unprivileged uid outside.
// Like /etc/subuid's "user1:100000:65536": uids 0-65535 inside are 100000-165535 outside.
import { readFileSync } from 'node:fs';
import { Container } from 'ctrkit';

const asRoot = process.getuid() === 0;
const map = [{ inside: 0, outside: 100000, count: 65536 }];
const proc = await Container.start({
  command: ['sh', '-c', 'echo "inside: $(id)"; cat /proc/self/uid_map | sed "s/^/uid_map: /"; sleep 1'],
  namespaces: ['user', 'pid', 'mnt', 'uts', 'ipc'],
  // Root may map any range; anyone else gets their own uid as 0 plus their /etc/subuid range.
  ...(asRoot ? { uidMap: map, gidMap: map } : {}),
  stdio: ['ignore', 'inherit', 'inherit'],
});
await new Promise((r) => setTimeout(r, 300));
const uid = readFileSync(`/proc/${proc.pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)[1];
console.log(`outside: the same process runs as uid ${uid} on the host`);
await proc.exited;
