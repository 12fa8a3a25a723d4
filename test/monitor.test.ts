// 5.2.5, cAdvisor: `ctrkit monitor` serves the running containers' cgroup statistics as
// Prometheus metrics under cAdvisor's names, as JSON, and as a live page — checked against
// the cgroup files, with a strict text-format parser, and in a real browser (Debian's
// chromium driven by playwright-core).
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container, type RunningContainer } from 'ctrkit';
import { startMonitor } from 'ctrkit/monitor';
import { alive, rootfs, tempDir } from './helpers.js';
import { parsePromText, type PromFamily } from './monitor/prom-text.js';

const MiB = 2 ** 20;
let dir: string;
let cleanup = () => {};
let stateRoot: string;

beforeAll(() => {
  [dir, cleanup] = tempDir();
  stateRoot = join(dir, 'state');
});
afterAll(async () => {
  for (const c of await Container.list({ stateRoot, all: true })) await c.remove({ force: true });
  cleanup();
  // Only this file's containers: other work on the machine may run containers meanwhile.
  expect(inits.filter(alive)).toEqual([]);
});

const inits: number[] = [];

async function start(name: string, script: string, limits: { memory?: string; cpus?: number }): Promise<RunningContainer> {
  const c = await Container.start({
    name,
    rootfs,
    stateRoot,
    stateDir: join(dir, 'layers'),
    network: 'none',
    stdio: 'ignore',
    command: ['sh', '-c', script],
    ...limits,
  });
  inits.push(c.pid);
  return c;
}

/** The cgroup file of a container, read directly (not through ctrkit). */
function cgroupFile(cg: { version: 1 | 2; path: string }, v1: [string, string], v2: string): string {
  const p = cg.version === 1 ? `/sys/fs/cgroup/${v1[0]}/${cg.path}/${v1[1]}` : `/sys/fs/cgroup/${cg.path}/${v2}`;
  return readFileSync(p, 'utf8').trim();
}

function only(f: PromFamily | undefined, labels: Record<string, string>): number {
  expect(f, 'metric family missing').toBeDefined();
  const hits = f!.samples.filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  expect(hits).toHaveLength(1);
  return hits[0]!.value;
}

async function until<T>(f: () => Promise<T | undefined>, what: string, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('ctrkit monitor (cAdvisor, 5.2.5)', () => {
  it("/metrics: the Prometheus text format with cAdvisor names and labels, holding the cgroup's own numbers", async () => {
    await using c = await start('ctk-mon-mem', 'dd if=/dev/zero of=/dev/shm/fill bs=1M count=40 2>/dev/null && echo filled > /dev/shm/done; exec sleep 600', {
      memory: '64m',
    });
    await using m = await startMonitor({ port: 0, stateRoot });
    expect(m.url).toBe(`http://127.0.0.1:${m.port}/`);
    const info = await c.inspect();
    const cg = info.cgroup!;
    expect(cg).toBeDefined();
    await until(async () => ((await c.exec({ command: ['cat', '/dev/shm/done'] })).stdout === 'filled\n' ? true : undefined), 'the 40 MiB to be written');

    const before = await c.stats();
    const res = await fetch(`${m.url}metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const after = await c.stats();
    const families = parsePromText(text);

    // cAdvisor's names, with its types.
    const types = Object.fromEntries([...families].map(([n, f]) => [n, f.type]));
    expect(types).toMatchObject({
      container_cpu_usage_seconds_total: 'counter',
      container_memory_usage_bytes: 'gauge',
      container_memory_working_set_bytes: 'gauge',
      container_memory_rss: 'gauge',
      container_spec_memory_limit_bytes: 'gauge',
      container_processes: 'gauge',
      container_threads: 'gauge',
      container_fs_reads_bytes_total: 'counter',
      container_fs_writes_bytes_total: 'counter',
      container_oom_events_total: 'counter',
    });
    const labels = { id: `/${cg.path}`, name: 'ctk-mon-mem', image: '' };

    // The limit: the cgroup file's bytes, exactly.
    const limitFile = Number(cgroupFile(cg, ['memory', 'memory.limit_in_bytes'], 'memory.max'));
    expect(limitFile).toBe(64 * MiB);
    expect(only(families.get('container_spec_memory_limit_bytes'), labels)).toBe(limitFile);
    // Memory: the 40 MiB written to tmpfs stay charged to the container, in its working set.
    const usage = only(families.get('container_memory_usage_bytes'), labels);
    const ws = only(families.get('container_memory_working_set_bytes'), labels);
    expect(ws).toBeGreaterThan(40 * MiB);
    expect(ws).toBeLessThanOrEqual(usage);
    expect(usage).toBeLessThanOrEqual(limitFile);
    expect(usage).toBeGreaterThanOrEqual(Math.min(before!.memory!.current, after!.memory!.current) - MiB);
    expect(usage).toBeLessThanOrEqual(Math.max(before!.memory!.current, after!.memory!.current) + MiB);
    // CPU time: between the two readings around the scrape.
    const cpu = only(families.get('container_cpu_usage_seconds_total'), { ...labels, cpu: 'total' });
    expect(cpu).toBeGreaterThanOrEqual(before!.cpu!.usageUsec / 1e6 - 1e-6);
    expect(cpu).toBeLessThanOrEqual(after!.cpu!.usageUsec / 1e6 + 1e-6);
    // Tasks: pids.current and cgroup.procs (the init, its shell exec'd into sleep).
    const procs = cgroupFile(cg, ['pids', 'cgroup.procs'], 'cgroup.procs').split('\n').filter(Boolean);
    expect(only(families.get('container_processes'), labels)).toBe(procs.length);
    expect(only(families.get('container_threads'), labels)).toBe(Number(cgroupFile(cg, ['pids', 'pids.current'], 'pids.current')));
    expect(only(families.get('container_oom_events_total'), labels)).toBe(0);

    // The JSON endpoint carries the same sample shape.
    const json = (await (await fetch(`${m.url}api/containers`)).json()) as {
      containers: { id: string; memoryLimitBytes: number; memoryWorkingSetBytes: number }[];
    };
    const mine = json.containers.find((x) => x.id === c.id)!;
    expect(mine.memoryLimitBytes).toBe(64 * MiB);
    expect(mine.memoryWorkingSetBytes).toBeGreaterThan(40 * MiB);
    expect((await fetch(`${m.url}nope`)).status).toBe(404);
  });

  it('the page at / draws live CPU, memory, task and IO charts of a busy container in chromium', async () => {
    const { chromium } = await import('playwright-core');
    await using c = await start('ctk-mon-busy', 'dd if=/dev/zero of=/dev/shm/fill bs=1M count=16 2>/dev/null; while :; do :; done', {
      memory: '128m',
      cpus: 0.5,
    });
    await using m = await startMonitor({ port: 0, stateRoot });
    const profile = join(dir, 'chromium-profile');
    mkdirSync(profile);
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      const page = browser.pages()[0] ?? (await browser.newPage());
      await page.setViewportSize({ width: 1200, height: 420 });
      await page.goto(m.url);
      expect(await page.title()).toBe('ctrkit monitor');
      const values = (metric: string) =>
        page.evaluate(
          ([id, mt]) => {
            // Runs in the page: its DOM, which this file's types (Node's) do not describe.
            const doc = (globalThis as unknown as { document: { querySelector(s: string): { getAttribute(n: string): string | null } | null } }).document;
            const line = doc.querySelector(`section[data-id="${id}"] [data-metric="${mt}"] polyline`);
            return line ? { values: JSON.parse(line.getAttribute('data-values') ?? '[]') as number[], points: line.getAttribute('points') ?? '' } : undefined;
          },
          [c.id, metric] as const,
        );
      const enough = (metric: string, n: number) =>
        until(async () => {
          const v = await values(metric);
          return v && v.values.length >= n ? v : undefined;
        }, `${n} ${metric} points`);

      const first = await enough('cpu', 3);
      const later = await enough('cpu', first.values.length + 2);
      // The chart moved on: more points, a different polyline.
      expect(later.points).not.toBe(first.points);
      // A busy loop under --cpus 0.5: well above idle, not above one CPU.
      const last = later.values.at(-1)!;
      expect(last).toBeGreaterThan(10);
      expect(last).toBeLessThan(105);
      const mem = await enough('memory', 3);
      expect(mem.values.at(-1)!).toBeGreaterThan(16 * MiB);
      expect((await enough('pids', 3)).values.at(-1)!).toBeGreaterThanOrEqual(1);
      expect((await enough('io', 2)).values.every((v) => v >= 0)).toBe(true);
      const shown = await page.textContent(`section[data-id="${c.id}"] h2`);
      expect(shown).toContain('ctk-mon-busy');

      const shot = join(dir, 'monitor.png');
      await page.screenshot({ path: shot, fullPage: true });
      expect(statSync(shot).size).toBeGreaterThan(5000);
      console.log(`monitor screenshot: ${shot}`);
      // The temp dir goes at the end; CTK_MONITOR_SCREENSHOT=FILE keeps a copy to look at.
      if (process.env.CTK_MONITOR_SCREENSHOT) copyFileSync(shot, process.env.CTK_MONITOR_SCREENSHOT);
    } finally {
      await browser.close();
    }
  });

  it('ctrkit monitor serves the same metrics from the command line; ctrkit stats shows the same limit and tasks', async () => {
    await using _c = await start('ctk-mon-cli', 'exec sleep 600', { memory: '96m' });
    const env = { ...process.env, CTRKIT_STATE_ROOT: stateRoot };
    const cli = spawn(process.execPath, ['dist/cli/main.js', 'monitor', '--port', '0'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const [line] = (await once(cli.stdout!, 'data')) as [Buffer];
      const url = /(http:\/\/127\.0\.0\.1:\d+\/) /.exec(line.toString())![1]!;
      const families = parsePromText(await (await fetch(`${url}metrics`)).text());
      const labels = { name: 'ctk-mon-cli' };
      expect(only(families.get('container_spec_memory_limit_bytes'), labels)).toBe(96 * MiB);
      const threads = only(families.get('container_threads'), labels);

      const stats = spawn(process.execPath, ['dist/cli/main.js', 'stats', '--no-stream', 'ctk-mon-cli'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      stats.stdout!.on('data', (d: Buffer) => (out += d));
      expect((await once(stats, 'exit'))[0]).toBe(0);
      const row = out.split('\n')[1]!.split(/\s{3,}/);
      expect(row[1]).toBe('ctk-mon-cli');
      expect(row[3]).toMatch(/^\d+\.\dMiB \/ 96\.0MiB$/);
      expect(Number(row[4])).toBe(threads);
    } finally {
      cli.kill('SIGINT');
      if (cli.exitCode === null) expect((await once(cli, 'exit'))[0]).toBe(0);
    }
    expect(existsSync(stateRoot)).toBe(true);
  });
});
