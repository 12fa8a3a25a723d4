// Container start cost, ctrkit's two start paths against crun and runc, side by side in one run:
//   ctrkit        Container.run({ rootfs, command: ['/bin/true'] })  start path 'auto': two long-lived
//                 worker threads of this process build the namespaces and posix_spawn the command
//   ctrkit-stage  the same with startPath: 'stage' (util-linux unshare --fork + a Node init stage per container)
//   runc          runc run --bundle  on a bundle of the same rootfs (read-only root)
//   crun          crun run --bundle  on the same kind of bundle, in a private mount namespace that hides
//                 /sys/fs/cgroup/unified (crun refuses this hybrid cgroup layout otherwise, see run-true.mjs)
// ctrkit's defaults (network 'none', pid/mnt/uts/ipc/net/cgroup namespaces, an overlay copy-on-write root)
// do a little more than the OCI bundles (read-only root, runc spec's default namespaces and mounts).
// Every subject is started from this Node process, so every figure includes what a Node caller pays.
//
// Measured:
//   1. cold    wall time of one start of /bin/true to completion; N interleaved rounds (each round one start
//              of every subject, in rotating order) after one unmeasured warm-up start each; median.
//              80 ms of quiet follow every start (QUIET), untimed, whatever the subject: each start
//              finds the machine idle, as a single start does. (crun and runc pay for that: moving
//              their init into a v1 cgroup through cgroup.procs waits for an RCU grace period; a
//              crun start traced here spent 14.6 ms in that one write. In a loop of crun alone,
//              25 starts each: 11-12 ms back to back, 27 ms with 80 ms between starts. ctrkit's
//              thread moves itself through `tasks`, which does not wait.)
//   1b. in rotation  the same N rounds again, without the quiet: each start right after another
//              subject's (the figure called cold before; background work may overlap the next start)
//   2. burst   20 starts back to back (sequential, each awaited), total / 20; B bursts per subject,
//              interleaved and rotating; median of the per-start figures; the quiet after each burst
//   3. CPU     per subject on its own: 20 starts, delta of utime+stime+cutime+cstime of this Node process
//              (/proc/self/stat, clock ticks -> ms) / 20, read after the quiet that follows the series
//              (what the starts left to do in the background counts); repeated 3 times, median. Children count in
//              cutime/cstime once reaped: ctrkit's containers (and the stage path's unshare) are children of
//              this process and reaped by it; runc/crun (and what they wait for) are children too. Nothing is
//              subtracted: the ctrkit figures include this Node process's own JS work (and its worker threads).
//              Not included: ctrkit's owner helper (one long-lived process per owner, never reaped here),
//              printed separately below the table. ctrkit's start threads end after 2 s without a start;
//              a burst or CPU series that follows a longer pause pays for new threads in its first start.
//   4. host    10 containers running `sleep 60` at once per subject (ctrkit via Container.start, runc/crun
//              via run -d); the host processes added meanwhile that are NOT inside the containers (those whose
//              pid namespace is the host's), / 10, and the RSS they add (plus, for the ctrkit subjects, this
//              Node process's own RSS delta after a full GC), / 10; exited processes still waiting for pid 1
//              (zombies) are not counted. The owner helper (started with the first container of the
//              process, i.e. already in phase 1) is per owner, not per container, so it is not in the diff.
//   5. warm    Container.prewarm, when this build has it: N containers prepared ahead (untimed, its cost per
//              container printed), then N Container.run starts that take them; median
// No network is used: ctrkit's network is 'none', the bundles keep runc spec's empty network namespace.
// Everything is named ctk*: cgroups under /ctk-bench/start-<pid>, containers ctk-bench-<pid>-<n>,
// temp dir /tmp/ctk-bench-start-*. All of it is removed at the end, on failure, on SIGINT/SIGTERM, and
// (by a small guard process, see GUARD) even when this process is SIGKILLed or hangs.
// A failed start is printed and redone (its round, burst or CPU series is not counted) and the run exits
// with code 1 at the end; a start without a result after 45 s, or more than 3 failed starts, end it at
// once (exit 1, after cleanup).
//
// Usage (as root): node bench/start.mjs [cold-rounds=50 (>= 20)] [bursts=7 (>= 5)]
// Build first (npm run build): 'ctrkit' resolves to this package's dist.
import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Container, defaultRootfs } from 'ctrkit';

const COLD_ROUNDS = Math.max(20, Number(process.argv[2] ?? 50));
const BURSTS = Math.max(5, Number(process.argv[3] ?? 7));
const BURST = 20;
const CPU_STARTS = 20;
const CPU_REPEATS = 3;
const HELD = 10;
// One start. Above ctrkit's own 30 s limit for a thread-path start, so that ctrkit's recovery (it kills
// the half-started process and rejects) runs, not just ours; a start that outlives this is a hang.
const START_TIMEOUT = 45_000;
const MAX_FAILURES = 3; // failed starts are recorded and redone; more than this ends the run
const THREAD_IDLE = 2500; // > ctrkit's start threads' idle time (2 s)
// After every timed start (cold) or series (burst, CPU), before the next subject's: what a start
// leaves to do in the background (ctrkit deletes an ended container's layer and record on a
// thread, at the latest 50 ms after its last start) is done then, not in another subject's time;
// and a CPU series is read only after it.
const QUIET = Number(process.env.BENCH_QUIET_MS ?? 80);
const TOTAL_TIMEOUT = 10 * 60_000; // the whole run

if (process.getuid?.() !== 0) {
  console.error('bench/start.mjs: run as root');
  process.exit(1);
}

// ---------------------------------------------------------------- helpers
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const quantile = (a, q) => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))))];
};
function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(`${what}: no result after ${ms} ms`), { hang: true })), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
const getconf = (v) => Number(spawnSync('getconf', [v], { encoding: 'utf8' }).stdout.trim());
const CLK_TCK = getconf('CLK_TCK') || 100;
const PAGE = getconf('PAGESIZE') || 4096;
const firstLine = (cmd, args) => (spawnSync(cmd, args, { encoding: 'utf8' }).stdout ?? '').split('\n')[0].trim();
// A full GC before each RSS reading of this process, so its heap's garbage is not counted as a container's.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');
const settledRss = async () => {
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(20);
  }
  return rssBytes('self');
};
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** Runs cmd to completion; rejects on a non-zero exit or after `timeout` ms (the child is killed). */
function exec(cmd, args, { timeout = START_TIMEOUT, stderrFile } = {}) {
  return new Promise((resolve, reject) => {
    // A detached container inherits runc's/crun's stdio: a pipe would stay open as long as it runs,
    // so those write their stderr to a file and we wait for 'exit' instead of 'close'.
    const fd = stderrFile ? openSync(stderrFile, 'w') : undefined;
    const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', fd ?? 'pipe'] });
    if (fd !== undefined) closeSync(fd);
    let err = '';
    c.stderr?.on('data', (d) => (err += d));
    const timer = setTimeout(() => {
      c.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')}: no exit after ${timeout} ms`));
    }, timeout);
    c.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    c.on(stderrFile ? 'exit' : 'close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve();
      if (stderrFile) err = readFileSync(stderrFile, 'utf8');
      reject(new Error(`${cmd} ${args.slice(-3).join(' ')} exited ${code ?? signal}: ${err.trim()}`));
    });
  });
}

// ---------------------------------------------------------------- setup
if (!has('crun') || !has('runc')) {
  console.log('installing crun and runc with apt ...');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '-qq', 'crun', 'runc'], { env, stdio: ['ignore', 'ignore', 'inherit'], timeout: 300_000 }).status === 0;
  if (!install()) {
    spawnSync('apt-get', ['update', '-qq'], { env, stdio: ['ignore', 'ignore', 'inherit'], timeout: 300_000 });
    if (!install()) {
      console.error('apt-get install crun runc failed');
      process.exit(1);
    }
  }
}

const cpuModel = (readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m) ?? [])[1] ?? 'unknown';
console.log(`machine: ${cpuModel}, ${cpus().length} cores, kernel ${release()}, node ${process.version}`);
console.log(`runtimes: ${firstLine('crun', ['--version'])}; ${firstLine('runc', ['--version'])}`);
console.log(
  `load average at start: ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')} (a shared machine: other work skews the figures)`,
);
console.log(
  `bench pid ${process.pid}; cold rounds ${COLD_ROUNDS}, bursts ${BURSTS} x ${BURST}, CPU ${CPU_REPEATS} x ${CPU_STARTS} starts, ${HELD} held containers`,
);

// The package under test, and the newest file of its build: on a shared working tree someone may
// rebuild it during the run (worker threads load their modules when they start), which is reported.
const dist = dirname(fileURLToPath(import.meta.resolve('ctrkit')));
const newestBuild = () =>
  readdirSync(dist, { recursive: true }).reduce((m, f) => {
    try {
      return Math.max(m, statSync(join(dist, f)).mtimeMs);
    } catch {
      return m;
    }
  }, 0);
const buildAtStart = newestBuild();
console.log(`ctrkit: ${dist} (built ${new Date(buildAtStart).toISOString()})`);
const rootfs = await defaultRootfs();
const work = mkdtempSync('/tmp/ctk-bench-start-');
const CG_PARENT = `ctk-bench/start-${process.pid}`;
const PREFIX = `ctk-bench-${process.pid}-`;
let seq = 0;
const CG_ROOT = '/sys/fs/cgroup';
const ctkCgroupsAtStart = new Set(listCtkCgroups());

// The runc spec template: one bundle directory per container (own name, own cgroup path).
spawnSync('runc', ['spec', '--bundle', work]);
const template = JSON.parse(readFileSync(join(work, 'config.json'), 'utf8'));
rmSync(join(work, 'config.json'));
template.root = { path: rootfs, readonly: true };
template.process.terminal = false;

/** A fresh bundle and container name for one runc/crun start. */
function bundle(args) {
  const name = `${PREFIX}${seq++}`;
  const dir = join(work, name);
  mkdirSync(dir);
  const spec = structuredClone(template);
  spec.process.args = args;
  spec.linux.cgroupsPath = `/${CG_PARENT}/${name}`;
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec));
  return { name, dir };
}

// crun only in a private mount namespace with a tmpfs over the unified (v2) mount: the same for every verb.
const crun = (args, opts) =>
  exec(
    'unshare',
    ['-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs none /sys/fs/cgroup/unified 2>/dev/null; exec crun "$@"', 'crun', ...args],
    opts,
  );
const runc = (args, opts) => exec('runc', args, opts);
const runtimes = { runc, crun };

async function ctrkitRun(startPath) {
  const r = await withTimeout(
    Container.run({ rootfs, command: ['/bin/true'], ...(startPath ? { startPath } : {}) }),
    START_TIMEOUT,
    `ctrkit${startPath ? `-${startPath}` : ''} run`,
  );
  if (r.exitCode !== 0) throw new Error(`ctrkit run exited ${r.exitCode ?? r.signal}: ${r.stderr}`);
}

/** Every subject: `prepare()` (untimed) returns the timed start of one /bin/true container. */
const subjects = [
  { name: 'ctrkit', ctrkit: true, prepare: () => () => ctrkitRun(undefined) },
  { name: 'ctrkit-stage', ctrkit: true, prepare: () => () => ctrkitRun('stage') },
  ...['runc', 'crun'].map((rt) => ({
    name: rt,
    prepare: () => {
      const b = bundle(['/bin/true']);
      return async () => {
        await runtimes[rt](['run', '--bundle', b.dir, b.name]);
        rmSync(b.dir, { recursive: true, force: true });
      };
    },
  })),
];
const rotated = (i) => subjects.map((_, k) => subjects[(k + i) % subjects.length]);

// ---------------------------------------------------------------- /proc
function procStat(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const close = s.lastIndexOf(')');
  const f = s.slice(close + 2).split(' '); // f[0] is field 3 (state)
  return {
    comm: s.slice(s.indexOf('(') + 1, close),
    state: f[0],
    ppid: Number(f[1]),
    utime: +f[11],
    stime: +f[12],
    cutime: +f[13],
    cstime: +f[14],
    start: f[19],
  };
}
const cpuTicks = () => {
  const s = procStat('self');
  return s.utime + s.stime + s.cutime + s.cstime;
};
const rssBytes = (pid) => Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * PAGE;
const HOST_PIDNS = readlinkSync('/proc/self/ns/pid');

/** Every process: key pid:starttime -> { pid, ppid, comm, hostns, rss }. */
function snapshot() {
  const m = new Map();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const st = procStat(e);
      const ns = readlinkSync(`/proc/${e}/ns/pid`);
      m.set(`${e}:${st.start}`, { pid: Number(e), ppid: st.ppid, comm: st.comm, zombie: st.state === 'Z', hostns: ns === HOST_PIDNS, rss: rssBytes(e) });
    } catch {} // gone meanwhile, or a kernel thread
  }
  return m;
}

/**
 * Host processes that appeared between two snapshots and are ours: in the host pid namespace and
 * either descendants of this process or orphans re-parented to pid 1 that a runtime may leave
 * (other people's processes on a shared machine are not counted).
 */
function added(before, after) {
  const byPid = new Map([...after.values()].map((p) => [p.pid, p]));
  const ours = (p) => {
    for (let q = p, hops = 0; q && hops < 64; q = byPid.get(q.ppid), hops++) {
      if (q.pid === guard.pid) return false; // the guard's own polling
      if (q.ppid === process.pid) return true;
    }
    return p.ppid === 1 && /^(runc|crun|conmon|unshare|sh|node|sleep|ctrkit)/.test(p.comm);
  };
  return [...after].filter(([k, p]) => !before.has(k) && p.hostns && p.pid !== process.pid && ours(p)).map(([, p]) => p);
}
const ownerHelpers = () =>
  [...snapshot().values()].filter((p) => {
    if (p.ppid !== process.pid) return false;
    try {
      return readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').includes('helper-main');
    } catch {
      return false;
    }
  });

// ---------------------------------------------------------------- cleanup
const held = { ctrkit: [], runtime: [] }; // containers of phase 4
const sleepPids = new Set();

function listCtkCgroups() {
  const out = [];
  for (const h of readdirSync(CG_ROOT)) {
    try {
      for (const e of readdirSync(join(CG_ROOT, h))) if (e.startsWith('ctk')) out.push(`${h}/${e}`);
    } catch {}
  }
  return out;
}

let cleaned = false;
async function cleanup() {
  if (cleaned) return;
  cleaned = true;
  for (const c of held.ctrkit.splice(0)) await withTimeout(c.remove({ force: true }), 15_000, 'remove').catch((e) => console.error(`cleanup: ${e.message}`));
  for (const rt of ['runc', 'crun']) {
    // Everything of this run the runtime still knows: the held ones and any start that failed halfway.
    let names = [];
    try {
      const args = ['list', '-q'];
      const r =
        rt === 'runc'
          ? spawnSync('runc', args, { encoding: 'utf8', timeout: 15_000 })
          : spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs none /sys/fs/cgroup/unified 2>/dev/null; exec crun list -q'], {
              encoding: 'utf8',
              timeout: 15_000,
            });
      names = (r.stdout ?? '').split('\n').filter((n) => n.startsWith(PREFIX));
    } catch {}
    for (const n of names) {
      await runtimes[rt](['kill', n, 'KILL'], { timeout: 15_000 }).catch(() => {});
      await runtimes[rt](['delete', '-f', n], { timeout: 15_000 }).catch((e) => console.error(`cleanup: ${e.message}`));
    }
  }
  held.runtime.length = 0;
  // Our cgroups: /ctk-bench/start-<pid>/* in every hierarchy, then the parents if nobody else uses them.
  for (const h of readdirSync(CG_ROOT)) {
    const mine = join(CG_ROOT, h, CG_PARENT);
    if (existsSync(mine)) {
      for (const e of readdirSync(mine, { withFileTypes: true }))
        if (e.isDirectory())
          try {
            rmdirSync(join(mine, e.name));
          } catch (err) {
            console.error(`cleanup: ${join(mine, e.name)}: ${err.code}`);
          }
      try {
        rmdirSync(mine);
      } catch (err) {
        console.error(`cleanup: ${mine}: ${err.code}`);
      }
    }
    try {
      rmdirSync(join(CG_ROOT, h, 'ctk-bench')); // fails (ENOTEMPTY/EBUSY) when another run uses it: fine
    } catch {}
  }
  rmSync(work, { recursive: true, force: true });
}

/**
 * SIGKILL every child of this process but ctrkit's owner helper (which releases the rest once we are
 * gone). Needed before exiting after a failure: a thread-path start stuck at its barrier keeps a
 * worker thread inside posix_spawn (vfork), and Node's exit would wait for that thread for good.
 */
function killChildren() {
  for (const task of readdirSync('/proc/self/task')) {
    let kids = [];
    try {
      kids = readFileSync(`/proc/self/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {}
    for (const pid of kids) {
      try {
        if (pid !== guard.pid && !readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('helper-main')) process.kill(pid, 'SIGKILL');
      } catch {}
    }
  }
}

let exiting = false;
async function fail(e, code = 1) {
  if (exiting) return;
  exiting = true;
  console.error(`\nFAILED: ${e?.stack ?? e}`);
  killChildren();
  await withTimeout(cleanup(), 60_000, 'cleanup').catch((err) => console.error(`cleanup: ${err.message}`));
  // Last resort should the exit still hang: a guard that SIGKILLs this process (checked by start time).
  const start = procStat('self').start;
  spawn('sh', ['-c', `sleep 20; [ "$(cut -d' ' -f22 /proc/${process.pid}/stat 2>/dev/null)" = ${start} ] && kill -KILL ${process.pid}`], {
    detached: true,
    stdio: 'ignore',
  }).unref();
  process.exit(code);
}

/** Failed starts: recorded, printed, and the run exits 1 at the end; a hang or too many end it at once. */
const failures = [];
async function attempt(name, fn) {
  try {
    await fn();
    return true;
  } catch (e) {
    if (e.hang) throw e;
    failures.push(`${name}: ${e.name ?? 'Error'}${e.code ? ` ${e.code}` : ''}: ${e.message}`);
    console.log(`  failed start (${name}), redone: ${failures.at(-1)}`);
    if (failures.length > MAX_FAILURES) throw new Error(`${failures.length} failed starts, giving up`);
    return false;
  }
}
/** Runs `n` starts of `s` back to back, timed by `measure`; after a failed start the whole series is redone. */
async function series(s, n, measure) {
  for (;;) {
    const fns = Array.from({ length: n }, () => s.prepare());
    const m = measure();
    let ok = true;
    for (const fn of fns) if (!(ok = await attempt(s.name, fn))) break;
    const result = m();
    await sleep(QUIET);
    if (ok) return typeof result === 'function' ? result() : result;
  }
}

/**
 * A guard outside Node, for what no JS timer survives. Seen here: a thread-path container's cgroup
 * kill reached a start thread still inside that cgroup, so SIGKILL took this process while the
 * thread sat frozen: the process stays a zombie with a live thread for good. The guard thaws such
 * frozen ctk* cgroups, SIGKILLs this process 2 min past the JS time limit, and once this process is
 * gone (in any way) removes whatever of the run is left: runc/crun containers, our cgroups, the temp
 * dir (ctrkit's own containers are its owner helper's job). After a normal run there is nothing left.
 */
const GUARD = `
pid=$1 start=$2 deadline=$3 prefix=$4 cg=$5 work=$6
alive() { [ "$(cut -d' ' -f22 /proc/$pid/stat 2>/dev/null)" = "$start" ]; }
while alive; do
  [ "$(date +%s)" -ge "$deadline" ] && kill -KILL "$pid"
  if [ "$(cut -d' ' -f3 /proc/$pid/stat 2>/dev/null)" = Z ]; then
    for t in /proc/$pid/task/*; do
      f=$(sed -n 's/^[0-9]*:freezer:\\(.*\\)$/\\1/p' "$t/cgroup" 2>/dev/null)
      case "$f" in /ctk*) echo THAWED > "/sys/fs/cgroup/freezer$f/freezer.state" ;; esac
    done 2>/dev/null
  fi
  sleep 1
done
crunw() { unshare -m --propagation private sh -c 'mount -t tmpfs none /sys/fs/cgroup/unified 2>/dev/null; exec crun "$@"' crun "$@"; }
for n in $(runc list -q 2>/dev/null | grep "^$prefix"); do runc delete -f "$n"; done
for n in $(crunw list -q 2>/dev/null | grep "^$prefix"); do crunw delete -f "$n"; done
for h in /sys/fs/cgroup/*; do
  [ -d "$h/$cg" ] || continue
  for d in "$h/$cg"/*/; do rmdir "$d"; done
  rmdir "$h/$cg" && rmdir "$h/ctk-bench"
done 2>/dev/null
case "$work" in /tmp/ctk-bench-start-*) rm -rf "$work" ;; esac
`;
const guard = spawn(
  'sh',
  [
    '-c',
    GUARD,
    'ctk-bench-guard',
    String(process.pid),
    procStat('self').start,
    String(Math.floor(Date.now() / 1000) + TOTAL_TIMEOUT / 1000 + 120),
    PREFIX,
    CG_PARENT,
    work,
  ],
  { detached: true, stdio: 'ignore' },
);
guard.unref();
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => fail(new Error(`got ${sig}`), 130));
const watchdog = setTimeout(() => fail(new Error(`the whole run took more than ${TOTAL_TIMEOUT / 1000} s`), 2), TOTAL_TIMEOUT);

// ---------------------------------------------------------------- measure
const results = Object.fromEntries(subjects.map((s) => [s.name, {}]));
try {
  // Warm-up: page cache, the rootfs, ctrkit's threads and owner helper. Printed, not counted.
  const firsts = [];
  for (const s of subjects) {
    const fn = s.prepare();
    const t = performance.now();
    const ok = await attempt(s.name, fn);
    firsts.push(`${s.name} ${ok ? (performance.now() - t).toFixed(1) : 'failed'}`);
  }
  console.log(`first start in this process (unmeasured warm-up, ms): ${firsts.join(', ')}`);

  // 1. cold: each start after QUIET ms of quiet; then (1b) the same rounds without the quiet
  const coldRounds = async (quiet) => {
    const cold = Object.fromEntries(subjects.map((s) => [s.name, []]));
    for (let i = 0; i < COLD_ROUNDS; i++) {
      for (const s of rotated(i)) {
        for (;;) {
          const fn = s.prepare();
          const t = performance.now();
          const ok = await attempt(s.name, fn);
          const ms = performance.now() - t;
          if (quiet) await sleep(quiet);
          if (ok) {
            cold[s.name].push(ms);
            break;
          } // else redone
        }
      }
    }
    return cold;
  };
  const cold = await coldRounds(QUIET);
  await sleep(QUIET);
  const rotation = await coldRounds(0);
  await sleep(QUIET);
  for (const s of subjects) Object.assign(results[s.name], { cold: cold[s.name], rotation: rotation[s.name] });

  // 2. burst
  const burst = Object.fromEntries(subjects.map((s) => [s.name, []]));
  for (let i = 0; i < BURSTS; i++) {
    for (const s of rotated(i)) {
      burst[s.name].push(
        await series(s, BURST, () => {
          const t = performance.now();
          return () => (performance.now() - t) / BURST;
        }),
      );
    }
  }
  for (const s of subjects) results[s.name].burst = burst[s.name];

  // 3. CPU, each subject on its own
  for (const s of subjects) {
    const per = [];
    const helper = ownerHelpers()[0];
    const helperTicks = () => {
      try {
        const st = procStat(helper.pid);
        return st.utime + st.stime;
      } catch {
        return 0;
      }
    };
    let helperTotal = 0;
    for (let r = 0; r < CPU_REPEATS; r++) {
      per.push(
        await series(s, CPU_STARTS, () => {
          const h0 = helper ? helperTicks() : 0;
          const t0 = cpuTicks();
          // Read after the quiet pause: the background work of the series counts.
          return () => () => {
            helperTotal += (helper ? helperTicks() : 0) - h0;
            return (((cpuTicks() - t0) / CLK_TCK) * 1000) / CPU_STARTS;
          };
        }),
      );
    }
    results[s.name].cpu = per;
    results[s.name].helperCpu = s.ctrkit && helper ? ((helperTotal / CLK_TCK) * 1000) / (CPU_STARTS * CPU_REPEATS) : undefined;
  }

  // 4. host processes and RSS per running container
  for (const s of subjects) {
    const startPath = s.name === 'ctrkit-stage' ? { startPath: 'stage' } : {};
    if (s.ctrkit) {
      // Unmeasured: the first Container.start of the process loads what run() did not need (logs ...).
      await attempt(s.name, async () => {
        const c = await withTimeout(Container.start({ rootfs, command: ['sleep', '60'], ...startPath }), START_TIMEOUT, `${s.name} start`);
        await withTimeout(c.remove({ force: true }), 15_000, `${s.name} remove`);
      });
      // The stage path's baseline must not include the thread path's worker threads ending meanwhile.
      if (s.name === 'ctrkit-stage') await sleep(THREAD_IDLE);
    }
    const selfRss0 = s.ctrkit ? await settledRss() : 0;
    const before = snapshot();
    const pids = [];
    if (s.ctrkit) {
      for (let i = 0; i < HELD; i++) {
        const ok = await attempt(s.name, async () => {
          const c = await withTimeout(Container.start({ rootfs, command: ['sleep', '60'], ...startPath }), START_TIMEOUT, `${s.name} start`);
          held.ctrkit.push(c);
          pids.push(c.pid);
        });
        if (!ok) i--;
      }
    } else {
      for (let i = 0; i < HELD; i++) {
        const b = bundle(['sleep', '60']);
        if (!(await attempt(s.name, () => runtimes[s.name](['run', '-d', '--bundle', b.dir, b.name], { stderrFile: join(work, `${b.name}.err`) })))) {
          i--;
          continue; // the cleanup deletes what the runtime may have left of it
        }
        held.runtime.push(b.name);
        const st = spawnSync(
          s.name === 'runc' ? 'runc' : 'unshare',
          s.name === 'runc'
            ? ['state', b.name]
            : ['-m', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs none /sys/fs/cgroup/unified 2>/dev/null; exec crun state ${b.name}`],
          {
            encoding: 'utf8',
            timeout: 15_000,
          },
        );
        try {
          pids.push(JSON.parse(st.stdout).pid);
        } catch {}
      }
    }
    for (const p of pids) if (p) sleepPids.add(p);
    await sleep(500); // let short-lived helpers of the start (runc init, ...) finish
    const after = snapshot();
    const selfRss1 = s.ctrkit ? await settledRss() : 0;
    const all = added(before, after);
    // Zombies are not counted: on this machine pid 1 reaps orphans only every few seconds, and crun run -d
    // leaves its exited intermediate process to it.
    const extra = all.filter((p) => !p.zombie);
    const zombies = all.length - extra.length;
    const running = pids.filter((p) => existsSync(`/proc/${p}`)).length;
    if (running !== HELD) throw new Error(`${s.name}: ${running} of ${HELD} held containers are running`);
    const parents = new Set(
      pids.map((p) =>
        (() => {
          try {
            const pp = procStat(p).ppid;
            return pp === process.pid ? 'this node process' : procStat(pp).comm;
          } catch {
            return '?';
          }
        })(),
      ),
    );
    const rss = extra.reduce((a, p) => a + p.rss, 0) + (selfRss1 - selfRss0);
    results[s.name].procs = extra.length / HELD;
    results[s.name].rss = rss / HELD / 2 ** 20;
    const byComm = {};
    for (const p of extra) byComm[p.comm] = (byComm[p.comm] ?? 0) + 1;
    const comms = Object.entries(byComm)
      .map(([c, n]) => `${n} ${c}`)
      .join(', ');
    console.log(
      `${s.name}: ${HELD} held; added host processes: ${comms || 'none'}${zombies ? ` (+${zombies} exited, awaiting pid 1)` : ''}; their RSS ${(extra.reduce((a, p) => a + p.rss, 0) / 2 ** 20).toFixed(1)} MiB` +
        `${s.ctrkit ? `, this process's RSS delta ${((selfRss1 - selfRss0) / 2 ** 20).toFixed(1)} MiB` : ''}; containers' parent: ${[...parents].join(', ')}`,
    );
    // stop and remove
    if (s.ctrkit) {
      for (const c of held.ctrkit.splice(0)) await withTimeout(c.remove({ force: true }), 15_000, `${s.name} remove`);
      if (s.name === 'ctrkit') {
        // The thread path's fixed cost in this process: its two worker threads, until they end when idle.
        const withThreads = await settledRss();
        await sleep(THREAD_IDLE);
        const park = existsSync(join(CG_ROOT, 'memory', `ctkpark-${process.pid}`));
        console.log(
          `ctrkit start threads: ${((withThreads - (await settledRss())) / 2 ** 20).toFixed(1)} MiB of this process's RSS while they live (per process, not per container; they end after 2 s idle${park ? ', but their park cgroup is still there' : ', park cgroup removed'})`,
        );
      }
    } else {
      for (const n of held.runtime.splice(0)) {
        await runtimes[s.name](['kill', n, 'KILL'], { timeout: 15_000 }).catch(() => {}); // may be gone already
        await runtimes[s.name](['delete', '-f', n], { timeout: 15_000 });
      }
    }
  }

  // 5. warm
  let warm = 'warm: not measured (no prewarm in this build)';
  if (typeof Container.prewarm === 'function') {
    try {
      // One prepared container per start, made ahead (untimed): the start alone is measured. (With
      // fewer, back-to-back starts outrun the pool's background refill and most of them are cold.)
      const t1 = performance.now();
      const pool = await withTimeout(Promise.resolve(Container.prewarm({ rootfs }, { count: COLD_ROUNDS, refill: false })), START_TIMEOUT, 'prewarm');
      const prepared = (performance.now() - t1) / COLD_ROUNDS;
      const t = [];
      try {
        for (let i = 0; i < COLD_ROUNDS; i++) {
          const t0 = performance.now();
          await ctrkitRun(undefined); // Container.run with the pool's options: it takes a prepared container
          t.push(performance.now() - t0);
        }
      } finally {
        await pool.close?.();
      }
      warm = `warm: ctrkit after Container.prewarm({ rootfs }, { count: ${COLD_ROUNDS} }): median ${median(t).toFixed(1)} [${quantile(t, 0.25).toFixed(1)}-${quantile(t, 0.75).toFixed(1)}] ms over ${COLD_ROUNDS} starts; preparing cost ${prepared.toFixed(1)} ms/container beforehand`;
    } catch (e) {
      warm = `warm: Container.prewarm failed: ${e.message}`;
    }
  }

  // ---------------------------------------------------------------- report
  console.log('\ndetail (ms): median [p25-p75] min-max');
  for (const s of subjects) {
    const r = results[s.name];
    const d = (a) =>
      `${median(a).toFixed(1)} [${quantile(a, 0.25).toFixed(1)}-${quantile(a, 0.75).toFixed(1)}] ${Math.min(...a).toFixed(1)}-${Math.max(...a).toFixed(1)}`;
    console.log(
      `  ${s.name.padEnd(13)} cold ${d(r.cold)} | in rotation ${d(r.rotation)} | burst ${d(r.burst)} | CPU ${r.cpu.map((x) => x.toFixed(1)).join(' / ')}`,
    );
  }
  const helperLine = subjects
    .filter((s) => results[s.name].helperCpu !== undefined)
    .map((s) => `${s.name} ${results[s.name].helperCpu.toFixed(2)}`)
    .join(', ');
  const helpers = ownerHelpers();
  if (helpers.length)
    console.log(
      `ctrkit owner helper (one per Node process, not in the table): ${helpers.length} process, RSS ${(helpers.reduce((a, p) => a + p.rss, 0) / 2 ** 20).toFixed(1)} MiB; its CPU ms/start: ${helperLine || 'n/a'}`,
    );
  console.log(warm);

  const crunR = results.crun;
  const ratio = (a, b) => (a / b).toFixed(2);
  console.log(
    `\n${COLD_ROUNDS} cold rounds, ${BURSTS} bursts of ${BURST}, CPU ${CPU_REPEATS} x ${CPU_STARTS} starts (median), ${HELD} held containers; ${cpuModel}, ${cpus().length} cores, Linux ${release()}, Node ${process.version}\n`,
  );
  console.log(
    '| subject | cold ms | ×crun | in rotation ms | ×crun | burst ms/start | ×crun | CPU ms/start | ×crun | host procs/container | host RSS MiB/container |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const s of subjects) {
    const r = results[s.name];
    const [c, o, b, u] = [median(r.cold), median(r.rotation), median(r.burst), median(r.cpu)];
    console.log(
      `| ${s.name} | ${c.toFixed(1)} | ${ratio(c, median(crunR.cold))} | ${o.toFixed(1)} | ${ratio(o, median(crunR.rotation))} | ${b.toFixed(1)} | ${ratio(b, median(crunR.burst))} | ${u.toFixed(1)} | ${ratio(u, median(crunR.cpu))} | ${r.procs.toFixed(1)} | ${r.rss.toFixed(1)} |`,
    );
  }
  console.log(`\nfailed starts (excluded from the figures, redone): ${failures.length ? `${failures.length}\n  ${failures.join('\n  ')}` : 'none'}`);
} catch (e) {
  await fail(e);
}

clearTimeout(watchdog);
await cleanup();
if (newestBuild() !== buildAtStart) console.log(`WARNING: ${dist} was rebuilt during the run: the figures may mix two builds`);
console.log(
  `load average at the end: ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
);
// What this run left: its containers' processes, and cgroups named ctk* that were not there before
// (on a shared machine the latter may also be someone else's).
await sleep(THREAD_IDLE); // > the start threads' idle time (2 s): they end and remove their park cgroups
const alive = [...sleepPids].filter((p) => existsSync(`/proc/${p}`));
const newCgroups = listCtkCgroups().filter((c) => !ctkCgroupsAtStart.has(c) && !c.endsWith(`/ctkpark-${process.pid}`) && !c.includes('/ctkpark-'));
console.log(
  `\nleftovers: ${alive.length} held container process(es) still alive${alive.length ? ` (${alive.join(' ')})` : ''}; ` +
    `${newCgroups.length} new ctk* cgroup(s)${newCgroups.length ? `: ${newCgroups.join(' ')}` : ''}` +
    `${existsSync(join(CG_ROOT, 'memory', `ctkpark-${process.pid}`)) ? `; ctkpark-${process.pid} still there after the threads' idle time` : ''}`,
);
process.exit(alive.length || failures.length ? 1 : 0);
