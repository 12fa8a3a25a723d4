// ctrkit-runtime, the OCI runtime command, driven the way containerd's shim and runtime-tools
// drive runc: bundles with a config.json, a private --root, the real kernel.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, cpSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, eventually, rootfs, tempDir } from './helpers.js';

const RUNTIME = resolve('dist/runtime/main.js');
let dir: string;
let root: string;
let cleanup = () => {};
let n = 0;

beforeAll(() => {
  [dir, cleanup] = tempDir();
  root = join(dir, 'state');
});
afterAll(() => {
  for (const id of existsSync(root) ? readdirSync(root) : []) rt('delete', '--force', id);
  cleanup();
});

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * One runtime call. Its stdout and stderr are files, as the shim's FIFOs are: a created
 * container keeps them open, and a pipe would not end while it runs.
 */
function rt(...args: string[]): Result {
  const out = join(dir, `out-${process.pid}`);
  const err = join(dir, `err-${process.pid}`);
  const fds = [openSync(out, 'w'), openSync(err, 'w')];
  try {
    const r = spawnSync(RUNTIME, ['--root', root, ...args], { stdio: ['ignore', fds[0]!, fds[1]!], timeout: 60_000 });
    return { status: r.status, stdout: readFileSync(out, 'utf8'), stderr: readFileSync(err, 'utf8') };
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

/** A fresh bundle: `runtime spec`'s config with `edit` applied, and a copy-free rootfs (root.path absolute). */
function bundle(edit: (c: Spec) => void = () => {}): { dir: string; id: string } {
  const id = `ctk-rt-${process.pid}-${++n}`;
  const b = join(dir, id);
  mkdirSync(b);
  expect(rt('spec', '--bundle', b).status).toBe(0);
  const c = JSON.parse(readFileSync(join(b, 'config.json'), 'utf8')) as Spec;
  c.root.path = rootfs;
  c.root.readonly = true;
  edit(c);
  writeFileSync(join(b, 'config.json'), JSON.stringify(c));
  return { dir: b, id };
}

interface Spec {
  process: {
    args: string[];
    env: string[];
    user: { uid: number; gid: number; additionalGids?: number[] };
    rlimits?: unknown[];
    oomScoreAdj?: number;
    capabilities: Record<string, string[]>;
    cwd: string;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  hooks?: Record<string, unknown[]>;
  mounts: unknown[];
  linux: Record<string, unknown> & { namespaces: { type: string; path?: string }[]; maskedPaths: string[]; resources: Record<string, unknown> };
}

function state(id: string): { status: string; pid: number; bundle: string; id: string } {
  const r = rt('state', id);
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout);
}

/** Whether the container is stopped within a second (a killed init takes a moment to go). */
function eventuallyStopped(id: string): boolean {
  for (let i = 0; i < 100; i++) {
    if (state(id).status === 'stopped') return true;
    spawnSync('sleep', ['0.01']);
  }
  return false;
}

/** Runs the bundle's process to its end and returns its output and status. */
function runToEnd(b: { dir: string; id: string }): Result {
  const r = spawnSync(RUNTIME, ['--root', root, 'run', '--bundle', b.dir, b.id], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The cgroup v1 directories named `path` (ctrkit-runtime's default parent included). */
function cgroupDirs(path: string): string[] {
  return readdirSync('/sys/fs/cgroup')
    .map((h) => join('/sys/fs/cgroup', h, path))
    .filter((d) => existsSync(d));
}

describe('ctrkit-runtime', () => {
  it('create leaves the init waiting as a child of the caller (a subreaper sees it exit); start runs it', () => {
    const b = bundle((c) => {
      c.process.args = ['sh', '-c', 'echo started as $$; exit 7'];
    });
    const r = spawnSync(process.execPath, ['test/fixtures/subreaper.mjs', RUNTIME, root, b.dir, b.id], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('started as 1'); // PID 1 of its own namespace
    const out = JSON.parse(lines.at(-1)!);
    expect(out.pidFile).toMatch(/^\d+$/); // bare digits, no newline: go-runc parses it with Atoi
    expect(out.ppid).toBe(out.self); // nothing between the caller and the init
    expect(out.exitCode).toBe(7);
    expect(state(b.id).status).toBe('stopped');
    expect(rt('delete', b.id).status).toBe(0);
    expect(cgroupDirs(`ctk-runtime/${b.id}`)).toEqual([]);
  });

  it("state, ps, pause, resume, kill by name and number, delete; clients' error texts", async () => {
    const b = bundle((c) => {
      c.process.args = ['sh', '-c', 'trap "exit 9" USR1; while true; do sleep 0.05; done'];
      c.linux.cgroupsPath = `/ctk-rt-test/${process.pid}-${n}`;
    });
    expect(rt('create', '--bundle', b.dir, b.id).status).toBe(0);
    const created = state(b.id);
    expect(created).toMatchObject({ id: b.id, status: 'created', bundle: b.dir });
    expect(alive(created.pid)).toBe(true);
    // The init sits in the config's cgroup already.
    expect(readFileSync(`/sys/fs/cgroup/memory/ctk-rt-test/${process.pid}-${n}/cgroup.procs`, 'utf8').trim()).toBe(String(created.pid));
    expect(rt('start', b.id).status).toBe(0);
    expect(state(b.id).status).toBe('running');
    expect(rt('start', b.id).stderr).toMatch(/cannot start an already running container/);
    const ps = rt('ps', '--format', 'json', b.id);
    expect(JSON.parse(ps.stdout)).toContain(created.pid);
    expect(rt('pause', b.id).status).toBe(0);
    expect(state(b.id).status).toBe('paused');
    expect(rt('delete', b.id).stderr).toMatch(/not stopped: paused/);
    expect(rt('resume', b.id).status).toBe(0);
    expect(state(b.id).status).toBe('running');
    expect(rt('kill', b.id, 'USR1').status).toBe(0);
    expect(await eventually(() => state(b.id).status === 'stopped')).toBe(true);
    expect(state(b.id).pid).toBe(0);
    expect(rt('kill', b.id, '9').stderr).toMatch(/container not running/);
    expect(rt('delete', b.id).status).toBe(0);
    expect(rt('state', b.id).stderr).toMatch(/does not exist/);
    expect(rt('delete', b.id).status).not.toBe(0);
    expect(rt('delete', '--force', b.id).status).toBe(0); // the shim's second delete
    expect(rt('state').status).not.toBe(0); // no id
    expect(rt('kill', b.id, 'SIGNOPE').status).not.toBe(0);
    expect(cgroupDirs(`ctk-rt-test/${process.pid}-${n}`)).toEqual([]);
    for (const d of cgroupDirs('ctk-rt-test')) spawnSync('rmdir', [d]);
  });

  it('exec joins the namespaces and cgroup; --detach hands over the PID; delete --force ends a running one', async () => {
    const b = bundle((c) => {
      c.process.args = ['sleep', '60'];
      c.hostname = 'ctk-exec';
    });
    expect(rt('create', '--bundle', b.dir, b.id).status).toBe(0);
    expect(rt('exec', b.id, 'true').stderr).toMatch(/created/);
    expect(rt('start', b.id).status).toBe(0);
    const r = rt('exec', b.id, 'sh', '-c', 'echo $$ $(hostname); cat /proc/1/cmdline; exit 4');
    expect(r.status).toBe(4);
    expect(r.stdout).toMatch(/^\d+ ctk-exec\nsleep\0?60/);
    expect(rt('exec', b.id, 'no-such-command').stderr).toMatch(/ENOENT/);
    const pidFile = join(b.dir, 'exec.pid');
    const processFile = join(b.dir, 'process.json');
    writeFileSync(processFile, JSON.stringify({ args: ['sleep', '30'], cwd: '/', env: ['PATH=/bin'], user: { uid: 0, gid: 0 } }));
    expect(rt('exec', '--process', processFile, '--detach', '--pid-file', pidFile, b.id).status).toBe(0);
    const execPid = Number(readFileSync(pidFile, 'utf8'));
    expect(alive(execPid)).toBe(true);
    expect(JSON.parse(rt('ps', '--format', 'json', b.id).stdout)).toContain(execPid);
    expect(rt('delete', b.id).stderr).toMatch(/not stopped: running/);
    expect(rt('delete', '--force', b.id).status).toBe(0);
    expect(await eventually(() => !alive(execPid))).toBe(true);
    expect(existsSync(join(root, b.id))).toBe(false);
  });

  it('honours the process and linux fields: user, capabilities, rlimits, oomScoreAdj, sysctl, devices, masks, read-only root', () => {
    const b = bundle((c) => {
      c.process.args = [
        'sh',
        '-c',
        'id -u; id -G; grep -E "^Cap(Eff|Amb)" /proc/self/status; ulimit -n; cat /proc/self/oom_score_adj; cat /proc/sys/net/ipv4/ip_forward; ls -l /dev/ctk-null | cut -c1; wc -c < /proc/keys; touch /x 2>&1 | grep -c Read-only',
      ];
      c.process.user = { uid: 1000, gid: 1000, additionalGids: [5] };
      c.process.capabilities = {
        bounding: ['CAP_NET_BIND_SERVICE', 'CAP_KILL'],
        effective: ['CAP_NET_BIND_SERVICE'],
        permitted: ['CAP_NET_BIND_SERVICE'],
        ambient: ['CAP_NET_BIND_SERVICE'],
      };
      c.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 321, hard: 654 }];
      c.process.oomScoreAdj = 123;
      c.linux.sysctl = { 'net.ipv4.ip_forward': '1' };
      c.linux.devices = [{ path: '/dev/ctk-null', type: 'c', major: 1, minor: 3, fileMode: 0o666 }];
      c.linux.resources = {
        devices: [
          { allow: false, access: 'rwm' },
          { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
        ],
      };
    });
    const r = runToEnd(b);
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')).toEqual(['1000', '1000 5', 'CapEff:\t0000000000000400', 'CapAmb:\t0000000000000400', '321', '123', '1', 'c', '0', '1', '']);
    expect(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim()).not.toBe('2'); // the host's untouched (it cannot be 2; read for the record)
    expect(existsSync(join(root, b.id))).toBe(false);
  });

  it('gives a terminal through --console-socket, on create and on exec', async () => {
    /** A console socket that types `input` and resolves with what the terminal printed until it closed. */
    const consoleSocket = async (input: string): Promise<{ path: string; output: Promise<string> }> => {
      const path = join(dir, `console-${++n}.sock`);
      const receiver = spawn('python3', ['test/fixtures/console-socket.py', path, input], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      const output = new Promise<string>((done) => receiver.on('close', () => done(out.replace(/^ready\n/, ''))));
      await new Promise<void>((ready) =>
        receiver.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.startsWith('ready\n')) ready();
        }),
      );
      return { path, output };
    };
    const b = bundle((c) => {
      c.process.args = ['sh', '-c', 'tty; read line; echo got $line; stty size; sleep 60'];
      (c.process as unknown as Record<string, unknown>).terminal = true;
      (c.process as unknown as Record<string, unknown>).consoleSize = { height: 30, width: 100 };
    });
    const first = await consoleSocket('hello\n');
    expect(rt('create', '--bundle', b.dir, '--console-socket', first.path, b.id).stderr).toBe('');
    expect(rt('start', b.id).status).toBe(0);
    const second = await consoleSocket('');
    expect(rt('exec', '--tty', '--console-socket', second.path, b.id, 'sh', '-c', 'tty; echo in').status).toBe(0);
    expect(await second.output).toMatch(/^\/dev\/pts\/1\r\nin\r\n$/);
    expect(rt('kill', b.id, 'KILL').status).toBe(0);
    const seen = await first.output;
    expect(seen).toContain('/dev/pts/0\r\n'); // its controlling terminal, the container's first pty (after the echo of what was typed)
    expect(seen).toContain('got hello');
    expect(seen).toContain('30 100');
    expect(rt('delete', b.id).status).toBe(0);
    expect(rt('create', '--bundle', b.dir, b.id).stderr).toMatch(/needs --console-socket/);
  });

  it('runs the hooks with the state on stdin', () => {
    const out = join(dir, `hooks-${n}`);
    mkdirSync(out);
    const hook = (name: string) => ({ path: '/bin/sh', args: ['sh', '-c', `cat > ${out}/${name}`] });
    const b = bundle((c) => {
      c.process.args = ['true'];
      c.hooks = {
        prestart: [hook('prestart')],
        createRuntime: [hook('createRuntime')],
        createContainer: [hook('createContainer')],
        poststart: [hook('poststart')],
        poststop: [hook('poststop')],
      };
    });
    expect(runToEnd(b).status).toBe(0);
    const seen = (name: string) => JSON.parse(readFileSync(join(out, name), 'utf8')) as { status: string; id: string; pid: number; bundle: string };
    expect(seen('prestart')).toMatchObject({ id: b.id, status: 'created', bundle: b.dir });
    expect(seen('createRuntime').status).toBe('creating');
    expect(seen('createContainer').status).toBe('created');
    expect(seen('poststart').status).toBe('running');
    expect(seen('poststop').status).toBe('stopped');
    expect(seen('prestart').pid).toBeGreaterThan(1);
  });

  it('runs startContainer hooks inside the container, before its process', () => {
    const b = bundle((c) => {
      c.hostname = 'ctk-hooked';
      c.process.args = ['cat', '/dev/shm/seen'];
      c.hooks = { startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'hostname > /dev/shm/seen; cat >> /dev/shm/seen'] }] };
    });
    const r = runToEnd(b);
    expect(r.stderr).toBe('');
    const [host, state] = r.stdout.split('\n');
    expect(host).toBe('ctk-hooked'); // the container's UTS namespace, its /dev/shm
    expect(JSON.parse(state!)).toMatchObject({ id: b.id, status: 'created' });
    const failing = bundle((c) => {
      c.process.args = ['true'];
      c.hooks = { startContainer: [{ path: '/bin/false' }] };
    });
    expect(rt('create', '--bundle', failing.dir, failing.id).status).toBe(0);
    expect(rt('start', failing.id).stderr).toMatch(/startContainer\[0\] hook \/bin\/false exited with status 1/);
    expect(eventuallyStopped(failing.id)).toBe(true);
    expect(rt('delete', failing.id).status).toBe(0);
  });

  it('refuses bad bundles with a typed message in the JSON log, and leaves nothing behind', () => {
    const log = join(dir, 'log.json');
    const failing = (edit: (c: Spec) => void): string => {
      const b = bundle(edit);
      const r = spawnSync(RUNTIME, ['--root', root, '--log', log, '--log-format', 'json', 'create', '--bundle', b.dir, b.id], { encoding: 'utf8' });
      expect(r.status).toBe(1);
      expect(existsSync(join(root, b.id))).toBe(false);
      expect(cgroupDirs(`ctk-runtime/${b.id}`)).toEqual([]);
      const last = JSON.parse(readFileSync(log, 'utf8').trim().split('\n').at(-1)!);
      expect(last.level).toBe('error');
      return last.msg as string;
    };
    expect(failing((c) => (c.process.args = ['no-such-command']))).toMatch(/no-such-command.*ENOENT/);
    expect(failing((c) => (c.process.rlimits = [{ type: 'RLIMIT_BOGUS', soft: 1, hard: 1 }]))).toMatch(/process\.rlimits\[0\]\.type: unknown rlimit/);
    expect(failing((c) => (c.linux.sysctl = { 'kernel.panic': '1' }))).toMatch(/not namespaced/);
    expect(failing((c) => c.linux.namespaces.push({ type: 'user' }))).toMatch(/user namespaces are not supported/);
    expect(failing((c) => ((c.process as unknown as Record<string, unknown>).apparmorProfile = 'x'))).toMatch(/apparmorProfile/);
    expect(failing((c) => (c.linux.resources = { memory: { limit: -5 } }))).toMatch(/memory/);
    const b = bundle();
    writeFileSync(join(b.dir, 'config.json'), '{"ociVersion":');
    expect(rt('create', '--bundle', b.dir, b.id).stderr).toMatch(/config.json: not JSON/);
    expect(rt('--bogus', 'state', 'x').stderr).toMatch(/flag provided but not defined/);
  });

  it('update applies resources to the cgroup; events --stats reports them', () => {
    const b = bundle((c) => {
      c.process.args = ['sleep', '60'];
    });
    expect(rt('create', '--bundle', b.dir, b.id).status).toBe(0);
    const resources = join(b.dir, 'resources.json');
    writeFileSync(resources, JSON.stringify({ memory: { limit: 64 * 1024 * 1024 }, pids: { limit: 42 } }));
    expect(rt('update', '--resources', resources, b.id).status).toBe(0);
    expect(readFileSync(`/sys/fs/cgroup/memory/ctk-runtime/${b.id}/memory.limit_in_bytes`, 'utf8').trim()).toBe(String(64 * 1024 * 1024));
    expect(readFileSync(`/sys/fs/cgroup/pids/ctk-runtime/${b.id}/pids.max`, 'utf8').trim()).toBe('42');
    const ev = JSON.parse(rt('events', '--stats', b.id).stdout);
    expect(ev).toMatchObject({ type: 'stats', id: b.id });
    expect(ev.data.pids.current).toBe(1);
    expect(ev.data.memory.usage.limit).toBe(64 * 1024 * 1024);
    const list = JSON.parse(rt('list', '--format', 'json').stdout) as { id: string }[];
    expect(list.map((s) => s.id)).toContain(b.id);
    expect(rt('delete', b.id).status).toBe(0); // a created container may be deleted
    expect(cgroupDirs(`ctk-runtime/${b.id}`)).toEqual([]);
  });

  it('features and spec describe what it does', () => {
    const f = JSON.parse(rt('features').stdout);
    expect(f.ociVersionMax).toMatch(/^1\./);
    expect(f.linux.namespaces).toContain('pid');
    expect(f.hooks).toContain('poststop');
    const b = join(dir, 'spec-only');
    mkdirSync(b);
    expect(rt('spec', '--bundle', b).status).toBe(0);
    expect(rt('spec', '--bundle', b).stderr).toMatch(/exists/);
    cpSync(join(b, 'config.json'), join(b, 'copy.json'));
    expect(JSON.parse(readFileSync(join(b, 'copy.json'), 'utf8')).process.terminal).toBe(false);
  });
});
