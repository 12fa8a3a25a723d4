// Chapter 5.2.2 — the cgroup v1 architecture: one hierarchy per subsystem, mounted under
// /sys/fs/cgroup, and the subsystems of the chapter's table on this kernel:
//   cpu (cpu.shares, cfs_quota_us: see 5.2.4-cpu-limit), cpuset (cpuset.cpus), memory
//   (memory.limit_in_bytes), blkio (blkio.weight), devices (devices.allow/deny), net_cls.
// Every cgroup here is ctk-ex-PID (and ctk-ex-PID-*), made and removed by this run.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { Cgroup, ControllerUnavailableError, detectCgroupLayout } from 'ctrkit/cgroups';
import { unshare } from 'ctrkit/namespaces';

const base = `ctk-ex-${process.pid}`;
const layout = await detectCgroupLayout();

// $ ls /sys/fs/cgroup/   — and what each mount is, from /proc/self/mountinfo
console.log(`$ ls /sys/fs/cgroup/\n${readdirSync('/sys/fs/cgroup').sort().join('  ')}`);
console.log(`layout: ${layout.mode}`);
for (const m of layout.mounts)
  console.log(`  v${m.version} ${m.path.padEnd(24)} ${m.version === 1 ? m.controllers.join(',') : '(unified: controllers in cgroup.controllers)'}`);

/** Runs `sh -c script` as a process (new PID and mount namespaces) placed in `cg` before it starts. */
async function runIn(cg, script) {
  const p = await unshare({
    command: ['sh', '-c', script],
    namespaces: ['pid', 'mnt'],
    stdio: ['ignore', 'pipe', 'pipe'],
    onNamespaces: ({ pid }) => cg.addProcess(pid),
  });
  const [out, err] = await Promise.all([text(p.stdout), text(p.stderr), p.exited]);
  return (out + err).trim();
}

const made = [];
const make = async (cg) => {
  made.push(cg);
  return cg.create();
};
try {
  // memory: $ ls /sys/fs/cgroup/memory/<id>/
  const mem = await make(Cgroup.v1(base).memoryMax('512m'));
  const memDir = mem.dirs.get('memory');
  const shown = readdirSync(memDir).filter((f) => ['cgroup.procs', 'memory.limit_in_bytes', 'memory.usage_in_bytes'].includes(f));
  console.log(`$ ls ${memDir}/\n${shown.join('  ')}  ... (${readdirSync(memDir).length} files)`);
  console.log(`memory.limit_in_bytes: ${readFileSync(join(memDir, 'memory.limit_in_bytes'), 'utf8').trim()}`);

  // cpuset: pin to the last CPU
  const cpu = String(Math.max(0, (await import('node:os')).availableParallelism() - 1));
  const pinned = await make(Cgroup.v1(`${base}-cpuset`).cpusetCpus(cpu));
  console.log(
    `cpuset.cpus=${readFileSync(join(pinned.dirs.get('cpuset'), 'cpuset.cpus'), 'utf8').trim()}: ${await runIn(pinned, 'grep Cpus_allowed_list /proc/self/status')}`,
  );

  // blkio: a relative weight (the scheduler's file: blkio.weight with CFQ, blkio.bfq.weight with BFQ)
  try {
    const io = await make(Cgroup.v1(`${base}-blkio`).blkioWeight(500));
    const dir = io.dirs.get('blkio');
    const file = readdirSync(dir).find((f) => f === 'blkio.weight' || f === 'blkio.bfq.weight');
    console.log(`blkio weight 500 -> ${file}: ${readFileSync(join(dir, file), 'utf8').trim().split('\n')[0]}`);
  } catch (e) {
    if (!(e instanceof ControllerUnavailableError)) throw e;
    console.log(`blkio weight: not here: ${e.message}`);
  }

  // devices: deny everything, then allow /dev/null (c 1:3); one cgroup also allows reading /dev/zero (c 1:5)
  const devNull = { type: 'c', major: 1, minor: 3, access: 'rwm' };
  const denied = await make(Cgroup.v1(`${base}-denied`).devicesAllow(devNull));
  const allowed = await make(Cgroup.v1(`${base}-allowed`).devicesAllow(devNull).devicesAllow({ type: 'c', major: 1, minor: 5, access: 'r' }));
  for (const [name, cg] of [
    ['denied', denied],
    ['allowed', allowed],
  ]) {
    const list = readFileSync(join(cg.dirs.get('devices'), 'devices.list'), 'utf8')
      .trim()
      .split('\n')
      .join(', ');
    const read = await runIn(cg, 'if head -c 4 /dev/zero >/dev/null 2>&1; then echo ok; else head -c 4 /dev/zero 2>&1 >/dev/null | sed "s/.*: //"; fi');
    console.log(`devices ${name.padEnd(7)} devices.list: ${list.padEnd(18)} head -c 4 /dev/zero: ${read}`);
  }

  // net_cls: only where the kernel has it and it is mounted as a v1 hierarchy
  const netCls = readFileSync('/proc/cgroups', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('net_cls\t'));
  const mounted = layout.mounts.some((m) => m.version === 1 && m.controllers.includes('net_cls'));
  if (!netCls) console.log('net_cls: not in this kernel (no line in /proc/cgroups)');
  else if (!mounted) {
    const [, hierarchy, , enabled] = netCls.split('\t');
    console.log(
      `net_cls: in the kernel (/proc/cgroups: hierarchy ${hierarchy}, enabled ${enabled}) but not mounted as a v1 hierarchy here: ` +
        'hierarchy 0 is the unified (v2) one, where net_cls has no files; v2 classifies traffic by cgroup path instead (nftables `socket cgroupv2`)',
    );
  } else {
    const cls = await make(Cgroup.v1(`${base}-net_cls`));
    console.log(`net_cls.classid: ${readFileSync(join(cls.dirs.get('net_cls'), 'net_cls.classid'), 'utf8').trim()}`);
  }
} finally {
  for (const cg of made.reverse()) await cg.remove();
}
console.log(`left behind: ${layout.mounts.filter((m) => m.version === 1).flatMap((m) => readdirSync(m.path).filter((d) => d.startsWith(base))).length}`);
