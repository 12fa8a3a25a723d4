// Chapter 5.6 — the mini-container: /bin/sh as PID 1, hostname "container", in its own root
// filesystem. The chapter's Go version does clone(NEWPID|NEWNET|NEWNS|NEWUTS), sethostname,
// chroot, mount proc and exec; ctrkit does the same with pivot_root instead of chroot, a fresh
// /proc, a minimal /dev, dropped capabilities and no_new_privs.
import { Container, defaultRootfs } from 'ctrkit';

const rootfs = process.argv[2] ?? (await defaultRootfs());
const r = await Container.run({
  rootfs,
  hostname: 'container',
  command: ['/bin/sh', '-c', 'echo "Running [/bin/sh] as PID $$"; echo "$ hostname"; hostname; echo "$ ps"; ps -o pid,user,comm; exit 0'],
});
process.stdout.write(r.stdout);
process.stderr.write(r.stderr);
console.log(`exit code ${r.exitCode}, ${Math.round(r.durationMs)} ms`);
