// Chapter 5.2.3 — cgroup v2: one unified hierarchy, cgroup.controllers and
// cgroup.subtree_control, and pressure stall information (cpu/memory/io.pressure).
// It works on whatever cgroup2 tree the host has: /sys/fs/cgroup on a pure v2 host (the
// cgroup v2 VM lane, scripts/cgroup2-vm.sh), /sys/fs/cgroup/unified on a hybrid one (this
// machine), where the tree exists with no resource controllers, yet with the PSI files.
// The cgroup is ctk-ex-PID, made and removed by this run.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { Cgroup, detectCgroupLayout } from 'ctrkit/cgroups';
import { unshare } from 'ctrkit/namespaces';

const layout = await detectCgroupLayout();
if (!layout.unified) {
  console.log('no cgroup2 hierarchy is mounted on this host (v1 only)');
  process.exit(0);
}
const root = layout.unified.path;
const read = (dir, f) => readFileSync(join(dir, f), 'utf8').trim();
console.log(`layout: ${layout.mode}, cgroup2 at ${root}`);
console.log(`root cgroup.controllers: ${read(root, 'cgroup.controllers') || '(none)'}`);
console.log(`root cgroup.subtree_control: ${read(root, 'cgroup.subtree_control') || '(none)'}`);

const cg = await Cgroup.v2(`ctk-ex-${process.pid}`, { root }).create();
try {
  console.log(`$ ls ${cg.dir}/\n${readdirSync(cg.dir).sort().join('  ')}`);
  // A process placed in it before it starts sees it as its v2 path (the "0::" line).
  const p = await unshare({
    command: ['grep', '^0::', '/proc/self/cgroup'],
    namespaces: ['pid'],
    stdio: ['ignore', 'pipe', 'inherit'],
    onNamespaces: ({ pid }) => cg.addProcess(pid),
  });
  const [line] = await Promise.all([text(p.stdout), p.exited]);
  console.log(`/proc/self/cgroup of a process in it: ${line.trim()}`);

  // V1 vs V2 paths: one directory with every controller's files, when the controller is here.
  for (const [v1, v2, controller] of [
    ['memory/<id>/memory.limit_in_bytes', 'memory.max', 'memory'],
    ['cpu/<id>/cpu.shares', 'cpu.weight', 'cpu'],
  ]) {
    const here = existsSync(join(cg.dir, v2));
    console.log(
      `v1 /sys/fs/cgroup/${v1} -> v2 ${join(cg.dir, v2)}: ${here ? read(cg.dir, v2) : `absent (the ${controller} controller is not in this tree's cgroup.controllers)`}`,
    );
  }

  // PSI: "some" = share of time at least one task stalled, "full" = all of them.
  const psi = ['cpu.pressure', 'memory.pressure', 'io.pressure'].filter((f) => existsSync(join(cg.dir, f)));
  if (psi.length === 0) console.log('PSI: no *.pressure files (a kernel without CONFIG_PSI, or booted with psi=0)');
  for (const f of psi) {
    let body;
    try {
      body = read(cg.dir, f);
    } catch (e) {
      body = `unreadable: ${e.code} (PSI disabled: boot with psi=1)`;
    }
    console.log(`$ cat ${f}\n${body}`);
  }
  const pressure = await cg.pressure();
  console.log(
    `pressure(): cpu.some.avg10=${pressure.cpu?.some?.avg10}, memory.full.avg10=${pressure.memory?.full?.avg10}, io.some.total=${pressure.io?.some?.total}`,
  );
} finally {
  await cg.remove();
}
console.log(`removed: ${!existsSync(join(root, `ctk-ex-${process.pid}`))}`);
