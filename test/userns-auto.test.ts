// userns: 'auto' (rootful containers in a user namespace of their own, like Podman's
// --userns=auto): root inside is an unused range of host ids from /etc/subuid's "ctrkit" line,
// the root filesystem is shown through idmapped mounts (nothing chowned), ranges are distinct
// for parallel starts and free again once a container is released.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container, type RunOptions } from 'ctrkit';
import { readSubIds } from 'ctrkit/namespaces';
import { allocateUserns, pruneUsernsClaims, SUGGESTED_SUBID_LINE, takenUsernsRanges } from '../src/container/userns.js';
import { ctrkitProcesses, hostMounts, rootfs, tempDir } from './helpers.js';
import { buildImage } from './oci/lab.js';

let dir = '';
let cleanup = () => {};
let stateRoot = '';
const mountsBefore = hostMounts();
/** The ranges /etc/subuid and /etc/subgid delegate to ctrkit (the setup script adds them). */
const delegated = { uid: readSubIds('/etc/subuid', 'ctrkit', -1), gid: readSubIds('/etc/subgid', 'ctrkit', -1) };
const inDelegated = (id: number, kind: 'uid' | 'gid') => delegated[kind].some((r) => id >= r.start && id + 65536 <= r.start + r.count);

beforeAll(() => {
  if (!delegated.uid.length || !delegated.gid.length) {
    throw new Error(`userns 'auto' needs "${SUGGESTED_SUBID_LINE}" in /etc/subuid and /etc/subgid: run \`npm run setup:test\``);
  }
  [dir, cleanup] = tempDir();
  chmodSync(dir, 0o711); // the container's root, an unprivileged uid outside, reaches what is bound in
  stateRoot = join(dir, 'state');
});
afterAll(() => cleanup());

const auto = (script: string, extra: RunOptions = {}) => Container.run({ userns: 'auto', rootfs, stateRoot, command: ['sh', '-c', script], ...extra });

/** `0 START COUNT` of a uid_map or gid_map, as numbers. */
function firstMapping(text: string): [number, number, number] {
  const [inside, outside, count] = text.trim().split('\n')[0]!.trim().split(/\s+/).map(Number);
  return [inside!, outside!, count!];
}

describe("userns: 'auto'", () => {
  it('is root inside, an unused delegated range outside, and sees the rootfs as the host owns it', async () => {
    const r = await auto(
      [
        'id -u; id -g',
        'cat /proc/self/uid_map /proc/self/gid_map',
        'stat -c "%u:%g %n" /bin/busybox /etc/passwd /etc',
        // root may change root-owned image files (copy-up through the idmapped lower) and create its own
        'echo new > /etc/new && stat -c "%u:%g %n" /etc/new && chown 1000:1000 /etc/new && stat -c "%u:%g %n" /etc/new',
        'echo changed >> /etc/passwd && tail -n1 /etc/passwd',
      ].join('; '),
    );
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n');
    expect(lines.slice(0, 2)).toEqual(['0', '0']);
    const [uin, uout, ucount] = firstMapping(lines[2]!);
    const [gin, gout, gcount] = firstMapping(lines[3]!);
    expect([uin, ucount, gin, gcount]).toEqual([0, 65536, 0, 65536]);
    expect(inDelegated(uout, 'uid')).toBe(true);
    expect(inDelegated(gout, 'gid')).toBe(true);
    expect(lines.slice(4, 7)).toEqual(['0:0 /bin/busybox', '0:0 /etc/passwd', '0:0 /etc']);
    expect(lines.slice(7)).toEqual(['0:0 /etc/new', '1000:1000 /etc/new', 'changed']);
    // The rootfs on disk never changed.
    expect(readFileSync(join(rootfs, 'etc/passwd'), 'utf8')).not.toContain('changed');
  });

  it("runs as the range's first uid on the host, keeps the writable layer in the image's ids, and execs in the same namespace", async () => {
    const c = await Container.start({ userns: 'auto', rootfs, stateRoot, keepLayer: true, command: ['sleep', '60'] });
    let layerDir = '';
    try {
      const info = await c.inspect();
      const range = info.userns!;
      expect(range.size).toBe(65536);
      const status = readFileSync(`/proc/${c.pid}/status`, 'utf8');
      expect(status).toMatch(new RegExp(`^Uid:\\s+${range.uid}\\s+${range.uid}\\s+${range.uid}\\s+${range.uid}$`, 'm'));
      expect(status).toMatch(new RegExp(`^Gid:\\s+${range.gid}\\s`, 'm'));
      expect(takenUsernsRanges().map((t) => t.id)).toContain(c.id);
      const e = await c.exec({ command: ['sh', '-c', 'id -u; cat /proc/self/uid_map; echo data > /root/made-inside; chown 1:2 /root/made-inside'] });
      expect(e.stdout.split('\n')[0]).toBe('0');
      expect(firstMapping(e.stdout.split('\n')[1]!)).toEqual([0, range.uid, 65536]);
      await c.kill('SIGKILL');
      const upper = (await c.wait()).layer!.upper;
      layerDir = join(upper, '..');
      // The upper is idmapped too: on disk, the container's root wrote as uid 0, its uid 1 as 1.
      const made = statSync(join(upper, 'root/made-inside'));
      expect([made.uid, made.gid]).toEqual([1, 2]);
      expect(statSync(join(upper, 'root')).uid).toBe(0);
    } finally {
      await c.remove({ force: true });
      if (layerDir) execFileSync('rm', ['-rf', layerDir]);
    }
    expect(takenUsernsRanges().map((t) => t.id)).not.toContain(c.id);
  });

  it('gives parallel starts distinct ranges, and frees each when its container is released', async () => {
    const cs = await Promise.all([1, 2, 3, 4].map(() => Container.start({ userns: 'auto', rootfs, stateRoot, command: ['sleep', '60'] })));
    try {
      const uids = cs.map((c) => firstMapping(readFileSync(`/proc/${c.pid}/uid_map`, 'utf8'))[1]);
      const gids = cs.map((c) => firstMapping(readFileSync(`/proc/${c.pid}/gid_map`, 'utf8'))[1]);
      expect(new Set(uids).size).toBe(4);
      expect(new Set(gids).size).toBe(4);
      const taken = takenUsernsRanges();
      for (const [i, c] of cs.entries()) expect(taken.find((t) => t.id === c.id)?.uid).toBe(uids[i]);
    } finally {
      await Promise.all(cs.map((c) => c.remove({ force: true })));
    }
    const ids = new Set(cs.map((c) => c.id));
    expect(takenUsernsRanges().filter((t) => ids.has(t.id))).toEqual([]);
  });

  it('reuses a released range: the lowest free one is taken', async () => {
    const first = await auto('cat /proc/self/uid_map');
    const range = firstMapping(first.stdout)[1];
    expect(takenUsernsRanges().some((t) => t.uid === range)).toBe(false);
    const second = await auto('cat /proc/self/uid_map');
    expect(firstMapping(second.stdout)[1]).toBe(range);
  });

  it('frees the range of a start that failed, and of a detached container', async () => {
    const before = takenUsernsRanges().length;
    await expect(auto('', { command: ['/no/such/command'] })).rejects.toMatchObject({ code: 'ERR_COMMAND_NOT_FOUND' });
    expect(takenUsernsRanges()).toHaveLength(before);
    const d = await Container.start({ userns: 'auto', rootfs, stateRoot, detach: true, command: ['sleep', '60'] });
    try {
      expect((await d.inspect()).userns).toBeDefined();
      expect(takenUsernsRanges().map((t) => t.id)).toContain(d.id);
    } finally {
      await d.remove({ force: true });
    }
    expect(takenUsernsRanges().map((t) => t.id)).not.toContain(d.id);
  });

  it("cannot do what the host's root can: root-owned host files stay out of reach", async () => {
    const share = join(dir, 'share');
    mkdirSync(share, { mode: 0o755 });
    writeFileSync(join(share, 'secret'), 'host secret\n', { mode: 0o600 });
    writeFileSync(join(share, 'config'), 'host config\n', { mode: 0o644 });
    const r = await auto(
      [
        'echo x > /share/new 2>/dev/null && echo WROTE-NEW || echo new-denied',
        'echo x >> /share/config 2>/dev/null && echo WROTE-CONFIG || echo config-denied',
        'cat /share/secret 2>/dev/null || echo secret-denied',
        'chmod 777 /share 2>/dev/null && echo CHMOD || echo chmod-denied',
        'stat -c "%u:%g" /share/config',
      ].join('; '),
      { binds: [{ source: share, target: '/share' }] },
    );
    // A bind keeps the host's ownership: root's files are nobody's inside (65534).
    expect(r.stdout.trim().split('\n')).toEqual(['new-denied', 'config-denied', 'secret-denied', 'chmod-denied', '65534:65534']);
    expect(readFileSync(join(share, 'config'), 'utf8')).toBe('host config\n');
    expect(existsSync(join(share, 'new'))).toBe(false);
    expect(statSync(share).mode & 0o777).toBe(0o755);
    // The same script as a default (rootful, no user namespace) container: root writes it all.
    const rootful = await Container.run({
      rootfs,
      stateRoot,
      binds: [{ source: share, target: '/share' }],
      command: ['sh', '-c', 'echo x > /share/new && echo wrote'],
    });
    expect(rootful.stdout).toBe('wrote\n');
  });

  it('shows every layer of an image through idmapped lowers, with the copy and overlay-less roots too', async () => {
    const layout = buildImage(join(dir, 'image'));
    const r = await Container.run({
      userns: 'auto',
      image: 'v1',
      store: layout,
      pull: 'never',
      stateRoot,
      entrypoint: ['/bin/sh', '-c'],
      command: [
        'ls -n /bin/busybox /etc/hello.txt | while read m l u g rest; do echo $u:$g; done; cat /etc/hello.txt; ls /var/cache /opt; echo y > /etc/hello.txt && cat /etc/hello.txt',
      ],
    });
    expect(r.stderr).toBe('');
    // busybox from layer 1, hello.txt from layer 2, /var/cache/old whited out by layer 3, /opt
    // opaque in layer 4 (root's store marks it for overlays with and without userxattr).
    expect(r.stdout).toBe('0:0\n0:0\nhello from layer 2\n/opt:\nnew\n\n/var/cache:\nkeep\ny\n');
    for (const extra of [{ storageDriver: 'copy' as const }, { overlay: false, rootfs: join(dir, 'image/rootfs') }]) {
      const c = await auto('echo ok > /etc/made && ls -n /bin/busybox /etc/made | while read m l u g rest; do echo $u:$g; done', extra);
      expect([c.stdout, c.stderr]).toEqual(['0:0\n0:0\n', '']);
    }
    // overlay: false wrote straight into that rootfs, as uid 0 on disk.
    expect(statSync(join(dir, 'image/rootfs/etc/made')).uid).toBe(0);
  });

  it('refuses what it cannot do, with typed errors', async () => {
    await expect(auto('true', { uidMap: [{ inside: 0, outside: 200000, count: 1 }] })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION', option: 'userns' });
    await expect(auto('true', { userns: 'bogus' as 'auto' })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION', option: 'userns' });
    const files = join(dir, 'subids');
    mkdirSync(files);
    const sources = { subuid: join(files, 'subuid'), subgid: join(files, 'subgid'), stateDir: join(files, 'state') };
    writeFileSync(sources.subuid, 'someone:100000:65536\n');
    writeFileSync(sources.subgid, 'someone:100000:65536\n');
    const missing = allocateUserns('a'.repeat(64), undefined, sources);
    await expect(missing).rejects.toMatchObject({ name: 'ContainerError', code: 'ERR_USERNS_RANGE' });
    await expect(missing).rejects.toThrow(SUGGESTED_SUBID_LINE);
    // One block, half of it delegated to someone else too: nothing usable. Then one usable block, taken once.
    writeFileSync(sources.subuid, 'someone:100000:65536\nctrkit:132768:65536\n');
    await expect(allocateUserns('b'.repeat(64), undefined, sources)).rejects.toMatchObject({ code: 'ERR_USERNS_RANGE' });
    writeFileSync(sources.subuid, 'ctrkit:300000:65536\n');
    writeFileSync(sources.subgid, 'ctrkit:400000:70000\n');
    const one = await allocateUserns('c'.repeat(64), undefined, sources);
    expect([one.uid, one.gid, one.size]).toEqual([300000, 400000, 65536]);
    await expect(allocateUserns('d'.repeat(64), undefined, sources)).rejects.toThrow(/in use/);
    await one.release();
    const again = await allocateUserns('e'.repeat(64), undefined, sources);
    expect(again.uid).toBe(300000);
    await again.release();
    // The last release took the lock file and its directory along: nothing is left.
    expect(existsSync(sources.stateDir)).toBe(false);
    // A claim whose owner and init died (a crash) holds nothing: taken again, and pruned.
    mkdirSync(sources.stateDir, { recursive: true });
    const stale = { id: 'f'.repeat(64), uid: 300000, gid: 400000, size: 65536, owner: { pid: 2 ** 22 + 1, start: 1 } };
    writeFileSync(join(sources.stateDir, '300000.json'), JSON.stringify(stale));
    expect(takenUsernsRanges(sources.stateDir)).toEqual([]);
    const taken = await allocateUserns('0'.repeat(64), undefined, sources);
    expect(taken.uid).toBe(300000);
    writeFileSync(join(sources.stateDir, '300000.json'), JSON.stringify(stale));
    expect(await pruneUsernsClaims(sources.stateDir)).toBe(1);
    expect(existsSync(join(sources.stateDir, '300000.json'))).toBe(false);
  });

  it('the CLI takes --userns auto', () => {
    const out = execFileSync(
      process.execPath,
      ['dist/cli/main.js', 'run', '--network', 'none', '--userns', 'auto', '--rootfs', rootfs, 'sh', '-c', 'id -u; cat /proc/self/uid_map'],
      {
        encoding: 'utf8',
        env: { ...process.env, CTRKIT_STATE_ROOT: stateRoot },
      },
    );
    const [id, map] = out.trim().split('\n');
    expect(id).toBe('0');
    expect(inDelegated(firstMapping(map!)[1], 'uid')).toBe(true);
  });

  it('leaves nothing behind', async () => {
    expect(hostMounts()).toEqual(mountsBefore);
    expect(ctrkitProcesses()).toEqual([]);
    expect(await Container.list({ stateRoot, all: true })).toEqual([]);
  });
});
