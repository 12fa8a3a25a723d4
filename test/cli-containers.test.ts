// The container verbs of the CLI, the way a Docker user types them, on a state root of this file's own.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container } from 'ctrkit';
import { rootfs, tempDir } from './helpers.js';

let dir: string;
let cleanup = () => {};
beforeAll(() => {
  [dir, cleanup] = tempDir();
});
afterAll(async () => {
  for (const c of await Container.list({ stateRoot: join(dir, 'root'), all: true })) await c.remove({ force: true });
  cleanup();
});

function ctrkit(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['dist/cli/main.js', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, CTRKIT_STATE_ROOT: join(dir, 'root') },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('ctrkit container verbs', () => {
  it('run -d, ps, logs, exec, inspect, cp, stats, stop, wait, kill, rm', () => {
    const run = ctrkit(
      'run',
      '-d',
      '--name',
      'ctk-cli',
      '--network',
      'none',
      '--rootfs',
      rootfs,
      '-e',
      'X=1',
      '-w',
      '/tmp',
      'sh',
      '-c',
      'echo hello; echo warn >&2; while true; do sleep 0.1; done',
    );
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const id = run.stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);

    const ps = ctrkit('ps');
    expect(ps.stdout.split('\n')[0]).toMatch(/^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$/);
    expect(ps.stdout).toMatch(new RegExp(`^${id.slice(0, 12)} .* Up .* ctk-cli$`, 'm'));
    expect(ctrkit('ps', '-q').stdout.trim()).toBe(id.slice(0, 12));

    let logs = ctrkit('logs', 'ctk-cli');
    for (let i = 0; i < 50 && !logs.stderr.includes('warn'); i++) logs = ctrkit('logs', 'ctk-cli');
    expect(logs.stdout).toBe('hello\n');
    expect(logs.stderr).toBe('warn\n');
    expect(ctrkit('logs', '--tail', '1', '-t', id.slice(0, 8)).stderr).toMatch(/^\d{4}-\d\d-\d\dT.*Z warn\n$/);

    const exec = ctrkit('exec', 'ctk-cli', 'sh', '-c', 'echo $X $(pwd); exit 5');
    expect(exec).toMatchObject({ status: 5, stdout: '1 /tmp\n' });
    expect(ctrkit('exec', '-u', '1000:1000', 'ctk-cli', 'id', '-u').stdout).toBe('1000\n');

    const info = JSON.parse(ctrkit('inspect', 'ctk-cli').stdout) as { id: string; status: string; detached: boolean }[];
    expect(info[0]).toMatchObject({ id, status: 'running', detached: true });

    // cp both ways.
    mkdirSync(join(dir, 'in'));
    writeFileSync(join(dir, 'in', 'f.txt'), 'from the host');
    expect(ctrkit('cp', join(dir, 'in'), 'ctk-cli:/tmp/').status).toBe(0);
    expect(ctrkit('exec', 'ctk-cli', 'cat', '/tmp/in/f.txt').stdout).toBe('from the host');
    expect(ctrkit('cp', 'ctk-cli:/tmp/in', join(dir, 'out')).status).toBe(0);
    expect(readFileSync(join(dir, 'out', 'in', 'f.txt'), 'utf8')).toBe('from the host');

    expect(ctrkit('stats', '--no-stream', 'ctk-cli').stdout).toMatch(/^CONTAINER ID\s+NAME\s+CPU %/);

    // A running container is not removed without -f.
    expect(ctrkit('rm', 'ctk-cli')).toMatchObject({ status: 1, stderr: expect.stringMatching(/is running/) });
    const stop = ctrkit('stop', '-t', '1', 'ctk-cli');
    expect(stop).toMatchObject({ status: 0, stdout: 'ctk-cli\n' });
    expect(ctrkit('wait', 'ctk-cli').stdout).toBe('137\n'); // sh as PID 1 ignored SIGTERM: SIGKILL
    expect(ctrkit('ps').stdout).not.toContain('ctk-cli');
    expect(ctrkit('ps', '-a').stdout).toMatch(/Exited \(SIGKILL\).*ctk-cli$/m);
    expect(ctrkit('kill', 'ctk-cli')).toMatchObject({ status: 1, stderr: expect.stringMatching(/not running/) });
    expect(ctrkit('rm', 'ctk-cli')).toMatchObject({ status: 0, stdout: 'ctk-cli\n' });
    expect(existsSync(join(dir, 'root', 'containers', id))).toBe(false);
    expect(ctrkit('logs', 'ctk-cli')).toMatchObject({ status: 125, stderr: expect.stringMatching(/no such container/) });
  });

  it('run -t gives the command a terminal; --init makes tini PID 1; run --rm -d removes it at exit', () => {
    const t = ctrkit('run', '-t', '--network', 'none', '--rootfs', rootfs, 'sh', '-c', 'tty; test -t 1 && echo isatty');
    expect(t.status).toBe(0);
    expect(t.stdout.replace(/\r/g, '')).toBe('/dev/pts/0\nisatty\n');
    const init = ctrkit('run', '--init', '--network', 'none', '--rootfs', rootfs, 'sh', '-c', 'cat /proc/1/comm');
    expect(init.stdout).toBe('init\n');
    const d = ctrkit('run', '-d', '--rm', '--network', 'none', '--rootfs', rootfs, 'true').stdout.trim();
    expect(ctrkit('wait', d.slice(0, 12)).status).toBeLessThanOrEqual(1); // gone already, or exited 0
    for (let i = 0; i < 100 && existsSync(join(dir, 'root', 'containers', d)); i++) spawnSync('sleep', ['0.02']);
    expect(existsSync(join(dir, 'root', 'containers', d))).toBe(false);
  });
});
