// Escape drills against default containers (root on this machine): each tries a way out the
// anchors' CVEs and a red-team pass found, and proves the host is untouched. Network drills
// run in a lab namespace made for this file.
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container } from 'ctrkit';
import { Bridge, NetworkNamespace, NFT_TABLE } from 'ctrkit/network';
import { rootfs, tempDir } from './helpers.js';

let dir: string;
let cleanup = () => {};
beforeAll(() => {
  [dir, cleanup] = tempDir();
});
afterAll(() => cleanup());

const sh = async (script: string, extra: Parameters<typeof Container.run>[0] = {}) =>
  Container.run({ rootfs, stateRoot: join(dir, 'root'), command: ['sh', '-c', script], ...extra });

describe('device nodes', () => {
  let loop: string;
  let image: string;
  beforeAll(() => {
    image = join(dir, 'ctk-disk.img');
    writeFileSync(image, Buffer.alloc(1024 * 1024, 0x42));
    loop = execFileSync('losetup', ['--find', '--show', image], { encoding: 'utf8' }).trim();
  });
  afterAll(() => {
    if (loop) execFileSync('losetup', ['-d', loop]);
  });

  it.each([{}, { memory: '64m' }])('a default container cannot open a host block device it made a node for, nor write /dev/kmsg (%o)', async (limits) => {
    const [major, minor] = execFileSync('stat', ['-c', '%t %T', loop], { encoding: 'utf8' })
      .trim()
      .split(' ')
      .map((h) => Number.parseInt(h, 16));
    const kmsgBefore = execFileSync('dmesg', { encoding: 'utf8' }).includes('ctk-escape-marker');
    const r = await sh(
      [
        `mknod /tmp/disk b ${major} ${minor} && echo made-block`,
        'head -c 4 /tmp/disk > /dev/null 2>&1 && echo READ-BLOCK || echo denied-block',
        'mknod /dev/kmsg2 c 1 11 2>/dev/null && echo made-in-dev',
        '(echo ctk-escape-marker > /dev/kmsg2) 2>/dev/null && echo WROTE-KMSG-DEV || echo denied-dev',
        'mknod /tmp/kmsg c 1 11 && echo made-char',
        '(echo ctk-escape-marker > /tmp/kmsg) 2>/dev/null && echo WROTE-KMSG || echo denied-kmsg',
        'head -c 1 /dev/zero > /dev/null && echo zero-ok',
      ].join('; '),
      limits,
    );
    expect(r.stdout).toContain('made-block'); // mknod is allowed (Docker's set keeps CAP_MKNOD) ...
    expect(r.stdout).toContain('denied-block'); // ... opening is not: the devices cgroup
    expect(r.stdout).toContain('denied-dev'); // and /dev itself is nodev
    expect(r.stdout).toContain('denied-kmsg');
    expect(r.stdout).toContain('zero-ok'); // the standard nodes work
    expect(r.stdout).not.toMatch(/READ-BLOCK|WROTE-KMSG/);
    expect(execFileSync('dmesg', { encoding: 'utf8' }).includes('ctk-escape-marker')).toBe(kmsgBefore);
  });

  it('a device given with `devices` is usable, the rest still are not', async () => {
    const r = await sh(`head -c 4 /dev/${loop.split('/').pop()}; echo; head -c 1 /dev/kmsg > /dev/null 2>&1 || echo no-kmsg`, { devices: [loop] });
    expect(r.stdout).toBe('BBBB\nno-kmsg\n');
  });

  it('every container has a cgroup of its own with a task limit; its cgroup namespace shows nothing else', async () => {
    const r = await sh(
      'cat /proc/self/cgroup | grep -E ":(pids|memory):"; cat /sys/fs/cgroup/pids/pids.max; ls /sys/fs/cgroup/memory | grep -c process_api || true',
    );
    const lines = r.stdout.trim().split('\n');
    expect(lines.filter((l) => /:(pids|memory):\/$/.test(l))).toHaveLength(2); // rooted at its own cgroup
    expect(lines).toContain('2048');
    expect(lines.at(-1)).toBe('0'); // the machine's own cgroups are not visible
    const bomb = await sh('i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i+1)); done 2>/dev/null; jobs -p | wc -l; kill $(jobs -p) 2>/dev/null; true', {
      pids: 20,
    });
    expect(Number(bomb.stdout.trim())).toBeLessThan(20);
  });
});

describe('mounts', () => {
  it("network host gets a fresh read-only sysfs: none of the host's submounts (tracefs, debugfs ...) is reachable", async () => {
    const hostHasTracefs = readFileSync('/proc/self/mountinfo', 'utf8').includes(' /sys/kernel/tracing ');
    const r = await sh(
      'grep -c " /sys/kernel/" /proc/self/mountinfo; ls /sys/kernel/tracing | wc -l; (echo 1 > /sys/kernel/tracing/tracing_on) 2>/dev/null && echo WROTE || echo denied; touch /sys/x 2>/dev/null || echo ro',
      { network: 'host' },
    );
    expect(r.stdout.trim().split('\n')).toEqual(['0', '0', 'denied', 'ro']);
    if (hostHasTracefs) expect(readFileSync('/sys/kernel/tracing/tracing_on', 'utf8')).toBeDefined();
  });

  it("read-only binds are read-only all the way down, and keep the source's nosuid/nodev/noexec", async () => {
    const src = join(dir, 'ctk-ro-src');
    mkdirSync(join(src, 'sub'), { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'nosuid,nodev,noexec', 'ctk-ro-sub', join(src, 'sub')]);
    try {
      const r = await sh('touch /data/a 2>/dev/null || echo top-ro; touch /data/sub/b 2>/dev/null || echo sub-ro; grep " /data/sub " /proc/self/mountinfo', {
        binds: [{ source: src, target: '/data', readonly: true }],
      });
      const lines = r.stdout.trim().split('\n');
      expect(lines.slice(0, 2)).toEqual(['top-ro', 'sub-ro']);
      expect(lines[2]).toMatch(/ ro,nosuid,nodev,noexec/);
    } finally {
      execFileSync('umount', [join(src, 'sub')]);
    }
  });

  it('cgroupfs is read-only: no release_agent, no new cgroup mount', async () => {
    const r = await sh(
      [
        '(echo /tmp/x > /sys/fs/cgroup/memory/release_agent) 2>/dev/null && echo WROTE-AGENT || echo agent-denied',
        'mkdir -p /tmp/cg && (mount -t cgroup -o rdma cgroup /tmp/cg) 2>/dev/null && echo MOUNTED || echo mount-denied',
        '(echo 1 > /proc/sys/kernel/core_pattern) 2>/dev/null && echo WROTE-SYSCTL || echo sysctl-ro',
      ].join('; '),
    );
    expect(r.stdout.trim().split('\n')).toEqual(['agent-denied', 'mount-denied', 'sysctl-ro']);
  });

  it('masked paths show nothing of the host', async () => {
    const masked = ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/sched_debug'].filter(
      (p) => readFileSync('/proc/self/mountinfo') && existsOnHost(p),
    );
    const r = await sh(`for p in ${masked.join(' ')}; do wc -c < $p; done; ls /sys/firmware | wc -l`);
    expect(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => l.trim()),
    ).toEqual([...masked.map(() => '0'), '0']);
  });
});

function existsOnHost(path: string): boolean {
  try {
    readFileSync(path, { flag: 'r' }).subarray(0, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

describe('processes and descriptors', () => {
  it('no descriptor of ours leaks in, and the working directory is inside the container (CVE-2024-21626)', async () => {
    const r = await sh('ls -l /proc/self/fd | awk "NR>1 {print \\$9, \\$11}"; readlink /proc/self/cwd', { cwd: '/tmp' });
    const fds = r.stdout.trim().split('\n');
    expect(fds.at(-1)).toBe('/tmp');
    // 0 1 2, plus the one ls itself opened to list the directory
    expect(
      fds
        .slice(0, -1)
        .map((l) => Number(l.split(' ')[0]))
        .filter((n) => n > 3),
    ).toEqual([]);
    await using c = await Container.start({ rootfs, stateRoot: join(dir, 'root'), command: ['sleep', '30'] });
    const e = await c.exec({ command: ['sh', '-c', 'ls /proc/self/fd | wc -l; readlink /proc/self/cwd'] });
    expect(e.stdout.trim().split('\n')).toEqual(['4', '/']);
  });

  it('a container cannot overwrite the host runtime through /proc/PID/exe while exec stages come and go (CVE-2019-5736)', async () => {
    const hash = () => createHash('sha256').update(readFileSync(process.execPath)).digest('hex');
    const before = hash();
    await using c = await Container.start({
      rootfs,
      stateRoot: join(dir, 'root'),
      command: ['sh', '-c', 'while true; do for p in /proc/[0-9]*; do (echo x >> $p/exe) 2>/dev/null && echo OPENED $p; done; done'],
    });
    for (let i = 0; i < 15; i++) await c.exec({ command: ['true'] });
    expect(hash()).toBe(before);
    expect(await c.logs()).not.toContain('OPENED');
  });

  it('nested user namespaces, new mounts and host processes are out of reach', async () => {
    const r = await sh(
      [
        'unshare -U true 2>/dev/null && echo USERNS || echo userns-denied',
        'unshare -m true 2>/dev/null && echo MNTNS || echo mntns-denied',
        `kill -0 ${process.pid} 2>/dev/null && echo SEES-HOST || echo host-invisible`,
        'ls /proc | grep -cE "^[0-9]+$"',
      ].join('; '),
    );
    const lines = r.stdout.trim().split('\n');
    expect(lines.slice(0, 3)).toEqual(['userns-denied', 'mntns-denied', 'host-invisible']);
    expect(Number(lines[3])).toBeLessThan(5);
  });

  it.runIf(process.arch === 'x64' && spawnSync('gcc', ['--version']).status === 0)(
    "the kernel keyring and the host's processes are out of reach: no key is added, joined or read, no host process traced",
    async () => {
      // A static probe with raw system calls (busybox has no keyctl), bound into the container.
      const probe = join(dir, 'drill');
      const c = spawnSync('gcc', ['-static', '-O2', '-o', probe, join(import.meta.dirname, 'fixtures/drill-keys-ptrace.c')], { encoding: 'utf8' });
      if (c.status !== 0) throw new Error(`gcc -static failed (apt-get install libc6-dev): ${c.stderr}`);
      const keysBefore = readFileSync('/proc/keys', 'utf8');
      const r = await Container.run({
        rootfs,
        stateRoot: join(dir, 'root'),
        command: ['/drill', String(process.pid)],
        binds: [{ source: probe, target: '/drill', readonly: true }],
      });
      const seen = Object.fromEntries(
        r.stdout
          .trim()
          .split('\n')
          .map((l) => l.split(' ') as [string, string]),
      );
      // The keyring calls are not on the allow-list: the container gets no key of any user's.
      expect(seen).toMatchObject({ add_key: 'EPERM', join_session: 'EPERM', read_user_keyring: 'EPERM', request_key: 'EPERM' });
      // Our PID names nothing (or something else) in its PID namespace: never this process.
      for (const call of ['ptrace_seize_host', 'ptrace_attach_host', 'process_vm_readv_host', 'pidfd_open_host']) expect(seen[call]).not.toMatch(/^ok/);
      // The host is untouched: no key named ctk-drill appeared, and nobody traces this process.
      expect(readFileSync('/proc/keys', 'utf8')).not.toContain('ctk-drill');
      expect(readFileSync('/proc/keys', 'utf8').split('\n').length).toBe(keysBefore.split('\n').length);
      expect(readFileSync('/proc/self/status', 'utf8')).toMatch(/^TracerPid:\s+0$/m);
    },
  );

  it("never shares the caller's controlling terminal: its own session, no /dev/tty", async () => {
    const r = await sh('cut -d" " -f6 /proc/self/stat; ls /dev/tty 2>&1 | grep -c "No such"');
    const [sid, noTty] = r.stdout.trim().split('\n');
    expect(Number(sid)).toBeGreaterThan(0);
    expect(noTty).toBe('1');
  });
});

describe('bridges', () => {
  let lab: NetworkNamespace;
  let bridge: Bridge;
  beforeAll(async () => {
    lab = await NetworkNamespace.create(`ctk-sec-${process.pid}`);
    bridge = await Bridge.create({ name: `ctks${process.pid % 10000}`, subnet: '10.79.0.0/24', netns: lab, stateDir: join(dir, 'net') });
  });
  afterAll(async () => {
    await bridge?.remove();
    await lab?.delete();
  });

  it('loopback packets a container sends to the bridge are dropped while route_localnet is on (CVE-2020-8558 class); published ports on 127.0.0.1 still work', async () => {
    await using _web = await Container.start({
      rootfs,
      stateRoot: join(dir, 'root'),
      network: 'bridge',
      bridge,
      ports: ['127.0.0.1:18556:80'],
      command: ['httpd', '-f', '-p', '80', '-h', '/etc'],
    });
    // Publishing on 127.0.0.1 turns route_localnet on for the bridge, which would also accept
    // packets a container addresses to 127.0.0.0/8: the guard chain drops those first.
    expect(lab.runSync(() => readFileSync(`/proc/sys/net/ipv4/conf/${bridge.name}/route_localnet`, 'utf8').trim())).toBe('1');
    const rules = (await lab.exec(['nft', 'list', 'table', 'ip', NFT_TABLE])).stdout;
    expect(rules).toMatch(/chain guard \{\s+type filter hook prerouting priority raw; policy accept;\s+iifname "ctks\d+" ip daddr 127\.0\.0\.0\/8 drop/);
    // The published port on the host's loopback still answers (its replies are de-NATed after the guard).
    const ok = await lab.exec(['busybox', 'wget', '-q', '-O', '-', 'http://127.0.0.1:18556/hostname']);
    expect(ok.stdout.trim()).toBe('container');
  });
});
