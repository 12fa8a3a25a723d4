// Chapter 5.5 — containers vs virtual machines, measured on this machine. N containers
// (ctrkit, `sh` then `sleep`) and N QEMU microVMs (Debian's own kernel and a busybox
// initramfs: the smallest VM that boots to a shell, like scripts/cgroup2-vm.sh) are started
// one after another; each counts as started when it prints "ready". Then the chapter's
// table with this machine's numbers: start time, host memory per instance (PSS and RSS from
// /proc/PID/smaps_rollup of the processes each instance costs the host), how many fit in a
// memory budget by those numbers, and what isolates them.
//
//   node examples/5.5-container-vs-vm.mjs [N]      (N also from CTK_N; default 3)
//   CTK_VM_ACCEL=kvm|tcg skips the KVM probe; CTK_BUDGET_MIB sets the budget (default 1024);
//   CTK_VM_DEBUG=1 shows QEMU's stderr and the guests' boot messages.
import { spawn, execFileSync } from 'node:child_process';
import { accessSync, constants, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { release } from 'node:os';
import { Container, defaultRootfs } from 'ctrkit';

const N = Number(process.env.CTK_N ?? process.argv[2] ?? 3);
const BUDGET_MIB = Number(process.env.CTK_BUDGET_MIB ?? 1024);
const VM_MEMORY = '128M';
const KVM_PROBE_MS = 10_000;
// Software emulation on a busy machine can be many times slower than the ~5 s it takes idle.
const READY_TIMEOUT_MS = 300_000;
if (!(N >= 1)) throw new Error(`N must be a positive number, not ${process.argv[2] ?? process.env.CTK_N}`);

const tmp = mkdtempSync('/tmp/ctk-vm-vs-container-');
const containers = [];
const vms = [];
// Interrupted: the VMs and the temp dir go too (the containers go with this process: they are owned).
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    for (const q of vms) q.kill('SIGKILL');
    rmSync(tmp, { recursive: true, force: true });
    process.exit(130);
  });
}

// ---- measuring -------------------------------------------------------------------------

/** PSS and RSS in bytes of one process (0 when it is gone). */
function memoryOf(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
    return { pss: kb('Pss'), rss: kb('Rss') };
  } catch {
    return { pss: 0, rss: 0 };
  }
}

/** `pid` and all its descendants. */
function tree(pid) {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    for (const t of readdirSync(`/proc/${out[i]}/task`, { withFileTypes: false }).map(String)) {
      try {
        out.push(...readFileSync(`/proc/${out[i]}/task/${t}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
      } catch {
        // exited meanwhile
      }
    }
  }
  return out;
}

const stat = (pid) => readFileSync(`/proc/${pid}/stat`, 'utf8');
const ppidOf = (pid) =>
  Number(
    stat(pid)
      .slice(stat(pid).lastIndexOf(')') + 2)
      .split(' ')[1],
  );
const comm = (pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
const sum = (pids) => pids.map(memoryOf).reduce((a, m) => ({ pss: a.pss + m.pss, rss: a.rss + m.rss }), { pss: 0, rss: 0 });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const mib = (n) => `${(n / 2 ** 20).toFixed(1)} MiB`;
const ms = (n) => (n >= 1000 ? `${(n / 1000).toFixed(2)} s` : `${n.toFixed(0)} ms`);

/**
 * Resolves with the first line of `stream` that matches `re`; rejects after `timeout` ms, when
 * the process exits, or (with `silentMs`) when not a single line came within `silentMs`.
 */
function waitForLine(stream, re, timeout, child, silentMs) {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: stream });
    const seen = [];
    const silent =
      silentMs &&
      setTimeout(() => {
        if (seen.length === 0) done(reject, Object.assign(new Error(`not a line of output in ${silentMs} ms`), { silent: true }));
      }, silentMs);
    const done = (f, v) => {
      clearTimeout(timer);
      clearTimeout(silent);
      rl.off('line', onLine);
      child?.off('exit', onExit);
      f(v);
    };
    const onLine = (l) => {
      seen.push(l);
      if (re.test(l)) done(resolve, l);
    };
    const onExit = (code) => done(reject, new Error(`exited (${code}) before "ready": ${seen.slice(-5).join(' | ')}`));
    const timer = setTimeout(() => done(reject, new Error(`no "ready" within ${timeout} ms: ${seen.slice(-3).join(' | ')}`)), timeout);
    rl.on('line', onLine);
    child?.once('exit', onExit);
  });
}

// ---- containers ------------------------------------------------------------------------

async function startContainer(rootfs, i) {
  const t0 = performance.now();
  const c = await Container.start({
    rootfs,
    stateRoot: join(tmp, 'state'),
    stateDir: join(tmp, 'layers'),
    network: 'none',
    name: `ctk-5-5-${i}`,
    stdio: ['ignore', 'pipe', 'ignore'],
    command: ['sh', '-c', 'echo "ready $(uname -r)"; exec sleep 3600'],
  });
  containers.push(c);
  const line = await waitForLine(c.stdout, /^ready /, READY_TIMEOUT_MS);
  c.stdout.resume();
  return { startMs: performance.now() - t0, kernel: line.split(' ')[1], handle: c };
}

/** What one container costs the host in processes: its own, and the `unshare` that holds its namespaces. */
function containerProcesses(c) {
  const parent = ppidOf(c.pid);
  return [...(comm(parent) === 'unshare' ? [parent] : []), ...tree(c.pid)];
}

// ---- VMs -------------------------------------------------------------------------------

function kernel() {
  const v = readdirSync('/lib/modules')
    .filter((k) => existsSync(`/boot/vmlinuz-${k}`))
    .sort()
    .at(-1);
  if (!v) throw new Error('no /boot/vmlinuz-VERSION (apt-get install linux-image-amd64)');
  accessSync(`/boot/vmlinuz-${v}`, constants.R_OK);
  return `/boot/vmlinuz-${v}`;
}

/** A busybox initramfs whose init says "ready" and sleeps: the guest's whole userland. */
function initramfs() {
  const root = join(tmp, 'initrd');
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'proc'));
  const busybox = execFileSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).trim();
  cpSync(busybox, join(root, 'bin/busybox'));
  writeFileSync(
    join(root, 'init'),
    '#!/bin/busybox sh\n/bin/busybox mount -t proc proc /proc\necho "ctk-vm ready $(/bin/busybox uname -r)"\nexec /bin/busybox sleep 1000000\n',
  );
  chmodSync(join(root, 'init'), 0o755);
  const out = join(tmp, 'initrd.cpio.gz');
  execFileSync('sh', ['-c', `cd "${root}" && find . | cpio -o -H newc 2>/dev/null | gzip -1 > "${out}"`]);
  return out;
}

// The boot code prints "Probing EDD" within a second of QEMU's start, even under TCG. Now and
// then (here: after the KVM probe, about one start in five) a TCG QEMU prints nothing at all:
// stuck before the guest kernel runs. Such a start is abandoned and retried, and reported.
const SILENT_MS = 30_000;
let restarts = 0;

async function startVm(vmlinuz, initrd, accel, i, timeout = READY_TIMEOUT_MS) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await bootVm(vmlinuz, initrd, accel, i, timeout);
    } catch (e) {
      if (!e.silent || attempt === 3) throw e;
      restarts++;
    }
  }
}

async function bootVm(vmlinuz, initrd, accel, i, timeout) {
  const dir = join(tmp, `vm-${i}`);
  mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  const q = spawn(
    'qemu-system-x86_64',
    [
      '-M',
      'microvm',
      '-accel',
      accel,
      '-m',
      VM_MEMORY,
      '-smp',
      '1',
      '-nodefaults',
      '-no-user-config',
      '-nographic',
      '-no-reboot',
      '-nic',
      'none',
      '-serial',
      'stdio',
      '-kernel',
      vmlinuz,
      '-initrd',
      initrd,
      '-append',
      'console=ttyS0 quiet panic=-1',
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  vms.push(q);
  q.stderr.on('data', (d) => process.env.CTK_VM_DEBUG && process.stderr.write(`[qemu ${i}] ${d}`));
  if (process.env.CTK_VM_DEBUG) q.stdout.on('data', (d) => process.stderr.write(`[guest ${i}] ${d}`));
  try {
    const line = await waitForLine(q.stdout, /ctk-vm ready/, timeout, q, SILENT_MS);
    q.stdout.resume();
    return { startMs: performance.now() - t0, kernel: line.trim().split(' ').at(-1), pid: q.pid };
  } catch (e) {
    q.kill('SIGKILL');
    if (q.exitCode === null && q.signalCode === null) await new Promise((r) => q.once('exit', r)); // gone before the next one starts
    vms.splice(vms.indexOf(q), 1);
    throw e;
  }
}

/** KVM when /dev/kvm exists and a guest really boots under it (nested KVM may not), else TCG. */
async function accelerator(vmlinuz, initrd) {
  if (process.env.CTK_VM_ACCEL) return { accel: process.env.CTK_VM_ACCEL, why: 'CTK_VM_ACCEL' };
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return { accel: 'tcg', why: 'no usable /dev/kvm' };
  }
  try {
    await bootVm(vmlinuz, initrd, 'kvm', 'kvm-probe', KVM_PROBE_MS);
    const q = vms.pop();
    q.kill('SIGKILL');
    await new Promise((r) => q.once('exit', r));
    return { accel: 'kvm', why: 'a guest booted under KVM' };
  } catch (e) {
    return { accel: 'tcg', why: `/dev/kvm exists but no guest booted under KVM (${e.message.slice(0, 80)}…)` };
  }
}

// ---- the run ---------------------------------------------------------------------------

try {
  const rootfs = await defaultRootfs();
  const c = [];
  for (let i = 0; i < N; i++) c.push(await startContainer(rootfs, i));
  const vmlinuz = kernel();
  const initrd = initramfs();
  const { accel, why } = await accelerator(vmlinuz, initrd);
  const v = [];
  for (let i = 0; i < N; i++) v.push(await startVm(vmlinuz, initrd, accel, i));

  await new Promise((r) => setTimeout(r, 500)); // let the last ones settle
  const cMem = c.map((x) => sum(containerProcesses(x.handle)));
  const vMem = v.map((x) => memoryOf(x.pid));
  const helper = readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .map(Number)
    .find((p) => {
      try {
        return ppidOf(p) === process.pid && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('owner/helper-main');
      } catch {
        return false;
      }
    });
  const helperMem = helper ? memoryOf(helper) : { pss: 0, rss: 0 };
  const budget = BUDGET_MIB * 2 ** 20;
  const cPss = median(cMem.map((m) => m.pss));
  const vPss = median(vMem.map((m) => m.pss));

  console.log(`container vs VM, ${N} of each, started one after another, on Linux ${release()} (${execFileSync('nproc', { encoding: 'utf8' }).trim()} CPUs)`);
  console.log(`VM accelerator: ${accel} (${why}); each VM: QEMU microvm, ${VM_MEMORY} guest RAM, 1 vCPU, no network (-nic none), ${vmlinuz}`);
  console.log(`containers: ctrkit, busybox rootfs, pid/mnt/uts/ipc/net namespaces, no network\n`);
  console.log('start times to "ready":');
  console.log(`  containers: ${c.map((x) => ms(x.startMs)).join(', ')}`);
  console.log(
    `  VMs:        ${v.map((x) => ms(x.startMs)).join(', ')}${restarts ? `  (${restarts} start(s) abandoned and retried: QEMU printed nothing in ${SILENT_MS / 1000} s)` : ''}`,
  );
  console.log('host memory per instance, PSS (RSS):');
  console.log(`  containers: ${cMem.map((m) => `${mib(m.pss)} (${mib(m.rss)})`).join(', ')}  [the container's processes + its unshare]`);
  console.log(`  VMs:        ${vMem.map((m) => `${mib(m.pss)} (${mib(m.rss)})`).join(', ')}  [the qemu process: guest RAM it touched + QEMU itself]`);
  console.log(`  once per owning process, not per container: ctrkit's owner helper ${mib(helperMem.pss)} PSS (${mib(helperMem.rss)} RSS)`);
  console.log('');
  const rows = [
    ['', 'container (ctrkit)', `VM (QEMU microvm, ${accel.toUpperCase()})`],
    ['isolation', `namespaces, seccomp, dropped capabilities; shares the host kernel ${c[0].kernel}`, `own guest kernel ${v[0].kernel} behind the hypervisor`],
    [`start time to "ready" (median of ${N})`, ms(median(c.map((x) => x.startMs))), ms(median(v.map((x) => x.startMs)))],
    ['host memory per instance, PSS (RSS)', `${mib(cPss)} (${mib(median(cMem.map((m) => m.rss)))})`, `${mib(vPss)} (${mib(median(vMem.map((m) => m.rss)))})`],
    [`density in ${BUDGET_MIB} MiB (by PSS)`, `${Math.floor((budget - helperMem.pss) / cPss)} (helper counted once)`, `${Math.floor(budget / vPss)}`],
  ];
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r) => `| ${r.map((x, i) => x.padEnd(w[i])).join(' | ')} |`;
  console.log(line(rows[0]));
  console.log(`|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`);
  for (const r of rows.slice(1)) console.log(line(r));
  console.log('');
  console.log(`isolation, plainly: every container runs on the host's one kernel (${c[0].kernel} inside = ${release()} outside): a kernel bug`);
  console.log('or a syscall the seccomp filter lets through reaches the host itself. Each VM has its own kernel; a guest reaches the host');
  console.log(`only through the emulated devices and the hypervisor (${accel === 'kvm' ? 'KVM' : 'here TCG, software emulation'}).`);
  console.log("not counted above: kernel memory of each instance (namespaces, page tables, the VM's KVM/TCG structures), page cache shared by all.");
} finally {
  for (const q of vms) q.kill('SIGKILL');
  for (const c of containers) await c.remove({ force: true }).catch(() => {});
  await Promise.all(vms.map((q) => (q.exitCode === null && q.signalCode === null ? new Promise((r) => q.once('exit', r)) : undefined)));
  rmSync(tmp, { recursive: true, force: true });
}
