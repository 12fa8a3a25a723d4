import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Container, defaultStateDir } from 'ctrkit';
import { alive, eventually, rootfs, tempDir } from './helpers.js';

describe('prune: what a crashed caller left', () => {
  it('keeps a container that outlived its parent, and removes its cgroup and layer once it is gone', async () => {
    const [dir, cleanup] = tempDir();
    try {
      mkdirSync(join(dir, 'node_modules'));
      symlinkSync(process.cwd(), join(dir, 'node_modules', 'ctrkit'));
      const pidFile = join(dir, 'pid');
      writeFileSync(join(dir, 'parent.mjs'), `
        import { writeFileSync } from 'node:fs';
        import { Container } from 'ctrkit';
        const c = await Container.start({ rootfs: ${JSON.stringify(rootfs)}, command: ['sleep', '60'], memory: '64m', stdio: 'ignore' });
        writeFileSync(${JSON.stringify(pidFile)}, JSON.stringify({ pid: c.pid, cgroup: c.cgroup.path }));
        process.kill(process.pid, 'SIGKILL');
      `);
      const parent = spawn(process.execPath, [join(dir, 'parent.mjs')], { stdio: 'inherit' });
      expect(await new Promise((r) => parent.on('exit', (_c, s) => r(s)))).toBe('SIGKILL');
      const { pid, cgroup } = JSON.parse(readFileSync(pidFile, 'utf8')) as { pid: number; cgroup: string };
      const layers = () => readdirSync(defaultStateDir()).filter((e) => e.startsWith('ctk-'));
      expect(alive(pid)).toBe(true);
      expect(layers()).toHaveLength(1);

      // The container still runs: nothing of it may go.
      const early = await Container.prune();
      expect(early).toEqual({ cgroups: [], layers: [] });
      expect(existsSync(`/sys/fs/cgroup/memory/${cgroup}`) || existsSync(`/sys/fs/cgroup/${cgroup}`)).toBe(true);

      process.kill(pid, 'SIGKILL');
      expect(await eventually(() => !alive(pid), 5000)).toBe(true);
      const late = await Container.prune();
      expect(late.cgroups).toEqual([cgroup]);
      expect(late.layers).toHaveLength(1);
      expect(layers()).toEqual([]);
      expect(existsSync(`/sys/fs/cgroup/memory/${cgroup}`) || existsSync(`/sys/fs/cgroup/${cgroup}`)).toBe(false);
    } finally {
      cleanup();
    }
  });
});
