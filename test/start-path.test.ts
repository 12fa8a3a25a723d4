// The thread start path against the stage path: the same container, seen from inside and
// from the host, whichever started it; no process of ctrkit's per container on the thread
// path; and nothing left when its caller dies at the barrier.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Container } from 'ctrkit';
import { Cgroup } from 'ctrkit/cgroups';
import { NamespaceRef, unshare } from 'ctrkit/namespaces';
import { text } from 'node:stream/consumers';
import { alive, eventually, helperGone, rootfs, tempDir } from './helpers.js';

const dist = new URL('../dist', import.meta.url).pathname;
const threadPathPossible = process.env.CTRKIT_START_PATH !== 'stage' && existsSync('/sys/fs/cgroup/memory');

// What a container is, as its init sees it: identity, privileges, filter, mounts, names.
const PROBE = [
  'echo pid=$$',
  'hostname',
  'grep -E "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|Seccomp_filters):" /proc/self/status',
  'cat /proc/self/cgroup | sed "s/^[0-9]*://"',
  // mount points, file systems and options, without the ids that differ per container (the
  // thread path mounts /proc last: only the order differs)
  'awk \'{ for (i = 7; $i != "-"; i++); print $5, $(i+1), $6 }\' /proc/self/mountinfo | sed "s/,lowerdir=.*//" | sort',
  'ls -a /dev | tr "\\n" " "; echo',
  'ls /proc/1/fd > /tmp/fds; wc -l < /tmp/fds',
  'cat /proc/1/cmdline | tr "\\0" " "; echo',
  'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "',
  'for n in pid mnt net uts ipc cgroup; do readlink /proc/1/ns/$n; done | sort -u | wc -l',
].join('; ');

async function probe(startPath: 'auto' | 'stage', user?: string): Promise<string> {
  const r = await Container.run({ rootfs, command: ['sh', '-c', `id; ${PROBE}`], startPath, user });
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  return r.stdout;
}

/** The host's view of the container's init: its parent, and which namespaces it shares with us. */
function hostView(pid: number): { ppid: number; sharedNamespaces: string[] } {
  const ppid = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
  const shared = ['pid', 'mnt', 'net', 'uts', 'ipc', 'cgroup', 'user'].filter((t) => ns(`/proc/${pid}`, t) === ns(`/proc/${process.pid}`, t));
  return { ppid, sharedNamespaces: shared };
}
const ns = (proc: string, type: string): string => readlinkSync(`${proc}/ns/${type}`);

describe.skipIf(!threadPathPossible)('the thread start path', () => {
  it('gives the container exactly what the stage path gives it', async () => {
    const [threads, stage] = [await probe('auto'), await probe('stage')];
    expect(threads).toContain('pid=1\ncontainer\n');
    expect(threads).toContain('NoNewPrivs:\t1');
    expect(threads).toContain('Seccomp:\t2');
    // One filter on both paths: the thread path's key sits in front of the same program.
    expect(threads).toContain('Seccomp_filters:\t1');
    expect(threads).toBe(stage);
  });

  it('gives a user other than root the same on both paths: its ids, no capabilities', async () => {
    const [threads, stage] = [await probe('auto', '1000:1000'), await probe('stage', '1000:1000')];
    expect(threads).toContain('uid=1000 gid=1000');
    expect(threads).toContain('CapEff:\t0000000000000000');
    expect(threads).toBe(stage);
  });

  it('keeps the ambient capabilities of a user other than root on both paths', async () => {
    const cgroup = await Cgroup.v1(`ctk-ambient-${process.pid}`).create();
    try {
      const outputs: string[] = [];
      for (const startPath of ['auto', 'stage'] as const) {
        const p = await unshare({
          rootfs,
          command: ['sh', '-c', 'id -u; grep -E "^Cap(Eff|Amb)" /proc/self/status'],
          user: { uid: 1000, gid: 1000 },
          capabilities: ['NET_BIND_SERVICE', 'KILL'],
          ambientCapabilities: ['NET_BIND_SERVICE'],
          cgroupTasks: cgroup.taskFiles(),
          startPath,
        });
        const [out, status] = await Promise.all([text(p.stdout!), p.exited]);
        expect(status.exitCode).toBe(0);
        outputs.push(out);
      }
      expect(outputs[0]).toBe('1000\nCapEff:\t0000000000000400\nCapAmb:\t0000000000000400\n');
      expect(outputs[1]).toBe(outputs[0]);
    } finally {
      await cgroup.remove();
    }
  });

  it('starts the command as a direct child of the caller, in namespaces of its own', async () => {
    const threads = await Container.start({ rootfs, command: ['sleep', '30'] });
    const stage = await Container.start({ rootfs, command: ['sleep', '30'], startPath: 'stage' });
    try {
      const t = hostView(threads.pid!);
      const s = hostView(stage.pid!);
      // No process of ctrkit's between the caller and the command ...
      expect(t.ppid).toBe(process.pid);
      // ... where the stage path has unshare(1).
      expect(s.ppid).not.toBe(process.pid);
      expect(readFileSync(`/proc/${s.ppid}/cmdline`, 'utf8')).toMatch(/^unshare\0/);
      // Only the user namespace is shared with the host, on both.
      expect(t.sharedNamespaces).toEqual(['user']);
      expect(s.sharedNamespaces).toEqual(['user']);
    } finally {
      await threads.remove({ force: true });
      await stage.remove({ force: true });
    }
  });

  it('keeps the container out of setns and unshare, and the threads home', async () => {
    const r = await Container.run({
      rootfs,
      command: ['sh', '-c', 'unshare -n true; echo unshare=$?; nsenter -t 1 -n true; echo nsenter=$?; cat /proc/self/status | grep ^Seccomp:'],
    });
    expect(r.stdout).toMatch(/unshare=[1-9]/);
    expect(r.stdout).toMatch(/nsenter=[1-9]/);
    // The caller's threads are back in the host's namespaces and cgroups after the start.
    const self = `/proc/${process.pid}`;
    for (const task of readdirSync(`${self}/task`)) {
      for (const t of ['mnt', 'net', 'uts', 'ipc', 'cgroup']) expect(ns(`${self}/task/${task}`, t)).toBe(ns(self, t));
      expect(ns(`${self}/task/${task}`, 'pid_for_children')).toBe(ns(self, 'pid'));
      // Each in the process's cgroups, or (the spawner between containers) in its park.
      const own = readFileSync(`${self}/cgroup`, 'utf8').split('\n');
      readFileSync(`${self}/task/${task}/cgroup`, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (!line.endsWith(`/ctkpark-${process.pid}`)) expect(line).toBe(own[i]);
        });
    }
  });

  it("names a command's namespaces even when it is over before start() returns (the builder let it go)", async () => {
    // A command with nothing to wait for runs while its records are written: `true` has
    // often exited by the time start() resolves. Its namespaces were read before it went.
    for (let i = 0; i < 20; i++) {
      const c = await Container.start({ rootfs, command: ['true'], stdio: 'ignore' });
      try {
        for (const type of ['pid', 'mnt', 'net', 'uts', 'ipc', 'cgroup'] as const) {
          expect(c.namespaces[type], type).toBeDefined();
          expect(c.namespaces[type]!.sameAs(NamespaceRef.host(type)), type).toBe(false);
        }
        expect((await c.exited).exitCode).toBe(0);
      } finally {
        await c.remove({ force: true });
      }
    }
  });

  it('leaves nothing behind once idle: no thread in a cgroup of its own, no namespace or cgroup file held open', async () => {
    await Container.run({ rootfs, command: ['true'] });
    const parks = () => readdirSync('/sys/fs/cgroup/memory').filter((e) => e === `ctkpark-${process.pid}`);
    expect(parks()).toHaveLength(1);
    // The threads end after two idle seconds, and their park with them.
    expect(await eventually(() => parks().length === 0, 5000)).toBe(true);
    // The builder's spare network namespace and the spawner's park files went with them.
    const held = readdirSync('/proc/self/fd')
      .map((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`);
        } catch {
          return '';
        }
      })
      .filter((l) => /^(net|mnt|uts|ipc|cgroup|pid):\[/.test(l) || l.includes('/ctkpark-'));
    expect(held).toEqual([]);
  });

  it('gives each container a fresh network namespace, loopback up (the builder makes the next one while idle)', async () => {
    const runs = [];
    for (let i = 0; i < 3; i++)
      runs.push(
        await Container.run({
          rootfs,
          command: ['sh', '-c', 'readlink /proc/self/ns/net; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "; cat /sys/class/net/lo/flags'],
        }),
      );
    const seen = runs.map((r) => r.stdout.split('\n'));
    // Three namespaces, none of them this process's.
    expect(new Set(seen.map((l) => l[0])).size).toBe(3);
    expect(seen.map((l) => l[0])).not.toContain(readlinkSync('/proc/self/ns/net'));
    for (const l of seen) {
      expect(l[1]).toBe('lo'); // nothing but the loopback
      expect(Number(l[2]) & 1).toBe(1); // IFF_UP
    }
  });

  it("reports the thread that failed when the other gives up, and the next start works: the builder's, then the spawner's", async () => {
    const cg = await Cgroup.v1(`ctk-startpath-${process.pid}`).create();
    try {
      const tasks = cg.taskFiles();
      // The builder fails (the command is not in the root): the spawner, waiting for its root, gives up.
      await expect(unshare({ rootfs, command: ['no-such-command'], cgroupTasks: tasks, stdio: 'ignore' })).rejects.toMatchObject({
        code: 'ERR_COMMAND_NOT_FOUND',
        step: 'lookup',
      });
      // The spawner fails (the cgroup is gone): the builder, waiting for its cgroup namespace, gives up.
      await expect(
        unshare({ rootfs, command: ['true'], cgroupTasks: ['/sys/fs/cgroup/pids/ctk-startpath-no-such-cgroup/tasks'], stdio: 'ignore' }),
      ).rejects.toMatchObject({ step: 'cgroup', errnoName: 'ENOENT' });
      const p = await unshare({ rootfs, command: ['sh', '-c', 'sleep 0.3; exit 3'], cgroupTasks: tasks, stdio: 'ignore' });
      expect(hostView(p.pid).ppid).toBe(process.pid); // the thread path, still
      expect(await p.exited).toEqual({ exitCode: 3, signal: null });
    } finally {
      await cg.remove();
    }
  });

  it('a caller killed while its container waits at the barrier leaves nothing: its owner helper reclaims it', async () => {
    const [dir, cleanup] = tempDir();
    try {
      const script = `
        import { Container } from '${dist}/index.js';
        await Container.run({
          rootfs: ${JSON.stringify(rootfs)},
          command: ['true'],
          stateRoot: ${JSON.stringify(join(dir, 'root'))},
          onNamespaces: ({ pid }) => { console.log(pid); process.kill(process.pid, 'SIGKILL'); return new Promise(() => {}); },
        });`;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      await new Promise((r) => child.once('exit', r));
      const pid = Number(out.trim());
      expect(pid).toBeGreaterThan(0);
      expect(await helperGone(child.pid!, 10_000)).toBe(true);
      expect(await eventually(() => !alive(pid), 5000)).toBe(true);
      expect(readdirSync('/sys/fs/cgroup/memory').filter((e) => e === `ctkpark-${child.pid}`)).toEqual([]);
      expect(await Container.list({ stateRoot: join(dir, 'root'), all: true })).toEqual([]);
    } finally {
      cleanup();
    }
  });
});
