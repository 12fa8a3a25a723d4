// Chapter 5.2.4 — limiting memory: `docker run -m 512m`, then a memory bomb of 600M is killed
// by the OOM killer, while 400M fits. The proof is the kernel's own counters, read from the
// container's cgroup just before ctrkit removed it.
import { Container } from 'ctrkit';

for (const size of ['600M', '400M']) {
  const r = await Container.run({ memory: '512m', command: ['dd', 'if=/dev/zero', 'of=/dev/null', `bs=${size}`, 'count=1'] });
  const m = r.stats.memory;
  console.log(
    `allocate ${size} with -m 512m: exit ${r.exitCode ?? r.signal}, oomKilled ${r.oomKilled}, ` +
      `limit ${m.limit / 2 ** 20} MiB, peak ${Math.round(m.peak / 2 ** 20)} MiB, failcnt ${m.failcnt}, oom_kill ${m.oomKills}`,
  );
}
