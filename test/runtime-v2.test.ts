// ctrkit-runtime on a pure cgroup v2 host (the VM lane, npm run test:cgroup2): the init and an
// exec'd process in the container's v2 cgroup, rooted there by their cgroup namespace, the
// runtime's own process back where it came from; limits, freeze, update and removal.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectCgroupLayout } from 'ctrkit/cgroups';
import { rootfs, tempDir } from './helpers.js';

const layout = await detectCgroupLayout();
const RUNTIME = resolve('dist/runtime/main.js');
let dir: string;
let cleanup = () => {};
beforeAll(() => {
  [dir, cleanup] = tempDir();
});
afterAll(() => cleanup());

function rt(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const out = join(dir, 'out');
  const err = join(dir, 'err');
  const fds = [openSync(out, 'w'), openSync(err, 'w')];
  try {
    const r = spawnSync(RUNTIME, ['--root', join(dir, 'state'), ...args], { stdio: ['ignore', fds[0]!, fds[1]!], timeout: 120_000 });
    return { status: r.status, stdout: readFileSync(out, 'utf8'), stderr: readFileSync(err, 'utf8') };
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

describe.skipIf(layout.mode !== 'v2')('ctrkit-runtime on a cgroup v2 host', () => {
  it('puts the container (and only it) into its v2 cgroup, with its limits; exec, pause, update, delete', () => {
    const id = `ctk-rt-v2-${process.pid}`;
    const b = join(dir, id);
    mkdirSync(b);
    expect(rt('spec', '--bundle', b).status).toBe(0);
    const c = JSON.parse(readFileSync(join(b, 'config.json'), 'utf8'));
    c.root = { path: rootfs, readonly: true };
    c.process.args = ['sh', '-c', 'cat /proc/self/cgroup > /dev/shm/cg; sleep 60'];
    c.linux.resources = { memory: { limit: 64 * 1024 * 1024 }, pids: { limit: 20 } };
    writeFileSync(join(b, 'config.json'), JSON.stringify(c));
    const cg = `/sys/fs/cgroup/ctk-runtime/${id}`;
    expect(rt('create', '--bundle', b, id).stderr).toBe('');
    const pid = JSON.parse(rt('state', id).stdout).pid as number;
    // Only the init: the runtime's process visited the cgroup to spawn it, and left.
    expect(readFileSync(`${cg}/cgroup.procs`, 'utf8').trim()).toBe(String(pid));
    expect(readFileSync(`${cg}/memory.max`, 'utf8').trim()).toBe(String(64 * 1024 * 1024));
    expect(readFileSync(`${cg}/pids.max`, 'utf8').trim()).toBe('20');
    expect(rt('start', id).status).toBe(0);
    const ex = rt('exec', id, 'sh', '-c', 'cat /proc/self/cgroup; cat /dev/shm/cg');
    expect(ex.stdout).toBe('0::/\n0::/\n'); // both rooted at the container's cgroup by their namespace
    expect(rt('pause', id).status).toBe(0);
    expect(JSON.parse(rt('state', id).stdout).status).toBe('paused');
    expect(readFileSync(`${cg}/cgroup.freeze`, 'utf8').trim()).toBe('1');
    expect(rt('resume', id).status).toBe(0);
    const res = join(b, 'res.json');
    writeFileSync(res, JSON.stringify({ memory: { limit: 32 * 1024 * 1024 } }));
    expect(rt('update', '--resources', res, id).status).toBe(0);
    expect(readFileSync(`${cg}/memory.max`, 'utf8').trim()).toBe(String(32 * 1024 * 1024));
    expect(rt('delete', '--force', id).status).toBe(0);
    expect(existsSync(cg)).toBe(false);
    expect(existsSync('/sys/fs/cgroup/ctk-runtime')).toBe(false);
  });
});
