// Warm starts: Container.prewarm prepares containers (record, layer, cgroup, namespaces and
// mounts) ahead; a start from the pool only joins the cgroup, spawns and pivots. Each start
// is a container of its own; what is not taken is released on close, or by the owner helper
// when the owner dies with the pool open.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Container, ContainerError } from 'ctrkit';
import { eventually, helperGone, rootfs, tempDir } from './helpers.js';

const dist = new URL('../dist', import.meta.url).pathname;
const threadPathPossible = process.getuid?.() === 0 && process.env.CTRKIT_START_PATH !== 'stage' && existsSync('/sys/fs/cgroup/memory');

/** The v1 cgroups named after these containers, in any hierarchy. */
function cgroupsOf(ids: readonly string[]): string[] {
  const found: string[] = [];
  for (const h of readdirSync('/sys/fs/cgroup')) {
    for (const id of ids) if (existsSync(join('/sys/fs/cgroup', h, `ctk-${id}`))) found.push(`${h}/ctk-${id}`);
  }
  return found;
}

/** Options that keep everything of the test's containers under `dir`. */
const under = (dir: string) => ({ rootfs, stateRoot: join(dir, 'root'), stateDir: join(dir, 'state') });

describe.skipIf(!threadPathPossible)('Container.prewarm', () => {
  it('starts prepared containers: the right output, PID 1, each a container of its own', async () => {
    const [dir, cleanup] = tempDir();
    try {
      await using pool = await Container.prewarm({ ...under(dir), hostname: 'warm' }, { count: 3, refill: false });
      expect(pool.size).toBe(3);
      const results = [];
      for (let i = 0; i < 3; i++) {
        const r = await pool.run({
          command: ['sh', '-c', `echo pid=$$; hostname; touch /mine-${i}; ls / | grep ^mine- | tr "\\n" " "; echo; readlink /proc/1/ns/mnt; echo $GREETING`],
          env: { GREETING: `hello ${i}` },
        });
        expect(r.stderr).toBe('');
        expect(r.exitCode).toBe(0);
        results.push(r.stdout.split('\n'));
      }
      expect(pool.size).toBe(0);
      for (const [i, [pid, host, files, , greeting]] of results.entries()) {
        expect(pid).toBe('pid=1');
        expect(host).toBe('warm');
        // Each root is its own: the others' writes are not there.
        expect(files).toBe(`mine-${i} `);
        expect(greeting).toBe(`hello ${i}`);
      }
      expect(new Set(results.map((r) => r[3])).size).toBe(3);
      // Nothing of them is left once they ran (run removes each).
      expect(await Container.list({ stateRoot: join(dir, 'root'), all: true })).toEqual([]);
    } finally {
      cleanup();
    }
  });

  it('Container.run takes a prepared container when its options match the pool', async () => {
    const [dir, cleanup] = tempDir();
    try {
      await using pool = await Container.prewarm(under(dir), { count: 1, refill: false });
      const r = await Container.run({ ...under(dir), command: ['sh', '-c', 'echo $$'] });
      expect(r.stdout).toBe('1\n');
      expect(pool.size).toBe(0);
    } finally {
      cleanup();
    }
  });

  it('releases every container not taken on close: no record, no layer, no cgroup', async () => {
    const [dir, cleanup] = tempDir();
    try {
      const pool = await Container.prewarm(under(dir), { count: 3 });
      const ids = (await Container.list({ stateRoot: join(dir, 'root'), all: true })).map((c) => c.id);
      expect(ids).toHaveLength(3);
      expect(cgroupsOf(ids).length).toBeGreaterThan(0);
      expect(readdirSync(join(dir, 'state'))).toHaveLength(3);
      // One taken (and a refill behind it), the rest closed with the pool.
      const r = await pool.run({ command: ['true'] });
      expect(r.exitCode).toBe(0);
      await pool.close();
      const all = [...ids, ...(await Container.list({ stateRoot: join(dir, 'root'), all: true })).map((c) => c.id)];
      expect(await Container.list({ stateRoot: join(dir, 'root'), all: true })).toEqual([]);
      // The run's layer, untouched, may be kept for the next container of this process: not the pool's, gone once idle.
      expect(readdirSync(join(dir, 'state')).filter((e) => !e.startsWith('ctk-spare-'))).toEqual([]);
      expect(await eventually(() => readdirSync(join(dir, 'state')).length === 0, 5000)).toBe(true);
      expect(cgroupsOf(all)).toEqual([]);
      await expect(pool.run({ command: ['true'] })).rejects.toMatchObject({ code: 'ERR_PREWARM_UNAVAILABLE' });
    } finally {
      cleanup();
    }
  });

  it('an owner killed with a pool open leaves nothing: its owner helper releases the pool', async () => {
    const [dir, cleanup] = tempDir();
    try {
      const script = `
        import { Container } from '${dist}/index.js';
        const o = ${JSON.stringify(under(dir))};
        await Container.prewarm(o, { count: 2 });
        const ids = (await Container.list({ stateRoot: o.stateRoot, all: true })).map((c) => c.id);
        console.log(JSON.stringify(ids));
        process.kill(process.pid, 'SIGKILL');`;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      await new Promise((r) => child.once('exit', r));
      const ids = JSON.parse(out.trim()) as string[];
      expect(ids).toHaveLength(2);
      expect(await helperGone(child.pid!, 10_000)).toBe(true);
      expect(await Container.list({ stateRoot: join(dir, 'root'), all: true })).toEqual([]);
      expect(await eventually(() => cgroupsOf(ids).length === 0, 5000)).toBe(true);
      expect(readdirSync(join(dir, 'state'))).toEqual([]);
      expect(readdirSync('/sys/fs/cgroup/memory').filter((e) => e === `ctkpark-${child.pid}`)).toEqual([]);
    } finally {
      cleanup();
    }
  });
});

describe.skipIf(process.getuid?.() !== 0)('Container.prewarm where the thread path cannot start', () => {
  it('rejects with ERR_PREWARM_UNAVAILABLE on the stage path and leaves nothing', async () => {
    const [dir, cleanup] = tempDir();
    const saved = process.env.CTRKIT_START_PATH;
    process.env.CTRKIT_START_PATH = 'stage';
    try {
      const e = await Container.prewarm(under(dir), { count: 2 }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(ContainerError);
      expect(e).toMatchObject({ code: 'ERR_PREWARM_UNAVAILABLE' });
      expect((e as Error).message).toMatch(/CTRKIT_START_PATH=stage/);
      expect(await Container.list({ stateRoot: join(dir, 'root'), all: true })).toEqual([]);
      expect(readdirSync(join(dir, 'state'))).toEqual([]);
    } finally {
      if (saved === undefined) delete process.env.CTRKIT_START_PATH;
      else process.env.CTRKIT_START_PATH = saved;
      cleanup();
    }
  });
});
