import { readFileSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { NAMESPACES, NamespaceRef, unshare, type NamespacedProcess, type NamespaceType, type UnshareOptions } from 'ctrkit/namespaces';
import { InvalidOptionError } from 'ctrkit';
import { rootfs, run } from './helpers.js';

/** Runs a command to completion and returns its stdout, exit status and namespaces. */
async function capture(opts: UnshareOptions): Promise<{ out: string; err: string; code: number | null; proc: NamespacedProcess }> {
  const proc = await unshare({ stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (err += d));
  const st = await proc.exited;
  await new Promise((r) => setImmediate(r));
  return { out, err, code: st.exitCode, proc };
}

describe('the namespace table', () => {
  it("lists the eight types with the chapter's flags and kernel versions", () => {
    const byType = Object.fromEntries(NAMESPACES.map((n) => [n.type, n]));
    expect(NAMESPACES).toHaveLength(8);
    expect(byType.pid).toMatchObject({ flagName: 'CLONE_NEWPID', flag: 0x20000000, since: '2.6.24' });
    expect(byType.net).toMatchObject({ flagName: 'CLONE_NEWNET', flag: 0x40000000, since: '2.6.29' });
    expect(byType.mnt).toMatchObject({ flagName: 'CLONE_NEWNS', flag: 0x00020000, since: '2.4.19' });
    expect(byType.uts).toMatchObject({ flagName: 'CLONE_NEWUTS', since: '2.6.19' });
    expect(byType.ipc).toMatchObject({ flagName: 'CLONE_NEWIPC', since: '2.6.19' });
    expect(byType.user).toMatchObject({ flagName: 'CLONE_NEWUSER', since: '3.8' });
    expect(byType.cgroup).toMatchObject({ flagName: 'CLONE_NEWCGROUP', flag: 0x02000000, since: '4.6' });
    expect(byType.time).toMatchObject({ flagName: 'CLONE_NEWTIME', flag: 0x80, since: '5.6' });
    // Every type exists on this kernel under /proc/self/ns.
    for (const n of NAMESPACES) expect(NamespaceRef.host(n.type).inode).toBeGreaterThan(0);
  });
});

describe('each namespace type really isolates', () => {
  /** Exactly the requested type differs from the host; every other one is shared. */
  function expectOnly(proc: NamespacedProcess, created: NamespaceType[]): void {
    for (const { type } of NAMESPACES) {
      const theirs = proc.namespaces[type];
      expect(theirs, type).toBeDefined();
      expect(theirs!.sameAs(NamespaceRef.host(type)), `${type} shared with the host`).toBe(!created.includes(type));
    }
  }

  it('pid: the command is PID 1 and ps sees only the new namespace', async () => {
    const r = await capture({ command: ['sh', '-c', 'echo $$; ps -o pid,comm; exit 0'], namespaces: ['pid', 'mnt'], rootfs });
    expect(r.code).toBe(0);
    const [pid, , ...ps] = r.out
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/).join(' '));
    expect(pid).toBe('1');
    // The whole process list: the shell as PID 1 and ps itself, nothing of the host's.
    expect(ps).toHaveLength(2);
    expect(ps[0]).toBe('1 sh');
    expect(ps[1]).toMatch(/^\d+ ps$/);
    expectOnly(r.proc, ['pid', 'mnt']);
  });

  it('net: only lo, and it is up', async () => {
    const r = await capture({
      command: ['sh', '-c', 'ls /sys/class/net; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags'],
      namespaces: ['net', 'mnt'],
      rootfs,
    });
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines[0]).toBe('lo');
    expect(Number(lines[2]) & 0x1).toBe(1); // IFF_UP
    expectOnly(r.proc, ['net', 'mnt']);
  });

  it('mnt: mounts made inside never reach the host', async () => {
    const before = readFileSync('/proc/self/mountinfo', 'utf8');
    const r = await capture({
      command: ['sh', '-c', 'mkdir -p /tmp/ctk-inner && mount -t tmpfs ctkinner /tmp/ctk-inner && grep -c ctkinner /proc/self/mountinfo'],
      namespaces: ['mnt'],
      rootfs,
      capabilities: 'all',
    });
    expect(r.err).toBe('');
    expect(r.out.trim()).toBe('1');
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).toBe(before);
    expectOnly(r.proc, ['mnt']);
  });

  it('uts: the hostname inside is its own', async () => {
    const r = await capture({
      command: ['sh', '-c', 'hostname; cat /proc/sys/kernel/domainname'],
      namespaces: ['uts', 'mnt'],
      rootfs,
      hostname: 'ctk-uts',
      domainname: 'ctk.example',
    });
    expect(r.out.trim().split('\n')).toEqual(['ctk-uts', 'ctk.example']);
    expect(osHostname()).not.toBe('ctk-uts');
    expectOnly(r.proc, ['uts', 'mnt']);
  });

  it('ipc: a System V segment of the host is invisible inside, and visible without the namespace', async () => {
    const id = run('ipcmk', ['-M', '4096']).match(/(\d+)\s*$/)![1]!;
    try {
      const list = ['awk', 'NR > 1 { print $2 }', '/proc/sysvipc/shm']; // the shmid column
      const inside = await capture({ command: list, namespaces: ['ipc', 'mnt'], rootfs });
      expect(inside.out.split('\n')).not.toContain(id);
      expectOnly(inside.proc, ['ipc', 'mnt']);
      const shared = await capture({ command: list, namespaces: ['mnt'], rootfs });
      expect(shared.out.split('\n')).toContain(id);
    } finally {
      run('ipcrm', ['-m', id]);
    }
  });

  it('user: root inside is an unprivileged uid outside', async () => {
    const map = [{ inside: 0, outside: 200000, count: 65536 }];
    const proc = await unshare({
      command: ['sh', '-c', 'id -u; cat /proc/self/uid_map; sleep 5'],
      namespaces: ['user', 'mnt', 'pid'],
      rootfs,
      uidMap: map,
      gidMap: map,
    });
    let out = '';
    proc.stdout!.on('data', (d) => (out += d));
    // The kernel's own view from outside: the process's real uid on the host.
    await new Promise((r) => setTimeout(r, 300));
    const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
    expect(status).toMatch(/^Uid:\s+200000\s+200000\s+200000\s+200000$/m);
    proc.kill('SIGKILL');
    await proc.exited;
    expect(out.trim().split('\n')[0]).toBe('0');
    expect(out).toMatch(/^\s*0\s+200000\s+65536$/m);
    expectOnly(proc, ['user', 'mnt', 'pid']);
  });

  it('cgroup: the container sees its own cgroup as the root', async () => {
    const host = readFileSync('/proc/self/cgroup', 'utf8');
    const r = await capture({ command: ['cat', '/proc/self/cgroup'], namespaces: ['cgroup', 'mnt'], rootfs });
    const paths = r.out
      .trim()
      .split('\n')
      .map((l) => l.split(':').slice(2).join(':'));
    expect(paths.every((p) => p === '/')).toBe(true);
    // This machine's own processes sit in a non-root memory cgroup: the host view differs.
    expect(host.split('\n').some((l) => /:\/.+/.test(l))).toBe(true);
    expectOnly(r.proc, ['cgroup', 'mnt']);
  });

  it('time: boot-time and monotonic clocks carry the offsets', async () => {
    const day = 86400;
    const hostUptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    const r = await capture({
      command: ['cat', '/proc/uptime'],
      namespaces: ['time', 'mnt', 'pid'],
      rootfs,
      timeOffsets: { boottime: 10 * day, monotonic: 5 * day },
    });
    const inside = Number(r.out.split(' ')[0]);
    expect(inside - hostUptime).toBeGreaterThan(10 * day - 60);
    expect(inside - hostUptime).toBeLessThan(10 * day + 60);
    expectOnly(r.proc, ['time', 'mnt', 'pid']);
  });

  it("several namespaces at once (the chapter's 5.1.7)", async () => {
    const r = await capture({
      command: ['sh', '-c', 'echo $$; hostname; ls /sys/class/net'],
      namespaces: ['pid', 'net', 'mnt', 'uts'],
      rootfs,
      hostname: 'multi',
    });
    expect(r.out.trim().split('\n')).toEqual(['1', 'multi', 'lo']);
    expectOnly(r.proc, ['pid', 'net', 'mnt', 'uts']);
  });
});

describe('namespace handles', () => {
  it('persist a namespace with a bind mount (like ip netns add) and release it', async () => {
    const proc = await unshare({ command: ['sleep', '30'], namespaces: ['net', 'mnt'], rootfs, stdio: 'ignore' });
    const net = proc.namespaces.net!;
    const name = `ctk-ns-${process.pid}`;
    const held = await net.persist(`/run/netns/${name}`);
    try {
      await proc[Symbol.asyncDispose]();
      // The process is gone; the namespace lives on, with the same identity.
      const reopened = await NamespaceRef.open(`/run/netns/${name}`, 'net');
      expect(reopened.sameAs(net)).toBe(true);
      expect(run('ip', ['netns', 'list'])).toContain(name);
      const links = run('ip', ['netns', 'exec', name, 'ip', '-o', 'link']).trim().split('\n');
      expect(links).toHaveLength(1);
      expect(links[0]).toMatch(/^1: lo:/);
    } finally {
      await held.release();
    }
    expect(run('ip', ['netns', 'list'])).not.toContain(name);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(name);
  });

  it('refuses to persist onto an existing path and leaves it alone', async () => {
    const proc = await unshare({ command: ['sleep', '30'], namespaces: ['net'], stdio: 'ignore' });
    try {
      await expect(proc.namespaces.net!.persist('/proc/self/status')).rejects.toThrow(/already exists/);
    } finally {
      await proc[Symbol.asyncDispose]();
    }
  });

  it('rejects unknown namespace names with a typed error', async () => {
    await expect(unshare({ command: ['true'], namespaces: ['pid', 'bogus' as NamespaceType] })).rejects.toThrow(InvalidOptionError);
    await expect(unshare({ command: ['true'], namespaces: ['bogus' as NamespaceType] })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
      option: 'namespaces',
    });
  });
});
