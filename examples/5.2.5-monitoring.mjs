// Chapter 5.2.5 — monitoring: memory use and CPU time of a running container, read from its
// cgroup, sampled like `docker stats`.
import { Container } from 'ctrkit';

const c = await Container.start({
  memory: '256m',
  command: ['sh', '-c', 'dd if=/dev/zero bs=64M count=1 | sleep 3 & timeout 2 sh -c "while :; do :; done"; wait'],
  stdio: 'ignore',
});
try {
  const ac = new AbortController();
  let i = 0;
  console.log('sample  mem-usage   mem-%   cpu-time   cpu-%');
  for await (const s of c.cgroup.statsStream({ intervalMs: 400, signal: ac.signal })) {
    const m = s.stats.memory;
    console.log(
      `${String(++i).padStart(6)}  ${(m.current / 2 ** 20).toFixed(1).padStart(6)} MiB  ${s.memoryPercent.toFixed(1).padStart(5)}%  ${(s.stats.cpu.usageUsec / 1000).toFixed(0).padStart(6)} ms  ${s.cpuPercent.toFixed(0).padStart(5)}%`,
    );
    if (i === 4) ac.abort();
  }
} finally {
  await c[Symbol.asyncDispose]();
}
