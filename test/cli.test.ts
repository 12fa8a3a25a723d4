import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rootfs, tempDir } from './helpers.js';

// `run` defaults to bridge networking, like Docker; tests never touch this machine's network.
const cli = (...args: string[]) =>
  spawnSync(process.execPath, ['dist/cli/main.js', ...(args[0] === 'run' ? ['run', '--network', 'none', ...args.slice(1)] : args)], { encoding: 'utf8' });

describe('the ctrkit command', () => {
  it('run: flags like Docker, exit status of the container', () => {
    const r = cli(
      'run',
      '--rootfs',
      rootfs,
      '-h',
      'clibox',
      '-e',
      'A=1',
      '-e',
      'B=two',
      '-w',
      '/tmp',
      '--',
      'sh',
      '-c',
      'echo $A $B $(hostname) $PWD $$; exit 5',
    );
    expect(r.stdout).toBe('1 two clibox /tmp 1\n');
    expect(r.status).toBe(5);
  });

  it('run: 127 for a missing command, 125 for a bad rootfs, 2 for bad flags', () => {
    const missing = cli('run', '--rootfs', rootfs, 'no-such-cmd');
    expect(missing.status).toBe(127);
    expect(missing.stderr).toMatch(/CommandNotFoundError/);
    const bad = cli('run', '--rootfs', '/nonexistent', 'true');
    expect(bad.status).toBe(125);
    expect(bad.stderr).toMatch(/rootfs: \/nonexistent does not exist/);
    expect(cli('run', '--bogus', 'true').status).toBe(2);
    expect(cli('run').status).toBe(2);
  });

  it('run -i passes stdin; --rootfs builtin is the built-in rootfs', () => {
    const r = spawnSync(process.execPath, ['dist/cli/main.js', 'run', '--network', 'none', '-i', '--rootfs', 'builtin', 'sh', '-c', 'tr a-z A-Z'], {
      input: 'shout',
      encoding: 'utf8',
    });
    expect(r.stdout).toBe('SHOUT');
    expect(r.status).toBe(0);
  });

  it('a signal that ends the container gives 128+N', () => {
    const r = cli('run', '--rootfs', rootfs, '--namespaces', 'mnt', 'sh', '-c', 'kill -KILL $$');
    expect(r.status).toBe(137);
  });

  it('resource flags: -m, --cpus, --pids-limit reach the cgroup; an OOM kill is reported', () => {
    const r = cli(
      'run',
      '--rootfs',
      rootfs,
      '-m',
      '64m',
      '--cpus',
      '0.5',
      '--pids-limit',
      '20',
      'sh',
      '-c',
      'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max /sys/fs/cgroup/pids.max',
    );
    expect(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(' ')[0]),
    ).toEqual([String(64 * 1024 ** 2), '50000', '20']);
    const oom = cli('run', '--rootfs', rootfs, '-m', '32m', 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1');
    expect(oom.status).toBe(137);
    expect(oom.stderr).toMatch(/killed by the OOM killer/);
  });

  it("-v binds a host directory, read-only with :ro; --network host shares the host's interfaces", () => {
    const [dir, cleanup] = tempDir();
    try {
      writeFileSync(join(dir, 'f'), 'from host\n');
      const r = cli('run', '--rootfs', rootfs, '-v', `${dir}:/data:ro`, 'sh', '-c', 'cat /data/f; echo x > /data/g 2>&1 || echo read-only');
      expect(r.stdout).toBe('from host\nread-only\n');
      const host = spawnSync(process.execPath, ['dist/cli/main.js', 'run', '--network', 'host', '--rootfs', rootfs, 'ls', '/sys/class/net'], {
        encoding: 'utf8',
      });
      expect(host.stdout.trim().split('\n').sort()).toEqual(readdirSync('/sys/class/net').sort());
    } finally {
      cleanup();
    }
  });

  it('demo runs the mini-container on the built-in rootfs', () => {
    const r = cli('demo');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Running \[\/bin\/sh\] as PID 1$/m);
    expect(r.stdout).toMatch(/^hostname: container$/m);
    expect(r.stdout).toMatch(/^network interfaces: lo$/m);
  });
});
