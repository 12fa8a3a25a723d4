// Chapter 5.1.3 — PID namespace: the first process is PID 1, and `ps` sees only its own namespace.
// The chapter's command:  unshare --pid --fork --mount-proc /bin/bash ; echo $$ ; ps aux
import { unshare } from 'ctrkit/namespaces';

const hostCount = (await import('node:fs')).readdirSync('/proc').filter((d) => /^\d+$/.test(d)).length;

// No rootfs: the host's own sh and ps, exactly like unshare(1). mountProc gives the new
// namespace its own /proc, so ps reads the new namespace's processes.
const p = await unshare({
  command: ['sh', '-c', 'echo "echo \\$\\$ -> $$"; echo "ps -e inside:"; ps -e -o pid=,comm=; exit 0'],
  namespaces: ['pid', 'mnt'],
  mountProc: true,
  stdio: ['ignore', 'inherit', 'inherit'],
});
console.log(`host PID of the container's init: ${p.pid}`);
const { exitCode } = await p.exited;
console.log(`processes on the host: ${hostCount}`);
process.exitCode = exitCode ?? 1;
