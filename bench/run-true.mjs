// Start-up latency of a container running /bin/true, side by side in one run:
//   ctrkit    Container.run({ command: ['/bin/true'] })  (pid, mnt, uts, ipc, net, cgroup namespaces, overlay root, pivot_root, /proc, /dev, /sys)
//   ctrkit-direct  the same with overlay: false          (what the copy-on-write root costs)
//   ctrkit-limits  the same with memory, cpus and pids limits (what creating and removing a cgroup costs)
//   unshare   unshare(1) -pfmuinC --root ROOTFS /bin/true  (namespaces + chroot, nothing mounted)
//   runc      runc run on a bundle of the same rootfs        (when runc is installed)
//   crun      crun run on the same bundle                    (when crun is installed)
// Every command is started from this Node process the same way, so each figure includes what a
// Node caller pays. Median of N runs after a warm-up; ratios are against ctrkit.
// Usage: node bench/run-true.mjs [runs]   (as root)
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { Container, defaultRootfs } from 'ctrkit';

const runs = Number(process.argv[2] ?? 30);
const rootfs = await defaultRootfs();
const work = mkdtempSync('/tmp/ctk-bench-');

function exec(cmd, args) {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d) => (err += d));
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${err.trim()}`))));
  });
}

function bundle() {
  const dir = join(work, 'bundle');
  spawnSync('mkdir', ['-p', dir]);
  spawnSync('runc', ['spec', '--bundle', dir]);
  const spec = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  spec.root = { path: rootfs, readonly: true };
  spec.process.terminal = false;
  spec.process.args = ['/bin/true'];
  spec.linux.cgroupsPath = '/ctk-bench/c';
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec));
  return dir;
}

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
let n = 0;
const subjects = [
  [
    'ctrkit',
    async () => {
      const r = await Container.run({ rootfs, command: ['/bin/true'] });
      if (r.exitCode !== 0) throw new Error(r.stderr);
    },
  ],
  [
    'ctrkit-direct',
    async () => {
      const r = await Container.run({ rootfs, command: ['/bin/true'], overlay: false });
      if (r.exitCode !== 0) throw new Error(r.stderr);
    },
  ],
  [
    'ctrkit-limits',
    async () => {
      const r = await Container.run({ rootfs, command: ['/bin/true'], memory: '256m', cpus: 1, pids: 64 });
      if (r.exitCode !== 0) throw new Error(r.stderr);
    },
  ],
  ['unshare', () => exec('unshare', ['--pid', '--fork', '--mount', '--uts', '--ipc', '--net', '--cgroup', `--root=${rootfs}`, '/bin/true'])],
];
let dir;
if (has('runc') || has('crun')) dir = bundle();
if (has('runc')) subjects.push(['runc', () => exec('runc', ['run', '--bundle', dir, `ctk-bench-${process.pid}-${n++}`])]);
if (has('crun')) {
  // crun refuses this machine's hybrid cgroup layout unless the unified mount is hidden (test-lab.md).
  subjects.push([
    'crun',
    () =>
      exec('unshare', [
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        `mount -t tmpfs none /sys/fs/cgroup/unified 2>/dev/null; exec crun run --bundle ${dir} ctk-bench-${process.pid}-${n++}`,
      ]),
  ]);
}

const times = Object.fromEntries(subjects.map(([name]) => [name, []]));
for (const [, fn] of subjects) await fn(); // warm-up: page cache, the rootfs build
for (let i = 0; i < runs; i++) {
  for (const [name, fn] of subjects) {
    // interleaved, so drift hits every subject alike
    const t = performance.now();
    await fn();
    times[name].push(performance.now() - t);
  }
}

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const base = median(times.ctrkit);
console.log(`container start-up, /bin/true, ${runs} runs each (median, min-max in ms); ratio = subject / ctrkit`);
for (const [name] of subjects) {
  const t = times[name];
  console.log(
    `${name.padEnd(14)} ${median(t).toFixed(1).padStart(7)} ms   (${Math.min(...t).toFixed(1)}-${Math.max(...t).toFixed(1)})   ratio ${(median(t) / base).toFixed(2)}`,
  );
}

rmSync(work, { recursive: true, force: true });
for (const ctl of ['cpu', 'cpuacct', 'cpuset', 'memory', 'blkio', 'devices', 'freezer', 'pids', 'net_cls', 'perf_event', 'hugetlb', 'unified', 'systemd', '']) {
  const p = join('/sys/fs/cgroup', ctl, 'ctk-bench');
  if (existsSync(p))
    try {
      rmdirSync(join(p, 'c'));
    } catch {}
  if (existsSync(p))
    try {
      rmdirSync(p);
    } catch {}
}
