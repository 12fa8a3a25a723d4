// Chapter 5.1.5 — MNT namespace: the container gets its own /proc and its own mount table;
// the host's mount table does not change (unlike chroot, which isolates nothing).
import { readFileSync } from 'node:fs';
import { Container } from 'ctrkit';

const hostMountsBefore = readFileSync('/proc/self/mountinfo', 'utf8');
const r = await Container.run({
  command: [
    'sh',
    '-c',
    'echo "ls /proc (pids): $(ls /proc | grep -E "^[0-9]+$" | tr "\\n" " ")"; echo "mounts inside: $(wc -l < /proc/self/mountinfo)"; mount -t tmpfs ctk-scratch /tmp && echo "mounted a tmpfs on /tmp inside"',
  ],
  capabilities: ['SYS_ADMIN'], // to mount the tmpfs; everything else stays dropped
});
process.stdout.write(r.stdout);
const after = readFileSync('/proc/self/mountinfo', 'utf8');
console.log(`mounts on the host: ${hostMountsBefore.trim().split('\n').length}`);
console.log(`host mount table unchanged: ${after === hostMountsBefore}`);
console.log(`tmpfs visible on the host: ${after.includes('ctk-scratch')}`);
