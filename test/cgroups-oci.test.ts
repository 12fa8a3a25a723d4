// The OCI `linux.resources` block and `runc events --stats` on real cgroups. Runs on this
// machine's hybrid layout (v1 controllers; a v2 tree holding only hugetlb) and, unchanged, in
// the cgroup v2 VM lane (scripts/cgroup2-vm.sh), where the v2 branches have their controllers.
// Everything made here lives under ctk-ociresources-<pid> and is removed in afterAll.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  applyOciResources,
  Cgroup,
  type CgroupV1,
  type CgroupV2,
  detectCgroupLayout,
  type LinuxResources,
  OCI_UNLIMITED,
  ociCgroup,
  ociEventJson,
  ociOomEvents,
  ociOomKills,
  OciResourceUnsupportedError,
  OciResourceValueError,
  ociSharesToWeight,
  ociStats,
} from 'ctrkit/cgroups';

const layout = await detectCgroupLayout();
const base = `ctk-ociresources-${process.pid}`;
const v1Controllers = new Set(layout.mounts.filter((m) => m.version === 1).flatMap((m) => m.controllers));
const hasV1 = layout.mode !== 'v2' && v1Controllers.has('memory');
const v2Root = layout.unified?.path;
const v2Controllers = v2Root ? readFileSync(join(v2Root, 'cgroup.controllers'), 'utf8').trim().split(/\s+/) : [];
const resourceV2 = layout.mode === 'v2' && v2Controllers.includes('memory');
const read = (dir: string, file: string) => readFileSync(join(dir, file), 'utf8').trim();
const MiB = 1024 ** 2;

/** The disk the root file system is on, for throttles: `major:minor`. */
const disk = (() => {
  const name = readdirSync('/sys/class/block').find((n) => /^(vd|sd|xvd|nvme)/.test(n) && !existsSync(`/sys/class/block/${n}/partition`));
  if (!name) return undefined;
  const [major, minor] = read(`/sys/class/block/${name}`, 'dev').split(':').map(Number);
  return { major: major!, minor: minor! };
})();

const handles: (CgroupV1 | CgroupV2)[] = [];
const children: ChildProcess[] = [];

/** A process to put into cgroups: burns a little CPU, then sleeps. */
function sleeper(): number {
  // It waits for a line on stdin (see execed) before it burns CPU: only once it is in the cgroup.
  const child = spawn('sh', ['-c', 'read go; i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; exec sleep 120'], { stdio: ['pipe', 'ignore', 'ignore'] });
  children.push(child);
  return child.pid!;
}

/**
 * Lets the sleeper go and waits until, having burnt its CPU in the cgroup, it has exec'd sleep: the new
 * program's pages are charged to the cgroup (v2 never moves the charges of pages a process
 * had before it joined).
 */
async function execed(pid: number): Promise<void> {
  children.find((c) => c.pid === pid)?.stdin?.end('go\n');
  for (let i = 0; i < 500 && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'sleep'; i++) await new Promise((r) => setTimeout(r, 20));
}

/** Every file an update could touch, to prove which ones changed. */
function snapshot(cg: CgroupV1): Record<string, string> {
  const out: Record<string, string> = {};
  const files: [string, string][] = [
    ['memory', 'memory.limit_in_bytes'],
    ['memory', 'memory.soft_limit_in_bytes'],
    ['memory', 'memory.memsw.limit_in_bytes'],
    ['memory', 'memory.swappiness'],
    ['cpu', 'cpu.shares'],
    ['cpu', 'cpu.cfs_quota_us'],
    ['cpu', 'cpu.cfs_period_us'],
    ['cpu', 'cpu.cfs_burst_us'],
    ['cpuset', 'cpuset.cpus'],
    ['cpuset', 'cpuset.mems'],
    ['pids', 'pids.max'],
    ['blkio', 'blkio.throttle.read_bps_device'],
    ['devices', 'devices.list'],
  ];
  for (const [c, f] of files) {
    const dir = cg.dirs.get(c);
    if (dir && existsSync(join(dir, f))) out[f] = read(dir, f);
  }
  return out;
}

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const h of handles.reverse()) await h.remove({ force: true }).catch(() => undefined);
  // Whatever a failed test left: deepest first, only under this file's own name.
  for (const m of layout.mounts) {
    const top = join(m.path, base);
    if (!existsSync(top)) continue;
    const walk = (d: string): string[] =>
      readdirSync(d, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .flatMap((e) => [...walk(join(d, e.name)), join(d, e.name)]);
    for (const d of [...walk(top), top]) rmdirSync(d);
  }
});

describe('conversions and JSON', () => {
  it("maps cpu.shares to cpu.weight with runc's curve (1024 → 100)", () => {
    expect(ociSharesToWeight(2)).toBe(1);
    expect(ociSharesToWeight(1024)).toBe(100);
    expect(ociSharesToWeight(262144)).toBe(10000);
    expect(ociSharesToWeight(512)).toBeGreaterThan(1);
    expect(ociSharesToWeight(512)).toBeLessThan(100);
  });

  it('prints integers above 2^53 digit for digit, as runc does', () => {
    const json = ociEventJson({ type: 'oom', id: 'x', data: { memory: { usage: { limit: OCI_UNLIMITED, failcnt: 0 } } } as never });
    expect(json).toBe('{"type":"oom","id":"x","data":{"memory":{"usage":{"limit":18446744073709551615,"failcnt":0}}}}');
    expect(ociEventJson({ type: 'oom', id: 'x', data: { v: 2 ** 63 - 4096 } as never })).toContain('9223372036854771712');
  });
});

describe.runIf(hasV1)('cgroup v1: linux.resources applied, updated, refused', () => {
  const full: LinuxResources = {
    memory: { limit: 256 * MiB, reservation: 64 * MiB, swappiness: 10, disableOOMKiller: false, kernel: 64 * MiB, useHierarchy: true },
    cpu: { shares: 512, quota: 50_000, period: 100_000, burst: 10_000, cpus: '0', mems: '0', idle: 0 },
    pids: { limit: 64 },
    blockIO: disk ? { throttleReadBpsDevice: [{ ...disk, rate: 10 * MiB }] } : {},
    devices: [
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
    ],
  };
  let cg: CgroupV1;

  it('applies a full block at create, and reports what runc would ignore', async () => {
    const swap = existsSync(join('/sys/fs/cgroup/memory', 'memory.memsw.limit_in_bytes'));
    const res: LinuxResources = swap ? { ...full, memory: { ...full.memory, swap: 512 * MiB } } : full;
    cg = (await ociCgroup(`${base}/full`, res, { version: 1 }).create()) as CgroupV1;
    handles.push(cg);
    const result = await applyOciResources(cg, res, {});
    const d = (c: string) => cg.dirs.get(c)!;
    expect(read(d('memory'), 'memory.limit_in_bytes')).toBe(String(256 * MiB));
    expect(read(d('memory'), 'memory.soft_limit_in_bytes')).toBe(String(64 * MiB));
    if (swap) expect(read(d('memory'), 'memory.memsw.limit_in_bytes')).toBe(String(512 * MiB));
    expect(read(d('memory'), 'memory.swappiness')).toBe('10');
    expect(read(d('cpu'), 'cpu.shares')).toBe('512');
    expect(read(d('cpu'), 'cpu.cfs_quota_us')).toBe('50000');
    expect(read(d('cpu'), 'cpu.cfs_period_us')).toBe('100000');
    if (existsSync(join(d('cpu'), 'cpu.cfs_burst_us'))) expect(read(d('cpu'), 'cpu.cfs_burst_us')).toBe('10000');
    expect(read(d('cpuset'), 'cpuset.cpus')).toBe('0');
    expect(read(d('cpuset'), 'cpuset.mems')).toBe('0');
    expect(read(d('pids'), 'pids.max')).toBe('64');
    if (disk) expect(read(d('blkio'), 'blkio.throttle.read_bps_device')).toBe(`${disk.major}:${disk.minor} ${10 * MiB}`);
    expect(read(d('devices'), 'devices.list')).toBe('c 1:3 rwm');
    expect(result.ignored.map((i) => i.field).sort()).toEqual(['memory.kernel', 'memory.useHierarchy']);
    expect(result.created).toEqual([]); // ociCgroup made every directory the block needs
    expect(result.written.some((w) => w.file.endsWith('/pids.max') && w.value === '64')).toBe(true);
  });

  it('blockIO.weight: written where the host has a weight file, else refused with the field named', async () => {
    const blkio = cg.dirs.get('blkio')!;
    const file = ['blkio.weight', 'blkio.bfq.weight'].find((f) => existsSync(join(blkio, f)));
    const before = snapshot(cg);
    if (file) {
      await applyOciResources(cg, { blockIO: { weight: 300 } }, { update: true });
      expect(read(blkio, file)).toMatch(/300/);
    } else {
      const err = await applyOciResources(cg, { memory: { limit: 100 * MiB }, blockIO: { weight: 300 } }, { update: true }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OciResourceUnsupportedError);
      expect(err).toMatchObject({ code: 'ERR_CGROUP_CONTROLLER', field: 'blockIO.weight' });
      expect(snapshot(cg)).toEqual(before); // the memory limit before it was not written either
    }
  });

  it('an update changes exactly the fields it names', async () => {
    const before = snapshot(cg);
    await applyOciResources(cg, { memory: { limit: 128 * MiB }, pids: { limit: 32 } }, { update: true });
    const after = snapshot(cg);
    expect(after['memory.limit_in_bytes']).toBe(String(128 * MiB));
    expect(after['pids.max']).toBe('32');
    const changed = Object.keys(after).filter((k) => after[k] !== before[k]);
    expect(changed.sort()).toEqual(['memory.limit_in_bytes', 'pids.max']);
    // A quota alone in an update keeps the period in force.
    await applyOciResources(cg, { cpu: { quota: 20_000 } }, { update: true });
    expect(read(cg.dirs.get('cpu')!, 'cpu.cfs_quota_us')).toBe('20000');
    expect(read(cg.dirs.get('cpu')!, 'cpu.cfs_period_us')).toBe('100000');
    await applyOciResources(cg, { cpu: { quota: -1 }, pids: { limit: -1 } }, { update: true });
    expect(read(cg.dirs.get('cpu')!, 'cpu.cfs_quota_us')).toBe('-1');
    expect(read(cg.dirs.get('pids')!, 'pids.max')).toBe('max');
    await applyOciResources(cg, { cpu: { quota: 50_000 }, pids: { limit: 64 } }, { update: true });
  });

  it('invalid values are typed errors naming the field, and nothing is written', async () => {
    const before = snapshot(cg);
    const bad: [LinuxResources, string][] = [
      [{ memory: { limit: -5 } }, 'memory.limit'],
      [{ memory: { limit: 64 * MiB, swap: 32 * MiB } }, 'memory.swap'],
      [{ memory: { swappiness: 101 } }, 'memory.swappiness'],
      [{ cpu: { quota: 50_000 } }, 'cpu.period'], // at create, a quota needs its period
      [{ cpu: { quota: 10, period: 100_000 } }, 'cpu.quota'],
      [{ cpu: { period: 10 } }, 'cpu.period'],
      [{ cpu: { cpus: '0-a' } }, 'cpu.cpus'],
      [{ cpu: { mems: '0,,1' } }, 'cpu.mems'],
      [{ cpu: { shares: 1 } }, 'cpu.shares'],
      [{ cpu: { idle: 2 } }, 'cpu.idle'],
      [{ pids: { limit: -7 } }, 'pids.limit'],
      [{ blockIO: { weight: 5 } }, 'blockIO.weight'],
      [{ blockIO: { throttleReadBpsDevice: [{ major: 8, minor: 0, rate: -1 }] } }, 'blockIO.throttleReadBpsDevice[0].rate'],
      [{ hugepageLimits: [{ pageSize: '2M', limit: 1 }] }, 'hugepageLimits[0].pageSize'],
      [{ devices: [{ allow: true, type: 'x', access: 'rwm' }] }, 'devices[0]'],
      [{ devices: [{ allow: true, type: 'a', access: 'r' }] }, 'devices[0]'],
      [{ unified: { '../memory.max': '1' } }, 'unified["../memory.max"]'],
      [{ pids: { limit: 10 }, memory: { limit: 1.5 } }, 'memory.limit'],
    ];
    for (const [res, field] of bad) {
      const err = await applyOciResources(cg, { pids: { limit: 10 }, ...res }).catch((e: unknown) => e);
      expect(err, field).toBeInstanceOf(OciResourceValueError);
      expect(err, field).toMatchObject({ code: 'ERR_CGROUP_VALUE', field });
      expect((err as Error).message).toContain(`linux.resources.${field}`);
    }
    expect(snapshot(cg)).toEqual(before);
  });

  it('what v1 or this host lacks is refused with the field named; what runc ignores is reported', async () => {
    const before = snapshot(cg);
    const refuse = async (res: LinuxResources, field: string) => {
      const err = await applyOciResources(cg, { pids: { limit: 10 }, ...res }, { update: true }).catch((e: unknown) => e);
      expect(err, field).toBeInstanceOf(OciResourceUnsupportedError);
      expect(err, field).toMatchObject({ code: 'ERR_CGROUP_CONTROLLER', field });
    };
    await refuse({ unified: { 'memory.high': '100M' } }, 'unified');
    if (!v1Controllers.has('net_cls')) await refuse({ network: { classID: 0x100001 } }, 'network.classID');
    if (!v1Controllers.has('net_prio')) await refuse({ network: { priorities: [{ name: 'eth0', priority: 5 }] } }, 'network.priorities[0]');
    if (!v1Controllers.has('hugetlb')) await refuse({ hugepageLimits: [{ pageSize: '2MB', limit: 4 * MiB }] }, 'hugepageLimits[0]');
    if (!v1Controllers.has('rdma')) await refuse({ rdma: { mlx5_0: { hcaHandles: 2 } } }, 'rdma["mlx5_0"]');
    if (!existsSync(join(cg.dirs.get('blkio')!, 'blkio.leaf_weight'))) await refuse({ blockIO: { leafWeight: 500 } }, 'blockIO.leafWeight');
    expect(snapshot(cg)).toEqual(before);
    const { ignored, written } = await applyOciResources(cg, { memory: { kernelTCP: 1 << 20, useHierarchy: false } }, { update: true });
    expect(ignored.map((i) => i.field)).toEqual(['memory.kernelTCP', 'memory.useHierarchy']);
    expect(written).toEqual([]);
  });

  it('a write the kernel refuses puts back what was already written', async () => {
    const before = snapshot(cg);
    // Memory node 63 does not exist: cpuset.mems fails after memory.limit_in_bytes was written.
    const err = await applyOciResources(cg, { memory: { limit: 96 * MiB }, cpu: { mems: '63' } }, { update: true }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_CGROUP_WRITE' });
    expect(snapshot(cg)).toEqual(before);
  });

  it('stats of a cgroup with a running process, in runc events --stats shape', async () => {
    const pid = sleeper();
    await cg.addProcess(pid);
    await execed(pid);
    const s = await ociStats(cg);
    const ncpu = read(cg.dirs.get('cpuacct')!, 'cpuacct.usage_percpu').split(/\s+/).length;
    expect(s.cpu.usage!.total).toBeGreaterThan(0);
    expect(s.cpu.usage!.percpu).toHaveLength(ncpu);
    expect(s.cpu.usage!.percpu!.reduce((a, b) => a + b, 0)).toBeCloseTo(s.cpu.usage!.total!, -7);
    expect(s.cpu.usage!.percpu_user).toHaveLength(ncpu);
    expect(s.cpu.usage!.user + s.cpu.usage!.kernel).toBeGreaterThanOrEqual(0);
    expect(s.memory.usage!.usage).toBeGreaterThan(0);
    expect(s.memory.usage!.limit).toBe(128 * MiB);
    expect(s.memory.raw).toHaveProperty('rss');
    expect(s.memory.raw).toHaveProperty('cache');
    expect(s.pids).toEqual({ current: 1, limit: 64 }); // the shell, which then execs sleep: one task
    expect(s.cpuset.cpus).toEqual([0]);
    expect(s.cpuset.mems).toEqual([0]);
    expect(s.hugetlb).toEqual({});
    expect(s.network_interfaces).toBeNull();
    expect(await ociOomKills(cg)).toBe(0);
    const line = ociEventJson({ type: 'stats', id: 'abc', data: s });
    const parsed = JSON.parse(line) as { type: string; id: string; data: { cpu: { usage: { total: number } }; memory: { kernel?: { limit: number } } } };
    expect(parsed).toMatchObject({ type: 'stats', id: 'abc' });
    expect(parsed.data.cpu.usage.total).toBe(s.cpu.usage!.total);
    // v1's "unlimited" kernel memory limit comes out digit for digit.
    if (s.memory.kernel) expect(line).toContain(`"kernel":{"limit":${read(cg.dirs.get('memory')!, 'memory.kmem.limit_in_bytes')}`);
  });

  it('checkBeforeUpdate refuses a limit under the usage, before writing', async () => {
    const before = snapshot(cg);
    const err = await applyOciResources(cg, { memory: { limit: 4096, checkBeforeUpdate: true } }, { update: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OciResourceValueError);
    expect(err).toMatchObject({ field: 'memory.limit' });
    expect((err as Error).message).toMatch(/current usage/);
    expect(snapshot(cg)).toEqual(before);
  });

  it("an update needing a controller the container's cgroup lacks makes it and moves the members in", async () => {
    const plain = await Cgroup.v1(`${base}/plain`).create(); // memory, pids, cpuacct, blkio, freezer: no cpu, no cpuset
    handles.push(plain);
    const pid = sleeper();
    await plain.addProcess(pid);
    const cpuDir = plain.dirs.get('cpu')!;
    expect(existsSync(cpuDir)).toBe(false);
    const { created } = await applyOciResources(plain, { cpu: { shares: 256, cpus: '0' } }, { update: true });
    expect(created).toEqual(expect.arrayContaining([cpuDir, plain.dirs.get('cpuset')!]));
    expect(read(cpuDir, 'cpu.shares')).toBe('256');
    expect(read(cpuDir, 'cgroup.procs').split('\n')).toContain(String(pid));
    expect(read(plain.dirs.get('cpuset')!, 'cgroup.procs').split('\n')).toContain(String(pid));
    // A handle opened now spans them, and removes them.
    const opened = await Cgroup.v1(`${base}/plain`).open();
    expect(opened.directories()).toEqual(expect.arrayContaining([cpuDir]));
    await opened.remove({ force: true });
    expect(existsSync(cpuDir)).toBe(false);
  });
});

describe.runIf(v2Root !== undefined)('cgroup v2', () => {
  it.runIf(resourceV2)('applies a full block: shares and weights converted, unified last, devices as a program', async () => {
    const res: LinuxResources = {
      memory: { limit: 256 * MiB, reservation: 64 * MiB, swappiness: 10 },
      cpu: { shares: 512, quota: 50_000, period: 100_000, cpus: '0', mems: '0' },
      pids: { limit: 64 },
      blockIO: disk ? { throttleReadBpsDevice: [{ ...disk, rate: 10 * MiB }] } : {},
      devices: [
        { allow: false, access: 'rwm' },
        { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
      ],
      unified: { 'memory.high': String(200 * MiB) },
      network: { classID: 1 },
    };
    const cg = (await ociCgroup(`${base}/v2full`, res, { version: 2 }).create()) as CgroupV2;
    handles.push(cg);
    const { ignored } = await applyOciResources(cg, res);
    expect(read(cg.dir, 'memory.max')).toBe(String(256 * MiB));
    expect(read(cg.dir, 'memory.low')).toBe(String(64 * MiB));
    expect(read(cg.dir, 'memory.high')).toBe(String(200 * MiB));
    expect(read(cg.dir, 'cpu.weight')).toBe(String(ociSharesToWeight(512)));
    expect(read(cg.dir, 'cpu.max')).toBe('50000 100000');
    expect(read(cg.dir, 'cpuset.cpus')).toBe('0');
    expect(read(cg.dir, 'pids.max')).toBe('64');
    if (disk) expect(read(cg.dir, 'io.max')).toContain(`${disk.major}:${disk.minor} rbps=${10 * MiB}`);
    expect(await cg.devicePrograms()).toHaveLength(1);
    expect(ignored.map((i) => i.field).sort()).toEqual(['memory.swappiness', 'network.classID']);
    // An update: the period in force stays with a new quota.
    await applyOciResources(cg, { cpu: { quota: 20_000 } }, { update: true });
    expect(read(cg.dir, 'cpu.max')).toBe('20000 100000');
    const pid = sleeper();
    await cg.addProcess(pid);
    await execed(pid);
    const s = await ociStats(cg);
    expect(s.cpu.usage!.total).toBeGreaterThan(0);
    expect(s.memory.usage).toMatchObject({ limit: 256 * MiB });
    expect(s.memory.usage!.usage).toBeGreaterThan(0);
    expect(s.memory.raw).toHaveProperty('anon');
    expect(s.pids.limit).toBe(64);
    expect(s.pids.current).toBeGreaterThanOrEqual(1);
    // The v1 hierarchy is refused, the v1-only realtime too.
    const rt = await applyOciResources(cg, { cpu: { realtimeRuntime: 1000 } }, { update: true }).catch((e: unknown) => e);
    expect(rt).toMatchObject({ code: 'ERR_CGROUP_CONTROLLER', field: 'cpu.realtimeRuntime' });
  });

  it.runIf(v2Controllers.includes('hugetlb'))('hugepageLimits and unified on the v2 tree, controllers enabled as needed', async () => {
    const cg = await Cgroup.v2(`${base}/v2hp`).create();
    handles.push(cg);
    const { written } = await applyOciResources(cg, { hugepageLimits: [{ pageSize: '2MB', limit: 4 * MiB }] }, { update: true });
    expect(read(cg.dir, 'hugetlb.2MB.max')).toBe(String(4 * MiB));
    if (existsSync(join(cg.dir, 'hugetlb.2MB.rsvd.max'))) expect(read(cg.dir, 'hugetlb.2MB.rsvd.max')).toBe(String(4 * MiB));
    expect(written.map((w) => w.file)).toContain(join(cg.dir, 'hugetlb.2MB.max'));
    const s = await ociStats(cg);
    expect(s.hugetlb['2MB']).toEqual({ failcnt: 0 });
    if (!v2Controllers.includes('memory')) {
      const err = await applyOciResources(cg, { unified: { 'memory.high': '1G' } }, { update: true }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OciResourceUnsupportedError);
      expect(err).toMatchObject({ field: 'unified["memory.high"]' });
    }
    const page = await applyOciResources(cg, { hugepageLimits: [{ pageSize: '64KB', limit: 1 }] }, { update: true }).catch((e: unknown) => e);
    expect(page).toMatchObject({ code: 'ERR_CGROUP_CONTROLLER', field: 'hugepageLimits[0]' });
  });
});

describe.runIf(hasV1 || resourceV2)('OOM, as runc events reports it', () => {
  it('a process over its limit is killed: one oom event, one kill counted', async () => {
    const cg = await ociCgroup(`${base}/oom`, { memory: { limit: 16 * MiB } }).create();
    handles.push(cg);
    const dir = cg.version === 1 ? cg.dirs.get('memory')! : cg.dir;
    // No swap to escape to, where swap is accounted (memory + swap = memory).
    const swap = existsSync(join(dir, cg.version === 1 ? 'memory.memsw.limit_in_bytes' : 'memory.swap.max'));
    await applyOciResources(cg, { memory: { limit: 16 * MiB, ...(swap ? { swap: 16 * MiB } : {}) } });
    const ac = new AbortController();
    const events = ociOomEvents(cg, { signal: ac.signal });
    const first = events.next();
    await new Promise((r) => setTimeout(r, 100)); // the watch is in place
    const child = spawn('sh', ['-c', 'sleep 0.2; x=$(head -c 100000000 /dev/zero | tr "\\0" a); test -n "$x"'], { stdio: 'ignore' });
    children.push(child);
    await cg.addProcess(child.pid!);
    const ev = await Promise.race([first, new Promise((r) => setTimeout(() => r('timeout'), 20_000))]);
    expect(ev).toEqual({ done: false, value: { type: 'oom' } });
    ac.abort();
    await events.return(undefined);
    for (let i = 0; i < 100 && (await ociOomKills(cg)) === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await ociOomKills(cg)).toBeGreaterThanOrEqual(1);
  });
});
