// Chapter 5.1.3 — "orphaned processes are reaped by PID 1 inside the container".
// A process whose parent dies is re-parented to PID 1 of its PID namespace, and only PID 1
// can collect its exit status. A PID 1 that never calls wait() (most programs: a server, a
// `sleep`) leaves every such orphan a zombie. `init: true` (docker run --init) runs tini as
// PID 1: it starts the command as its child, passes signals on, and reaps every orphan.
import { Container } from 'ctrkit';

// The orphan: a subshell starts `sleep 0.2` in the background and exits at once, so the
// sleep is re-parented to PID 1; then the shell becomes `sleep 30` (exec), which never waits.
const command = ['sh', '-c', '(sh -c "sleep 0.2 &"); exec sleep 30'];

for (const init of [false, true]) {
  const c = await Container.start({ command, init });
  try {
    await new Promise((r) => setTimeout(r, 700)); // the orphan has ended by now
    const ps = await c.exec({ command: ['ps', '-o', 'pid,ppid,stat,comm'] });
    console.log(`init: ${init}`);
    console.log(
      ps.stdout
        .trimEnd()
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n'),
    );
    const zombies = ps.stdout.split('\n').filter((l) => / Z /.test(l)).length;
    console.log(`  zombies: ${zombies}`);
    const t0 = performance.now();
    const st = await c.stop({ timeout: 1000 });
    console.log(`  docker stop: ${st.signal ?? `exit ${st.exitCode}`} after ${Math.round(performance.now() - t0)} ms\n`);
  } finally {
    await c.remove({ force: true });
  }
}
