import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSubIds } from 'ctrkit/namespaces';
import { alive, ROOTLESS_USER, rootlessPackageCopy, rootlessUid } from './helpers.js';

// The rootless tests run ctrkit as an unprivileged user, from a copy of the package that
// user can read (the checkout may sit under a directory only root can enter).
let dir = '';
let cleanup = () => {};
const uid = rootlessUid();

beforeAll(() => {
  expect(uid, `user ${ROOTLESS_USER} must exist (test/setup/global.ts creates it)`).toBeDefined();
  [dir, cleanup] = rootlessPackageCopy();
});
afterAll(() => cleanup());

/** Runs an ES module as ROOTLESS_USER; it prints one JSON line. */
function asUser(code: string): { status: number | null; json: Record<string, unknown>; stderr: string } {
  const file = join(dir, `t-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(file, code, { mode: 0o644 });
  const r = spawnSync(process.execPath, [file], { uid, gid: uid, cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: `/home/${ROOTLESS_USER}` } });
  const last = r.stdout.trim().split('\n').pop() ?? '{}';
  return { status: r.status, json: JSON.parse(last || '{}') as Record<string, unknown>, stderr: r.stderr };
}

describe('rootless: an unprivileged user runs containers', () => {
  it('gets a user namespace automatically: root inside, its own uid outside, subuids for the rest', () => {
    const sub = readSubIds('/etc/subuid', ROOTLESS_USER, uid!)[0]!;
    const r = asUser(`
      import { Container } from 'ctrkit';
      const res = await Container.run({ command: ['sh', '-c', 'id -u; echo $$; hostname; cat /proc/self/uid_map; touch /tmp/x && chown 1000:1000 /tmp/x && stat -c %u /tmp/x'] });
      console.log(JSON.stringify(res));
    `);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = String(r.json.stdout)
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/).join(' '));
    expect(out.slice(0, 3)).toEqual(['0', '1', 'container']);
    expect(out).toContain(`0 ${uid} 1`);
    expect(out).toContain(`1 ${sub.start} ${sub.count}`);
    // chown to a uid from the subordinate range works inside: the multi-range map is real.
    expect(out[out.length - 1]).toBe('1000');
    expect(r.json.exitCode).toBe(0);
  });

  it('the container runs as the user on the host', () => {
    const r = asUser(`
      import { readFileSync } from 'node:fs';
      import { Container } from 'ctrkit';
      const c = await Container.start({ command: ['sleep', '30'], stdio: 'ignore' });
      const status = readFileSync('/proc/' + c.pid + '/status', 'utf8');
      await c[Symbol.asyncDispose]();
      console.log(JSON.stringify({ pid: c.pid, uid: status.match(/^Uid:\\s+(\\d+)/m)[1] }));
    `);
    expect(r.stderr).toBe('');
    expect(r.json.uid).toBe(String(uid));
    expect(alive(Number(r.json.pid))).toBe(false);
  });

  it('a uid map the caller may not use is refused before anything starts', () => {
    const r = asUser(`
      import { Container } from 'ctrkit';
      try {
        await Container.run({ command: ['true'], uidMap: [{ inside: 0, outside: 0, count: 1 }] });
        console.log(JSON.stringify({ ok: true }));
      } catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, option: e.option, message: e.message })); }
    `);
    expect(r.json).toMatchObject({ name: 'InvalidOptionError', code: 'ERR_INVALID_OPTION', option: 'uidMap[0]' });
    expect(String(r.json.message)).toMatch(/may not be mapped by ctkuser/);
  });

  it('limits without a delegated cgroup: a typed error naming what to configure, before anything exists', () => {
    // The caller sits in root's cgroup here. On cgroup v1 (and this project's hybrid hosts)
    // there is no delegation at all; the cgroup v2 VM lane covers delegation itself
    // (rootless-cgroup2.test.ts).
    const r = asUser(`
      import { Container } from 'ctrkit';
      import { detectCgroupLayout } from 'ctrkit/cgroups';
      const mode = (await detectCgroupLayout()).mode;
      try {
        await Container.run({ command: ['true'], memory: '32m', pids: 16 });
        console.log(JSON.stringify({ mode, ok: true }));
      } catch (e) { console.log(JSON.stringify({ mode, name: e.name, code: e.code, version: e.version, message: e.message })); }
    `);
    expect(r.stderr).toBe('');
    expect(r.json).toMatchObject({ name: 'CgroupDelegationError', code: 'ERR_CGROUP_NOT_DELEGATED', version: r.json.mode === 'v2' ? 2 : 1 });
    expect(String(r.json.message)).toMatch(/delegation: .*(systemd\.unified_cgroup_hierarchy=1|chown)/);
    expect(String(r.json.message)).toContain('systemd-run --user --scope -p Delegate=yes');
  });

  it("nsenter works into the user's own container", () => {
    const r = asUser(`
      import { Container } from 'ctrkit';
      import { nsenter } from 'ctrkit/namespaces';
      const c = await Container.start({ command: ['sleep', '30'], hostname: 'mine', stdio: 'ignore' });
      const e = await nsenter({ target: c.pid, command: ['sh', '-c', 'hostname; id -u'], stdio: ['ignore', 'pipe', 'inherit'] });
      let out = ''; e.stdout.on('data', (d) => out += d);
      await e.exited; await c[Symbol.asyncDispose]();
      console.log(JSON.stringify({ out }));
    `);
    expect(r.stderr).toBe('');
    expect(r.json.out).toBe('mine\n0\n');
  });
});
