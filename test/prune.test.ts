import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Container } from 'ctrkit';
import { alive, eventually, ownerHelperOf, rootfs, tempDir } from './helpers.js';

describe('prune: what a crashed owner left', () => {
  it('ends a container whose owner and owner helper were both killed, and releases what it held', async () => {
    const [dir, cleanup] = tempDir();
    try {
      mkdirSync(join(dir, 'node_modules'));
      mkdirSync(join(dir, 'layers'));
      symlinkSync(process.cwd(), join(dir, 'node_modules', 'ctrkit'));
      const stateRoot = join(dir, 'root');
      const out = join(dir, 'out');
      writeFileSync(
        join(dir, 'parent.mjs'),
        `
        import { writeFileSync } from 'node:fs';
        import { Container } from 'ctrkit';
        const c = await Container.start({ rootfs: ${JSON.stringify(rootfs)}, command: ['sleep', '60'], memory: '64m', stdio: 'ignore',
          stateRoot: ${JSON.stringify(stateRoot)}, stateDir: ${JSON.stringify(join(dir, 'layers'))} });
        writeFileSync(${JSON.stringify(out)}, JSON.stringify({ pid: c.pid, id: c.id, cgroup: c.cgroup.path }));
        setInterval(() => {}, 1000);
      `,
      );
      const parent = spawn(process.execPath, [join(dir, 'parent.mjs')], { stdio: 'inherit' });
      expect(await eventually(() => existsSync(out), 20_000)).toBe(true);
      const { pid, id, cgroup } = JSON.parse(readFileSync(out, 'utf8')) as { pid: number; id: string; cgroup: string };
      // Only a killed helper lets a container outlive its owner: kill it first, then the owner.
      const helper = ownerHelperOf(parent.pid!);
      expect(helper).toBeDefined();
      process.kill(helper!, 'SIGKILL');
      await eventually(() => !alive(helper!), 2000);
      parent.kill('SIGKILL');
      await new Promise((r) => parent.once('exit', r));
      expect(alive(pid)).toBe(true);
      // Still running, but nobody owns it anymore.
      const info = await (await Container.get(id, { stateRoot })).inspect();
      expect(info.status).toBe('running');
      expect(alive(info.ownerPid)).toBe(false);

      const r = await Container.prune({ stateRoot, stateDir: join(dir, 'layers') });
      expect(r.containers).toEqual([id]);
      expect(await eventually(() => !alive(pid), 2000)).toBe(true);
      expect(readdirSync(join(dir, 'layers'))).toEqual([]);
      expect(existsSync(`/sys/fs/cgroup/memory/${cgroup}`) || existsSync(`/sys/fs/cgroup/${cgroup}`)).toBe(false);
      await expect(Container.get(id, { stateRoot })).rejects.toMatchObject({ code: 'ERR_NO_SUCH_CONTAINER' });
    } finally {
      cleanup();
    }
  });

  it("removes an empty cgroup of ctrkit's that no record names, and a layer whose creator is gone; keeps live ones", async () => {
    const [dir, cleanup] = tempDir();
    const stray = `ctk-${randomBytes(32).toString('hex')}`;
    const cgdir = `/sys/fs/cgroup/pids/${stray}`;
    try {
      mkdirSync(cgdir);
      const layers = join(dir, 'layers');
      mkdirSync(join(layers, 'ctk-dead'), { recursive: true });
      writeFileSync(join(layers, 'ctk-dead', 'owner.json'), JSON.stringify({ pid: 999_999_999, start: 1 }));
      mkdirSync(join(layers, 'ctk-live'));
      writeFileSync(
        join(layers, 'ctk-live', 'owner.json'),
        JSON.stringify({ pid: process.pid, start: Number(readFileSync(`/proc/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19]) }),
      );
      // Discarded layers in the trash: one whose deleting process is gone, one of this (live) process.
      const self = readFileSync(`/proc/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19];
      const deadTrash = join(layers, 'ctk-trash-999999999-1-ctk-gone12');
      const liveTrash = join(layers, `ctk-trash-${process.pid}-${self}-ctk-mine12`);
      for (const t of [deadTrash, liveTrash]) {
        mkdirSync(join(t, 'upper', 'a', 'b'), { recursive: true });
        writeFileSync(join(t, 'upper', 'a', 'b', 'f'), 'x');
      }
      await using live = await Container.start({ rootfs, command: ['sleep', '30'], pids: 32, stdio: 'ignore', stateRoot: join(dir, 'root') });
      // Removed records in the trash of the state root, likewise (made after the start, which sweeps it once).
      const root = join(dir, 'root');
      const deadRecord = join(root, `ctk-trash-999999999-1-${'a'.repeat(64)}`);
      const liveRecord = join(root, `ctk-trash-${process.pid}-${self}-${'b'.repeat(64)}`);
      for (const t of [deadRecord, liveRecord]) {
        mkdirSync(t);
        writeFileSync(join(t, 'state.json'), '{}');
      }
      const r = await Container.prune({ stateRoot: join(dir, 'root'), stateDir: layers });
      expect(readdirSync(root).filter((e) => e.startsWith('ctk-trash-'))).toEqual([liveRecord.slice(root.length + 1)]);
      expect(r.cgroups).toContain(stray);
      expect(r.cgroups).not.toContain(live.cgroup!.path);
      expect([...r.layers].sort()).toEqual([join(layers, 'ctk-dead'), deadTrash]);
      expect(readdirSync(layers).filter((e) => e.startsWith('ctk-trash-'))).toEqual([liveTrash.slice(layers.length + 1)]);
      expect(r.containers).toEqual([]);
      expect(existsSync(cgdir)).toBe(false);
      expect(existsSync(join(layers, 'ctk-live'))).toBe(true);
    } finally {
      if (existsSync(cgdir)) rmdirSync(cgdir);
      cleanup();
    }
  });
});
