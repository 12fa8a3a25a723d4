import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { commit, diff, formatChanges } from 'ctrkit/overlay';
import { Container, DEFAULT_MASKED_PATHS, InvalidOptionError, CommandNotFoundError, type RunResult } from 'ctrkit';
import { DEFAULT_CAPABILITIES, CAPABILITIES } from 'ctrkit/namespaces';
import { ctrkitProcesses, eventually, hostMounts, processes, rootfs, tempDir } from './helpers.js';

const sh = (script: string, extra: Partial<Parameters<typeof Container.run>[0]> = {}): Promise<RunResult> =>
  Container.run({ rootfs, command: ['sh', '-c', script], ...extra });

describe('Container.run', () => {
  it('captures stdout, stderr and the exit code; the shell is PID 1 with hostname "container"', async () => {
    const r = await sh('echo $$; hostname; echo oops >&2; exit 3');
    expect(r).toMatchObject({ exitCode: 3, signal: null, stdout: '1\ncontainer\n', stderr: 'oops\n', oomKilled: false, timedOut: false, truncated: false });
    expect(r.command).toEqual(['sh', '-c', 'echo $$; hostname; echo oops >&2; exit 3']);
    expect(r.pid).toBeGreaterThan(1);
    expect(r.durationMs).toBeGreaterThan(0);
  });

  it('uses the built-in rootfs when none is given', async () => {
    const r = await Container.run({ command: ['cat', '/etc/os-release'] });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/ctrkit/);
  });

  it('sets env, cwd, hostname and passes input to stdin', async () => {
    const r = await sh('echo "$A $HOSTNAME $HOME $PWD"; cat', { env: { A: 'one' }, cwd: '/tmp', hostname: 'box', input: 'from stdin' });
    expect(r.stdout).toBe('one box /root /tmp\nfrom stdin');
  });

  it('applies the secure default profile', async () => {
    const r = await sh(
      'grep -E "^(CapEff|CapBnd|NoNewPrivs)" /proc/self/status; cat /proc/keys 2>&1 | wc -c; ls /proc/acpi | wc -l; echo x > /proc/sys/kernel/hostname 2>&1 || echo sys-readonly',
    );
    const mask = DEFAULT_CAPABILITIES.reduce((m, c) => m | (1n << BigInt(CAPABILITIES.indexOf(c))), 0n)
      .toString(16)
      .padStart(16, '0');
    expect(r.stdout).toMatch(new RegExp(`^CapEff:\\s+${mask}$`, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^CapBnd:\\s+${mask}$`, 'm'));
    expect(r.stdout).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(r.stdout).toMatch(/^sys-readonly$/m);
    expect(readFileSync('/proc/keys', 'utf8').length).toBeGreaterThan(0);
    const [kcoreBytes, acpiEntries] = r.stdout.split('\n').slice(3, 5).map(Number);
    expect(kcoreBytes).toBe(0); // masked with /dev/null (the host's /proc/keys is not empty)
    expect(acpiEntries).toBe(0); // masked with an empty tmpfs
    expect(DEFAULT_MASKED_PATHS).toContain('/proc/keys');
  });

  it('a seccomp filter by default: new namespaces are refused unless CAP_SYS_ADMIN is kept', async () => {
    // unshare(CLONE_NEWUSER) needs no capability at all: only the filter can refuse it.
    const script = 'grep "^Seccomp:" /proc/self/status; unshare -U true 2>&1 && echo allowed';
    const confined = await sh(script);
    expect(confined.stdout).toMatch(/^Seccomp:\s+2$/m);
    expect(confined.stdout).toMatch(/Operation not permitted/);
    expect(confined.stdout).not.toMatch(/allowed/);
    const unconfined = await sh(script, { seccomp: 'unconfined' });
    expect(unconfined.stdout).toMatch(/^Seccomp:\s+0$/m);
    expect(unconfined.stdout).toMatch(/^allowed$/m);
    const admin = await sh(script, { capabilities: [...DEFAULT_CAPABILITIES, 'SYS_ADMIN'] });
    expect(admin.stdout).toMatch(/^Seccomp:\s+2$/m);
    expect(admin.stdout).toMatch(/^allowed$/m);
  });

  it('privileged keeps every capability and masks nothing', async () => {
    const r = await sh('grep -E "^CapEff" /proc/self/status; grep -c " /proc/" /proc/self/mounts', { privileged: true });
    // Everything the caller has (root on this machine lacks CAP_SYS_RESOURCE, so not always all).
    const ours = readFileSync('/proc/self/status', 'utf8').match(/^CapEff:\s+(\w+)$/m)![1];
    expect(r.stdout).toMatch(new RegExp(`^CapEff:\\s+${ours}$`, 'm'));
    expect(r.stdout.trim().split('\n')[1]).toBe('0');
  });

  it('a non-zero exit is a result; a missing command is an error', async () => {
    expect((await sh('exit 1')).exitCode).toBe(1);
    await expect(Container.run({ rootfs, command: ['does-not-exist'] })).rejects.toBeInstanceOf(CommandNotFoundError);
    await expect(Container.run({ rootfs, command: ['true'], hostname: 'é'.repeat(33) })).rejects.toBeInstanceOf(InvalidOptionError);
  });

  it('timeout kills the container and says so', async () => {
    const r = await sh('sleep 30', { timeout: 200 });
    expect(r).toMatchObject({ timedOut: true, signal: 'SIGKILL', exitCode: null }); // sleep 30 did not finish: it was killed
  });

  it('maxBuffer cuts long output and says so', async () => {
    const r = await sh('yes | head -c 100000', { maxBuffer: 1000 });
    expect(r.stdout).toHaveLength(1000);
    expect(r.truncated).toBe(true);
  });

  it('an AbortSignal kills a running container', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    await expect(sh('sleep 30', { signal: ac.signal })).rejects.toMatchObject({ code: 'ABORT_ERR' });
  });

  it('a record that cannot be written ends the start with its error, on both start paths: the command is killed, nothing is left', async () => {
    // The records on a tmpfs of one page: a container's first record fits, the one that says
    // it runs does not. (On the thread path that one is written while the command starts.)
    const [stateRoot, cleanupRoot] = tempDir();
    const [stateDir, cleanupDir] = tempDir();
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4k', 'ctk-test', stateRoot]);
    try {
      for (const startPath of ['auto', 'stage'] as const) {
        const cgroups = readdirSync('/sys/fs/cgroup/memory').filter((e) => e.startsWith('ctk-'));
        await expect(sh('sleep 31.5', { stateRoot, stateDir, startPath })).rejects.toMatchObject({ code: 'ENOSPC' });
        expect([...processes().values()].filter((cmd) => cmd.includes('31.5'))).toEqual([]);
        expect(await eventually(() => readdirSync(stateRoot).length === 0)).toBe(true);
        expect(await eventually(() => readdirSync(stateDir).length === 0)).toBe(true);
        expect(readdirSync('/sys/fs/cgroup/memory').filter((e) => e.startsWith('ctk-') && !cgroups.includes(e))).toEqual([]);
      }
    } finally {
      execFileSync('umount', [stateRoot]);
      cleanupRoot();
      cleanupDir();
    }
  });

  it('start() streams; disposing the handle kills it and leaves nothing', async () => {
    const mounts = hostMounts();
    {
      await using c = await Container.start({ rootfs, command: ['sh', '-c', 'echo ready; sleep 30'], stdio: ['ignore', 'pipe', 'pipe'] });
      const first = await new Promise<string>((r) => c.stdout!.once('data', (d: Buffer) => r(d.toString())));
      expect(first).toBe('ready\n');
    }
    expect(ctrkitProcesses()).toEqual([]);
    expect(hostMounts()).toEqual(mounts);
  });

  it('exec runs a program inside a running container, with its cgroup and security profile; pause and resume', async () => {
    await using c = await Container.start({ rootfs, hostname: 'box', memory: '64m', command: ['sleep', '30'], stdio: 'ignore' });
    const e = await c.exec({
      command: [
        'sh',
        '-c',
        'hostname; grep -c ":memory:/$" /proc/self/cgroup; grep -E "^(CapEff|Seccomp|NoNewPrivs):" /proc/self/status; ps -o comm | tail -n +2',
      ],
    });
    expect(e.exitCode).toBe(0);
    const out = e.stdout;
    const lines = out.trim().split('\n');
    expect(lines.slice(0, 2)).toEqual(['box', '1']);
    const mask = DEFAULT_CAPABILITIES.reduce((m, cap) => m | (1n << BigInt(CAPABILITIES.indexOf(cap))), 0n)
      .toString(16)
      .padStart(16, '0');
    expect(out).toMatch(new RegExp(`^CapEff:\\s+${mask}$`, 'm'));
    expect(out).toMatch(/^Seccomp:\s+2$/m);
    expect(out).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(lines).toContain('sleep'); // the container's own processes
    expect(c.cgroup!.version === 1 ? readFileSync(`${c.cgroup!.dirs.get('freezer')}/freezer.state`, 'utf8').trim() : 'THAWED').toBe('THAWED');
    await c.pause();
    if (c.cgroup!.version === 1) expect(readFileSync(`${c.cgroup!.dirs.get('freezer')}/freezer.state`, 'utf8').trim()).toBe('FROZEN');
    await c.resume();
    await using plain = await Container.start({ rootfs, command: ['sleep', '30'], stdio: 'ignore' });
    // Every container has a cgroup of its own, limits or not: it can be frozen too.
    await plain.pause();
    expect(await plain.status()).toBe('paused');
    await plain.resume();
    expect(await plain.status()).toBe('running');
  });

  it('stdio inherit leaves the result empty', async () => {
    const r = await sh('true', { stdio: ['ignore', 'inherit', 'inherit'] });
    expect(r).toMatchObject({ exitCode: 0, stdout: '', stderr: '' });
  });

  describe('a copy-on-write root', () => {
    const treeOf = (dir: string) => execFileSync('sh', ['-c', `cd ${dir} && find . -printf '%p %m %s\\n' | sort`], { encoding: 'utf8' });

    it('never changes the rootfs on disk, and leaves no state behind', async () => {
      const before = treeOf(rootfs);
      const [stateDir, cleanup] = tempDir();
      const [stateRoot, cleanupRoot] = tempDir();
      const r = await sh('echo new > /created; rm /etc/os-release; echo x >> /etc/passwd; mkdir /d; cat /created', { stateDir, stateRoot });
      expect(r.stdout).toBe('new\n');
      expect(treeOf(rootfs)).toBe(before);
      // The layer went out of the way at once (into the trash, or kept to be checked for the next
      // container: it is not untouched, so it goes to the trash then); deleted in the background.
      expect(readdirSync(stateDir).filter((e) => !/^ctk-(trash|spare)-/.test(e))).toEqual([]);
      expect(await eventually(() => readdirSync(stateDir).length === 0)).toBe(true);
      expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(stateDir);
      // Its record likewise: out of view at once (in the trash), then deleted with its directory.
      expect(await Container.list({ stateRoot, all: true })).toEqual([]);
      expect(await eventually(() => readdirSync(stateRoot).length === 0)).toBe(true);
      cleanup();
      cleanupRoot();
    });

    it('an untouched layer is kept for the next run(); one the container changed never is', async () => {
      const [stateDir, cleanup] = tempDir();
      const kept = () => readdirSync(stateDir).filter((e) => e.startsWith(`ctk-spare-${process.pid}-`));
      try {
        // Kept under a spare name once the run ended (checked a moment later), taken by the
        // next run under a new, longer name, and kept again.
        expect((await sh('true', { stateDir })).exitCode).toBe(0);
        expect(await eventually(() => kept().length === 1)).toBe(true);
        const first = kept()[0]!;
        await new Promise((r) => setTimeout(r, 20)); // its check runs after the caller has its result
        expect((await sh('cat /etc/hostname', { stateDir, hostname: 'second' })).stdout).toBe('second\n');
        expect(await eventually(() => kept().length === 1 && kept()[0] !== first)).toBe(true);
        expect(kept()[0]).toMatch(/-ctk-[A-Za-z0-9_-]{12}$/);
        // A write, a changed mode of /, a changed /etc file: the layer that saw it is not kept (the
        // one kept before was taken for it), and none of it reaches the next container.
        const tick = () => new Promise((r) => setTimeout(r, 20));
        for (const change of ['touch /leak', 'chmod 700 /', 'echo 10.9.9.9 leak >> /etc/hosts; chmod 666 /etc/hosts']) {
          await tick();
          expect(kept()).toHaveLength(1);
          expect((await sh(change, { stateDir })).exitCode).toBe(0);
          await tick();
          expect(kept()).toEqual([]);
          const r = await sh('ls /leak 2>&1; stat -c %a /; grep -c leak /etc/hosts; stat -c %a /etc/hosts', { stateDir });
          expect(r.stdout.split('\n').slice(-5, -1)).toEqual(['ls: /leak: No such file or directory', '755', '0', '644']);
        }
        // Not taken for two seconds: deleted.
        expect(await eventually(() => readdirSync(stateDir).length === 0, 6000)).toBe(true);
      } finally {
        cleanup();
      }
    });

    it('a caller that exits right after run() leaves no trash behind, on both start paths', () => {
      const [dir, cleanup] = tempDir();
      try {
        mkdirSync(join(dir, 'node_modules'));
        symlinkSync(process.cwd(), join(dir, 'node_modules', 'ctrkit'));
        for (const startPath of ['auto', 'stage']) {
          const stateDir = join(dir, `state-${startPath}`);
          writeFileSync(
            join(dir, 'run.mjs'),
            `import { Container } from 'ctrkit';
            const r = await Container.run({ rootfs: ${JSON.stringify(rootfs)}, command: ['sh', '-c', 'seq 100 | while read i; do echo $i > /f$i; done'],
              stateDir: ${JSON.stringify(stateDir)}, startPath: '${startPath}' });
            if (r.exitCode !== 0) throw new Error(r.stderr);
            process.exit(0);`,
          );
          execFileSync(process.execPath, [join(dir, 'run.mjs')], { stdio: 'ignore', timeout: 30_000 });
          expect(readdirSync(stateDir)).toEqual([]);
        }
      } finally {
        cleanup();
      }
    });

    it('a caller killed right after run() has its trash deleted by its owner helper', async () => {
      const [dir, cleanup] = tempDir();
      try {
        mkdirSync(join(dir, 'node_modules'));
        symlinkSync(process.cwd(), join(dir, 'node_modules', 'ctrkit'));
        const stateDir = join(dir, 'state');
        writeFileSync(
          join(dir, 'run.mjs'),
          `import { Container } from 'ctrkit';
          await Container.run({ rootfs: ${JSON.stringify(rootfs)}, command: ['sh', '-c', 'seq 300 | while read i; do echo $i > /f$i; done'],
            stateDir: ${JSON.stringify(stateDir)} });
          process.kill(process.pid, 'SIGKILL');`,
        );
        expect(() => execFileSync(process.execPath, [join(dir, 'run.mjs')], { stdio: 'ignore', timeout: 30_000 })).toThrow();
        expect(await eventually(() => readdirSync(stateDir).length === 0, 5000)).toBe(true);
      } finally {
        cleanup();
      }
    });

    it('containers share the same lower and see only their own writes', async () => {
      const runs = await Promise.all([1, 2, 3].map((i) => sh(`echo ${i} > /mine; sleep 0.2; ls / | grep -c mine; cat /mine`)));
      expect(runs.map((r) => r.stdout)).toEqual(['1\n1\n', '1\n2\n', '1\n3\n']);
    });

    it('keepLayer keeps the writes for diff and commit', async () => {
      const r = await sh('echo new > /created; rm /etc/os-release; chmod 600 /etc/passwd', { keepLayer: true });
      const layer = r.layer!;
      try {
        expect(layer).toMatchObject({ driver: 'overlay', lower: [rootfs] });
        const changes = await diff({ upper: layer.upper, lower: layer.lower });
        expect(formatChanges(changes).split('\n')).toEqual(expect.arrayContaining(['A /created', 'D /etc/os-release', 'C /etc/passwd']));
        const out = join(layer.dir, 'layer.tar.gz');
        const committed = await commit({ upper: layer.upper, lower: layer.lower, output: out });
        expect(committed.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      } finally {
        rmSync(layer.dir, { recursive: true, force: true });
      }
    });

    it('falls back to the copy driver where overlay cannot keep an upper', async () => {
      const [dir, cleanup] = tempDir();
      execFileSync('mount', ['-t', 'ramfs', 'ctkramfs', dir]);
      try {
        const r = await sh('echo copied > /created; cat /created', { stateDir: dir, keepLayer: true });
        expect(r.stdout).toBe('copied\n');
        expect(r.layer!.driver).toBe('copy');
        expect(readFileSync(join(r.layer!.upper, 'created'), 'utf8')).toBe('copied\n');
      } finally {
        execFileSync('umount', [dir]);
        cleanup();
      }
    });

    it('overlay: false runs directly in the rootfs', async () => {
      const [dir, cleanup] = tempDir();
      try {
        cpSync(rootfs, dir, { recursive: true, verbatimSymlinks: true });
        await sh('echo direct > /created', { rootfs: dir, overlay: false });
        expect(readFileSync(join(dir, 'created'), 'utf8')).toBe('direct\n');
      } finally {
        cleanup();
      }
    });
  });
});
