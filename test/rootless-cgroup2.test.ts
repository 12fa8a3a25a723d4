// Rootless cgroup v2 delegation, end to end, in the cgroup v2 VM lane (npm run test:cgroup2):
// ctrkit runs as the unprivileged ROOTLESS_USER in a subtree delegated to it the way systemd
// delegates user@UID.service (scripts/cgroup2-vm.sh makes /sys/fs/cgroup/ctk-user-UID, owned
// by the user, and names it in CTRKIT_DELEGATED_CGROUP). Its containers get their cgroups
// there, with their limits, and lose them afterwards; without delegation the error is typed
// and names what to configure. Anywhere else (the hybrid development hosts, where the
// resource controllers are v1's) these tests skip: rootless.test.ts checks the v1 refusal.
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectCgroupLayout } from 'ctrkit/cgroups';
import { ROOTLESS_USER, rootlessPackageCopy, rootlessUid } from './helpers.js';

const layout = await detectCgroupLayout();
const uid = rootlessUid();
const delegated = process.env.CTRKIT_DELEGATED_CGROUP;
const root = layout.unified?.path ?? '/sys/fs/cgroup';
const base = delegated ? join(root, delegated) : '';
const lane = layout.mode === 'v2' && process.getuid?.() === 0 && uid !== undefined && !!delegated && existsSync(base);
const CONTAINER_CGROUP = /^ctk-[0-9a-f]{64}$/;
const SLOW = 300_000; // rootless containers under software emulation

/** Every container cgroup left below `dir`, at any depth. */
function leftovers(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .flatMap((e) => (CONTAINER_CGROUP.test(e.name) ? [join(dir, e.name)] : leftovers(join(dir, e.name))));
}

describe.skipIf(!lane)('rootless cgroup v2: limits in a delegated subtree', () => {
  let dir = '';
  let cleanup = () => {};
  // The leaves the user's processes start in: `tests` made by root (as a session scope is),
  // `own` the user's (as a delegated scope is: `systemd-run --user --scope -p Delegate=yes`).
  const tests = join(base, 'tests');
  const own = join(base, 'own');

  beforeAll(() => {
    [dir, cleanup] = rootlessPackageCopy();
    mkdirSync(tests);
    mkdirSync(own);
    for (const f of ['', 'cgroup.procs', 'cgroup.subtree_control', 'cgroup.threads']) chownSync(join(own, f), uid!, uid!);
  });
  afterAll(async () => {
    cleanup();
    // The users' owner helpers may still be on their way out: end what is left, then remove.
    for (const d of [join(own, 'ctk-caller'), own, tests]) {
      if (!existsSync(d)) continue;
      writeFileSync(join(d, 'cgroup.kill'), '1');
      for (let i = 0; i < 200 && !readFileSync(join(d, 'cgroup.events'), 'utf8').includes('populated 0'); i++) await sleep(50);
      rmdirSync(d);
    }
  });

  /**
   * Runs an ES module as ROOTLESS_USER, started (by root) in the cgroup `leaf`, or left in
   * the test runner's, which is root's; it prints one JSON line.
   */
  function asUser(code: string, leaf?: string): { status: number | null; json: Record<string, unknown>; stderr: string } {
    const file = join(dir, `t-${Math.random().toString(36).slice(2)}.mjs`);
    writeFileSync(file, code, { mode: 0o644 });
    const env = { PATH: process.env.PATH, HOME: `/home/${ROOTLESS_USER}` };
    const r = leaf
      ? spawnSync(
          'sh',
          [
            '-c',
            'echo $$ > "$1/cgroup.procs" && exec setpriv --reuid="$2" --regid="$2" --clear-groups -- "$3" "$4"',
            'sh',
            leaf,
            String(uid),
            process.execPath,
            file,
          ],
          { cwd: dir, encoding: 'utf8', env },
        )
      : spawnSync(process.execPath, [file], { uid, gid: uid, cwd: dir, encoding: 'utf8', env });
    const last = r.stdout.trim().split('\n').pop() ?? '{}';
    return { status: r.status, json: JSON.parse(last || '{}') as Record<string, unknown>, stderr: r.stderr };
  }

  /** The script's part that runs a container and reports its cgroup, seen from the host while it ran. */
  const runAndReport = (options: string) => `
    import { existsSync, readFileSync } from 'node:fs';
    import { Container } from 'ctrkit';
    let cgroup = '', limits = {};
    const r = await Container.run({ ...${options}, onNamespaces: ({ pid }) => {
      cgroup = readFileSync('/proc/' + pid + '/cgroup', 'utf8').trim().replace(/^0::/, '');
      const read = (f) => { try { return readFileSync('/sys/fs/cgroup' + cgroup + '/' + f, 'utf8').trim(); } catch { return undefined; } };
      limits = { memoryMax: read('memory.max'), pidsMax: read('pids.max') };
    } });
    console.log(JSON.stringify({ ...r, cgroup, limits, self: readFileSync('/proc/self/cgroup', 'utf8').trim(), gone: !existsSync('/sys/fs/cgroup' + cgroup) }));
  `;

  it(
    'a memory limit: the container gets its cgroup in the delegated subtree, is OOM-killed, and the cgroup is gone afterwards',
    () => {
      const r = asUser(runAndReport(`{ memory: '32m', command: ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1'] }`), tests);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      // The caller sits in a leaf root made: its parent, the delegated cgroup, holds the container's.
      expect(r.json.self).toBe(`0::/${delegated}/tests`);
      expect(r.json.cgroup).toMatch(new RegExp(`^/${delegated}/ctk-[0-9a-f]{64}$`));
      expect(r.json.limits).toMatchObject({ memoryMax: String(32 * 1024 * 1024) });
      expect(r.json.oomKilled).toBe(true);
      expect((r.json.stats as { memory?: { oomKills?: number } }).memory?.oomKills).toBeGreaterThanOrEqual(1);
      expect(r.json.gone).toBe(true);
      expect(leftovers(base)).toEqual([]);
    },
    SLOW,
  );

  it(
    'a pids limit stops a fork bomb-lite',
    () => {
      // `echo` is the shell's own: one `forked` per child that exists.
      const bomb = 'i=0; while [ $i -lt 40 ]; do sleep 3 & echo forked; i=$((i+1)); done; wait';
      const r = asUser(runAndReport(`{ pids: 16, command: ['sh', '-c', '${bomb}'] }`), tests);
      expect(r.status).toBe(0);
      expect(r.json.cgroup).toMatch(new RegExp(`^/${delegated}/ctk-[0-9a-f]{64}$`));
      expect(r.json.limits).toMatchObject({ pidsMax: '16' });
      expect(String(r.json.stderr)).toMatch(/can't fork|Resource temporarily unavailable/i);
      const forked = String(r.json.stdout)
        .split('\n')
        .filter((l) => l === 'forked').length;
      expect(forked).toBeGreaterThan(0);
      expect(forked).toBeLessThan(16); // the shell is one of the 16
      expect(r.json.gone).toBe(true);
      expect(leftovers(base)).toEqual([]);
    },
    SLOW,
  );

  it(
    "a caller in a cgroup of its own: moved into a leaf below it (as rootless Podman does), the containers' cgroups beside that leaf",
    () => {
      const r = asUser(
        `
        import { existsSync, readFileSync } from 'node:fs';
        import { Container } from 'ctrkit';
        const seen = [];
        for (let i = 0; i < 2; i++) {
          let cgroup = '';
          const res = await Container.run({ pids: 8, memory: '64m', command: ['cat', '/sys/fs/cgroup/pids.max'], onNamespaces: ({ pid }) => {
            cgroup = readFileSync('/proc/' + pid + '/cgroup', 'utf8').trim().replace(/^0::/, '');
          } });
          seen.push({ cgroup, stdout: res.stdout, exitCode: res.exitCode, gone: !existsSync('/sys/fs/cgroup' + cgroup) });
        }
        const pruned = (await Container.prune()).cgroups;
        console.log(JSON.stringify({ seen, pruned, self: readFileSync('/proc/self/cgroup', 'utf8').trim() }));
      `,
        own,
      );
      expect(r.stderr).toBe('');
      expect(r.json.self).toBe(`0::/${delegated}/own/ctk-caller`);
      const seen = r.json.seen as { cgroup: string; stdout: string; exitCode: number; gone: boolean }[];
      expect(seen).toHaveLength(2);
      for (const s of seen) {
        expect(s.cgroup).toMatch(new RegExp(`^/${delegated}/own/ctk-[0-9a-f]{64}$`));
        expect(s).toMatchObject({ exitCode: 0, gone: true });
        expect(s.stdout.trim()).toBe('8'); // its cgroup namespace is rooted at its cgroup
      }
      expect(r.json.pruned).toEqual([]); // it looked in the delegated subtree, and found nothing left
      expect(leftovers(base)).toEqual([]);
    },
    SLOW,
  );

  it(
    'without delegation: a typed error that names what to configure, and nothing made; without limits the container still runs',
    () => {
      const r = asUser(`
        import { Container } from 'ctrkit';
        const out = {};
        try {
          await Container.run({ memory: '32m', pids: 16, command: ['true'] });
          out.limited = 'ran';
        } catch (e) { out.limited = { name: e.name, code: e.code, version: e.version, cgroup: e.cgroup, message: e.message }; }
        out.plain = (await Container.run({ command: ['true'] })).exitCode;
        out.pruned = (await Container.prune()).cgroups;
        console.log(JSON.stringify(out));
      `);
      expect(r.json.limited).toMatchObject({ name: 'CgroupDelegationError', code: 'ERR_CGROUP_NOT_DELEGATED', version: 2, cgroup: '/runner' });
      const message = String((r.json.limited as { message: string }).message);
      expect(message).toMatch(/cgroup v2 delegation: .*\/runner .*not delegated to uid \d+/);
      expect(message).toContain('systemd-run --user --scope -p Delegate=yes');
      expect(message).toMatch(/chown \d+ \/sys\/fs\/cgroup\/ctk-user-\d+/);
      expect(r.json.plain).toBe(0);
      expect(r.json.pruned).toEqual([]);
      expect(leftovers(root)).toEqual([]);
    },
    SLOW,
  );
});
