// Chapter 5.2.4 — limiting CPU: `docker run --cpus=0.5` writes quota/period = 50000/100000.
// A busy loop inside then gets about half of one CPU, measured from the cgroup's own counter.
import { Container } from 'ctrkit';
import { detectCgroupLayout } from 'ctrkit/cgroups';

const v2 = (await detectCgroupLayout()).mode === 'v2';
const files = v2 ? 'cat /sys/fs/cgroup/cpu.max' : 'echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)';
const usage = v2 ? "awk '/^usage_usec/ {print $2}' /sys/fs/cgroup/cpu.stat" : 'echo $(($(cat /sys/fs/cgroup/cpuacct/cpuacct.usage) / 1000))';
const r = await Container.run({ cpus: 0.5, command: ['sh', '-c', `${files}; ${usage}; time timeout 2 sh -c 'while :; do :; done'; ${usage}`] });
const [quota, period, before, after] = r.stdout.trim().split(/\s+/);
const [, min, sec] = /^real\s+(\d+)m ([\d.]+)s$/m.exec(r.stderr);
const wall = Number(min) * 60 + Number(sec);
console.log(`quota/period inside the container: ${quota}/${period}`);
console.log(
  `busy loop: ${((Number(after) - Number(before)) / 1e6).toFixed(2)} s of CPU in ${wall.toFixed(2)} s = ${((Number(after) - Number(before)) / 1e4 / wall).toFixed(0)}% of one CPU`,
);
console.log(`throttled in ${r.stats.cpu.throttledPeriods} of ${r.stats.cpu.periods} periods`);
