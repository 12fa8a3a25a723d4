// ctrkit-runtime against runc and crun, as containerd's shim drives them, side by side in one run:
//   lifecycle  `create --bundle B --pid-file F ID`, `start ID`, wait for the init (/bin/true) to exit,
//              `delete ID`: the four steps of one short-lived container, wall time, each step a new
//              process (as the shim makes them). This process is a child subreaper, as the shim is, and
//              learns of the exit by waiting on the init through a pidfd.
//   state      `state ID` of a created container (runtime-tools and Podman call it often), against
//              `node -e 0`: the floor of any Node program here (the issue asks ctrkit-runtime's `state`
//              to stay within 1.3x of it).
// Rounds are interleaved, each round one sample of every subject in rotating order, after one
// unmeasured warm-up each; medians are reported, with ratios to runc and to crun.
// Bundles: the built-in busybox rootfs, `ctrkit-runtime spec`'s config with args /bin/true, a
// read-only root and cgroupsPath /ctk-bench-rt/<subject>-<n>; the same bundle for all three.
// crun refuses this hybrid cgroup host unless /sys/fs/cgroup/unified is hidden: each crun call runs in
// a private mount namespace with a tmpfs over it (see test-lab notes in bench/run-true.mjs).
// Everything is named ctk*: state roots and bundles under /tmp/ctk-bench-rt-*, cgroups under
// /ctk-bench-rt; all of it is removed at the end.
//
// Usage (as root): node bench/runtime.mjs [rounds=30]
// Build first (npm run build).
import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, readFileSync, openSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const { pidfdOpen, prctl } = await import(join(root, 'dist/sys/libc.js'));
const { watchPidfd } = await import(join(root, 'dist/sys/spawn.js'));
const { defaultRootfs } = await import(join(root, 'dist/index.js'));

const rounds = Math.max(10, Number(process.argv[2] ?? 30));
const PR_SET_CHILD_SUBREAPER = 36;
prctl(PR_SET_CHILD_SUBREAPER, 1);

const dir = mkdtempSync('/tmp/ctk-bench-rt-');
const rootfs = await defaultRootfs();
const which = (name) => spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim();
const crunWrap = join(dir, 'crun-wrap');
writeFileSync(crunWrap, `#!/bin/sh\nexec unshare -m --propagation private sh -c 'mount -t tmpfs none /sys/fs/cgroup/unified && exec crun "$@"' crun "$@"\n`);
chmodSync(crunWrap, 0o755);

const subjects = [
  { name: 'ctrkit-runtime', bin: join(root, 'dist/runtime/main.js') },
  { name: 'runc', bin: which('runc') },
  { name: 'crun', bin: which('crun') && crunWrap },
].filter((s) => s.bin);

let n = 0;
function bundle(subject) {
  const id = `ctk-bench-${subject.name}-${process.pid}-${++n}`;
  const b = join(dir, id);
  mkdirSync(b);
  spawnSync(subjects[0].bin, ['spec', '--bundle', b]);
  const c = JSON.parse(readFileSync(join(b, 'config.json'), 'utf8'));
  c.root = { path: rootfs, readonly: true };
  c.process.args = ['/bin/true'];
  c.process.noNewPrivileges = true;
  c.linux.cgroupsPath = `/ctk-bench-rt/${id}`;
  writeFileSync(join(b, 'config.json'), JSON.stringify(c));
  return { id, dir: b };
}

// stderr goes to a file, as the shim's go to FIFOs: a created container keeps the runtime's stdio
// open, and spawnSync would wait for a pipe's end until the container ends.
const errFile = join(dir, 'stderr');
function call(subject, args) {
  const fd = openSync(errFile, 'w');
  const r = spawnSync(subject.bin, ['--root', join(dir, `state-${subject.name}`), ...args], { stdio: ['ignore', 'ignore', fd] });
  closeSync(fd);
  if (r.status !== 0) throw new Error(`${subject.name} ${args[0]}: exit ${r.status}: ${readFileSync(errFile, 'utf8')}`);
}

/** create, start, wait, delete of /bin/true: ms. */
async function lifecycle(subject) {
  const b = bundle(subject);
  const pidFile = join(b.dir, 'pid');
  const t0 = performance.now();
  call(subject, ['create', '--bundle', b.dir, '--pid-file', pidFile, b.id]);
  const pidfd = pidfdOpen(Number(readFileSync(pidFile, 'utf8')));
  const exited = new Promise((done) => watchPidfd(pidfd, done));
  call(subject, ['start', b.id]);
  await exited;
  call(subject, ['delete', b.id]);
  const ms = performance.now() - t0;
  rmSync(b.dir, { recursive: true, force: true });
  return ms;
}

/** `state` of a created container, and `node -e 0`: ms each. */
function stateOnce(subject, id) {
  const t0 = performance.now();
  call(subject, ['state', id]);
  return performance.now() - t0;
}
function nodeFloor() {
  const t0 = performance.now();
  spawnSync(process.execPath, ['-e', '0']);
  return performance.now() - t0;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const life = Object.fromEntries(subjects.map((s) => [s.name, []]));
const state = Object.fromEntries([...subjects.map((s) => [s.name, []]), ['node -e 0', []]]);
const held = [];
try {
  for (const s of subjects) await lifecycle(s); // warm-up
  for (let r = 0; r < rounds; r++) {
    const order = subjects.map((_, i) => subjects[(i + r) % subjects.length]);
    for (const s of order) life[s.name].push(await lifecycle(s));
  }
  for (const s of subjects) {
    const b = bundle(s);
    call(s, ['create', '--bundle', b.dir, b.id]);
    held.push([s, b]);
    stateOnce(s, b.id); // warm-up
  }
  nodeFloor();
  for (let r = 0; r < rounds; r++) {
    state['node -e 0'].push(nodeFloor());
    for (const [s, b] of held) state[s.name].push(stateOnce(s, b.id));
  }
} finally {
  for (const [s, b] of held) spawnSync(s.bin, ['--root', join(dir, `state-${s.name}`), 'delete', '--force', b.id]);
  for (const h of readdirSync('/sys/fs/cgroup')) {
    const d = join('/sys/fs/cgroup', h, 'ctk-bench-rt');
    if (!existsSync(d)) continue;
    for (const c of readdirSync(d, { withFileTypes: true })) if (c.isDirectory()) rmdirSync(join(d, c.name));
    rmdirSync(d);
  }
  rmSync(dir, { recursive: true, force: true });
}

const fmt = (x) => x.toFixed(1).padStart(8);
const ratio = (a, b) => (b ? `${(a / b).toFixed(2)}x` : '-').padStart(8);
const runc = (t) => median(t.runc ?? []);
const crun = (t) => median(t.crun ?? []);
console.log(`ctrkit-runtime vs runc and crun, ${rounds} interleaved rounds, medians (ms); Linux ${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}`);
console.log('\nlifecycle (create + start + wait for /bin/true + delete)');
console.log(`${'subject'.padEnd(16)}${'ms'.padStart(8)}${'/ runc'.padStart(8)}${'/ crun'.padStart(8)}`);
for (const [k, v] of Object.entries(life)) console.log(`${k.padEnd(16)}${fmt(median(v))}${ratio(median(v), runc(life))}${ratio(median(v), crun(life))}`);
console.log('\nstate of a created container');
console.log(`${'subject'.padEnd(16)}${'ms'.padStart(8)}${'/ node'.padStart(8)}${'/ runc'.padStart(8)}`);
const floor = median(state['node -e 0']);
for (const [k, v] of Object.entries(state)) console.log(`${k.padEnd(16)}${fmt(median(v))}${ratio(median(v), floor)}${ratio(median(v), runc(state))}`);
