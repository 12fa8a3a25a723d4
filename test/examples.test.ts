import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hostMounts } from './helpers.js';

/** Runs an example as a user would (`node examples/X.mjs`), resolving 'ctrkit' through the package. */
function example(name: string): string {
  return execFileSync(process.execPath, [`examples/${name}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

describe("the chapter's experiments, as examples", () => {
  it('5.1.3: PID 1 inside, and ps sees only the new namespace', () => {
    const out = example('5.1.3-pid-namespace.mjs');
    expect(out).toMatch(/^echo \$\$ -> 1$/m);
    const inside = out.split('ps -e inside:\n')[1]!.split('\n').filter((l) => /^\s*\d+ /.test(l));
    expect(inside.map((l) => l.trim().split(/\s+/)[1])).toEqual(['sh', 'ps']);
    expect(inside[0]!.trim()).toBe('1 sh');
    const host = Number(out.match(/processes on the host: (\d+)/)![1]);
    expect(host).toBeGreaterThan(inside.length);
  });

  it('5.1.3: orphans stay zombies under a PID 1 that never waits, and init reaps them', () => {
    const out = example('5.1.3-orphan-reaping.mjs');
    const [without, withInit] = out.split('init: true');
    expect(without).toMatch(/^\s+1\s+0 S\s+sleep$/m);
    expect(without).toMatch(/^\s+\d+\s+1 Z\s+sleep$/m); // re-parented to PID 1, never reaped
    expect(without).toMatch(/zombies: 1\n.*docker stop: SIGKILL/);
    expect(withInit).toMatch(/^\s+1\s+0 S\s+init$/m);
    expect(withInit).toMatch(/zombies: 0\n.*docker stop: exit 143/); // tini passed SIGTERM on
  });

  it('5.1.4: a new network namespace shows only lo, also through ip netns', () => {
    const out = example('5.1.4-net-namespace.mjs');
    expect(out).toMatch(/^interfaces seen by ctrkit inside: lo$/m);
    const links = out.split(/ip -o link:\n/)[1]!.split('\nhost interfaces')[0]!.trim().split('\n');
    expect(links).toHaveLength(1);
    expect(links[0]).toMatch(/^1: lo: <LOOPBACK,UP,LOWER_UP>/);
    expect(out).toMatch(/^host interfaces for comparison: .*\S+ \S+/m); // the host has more than lo
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain('ctk-container1');
  });

  it('5.1.5: the container has its own /proc and mounts; the host mount table is unchanged', () => {
    const before = hostMounts();
    const out = example('5.1.5-mount-namespace.mjs');
    const pids = out.match(/^ls \/proc \(pids\): (.*)$/m)![1]!.trim().split(' ').map(Number);
    expect(pids[0]).toBe(1);
    expect(pids.length).toBeLessThan(10);
    expect(out).toMatch(/^mounted a tmpfs on \/tmp inside$/m);
    expect(out).toMatch(/^host mount table unchanged: true$/m);
    expect(out).toMatch(/^tmpfs visible on the host: false$/m);
    expect(hostMounts()).toEqual(before);
  });

  it('5.1.6: root inside is uid 100000 outside', () => {
    const out = example('5.1.6-user-namespace.mjs');
    expect(out).toMatch(/^inside: uid=0\(root\) gid=0\(root\)/m);
    expect(out).toMatch(/^uid_map:\s+0\s+100000\s+65536$/m);
    expect(out).toMatch(/^outside: the same process runs as uid 100000 on the host$/m);
  });

  it('5.1.7: pid, net, mnt and uts at once; the others shared', () => {
    const out = example('5.1.7-multiple-namespaces.mjs');
    const state = Object.fromEntries([...out.matchAll(/^(\w+)\s+CLONE_\w+.*(shared|NEW)$/gm)].map((m) => [m[1], m[2]]));
    expect(state).toEqual({ user: 'shared', pid: 'NEW', net: 'NEW', mnt: 'NEW', uts: 'NEW', ipc: 'shared', cgroup: 'shared', time: 'shared' });
    expect(out).toMatch(/^pid: 1, hostname: multi, interfaces: lo$/m);
  });

  it('5.6: the mini-container runs /bin/sh as PID 1 with hostname "container"', () => {
    const out = example('5.6-mini-container.mjs');
    expect(out).toMatch(/^Running \[\/bin\/sh\] as PID 1$/m);
    expect(out).toMatch(/^\$ hostname\ncontainer$/m);
    const ps = out.split('$ ps\n')[1]!.split('\n').slice(1).filter((l) => /^\s*\d+/.test(l)).map((l) => l.trim().split(/\s+/));
    expect(ps[0]).toEqual(['1', 'root', 'sh']);
    expect(ps.map((p) => p[2])).toEqual(['sh', 'ps']);
    expect(out).toMatch(/^exit code 0,/m);
  });

  it('5.2.4 memory: 600M under -m 512m is OOM-killed (kernel counters), 400M is not', () => {
    const out = example('5.2.4-memory-limit.mjs');
    expect(out).toMatch(/^allocate 600M with -m 512m: exit SIGKILL, oomKilled true, limit 512 MiB, .*oom_kill 1$/m);
    expect(out).toMatch(/^allocate 400M with -m 512m: exit 0, oomKilled false, .*failcnt 0, oom_kill 0$/m);
  });

  it('5.2.4 CPU: quota/period 50000/100000 and about half a CPU', () => {
    const out = example('5.2.4-cpu-limit.mjs');
    expect(out).toMatch(/^quota\/period inside the container: 50000\/100000$/m);
    const pct = Number(out.match(/= (\d+)% of one CPU/)![1]);
    expect(pct).toBeGreaterThan(40);
    expect(pct).toBeLessThan(60);
  });

  it('5.2.4 IO: reads and writes at about 10 MiB/s', () => {
    const out = example('5.2.4-io-limit.mjs');
    const rates = [...out.matchAll(/= ([\d.]+) MiB\/s/g)].map((m) => Number(m[1]));
    expect(rates).toHaveLength(2);
    for (const r of rates) expect(r).toBeGreaterThan(7), expect(r).toBeLessThan(13);
  }, 30_000);

  it('5.2.5 monitoring: memory and CPU sampled while the container runs', () => {
    const out = example('5.2.5-monitoring.mjs');
    const rows = out.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    expect(rows).toHaveLength(4);
    expect(Number(rows[3]![1])).toBeGreaterThan(32); // MiB
    expect(Number(rows[3]![4])).toBeGreaterThan(Number(rows[0]![4])); // CPU ms grew
  });
});
