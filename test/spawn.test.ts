import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AbortError, CommandNotExecutableError, CommandNotFoundError, InitError, InvalidOptionError } from 'ctrkit';
import { unshare, nsenter, type UnshareOptions } from 'ctrkit/namespaces';
import { alive, ctrkitProcesses, eventually, hostMounts, rootfs, tempDir } from './helpers.js';

async function output(opts: UnshareOptions): Promise<{ out: string; code: number | null; signal: string | null }> {
  const p = await unshare({ stdio: ['ignore', 'pipe', 'inherit'], rootfs, ...opts });
  let out = '';
  p.stdout!.on('data', (d) => (out += d));
  const st = await p.exited;
  await new Promise((r) => setImmediate(r));
  return { out, code: st.exitCode, signal: st.signal };
}

describe('the spawn hook', () => {
  it('runs with the host PID after the namespaces exist and before the command starts', async () => {
    const [dir, cleanup] = tempDir();
    try {
      cpSync(rootfs, dir, { recursive: true, verbatimSymlinks: true });
      let seen: { pid: number; cmdline: string } | undefined;
      const r = await output({
        rootfs: dir,
        command: ['cat', '/hook-was-here'],
        onNamespaces: ({ pid }) => {
          // Still the init stage: the user's command has not been exec'd yet.
          seen = { pid, cmdline: readFileSync(`/proc/${pid}/cmdline`, 'utf8') };
          writeFileSync(join(dir, 'hook-was-here'), `pid ${pid}\n`);
        },
      });
      expect(seen!.cmdline).toMatch(/init\/stage(\.bundle)?\.js/);
      // The command saw what the hook wrote: it cannot have started before the hook ended.
      expect(r.out).toBe(`pid ${seen!.pid}\n`);
      expect(r.code).toBe(0);
    } finally {
      cleanup();
    }
  });

  it('a hook that throws rejects the call with its error and leaves no process', async () => {
    let pid = 0;
    const boom = new Error('cgroup setup failed');
    await expect(
      unshare({
        command: ['sleep', '60'],
        rootfs,
        stdio: 'ignore',
        onNamespaces: (ctx) => {
          pid = ctx.pid;
          throw boom;
        },
      }),
    ).rejects.toBe(boom);
    expect(pid).toBeGreaterThan(0);
    expect(await eventually(() => !alive(pid))).toBe(true);
    expect(ctrkitProcesses()).toEqual([]);
  });

  it('an AbortSignal cancels setup with AbortError and kills the stage', async () => {
    const ac = new AbortController();
    let pid = 0;
    await expect(
      unshare({
        command: ['sleep', '60'],
        rootfs,
        stdio: 'ignore',
        signal: ac.signal,
        onNamespaces: async (ctx) => {
          pid = ctx.pid;
          ac.abort();
          await new Promise((r) => setTimeout(r, 50));
        },
      }),
    ).rejects.toBeInstanceOf(AbortError);
    expect(await eventually(() => !alive(pid))).toBe(true);
  });

  it('a parent killed mid-setup leaves nothing behind', async () => {
    const [dir, cleanup] = tempDir();
    try {
      const script = join(dir, 'parent.mjs');
      const pidFile = join(dir, 'pid');
      writeFileSync(
        script,
        `
        import { writeFileSync } from 'node:fs';
        import { unshare } from 'ctrkit/namespaces';
        await unshare({ command: ['sleep', '60'], rootfs: ${JSON.stringify(rootfs)}, stdio: 'ignore',
          onNamespaces: ({ pid }) => { writeFileSync(${JSON.stringify(pidFile)}, String(pid)); process.kill(process.pid, 'SIGKILL'); } });
      `,
      );
      // Run it as a user would: resolving 'ctrkit' through the package itself.
      mkdirSync(join(dir, 'node_modules'));
      symlinkSync(process.cwd(), join(dir, 'node_modules', 'ctrkit'));
      const child = spawn(process.execPath, [script], { stdio: 'inherit' });
      const signal = await new Promise((r) => child.on('exit', (_c, s) => r(s)));
      expect(signal).toBe('SIGKILL');
      const pid = Number(readFileSync(pidFile, 'utf8'));
      // The stage sees its socket close and exits; unshare(1) follows it.
      expect(await eventually(() => !alive(pid), 5000)).toBe(true);
      expect(await eventually(() => ctrkitProcesses().length === 0, 5000)).toBe(true);
    } finally {
      cleanup();
    }
  });
});

describe('failures inside the stage come back typed, naming the step', () => {
  it('a command that does not exist', async () => {
    const e = await unshare({ command: ['no-such-command'], rootfs }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CommandNotFoundError);
    expect(e).toMatchObject({ code: 'ERR_COMMAND_NOT_FOUND', step: 'lookup', command: 'no-such-command', errno: 2, errnoName: 'ENOENT' });
    const abs = await unshare({ command: ['/bin/no-such-command'], rootfs }).catch((x: unknown) => x);
    expect(abs).toBeInstanceOf(CommandNotFoundError);
    expect(abs).toMatchObject({ step: 'exec', errnoName: 'ENOENT', path: '/bin/no-such-command' });
  });

  it('a command that is not executable', async () => {
    const e = await unshare({ command: ['/etc/passwd'], rootfs }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CommandNotExecutableError);
    expect(e).toMatchObject({ step: 'exec', errno: 13, errnoName: 'EACCES' });
  });

  it('a working directory that does not exist inside the rootfs', async () => {
    const e = await unshare({ command: ['true'], rootfs, cwd: '/no/such/dir' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InitError);
    expect(e).toMatchObject({ code: 'ERR_INIT_STEP', step: 'cwd', syscall: 'chdir', errnoName: 'ENOENT', path: '/no/such/dir' });
  });

  it('bad options are refused before anything starts', async () => {
    const before = ctrkitProcesses();
    await expect(unshare({ command: ['true'], rootfs: '/no/such/rootfs' })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION', option: 'rootfs' });
    await expect(unshare({ command: ['true'], rootfs: '/etc/passwd' })).rejects.toThrow(/not a directory/);
    await expect(unshare({ command: ['true'], rootfs, hostname: 'x'.repeat(65) })).rejects.toThrow(/65 bytes long; the kernel allows at most 64/);
    await expect(unshare({ command: ['true'], rootfs, hostname: 'h', namespaces: ['mnt'] })).rejects.toThrow(/needs a new uts namespace/);
    await expect(unshare({ command: [] })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(unshare({ command: ['true'], rootfs, cwd: 'relative' })).rejects.toMatchObject({ option: 'cwd' });
    await expect(unshare({ command: ['true'], uidMap: [{ inside: 0, outside: 0, count: 0 }] })).rejects.toMatchObject({ option: 'uidMap[0]' });
    await expect(
      unshare({
        command: ['true'],
        uidMap: [
          { inside: 0, outside: 0, count: 10 },
          { inside: 5, outside: 100, count: 10 },
        ],
      }),
    ).rejects.toThrow(/inside range overlaps/);
    expect(ctrkitProcesses()).toEqual(before);
  });
});

describe('the rootfs is entered safely', () => {
  it('pivot_root: the old root is gone and / is the rootfs', async () => {
    const r = await output({ command: ['sh', '-c', "cat /proc/self/mountinfo | awk '{print $5}' | head -1; ls /"] });
    const [first, ...ls] = r.out.trim().split('\n');
    expect(first).toBe('/');
    expect(ls).toContain('bin');
    expect(ls).not.toContain('work'); // a host-only directory
    expect(r.out).not.toMatch(/\/\.oldroot|put_old/);
  });

  it('a minimal /dev: exactly the standard nodes and links', async () => {
    const r = await output({ command: ['sh', '-c', 'ls /dev; ls -l /dev/null /dev/zero /dev/urandom | cut -c1-10'] });
    const [ls, types] = [r.out.trim().split('\n').slice(0, -3), r.out.trim().split('\n').slice(-3)];
    expect(ls.sort()).toEqual(['core', 'fd', 'full', 'mqueue', 'null', 'ptmx', 'pts', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'urandom', 'zero'].sort());
    expect(types).toEqual(['crw-rw-rw-', 'crw-rw-rw-', 'crw-rw-rw-']); // writable by any user inside
  });

  it('sysfs is read-only', async () => {
    const r = await output({ command: ['sh', '-c', 'grep " /sys " /proc/self/mounts; touch /sys/x 2>&1; echo rc=$?'] });
    expect(r.out).toMatch(/^sysfs \/sys sysfs ro,/m);
    expect(r.out).toMatch(/rc=1/);
  });

  it('a rootfs whose proc and dev are symlinks to host paths cannot mount over the host', async () => {
    const [dir, cleanup] = tempDir();
    const [outside, cleanupOutside] = tempDir();
    try {
      cpSync(rootfs, dir, { recursive: true, verbatimSymlinks: true });
      mkdirSync(join(outside, 'proc'));
      mkdirSync(join(outside, 'dev'));
      // Absolute symlinks in a hostile rootfs aim at a host directory...
      for (const d of ['proc', 'dev']) {
        rmSync(join(dir, d), { recursive: true });
        symlinkSync(join(outside, d), join(dir, d));
      }
      const mountsBefore = hostMounts();
      // ...which does not exist inside the rootfs: a clear refusal.
      const e = await unshare({ rootfs: dir, command: ['true'] }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(InitError);
      expect(e).toMatchObject({ step: 'proc', errnoName: 'ELOOP' });
      expect((e as Error).message).toMatch(/symlink to nothing inside the rootfs/);
      // ...and once it does, the mounts land inside the rootfs, never on the host path.
      mkdirSync(join(dir, outside, 'proc'), { recursive: true });
      mkdirSync(join(dir, outside, 'dev'), { recursive: true });
      const r = await output({ rootfs: dir, command: ['sh', '-c', 'echo $$; ls /dev/null; test -e /proc/self/ns/pid && echo proc'] });
      expect(r.out.trim().split('\n')).toEqual(['1', '/dev/null', 'proc']);
      expect(readdirSync(join(outside, 'proc'))).toEqual([]);
      expect(readdirSync(join(outside, 'dev'))).toEqual([]);
      expect(hostMounts()).toEqual(mountsBefore);
    } finally {
      cleanup();
      cleanupOutside();
    }
  });

  it('a cwd that is a symlink pointing out of the rootfs stays inside it', async () => {
    const [dir, cleanup] = tempDir();
    try {
      cpSync(rootfs, dir, { recursive: true, verbatimSymlinks: true });
      symlinkSync('../../../../../../', join(dir, 'escape'));
      const r = await output({ rootfs: dir, cwd: '/escape', command: ['sh', '-c', 'pwd -P; ls'] });
      const [pwd, ...ls] = r.out.trim().split('\n');
      expect(pwd).toBe('/');
      expect(ls).toContain('escape');
      expect(ls).not.toContain('work');
    } finally {
      cleanup();
    }
  });
});

describe('what the command inherits', () => {
  it('only fds 0, 1 and 2', async () => {
    const r = await output({ command: ['sh', '-c', 'ls /proc/self/fd'] });
    // ls itself opens one fd to read the directory.
    expect(
      r.out
        .trim()
        .split('\n')
        .map(Number)
        .filter((fd) => fd <= 2),
    ).toEqual([0, 1, 2]);
    expect(r.out.trim().split('\n').length).toBe(4);
  });

  it('default signal dispositions, an empty mask, blocking stdio, umask 022', async () => {
    const r = await output({ command: ['sh', '-c', 'grep -E "^Sig(Blk|Ign)" /proc/self/status; grep flags /proc/self/fdinfo/1; umask'] });
    expect(r.out).toMatch(/^SigBlk:\s+0+$/m);
    // The shell ignores nothing by itself when non-interactive; Node's SIGPIPE/SIGXFSZ are gone.
    expect(r.out).toMatch(/^SigIgn:\s+0+$/m);
    const flags = parseInt(r.out.match(/^flags:\s+(\d+)$/m)![1]!, 8);
    expect(flags & 0o4000).toBe(0); // O_NONBLOCK
    expect(r.out.trim().split('\n').pop()).toBe('0022');
  });

  it('real pipes for stdio, so /dev/stdout and /dev/stderr can be opened', async () => {
    const p = await unshare({ rootfs, command: ['sh', '-c', 'echo to-out > /dev/stdout; echo to-err > /dev/stderr'], stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout!.on('data', (d) => (out += d));
    p.stderr!.on('data', (d) => (err += d));
    expect((await p.exited).exitCode).toBe(0);
    await new Promise((r) => setImmediate(r));
    expect([out, err]).toEqual(['to-out\n', 'to-err\n']);
  });

  it('capabilities can be restricted, with no_new_privs', async () => {
    const r = await output({
      command: ['grep', '-E', '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs)', '/proc/self/status'],
      capabilities: ['CHOWN', 'KILL'],
      noNewPrivileges: true,
    });
    expect(r.out).toMatch(/^CapEff:\s+0000000000000021$/m);
    expect(r.out).toMatch(/^CapBnd:\s+0000000000000021$/m);
    expect(r.out).toMatch(/^CapAmb:\s+0000000000000000$/m);
    expect(r.out).toMatch(/^NoNewPrivs:\s+1$/m);
  });
});

describe('exit status and killing', () => {
  it('propagates the exit code', async () => {
    expect((await output({ command: ['sh', '-c', 'exit 42'] })).code).toBe(42);
  });

  it('propagates the terminating signal', async () => {
    // Without a PID namespace the command is not an init, so SIGTERM kills it.
    const p = await unshare({ command: ['sleep', '60'], namespaces: ['mnt'], stdio: 'ignore' });
    expect(p.kill('SIGTERM')).toBe(true);
    expect(await p.exited).toEqual({ exitCode: null, signal: 'SIGTERM' });
    const q = await unshare({ command: ['sleep', '60'], rootfs, stdio: 'ignore' });
    q.kill('SIGKILL');
    expect(await q.exited).toEqual({ exitCode: null, signal: 'SIGKILL' });
    expect(q.kill()).toBe(false);
  });

  it('a PID 1 with a handler gets the signal; disposing kills every process in the container', async () => {
    const p = await unshare({
      rootfs,
      stdio: ['ignore', 'pipe', 'inherit'],
      command: ['sh', '-c', 'trap "exit 7" TERM; sleep 60 & sleep 60 & echo ready; wait'],
    });
    await new Promise((r) => p.stdout!.once('data', r));
    const kids = readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, 'utf8').trim().split(' ').map(Number);
    expect(kids).toHaveLength(2);
    p.kill('SIGTERM');
    expect(await p.exited).toEqual({ exitCode: 7, signal: null });
    // PID 1 exited: the kernel killed the rest of its namespace.
    expect(await eventually(() => kids.every((k) => !alive(k)))).toBe(true);

    const q = await unshare({ rootfs, stdio: ['ignore', 'pipe', 'inherit'], command: ['sh', '-c', 'sleep 60 & sleep 60 & echo ready; wait'] });
    await new Promise((r) => q.stdout!.once('data', r));
    const qkids = readFileSync(`/proc/${q.pid}/task/${q.pid}/children`, 'utf8').trim().split(' ').map(Number);
    await q[Symbol.asyncDispose]();
    expect(alive(q.pid)).toBe(false);
    expect(qkids.every((k) => !alive(k))).toBe(true);
  });

  it('after 100 runs, failing ones included, the host mount table and process list are as before', async () => {
    const mounts = hostMounts();
    const procs = ctrkitProcesses();
    for (let i = 0; i < 100; i++) {
      const kind = i % 4;
      if (kind === 0) expect((await output({ command: ['true'] })).code).toBe(0);
      else if (kind === 1) expect((await output({ command: ['sh', '-c', 'exit 3'] })).code).toBe(3);
      else if (kind === 2) await expect(unshare({ command: ['missing-cmd'], rootfs })).rejects.toBeInstanceOf(CommandNotFoundError);
      else await expect(unshare({ command: ['true'], rootfs, cwd: '/missing' })).rejects.toBeInstanceOf(InitError);
    }
    expect(hostMounts()).toEqual(mounts);
    expect(await eventually(() => ctrkitProcesses().length === procs.length)).toBe(true);
    // No zombies: nothing of ours is left, not even a defunct unshare(1).
    const zombies = readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .filter((d) => {
        try {
          const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
          return stat.includes(') Z ') && stat.split(' ')[3] === String(process.pid);
        } catch {
          return false;
        }
      });
    expect(zombies).toEqual([]);
  }, 120_000);
});

describe('nsenter', () => {
  it('runs a program in the namespaces and root of a running container', async () => {
    await using target = await unshare({ rootfs, hostname: 'target', command: ['sleep', '60'], stdio: 'ignore' });
    const e = await nsenter({ target: target.pid, command: ['sh', '-c', 'hostname; ps -o pid,comm; ls /'], stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    e.stdout!.on('data', (d) => (out += d));
    expect((await e.exited).exitCode).toBe(0);
    await new Promise((r) => setImmediate(r));
    const lines = out
      .trim()
      .split('\n')
      .map((l) => l.trim());
    expect(lines[0]).toBe('target');
    expect(lines).toContain('1 sleep');
    expect(lines).not.toContain('work');
    for (const type of ['pid', 'net', 'mnt', 'uts', 'ipc', 'cgroup'] as const) {
      expect(e.namespaces[type]!.sameAs(target.namespaces[type]!), type).toBe(true);
    }
  });

  it('enters a user namespace too, as root inside it', async () => {
    const map = [{ inside: 0, outside: 300000, count: 65536 }];
    await using target = await unshare({
      rootfs,
      namespaces: ['user', 'pid', 'mnt', 'uts'],
      uidMap: map,
      gidMap: map,
      command: ['sleep', '60'],
      stdio: 'ignore',
    });
    const e = await nsenter({ target: target.pid, command: ['sh', '-c', 'id -u; cat /proc/self/uid_map'], stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    e.stdout!.on('data', (d) => (out += d));
    await e.exited;
    await new Promise((r) => setImmediate(r));
    expect(out).toMatch(/^0\n\s*0\s+300000\s+65536\n$/);
  });

  it('a target that does not exist is a typed error', async () => {
    await expect(nsenter({ target: 999_999_999, command: ['true'] })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION', option: 'target' });
  });
});
