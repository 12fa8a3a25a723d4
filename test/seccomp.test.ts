import { spawnSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container, type RunResult } from 'ctrkit';
import { DEFAULT_CAPABILITIES } from 'ctrkit/namespaces';
import { SYSCALLS_X64 } from '../dist/namespaces/seccomp-tables.js';
import { rootfs, tempDir } from './helpers.js';

// The filter's verdicts for every syscall number, simulated without a kernel: test/unit/seccomp-filter.test.ts.
const X = SYSCALLS_X64;
const hasGcc = process.arch === 'x64' && spawnSync('gcc', ['--version']).status === 0;

describe.runIf(hasGcc)('the default seccomp filter, on the real kernel', () => {
  const [dir, cleanup] = tempDir();
  const probe = { source: dir, target: '/probe', readonly: true };
  beforeAll(() => {
    const c = spawnSync('gcc', ['-static', '-O2', '-o', join(dir, 'syscall'), join(import.meta.dirname, 'fixtures/syscall.c')], { encoding: 'utf8' });
    if (c.status !== 0) throw new Error(`gcc -static failed (apt-get install libc6-dev): ${c.stderr}`);
  });
  afterAll(cleanup);

  /** Each call's result (the return value, or -errno), by the spec given. */
  async function probeCalls(specs: Record<string, string>, extra: Partial<Parameters<typeof Container.run>[0]> = {}): Promise<Record<string, number>> {
    const r = await Container.run({ rootfs, binds: [probe], command: ['/probe/syscall', ...Object.values(specs)], ...extra });
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n').map(Number);
    return Object.fromEntries(Object.keys(specs).map((k, i) => [k, lines[i]!]));
  }
  const SPECS = {
    personality0: `${X.personality},0`,
    personalityQuery: `${X.personality},0xffffffff`,
    readImpliesExec: `${X.personality},0x0400000`,
    vsock: `${X.socket},40,1,0`,
    inet: `${X.socket},2,1,0`,
    unshareInvalid: `${X.unshare},0x1`,
    mountNull: `${X.mount},0,0,0,0,0`,
    fork: `${X.clone},0x11`,
    cloneUser: `${X.clone},0x10000011`,
    clone3: `${X.clone3},0,0`,
    aboveTable: `${Math.max(...Object.values(X)) + 1},-1,0,0,0`,
    far: '1000',
    kexec: `${X.kexec_load},0,0,0,0`,
    addKey: `${X.add_key},0,0,0,0,0`,
    keyctl: `${X.keyctl},9999`,
    ioUring: `${X.io_uring_setup},1,0`,
    pidfdGetfd: `${X.pidfd_getfd},-1,0,0`,
    x32: `${0x40000000 | X.getpid!}`,
    i386: 'i386:20',
    // Last: once it works (unconfined), the probe is in a user namespace where it is nobody.
    unshareUser: `${X.unshare},0x10000000`,
  };

  it('refuses with EPERM, or ENOSYS past the table, what the kernel alone would have allowed', async () => {
    const [filtered, bare] = await Promise.all([probeCalls(SPECS), probeCalls(SPECS, { seccomp: 'unconfined' })]);
    const EPERM_ = -1;
    const ENOSYS_ = -38;
    expect(filtered).toMatchObject({
      readImpliesExec: EPERM_,
      vsock: EPERM_,
      unshareUser: EPERM_,
      unshareInvalid: EPERM_,
      mountNull: EPERM_,
      cloneUser: EPERM_,
      clone3: ENOSYS_,
      aboveTable: ENOSYS_,
      far: ENOSYS_,
      kexec: EPERM_,
      addKey: EPERM_,
      keyctl: EPERM_,
      ioUring: EPERM_,
      pidfdGetfd: EPERM_,
      x32: EPERM_,
      i386: EPERM_,
    });
    for (const k of ['personality0', 'personalityQuery', 'inet', 'fork'] as const) expect([k, filtered[k]! >= 0]).toEqual([k, true]);
    // Without the filter, the same container (same capabilities) gets the kernel's own answers:
    // so the refusals above are the filter's, not a missing capability's.
    expect(bare).toMatchObject({
      unshareUser: 0,
      unshareInvalid: -22,
      mountNull: -14 /* EFAULT comes before the capability check */,
      addKey: -14,
      keyctl: -95,
      pidfdGetfd: -9,
    });
    for (const k of ['readImpliesExec', 'cloneUser', 'vsock', 'aboveTable', 'clone3', 'x32', 'i386'] as const) expect([k, bare[k]]).not.toEqual([k, EPERM_]);
    expect(bare.clone3).not.toBe(ENOSYS_);
    const [major = 0, minor = 0] = release().split('.').map(Number);
    if (major * 100 + minor >= 605) expect(bare.aboveTable).toBe(-9); // cachestat (6.5+) on fd -1: EBADF
  });

  it('allows namespaces and mounts when CAP_SYS_ADMIN is kept, ptrace helpers with CAP_SYS_PTRACE', async () => {
    const r = await probeCalls(
      {
        unshareNs: `${X.unshare},0x20000`,
        unshareInvalid: `${X.unshare},0x1`,
        mountNull: `${X.mount},0,0,0,0,0`,
        cloneNet: `${X.clone},0x40000011`,
        pidfdGetfd: `${X.pidfd_getfd},-1,0,0`,
      },
      { capabilities: [...DEFAULT_CAPABILITIES, 'SYS_ADMIN', 'SYS_PTRACE'] },
    );
    expect(r).toMatchObject({ unshareNs: 0, unshareInvalid: -22, mountNull: -14, pidfdGetfd: -9 });
    expect(r.cloneNet).toBeGreaterThan(0);
    const m = await Container.run({
      rootfs,
      command: ['sh', '-c', 'mkdir -p /mnt/t && mount -t tmpfs none /mnt/t && echo mounted'],
      capabilities: [...DEFAULT_CAPABILITIES, 'SYS_ADMIN'],
    });
    expect(m.stdout).toBe('mounted\n');
  });

  it('privileged and unconfined containers are not filtered at all', async () => {
    for (const extra of [{ privileged: true }, { seccomp: 'unconfined' as const }]) {
      const r = await Container.run({
        rootfs,
        binds: [probe],
        command: ['sh', '-c', `grep '^Seccomp:' /proc/self/status; /probe/syscall ${X.personality},0x0400000`],
        ...extra,
      });
      expect(r.stdout).toMatch(/^Seccomp:\s+0\n\d+\n$/);
    }
  });

  it('ordinary programs work: a busybox script using many applets, wget from a loopback httpd', async () => {
    const script = [
      'set -e',
      'cd /tmp',
      'mkdir -p www d',
      'echo hello > www/index.html',
      'httpd -p 127.0.0.1:8080 -h /tmp/www', // it listens before it daemonizes
      'wget -q -O - http://127.0.0.1:8080/index.html',
      'ls -la / >/dev/null',
      'ps | grep -q httpd',
      'grep -q "^Seccomp:.*2" /proc/self/status',
      'seq 1 100 | awk "{s+=\\$1} END {print s}"',
      'printf "b\\na\\nb\\n" | sort | uniq | tr a-z A-Z | head -n 1',
      'echo abc | sed s/b/x/ | cut -c2',
      'find /etc -name hostname | wc -l',
      'cp www/index.html d/x && mv d/x d/y && ln -s y d/z',
      'chmod 600 d/y && stat -c %a d/y',
      'readlink d/z',
      'touch d/t && rm d/t',
      'date +%Y >/dev/null',
      'df / >/dev/null',
      'du -s d >/dev/null',
      'id -u',
      'hostname',
      'uname -s',
      'env | grep -q PATH=',
      'dd if=/dev/zero of=d/zero bs=1k count=4 2>/dev/null',
      'wc -c < d/zero',
      'busybox tar -cf d.tar d && busybox tar -tf d.tar | wc -l',
      'busybox gzip -c d.tar | busybox gunzip | busybox md5sum | wc -w',
      'busybox sha256sum d/y | cut -c1-8',
      '(sleep 5 & kill $!) ; wait || true',
      'echo sub $(echo shell)',
      'nproc >/dev/null',
      'ip link show lo >/dev/null',
      'echo done',
    ].join('\n');
    const r: RunResult = await Container.run({ rootfs, command: ['sh', '-c', script] });
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')).toEqual([
      'hello',
      '5050',
      'A',
      'x',
      '1',
      '600',
      'y',
      '0',
      'container',
      'Linux',
      '4096',
      '4',
      '2',
      expect.stringMatching(/^[0-9a-f]{8}$/),
      'sub shell',
      'done',
      '',
    ]);
    expect(r.exitCode).toBe(0);
  });

  it("ordinary programs work: Node and Python from the host's /usr (threads, child processes, sockets)", async () => {
    const [root, done] = tempDir();
    try {
      for (const d of ['usr', 'proc', 'dev', 'sys', 'tmp', 'etc', 'root']) mkdirSync(join(root, d));
      for (const l of ['bin', 'lib', 'lib64', 'sbin']) symlinkSync(`usr/${l}`, join(root, l));
      writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
      const node = `
        const { execFileSync } = require('node:child_process');
        const { Worker } = require('node:worker_threads');
        const http = require('node:http');
        const out = [execFileSync('sh', ['-c', 'echo child']).toString().trim()];
        new Worker('require("node:worker_threads").parentPort.postMessage(6*7)', { eval: true }).on('message', (m) => {
          out.push('worker ' + m);
          const srv = http.createServer((q, s) => s.end('http ok')).listen(0, '127.0.0.1', () => {
            http.get({ host: '127.0.0.1', port: srv.address().port }, (res) => {
              let b = ''; res.on('data', (c) => b += c).on('end', () => { out.push(b, require('node:crypto').randomBytes(4).length); console.log(out.join(',')); srv.close(); });
            });
          });
        });`;
      const python =
        'import threading, subprocess, socket, os\n' +
        't = threading.Thread(target=lambda: None); t.start(); t.join()\n' +
        'a, b = socket.socketpair(); a.send(b"sock"); print(b.recv(4).decode(), subprocess.run(["sh", "-c", "echo sub"], capture_output=True, text=True).stdout.strip())\n' +
        'pid = os.fork()\nif pid == 0: os._exit(7)\nprint(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n';
      const binds = [{ source: '/usr', target: '/usr', readonly: true }];
      const n = await Container.run({ rootfs: root, binds, command: ['/usr/bin/node', '-e', node] });
      expect([n.stdout, n.stderr]).toEqual(['child,worker 42,http ok,4\n', '']);
      const p = await Container.run({ rootfs: root, binds, command: ['/usr/bin/python3', '-c', python] });
      expect([p.stdout, p.stderr]).toEqual(['sock sub\n7\n', '']);
    } finally {
      done();
    }
  });
});
