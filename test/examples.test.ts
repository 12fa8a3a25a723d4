import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { hostMounts, ROOTLESS_USER, rootlessPackageCopy, rootlessUid, tempDir } from './helpers.js';

/** Runs an example as a user would (`node examples/X.mjs`), resolving 'ctrkit' through the package. */
function example(name: string): string {
  return execFileSync(process.execPath, [`examples/${name}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

describe("the chapter's experiments, as examples", () => {
  it('5.1.3: PID 1 inside, and ps sees only the new namespace', () => {
    const out = example('5.1.3-pid-namespace.mjs');
    expect(out).toMatch(/^echo \$\$ -> 1$/m);
    const inside = out
      .split('ps -e inside:\n')[1]!
      .split('\n')
      .filter((l) => /^\s*\d+ /.test(l));
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
    const links = out
      .split(/ip -o link:\n/)[1]!
      .split('\nhost interfaces')[0]!
      .trim()
      .split('\n');
    expect(links).toHaveLength(1);
    expect(links[0]).toMatch(/^1: lo: <LOOPBACK,UP,LOWER_UP>/);
    expect(out).toMatch(/^host interfaces for comparison: .*\S+ \S+/m); // the host has more than lo
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain('ctk-container1');
  });

  it('5.1.5: the container has its own /proc and mounts; the host mount table is unchanged', () => {
    const before = hostMounts();
    const out = example('5.1.5-mount-namespace.mjs');
    const pids = out
      .match(/^ls \/proc \(pids\): (.*)$/m)![1]!
      .trim()
      .split(' ')
      .map(Number);
    expect(pids[0]).toBe(1);
    expect(pids.length).toBeLessThan(10);
    expect(out).toMatch(/^mounted a tmpfs on \/tmp inside$/m);
    expect(out).toMatch(/^host mount table unchanged: true$/m);
    expect(out).toMatch(/^tmpfs visible on the host: false$/m);
    expect(hostMounts()).toEqual(before);
  });

  it.runIf(process.arch === 'x64' || process.arch === 'arm64')(
    '5.1.5 chroot vs MNT: a chroot jail is escaped to the host; a ctrkit container, privileged, is not',
    () => {
      const before = hostMounts();
      const out = example('5.1.5-chroot-vs-pivot-root.mjs');
      const [chroot = '', container = ''] = out.split(/^== ctrkit container.*$/m);
      const hostRoot = readdirSync('/')
        .filter((n) => !n.startsWith('.'))
        .sort()
        .join(' ');
      const jail = 'bin dev escape etc proc root run sbin sys tmp usr var';
      // chroot: the jail is the root, but a mount inside lands in the host's table, and the
      // escape (mkdir x; chroot x; cd ../../..; chroot .) reaches the host's / and its files.
      expect(chroot).toMatch(new RegExp(`^changes the root: ls / -> ${jail} $`, 'm'));
      expect(chroot).toMatch(/^isolates mount points: no — a tmpfs mounted inside is in the host's mount table, at \/tmp\/ctk-chroot-\d+-\w+\/jail\/tmp$/m);
      expect(chroot).toMatch(new RegExp(`^  before the escape, /: ${jail}$`, 'm'));
      expect(chroot.match(/^ {2}after the escape, \/: (.*)$/m)![1]).toBe(hostRoot);
      expect(chroot).toMatch(/^ {2}host marker \S+: FOUND$/m);
      // The container: the same program with every capability stays in the container's root.
      expect(container).toMatch(new RegExp(`^changes the root: ls / -> ${jail} $`, 'm'));
      expect(container).toMatch(
        /^isolates mount points: yes — mounted a tmpfs on \/tmp inside; in the host's mount table: no \(host table unchanged: true\)$/m,
      );
      expect(container).toMatch(new RegExp(`^  before the escape, /: ${jail}$`, 'm'));
      expect(container).toMatch(new RegExp(`^  after the escape, /: ${jail.replace('bin ', 'bin ctk-x ')}$`, 'm'));
      expect(container).toMatch(/^ {2}host marker \S+: not found$/m);
      expect(out).toMatch(/^\| isolates mount points {3}\| no {5}\| yes {11}\|$/m);
      expect(out).toMatch(/^\| stops the chroot escape \| no {5}\| yes {11}\|$/m);
      // Nothing left: no jail, no mount.
      expect(readdirSync(tmpdir()).filter((n) => n.startsWith(`ctk-chroot-`))).toEqual([]);
      expect(hostMounts()).toEqual(before);
    },
  );

  it('5.1.6: root inside is uid 100000 outside', () => {
    const out = example('5.1.6-user-namespace.mjs');
    expect(out).toMatch(/^inside: uid=0\(root\) gid=0\(root\)/m);
    expect(out).toMatch(/^uid_map:\s+0\s+100000\s+65536$/m);
    expect(out).toMatch(/^outside: the same process runs as uid 100000 on the host$/m);
  });

  it("5.1.6 /etc/subuid: the test user's line, parsed; root maps 0:100000:65536 and files land as 100000 and 101000", () => {
    const out = example('5.1.6-subuid.mjs');
    const line = readFileSync('/etc/subuid', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${ROOTLESS_USER}:`))!;
    expect(line, `/etc/subuid must have a line for ${ROOTLESS_USER} (test/setup/global.ts adds it)`).toBeDefined();
    const [, start, count] = line.split(':').map(Number);
    expect(out).toContain(`$ grep ${ROOTLESS_USER} /etc/subuid\n${line}\n`);
    expect(out).toMatch(new RegExp(`^readSubIds: start ${start}, count ${count} \\(host uids ${start}-${start! + count! - 1}\\)$`, 'm'));
    expect(out).toMatch(new RegExp(`^defaultIdMaps for ${ROOTLESS_USER} \\(inside:outside:count\\): uid 0:${rootlessUid()}:1 1:${start}:${count},`, 'm'));
    expect(out).toMatch(/^inside: uid=0\(root\) gid=0\(root\)/m);
    expect(out).toMatch(/^uid_map:\s+0\s+100000\s+65536$/m);
    expect(out).toMatch(/^inside: {2}-rw-r--r-- +1 0 +0 .* created-by-root$/m);
    // Shown through an idmapped mount: root's inside, with nothing chowned on disk.
    expect(out).toMatch(/^rootfs file, owned by host root: \S+ +1 0 +0 /m);
    expect(out).toMatch(/^outside: created-by-root \(uid 0 inside\) is owned by uid 100000, gid 100000$/m);
    expect(out).toMatch(/^outside: chowned-to-1000 \(uid 1000 inside\) is owned by uid 101000, gid 101000$/m);
    expect(readdirSync(tmpdir()).filter((n) => n.startsWith('ctk-subuid-'))).toEqual([]);
  });

  it('5.1.6 /etc/subuid, run by the user itself: its own uid is root inside, its subuid range is uid 1 and up', () => {
    const uid = rootlessUid();
    expect(uid, `user ${ROOTLESS_USER} must exist`).toBeDefined();
    const [dir, cleanup] = rootlessPackageCopy();
    try {
      cpSync('examples/5.1.6-subuid.mjs', join(dir, 'subuid.mjs'));
      const out = execFileSync(process.execPath, [join(dir, 'subuid.mjs')], {
        uid,
        gid: uid,
        cwd: dir,
        encoding: 'utf8',
        env: { PATH: process.env.PATH, HOME: `/home/${ROOTLESS_USER}` },
      });
      const [start, count] = readFileSync('/etc/subuid', 'utf8')
        .split('\n')
        .find((l) => l.startsWith(`${ROOTLESS_USER}:`))!
        .split(':')
        .slice(1)
        .map(Number);
      expect(out).toMatch(new RegExp(`^container uid_map \\(inside:outside:count\\): 0:${uid}:1 1:${start}:${count} \\(ctrkit's default for you\\)$`, 'm'));
      expect(out).toMatch(new RegExp(`^uid_map:\\s+0\\s+${uid}\\s+1\\nuid_map:\\s+1\\s+${start}\\s+${count}$`, 'm'));
      expect(out).toMatch(new RegExp(`^outside: created-by-root \\(uid 0 inside\\) is owned by uid ${uid},`, 'm'));
      expect(out).toMatch(new RegExp(`^outside: chowned-to-1000 \\(uid 1000 inside\\) is owned by uid ${start! + 999},`, 'm'));
    } finally {
      cleanup();
    }
  });

  it('5.1.7: pid, net, mnt and uts at once; the others shared', () => {
    const out = example('5.1.7-multiple-namespaces.mjs');
    const state = Object.fromEntries([...out.matchAll(/^(\w+)\s+CLONE_\w+.*(shared|NEW)$/gm)].map((m) => [m[1], m[2]]));
    expect(state).toEqual({ user: 'shared', pid: 'NEW', net: 'NEW', mnt: 'NEW', uts: 'NEW', ipc: 'shared', cgroup: 'shared', time: 'shared' });
    expect(out).toMatch(/^pid: 1, hostname: multi, interfaces: lo$/m);
  });

  it('5.1.2: UTS, IPC, cgroup and time namespaces, each on its own', () => {
    const out = example('5.1.2-uts-ipc-cgroup-time.mjs');
    expect(out).toMatch(/^UTS +CLONE_NEWUTS +since 2\.6\.19 hostname inside: ctk-uts-demo, on the host: (?!ctk-uts-demo)\S+ \(unchanged: true\)$/m);
    expect(out).toMatch(
      /^IPC +CLONE_NEWIPC +since 2\.6\.19 host queue 0x[0-9a-f]+ seen inside: false; inside: 1 queue \(0x[0-9a-f]+\), seen on the host: false$/m,
    );
    expect(out).toMatch(/^Cgroup +CLONE_NEWCGROUP since 4\.6 +\/proc\/self\/cgroup with it: \d+:memory:\/, without it: \d+:memory:\/ctk-[0-9a-f]+$/m);
    const [inside, host] = out
      .match(/uptime inside: (\d+) s, on the host: (\d+) s/)!
      .slice(1)
      .map(Number);
    expect(Math.abs(inside! - host! - 10 * 86400)).toBeLessThan(60); // the offset, give or take the runs' own seconds
    const hostQueue = out.match(/host queue (0x[0-9a-f]+)/)![1]!;
    expect(execFileSync('ipcs', ['-q'], { encoding: 'utf8' })).not.toContain(hostQueue); // and it was removed
  });

  it('5.2.2: the v1 hierarchies, and cpuset, memory, blkio weight and devices on this kernel; net_cls explained', () => {
    const out = example('5.2.2-cgroup-v1.mjs');
    expect(out).toMatch(/^layout: (hybrid|v1)$/m);
    for (const c of ['cpuset', 'memory', 'devices', 'blkio']) expect(out).toMatch(new RegExp(`^  v1 /sys/fs/cgroup/${c} +.*\\b${c}\\b`, 'm'));
    expect(out).toMatch(/^cgroup\.procs {2}memory\.limit_in_bytes {2}memory\.usage_in_bytes {2}\.\.\./m);
    expect(out).toMatch(/^memory\.limit_in_bytes: 536870912$/m);
    const [cpus, allowed] = out.match(/^cpuset\.cpus=(\d+): Cpus_allowed_list:\s+(\S+)$/m)!.slice(1);
    expect(allowed).toBe(cpus);
    expect(out).toMatch(/^blkio weight 500 -> blkio(\.bfq)?\.weight: (default )?500$|^blkio weight: not here: /m);
    expect(out).toMatch(/^devices denied +devices\.list: c 1:3 rwm +head -c 4 \/dev\/zero: Operation not permitted$/m);
    expect(out).toMatch(/^devices allowed devices\.list: c 1:3 rwm, c 1:5 r head -c 4 \/dev\/zero: ok$/m);
    expect(out).toMatch(/^net_cls(\.classid: \d+|: .*)$/m);
    expect(out).toMatch(/^left behind: 0$/m);
  });

  it('5.6: the mini-container runs /bin/sh as PID 1 with hostname "container"', () => {
    const out = example('5.6-mini-container.mjs');
    expect(out).toMatch(/^Running \[\/bin\/sh\] as PID 1$/m);
    expect(out).toMatch(/^\$ hostname\ncontainer$/m);
    const ps = out
      .split('$ ps\n')[1]!
      .split('\n')
      .slice(1)
      .filter((l) => /^\s*\d+/.test(l))
      .map((l) => l.trim().split(/\s+/));
    expect(ps[0]).toEqual(['1', 'root', 'sh']);
    expect(ps.map((p) => p[2])).toEqual(['sh', 'ps']);
    expect(out).toMatch(/^exit code 0,/m);
  });

  it("5.6 interactive, driven: the example types the chapter's commands into the container's terminal and prints the screen", () => {
    const out = example('5.6-interactive.mjs'); // stdin is not a terminal here: the driven mode
    expect(out).toMatch(/^stdin is not a terminal: driving the shell through container\.tty/m);
    expect(out).toMatch(/^root@container:\/# echo \$\$\n1$/m);
    expect(out).toMatch(/^root@container:\/# hostname\ncontainer$/m);
    const ps = out
      .split('# ps\n')[1]!
      .split('\nroot@container')[0]!
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/));
    expect(ps[0]).toEqual(['1', 'root', '/bin/sh']);
    expect(ps).toHaveLength(2); // the shell and ps
    expect(out).toMatch(/^root@container:\/# tty\n\/dev\/pts\/0$/m);
    expect(out).toMatch(/^root@container:\/# stty size\n24 80$/m);
    expect(out).toMatch(/^root@container:\/# exit\n\nthe shell exited: code 0$/m);
  });

  it.runIf(spawnSync('script', ['--version']).status === 0)(
    '5.6 interactive, on a real terminal (script): keystrokes in, the screen out, the window size followed, the terminal restored',
    async () => {
      const [dir, cleanup] = tempDir();
      const resizeNow = join(dir, 'resize-now');
      // script gives the example a pseudo-terminal; a helper on it changes the window size when told.
      const cmd =
        `stty cols 120 rows 40; (while [ ! -e ${resizeNow} ]; do sleep 0.05; done; stty cols 100 rows 30 < /dev/tty) & ` +
        'node examples/5.6-interactive.mjs; echo "outer terminal: $(stty -a | grep -o -- "-\\?icanon")"; wait';
      const p = spawn('script', ['-qc', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
      let screen = '';
      const waiters: (() => void)[] = [];
      p.stdout!.on('data', (d: Buffer) => {
        // ESC starts the terminal's control sequences.
        // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
        const escapes = /\x1b\[[0-9;?]*[A-Za-z]/g;
        screen += d.toString('utf8').replace(/\r/g, '').replace(escapes, '');
        for (const w of waiters.splice(0)) w();
      });
      const closed = new Promise<number | null>((resolve) => p.once('close', resolve));
      let ended = false;
      void closed.then(() => {
        ended = true;
        for (const w of waiters.splice(0)) w();
      });
      /** Waits until what came after `from` matches `re`; returns it. */
      const until = async (from: number, re: RegExp): Promise<string> => {
        while (!re.test(screen.slice(from))) {
          if (ended) throw new Error(`the terminal closed before ${re} appeared in: ${JSON.stringify(screen.slice(from))}`);
          await new Promise<void>((r) => waiters.push(r));
        }
        return screen.slice(from);
      };
      const type = async (line: string): Promise<string> => {
        const from = screen.length;
        p.stdin!.write(`${line}\n`);
        return (await until(from, /\n[^\n]*root@container:\/# $/)).split('\n').slice(1, -1).join('\n');
      };
      try {
        const banner = await until(0, /root@container:\/# $/);
        expect(banner).toMatch(/^Running \[\/bin\/sh\] as PID 1 of container [0-9a-f]{64} \(host PID \d+\); type exit to leave$/m);
        expect(await type('echo $$; hostname; tty')).toBe('1\ncontainer\n/dev/pts/0');
        expect(await type('stty size')).toBe('40 120'); // the outer terminal's size, passed in at start
        writeFileSync(resizeNow, '');
        // The outer terminal shrinks: node gets SIGWINCH and resizes the container's terminal.
        let size = '';
        for (let i = 0; i < 100 && size !== '30 100'; i++) size = await type('stty size');
        expect(size).toBe('30 100');
        const from = screen.length;
        p.stdin!.write('exit\n');
        const rest = await until(from, /outer terminal: \S+\n/);
        expect(rest).toMatch(/^the shell exited: code 0$/m);
        expect(rest).toMatch(/^outer terminal: icanon$/m); // raw mode was undone
        expect(await closed).toBe(0);
      } finally {
        if (!ended) p.kill('SIGKILL');
        cleanup();
      }
    },
  );

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
    for (const r of rates) {
      expect(r).toBeGreaterThan(7);
      expect(r).toBeLessThan(13);
    }
  }, 30_000);

  it('5.2.5 monitoring: memory and CPU sampled while the container runs', () => {
    const out = example('5.2.5-monitoring.mjs');
    const rows = out
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/));
    expect(rows).toHaveLength(4);
    expect(Number(rows[3]![1])).toBeGreaterThan(32); // MiB
    expect(Number(rows[3]![4])).toBeGreaterThan(Number(rows[0]![4])); // CPU ms grew
  });
});
