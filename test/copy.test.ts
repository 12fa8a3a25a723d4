import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { extract as tarExtract, pack as tarPack, type Headers } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { Container, CopyError } from 'ctrkit';
// The building blocks under RunningContainer.copyTo/copyFrom, from the built package.
import { copyFromContainer, copyToContainer } from '../dist/container/copy.js';
import { eventually, rootfs, tempDir } from './helpers.js';

interface TarEntry {
  readonly header: Headers;
  readonly data: Buffer;
}

/** Every entry of a tar stream, with its data. */
async function readTar(stream: AsyncIterable<unknown>): Promise<TarEntry[]> {
  const extract = tarExtract();
  const feeding = (async () => {
    for await (const chunk of stream) extract.write(chunk as Buffer);
    extract.end();
  })().catch((e: unknown) => extract.destroy(e as Error));
  const out: TarEntry[] = [];
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    out.push({ header: entry.header, data: Buffer.concat(chunks) });
  }
  await feeding;
  return out;
}

/** A tar stream of the given entries (a Node Readable, as a caller would pass). */
function makeTar(entries: ReadonlyArray<{ header: Headers; data?: string }>): Readable {
  const pack = tarPack();
  for (const e of entries) pack.entry({ mtime: new Date(1e12), ...e.header }, e.data);
  pack.finalize();
  return Readable.from(pack);
}

const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

/** A container that stays up, with `script` run first (to plant symlinks). */
const start = (script = '') => Container.start({ rootfs, command: ['sh', '-c', `${script}\nexec sleep 60`], stdio: 'ignore' });

/** A path inside the container, seen from the host (assertions only: these paths are known to be plain). */
const inside = (pid: number, path: string): string => `/proc/${pid}/root${path}`;

/** Waits until the container's setup script has run (its last step creates `marker`). */
async function ready(pid: number, marker: string): Promise<void> {
  for (let i = 0; i < 200 && !existsSync(inside(pid, marker)); i++) await new Promise((r) => setTimeout(r, 25));
  expect(existsSync(inside(pid, marker))).toBe(true);
}

/** A host source tree: a script, a nested file, relative and absolute symlinks, a hardlink, a private empty dir. */
function hostTree(dir: string): string {
  const tree = join(dir, 'tree');
  mkdirSync(join(tree, 'sub', 'deep'), { recursive: true });
  writeFileSync(join(tree, 'run.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(join(tree, 'run.sh'), 0o750);
  writeFileSync(join(tree, 'sub', 'deep', 'b.txt'), 'bee');
  symlinkSync('run.sh', join(tree, 'link'));
  symlinkSync('/etc/passwd', join(tree, 'abs'));
  linkSync(join(tree, 'run.sh'), join(tree, 'hard'));
  mkdirSync(join(tree, 'private'), { mode: 0o700 });
  chmodSync(join(tree, 'private'), 0o700);
  return tree;
}

async function expectCopyError(p: Promise<unknown>, reason: string): Promise<CopyError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(CopyError);
  expect((e as CopyError).code).toBe('ERR_COPY');
  expect((e as CopyError).reason).toBe(reason);
  return e as CopyError;
}

describe('copyToContainer / copyFromContainer', () => {
  it('a file round trip: host -> container -> tar, content and mode kept', async () => {
    const [dir, cleanup] = tempDir();
    try {
      await using c = await start();
      const file = join(dir, 'hello.txt');
      writeFileSync(file, 'hello, container\n');
      chmodSync(file, 0o640);
      await copyToContainer(c.pid, file, '/tmp');
      const landed = inside(c.pid, '/tmp/hello.txt');
      expect(readFileSync(landed, 'utf8')).toBe('hello, container\n');
      expect(statSync(landed).mode & 0o7777).toBe(0o640);
      expect(statSync(landed).uid).toBe(statSync(file).uid);

      const entries = await readTar(copyFromContainer(c.pid, '/tmp/hello.txt'));
      expect(entries.map((e) => [e.header.name, e.header.type, e.header.mode])).toEqual([['hello.txt', 'file', 0o640]]);
      expect(entries[0]!.data.toString()).toBe('hello, container\n');
    } finally {
      cleanup();
    }
  });

  it('a directory round trip keeps modes, symlinks as symlinks and hardlinks', async () => {
    const [dir, cleanup] = tempDir();
    try {
      await using c = await start();
      const tree = hostTree(dir);
      await copyToContainer(c.pid, tree, '/tmp');
      const root = inside(c.pid, '/tmp/tree');
      expect(readFileSync(join(root, 'sub/deep/b.txt'), 'utf8')).toBe('bee');
      expect(statSync(join(root, 'run.sh')).mode & 0o7777).toBe(0o750);
      expect(statSync(join(root, 'private')).mode & 0o7777).toBe(0o700);
      expect(lstatSync(join(root, 'link')).isSymbolicLink()).toBe(true);
      expect(readlinkSync(join(root, 'link'))).toBe('run.sh');
      expect(readlinkSync(join(root, 'abs'))).toBe('/etc/passwd');
      expect(statSync(join(root, 'hard')).ino).toBe(statSync(join(root, 'run.sh')).ino);

      const entries = await readTar(copyFromContainer(c.pid, '/tmp/tree'));
      const byName = new Map(entries.map((e) => [e.header.name, e]));
      expect([...byName.keys()].sort()).toEqual([
        'tree/',
        'tree/abs',
        'tree/hard',
        'tree/link',
        'tree/private/',
        'tree/run.sh',
        'tree/sub/',
        'tree/sub/deep/',
        'tree/sub/deep/b.txt',
      ]);
      expect(byName.get('tree/abs')!.header).toMatchObject({ type: 'symlink', linkname: '/etc/passwd' });
      expect(byName.get('tree/link')!.header).toMatchObject({ type: 'symlink', linkname: 'run.sh' });
      expect(byName.get('tree/private/')!.header).toMatchObject({ type: 'directory', mode: 0o700 });
      // One of the two names carries the data, the other links to it (readdir order decides which).
      const [hard, run] = [byName.get('tree/hard')!, byName.get('tree/run.sh')!];
      const [data, link] = hard.header.type === 'link' ? [run, hard] : [hard, run];
      expect(link.header.type).toBe('link');
      expect(link.header.linkname).toBe(data.header.name);
      expect(data.header).toMatchObject({ type: 'file', mode: 0o750 });
      expect(data.data.toString()).toBe('#!/bin/sh\necho hi\n');
      expect(byName.get('tree/sub/deep/b.txt')!.data.toString()).toBe('bee');

      // And back into another container: the tar stream of one is the input of the other.
      await using c2 = await start();
      await copyToContainer(c2.pid, copyFromContainer(c.pid, '/tmp/tree'), '/tmp');
      expect(readFileSync(inside(c2.pid, '/tmp/tree/sub/deep/b.txt'), 'utf8')).toBe('bee');
      expect(readlinkSync(inside(c2.pid, '/tmp/tree/abs'))).toBe('/etc/passwd');
      expect(statSync(inside(c2.pid, '/tmp/tree/hard')).ino).toBe(statSync(inside(c2.pid, '/tmp/tree/run.sh')).ino);
    } finally {
      cleanup();
    }
  });

  it('into an existing directory under the source basename, else as the new name; typed errors otherwise', async () => {
    const [dir, cleanup] = tempDir();
    try {
      await using c = await start();
      const file = join(dir, 'f.txt');
      writeFileSync(file, 'one');
      const tree = hostTree(dir);
      await copyToContainer(c.pid, file, '/tmp/renamed.txt');
      expect(readFileSync(inside(c.pid, '/tmp/renamed.txt'), 'utf8')).toBe('one');
      writeFileSync(file, 'two');
      await copyToContainer(c.pid, file, '/tmp/renamed.txt'); // an existing file is replaced
      expect(readFileSync(inside(c.pid, '/tmp/renamed.txt'), 'utf8')).toBe('two');
      await copyToContainer(c.pid, tree, '/tmp/newtree');
      expect(readFileSync(inside(c.pid, '/tmp/newtree/sub/deep/b.txt'), 'utf8')).toBe('bee');
      await copyToContainer(c.pid, tree, '/tmp/newtree'); // now it exists: goes inside
      expect(readFileSync(inside(c.pid, '/tmp/newtree/tree/sub/deep/b.txt'), 'utf8')).toBe('bee');

      await expectCopyError(copyToContainer(c.pid, file, '/no/such/dir/f.txt'), 'not-found');
      await expectCopyError(copyToContainer(c.pid, file, '/tmp/missing/'), 'not-a-directory');
      await expectCopyError(copyToContainer(c.pid, tree, '/tmp/renamed.txt'), 'overwrite');
      await expectCopyError(copyToContainer(c.pid, join(dir, 'nope'), '/tmp'), 'not-found');
      expect(existsSync(inside(c.pid, '/no'))).toBe(false);
    } finally {
      cleanup();
    }
  });

  it('a tar stream is extracted into an existing directory', async () => {
    await using c = await start();
    await copyToContainer(
      c.pid,
      makeTar([
        { header: { name: 'd/', type: 'directory', mode: 0o750 } },
        { header: { name: 'd/f', type: 'file', mode: 0o604, uid: 1234, gid: 4321 }, data: 'from a tar' },
        { header: { name: 'd/l', type: 'symlink', linkname: 'f' } },
        { header: { name: 'd/p', type: 'fifo', mode: 0o640 } },
        { header: { name: 'implicit/parent/g', type: 'file' }, data: 'g' },
      ]),
      '/tmp',
    );
    const d = inside(c.pid, '/tmp/d');
    expect(statSync(d).mode & 0o7777).toBe(0o750);
    expect(readFileSync(join(d, 'f'), 'utf8')).toBe('from a tar');
    expect(statSync(join(d, 'f'))).toMatchObject({ uid: 1234, gid: 4321 });
    expect(statSync(join(d, 'f')).mode & 0o7777).toBe(0o604);
    expect(readlinkSync(join(d, 'l'))).toBe('f');
    expect(lstatSync(join(d, 'p')).isFIFO()).toBe(true);
    expect(lstatSync(join(d, 'p')).mode & 0o7777).toBe(0o640);
    expect(readFileSync(inside(c.pid, '/tmp/implicit/parent/g'), 'utf8')).toBe('g');

    await expectCopyError(copyToContainer(c.pid, makeTar([{ header: { name: 'x', type: 'file' }, data: 'x' }]), '/etc/passwd'), 'not-a-directory');
    await expectCopyError(copyToContainer(c.pid, makeTar([{ header: { name: 'x', type: 'file' }, data: 'x' }]), '/nowhere'), 'not-found');
    // docker cp never replaces a directory with a file, unless asked to.
    await expectCopyError(copyToContainer(c.pid, makeTar([{ header: { name: 'd', type: 'file' }, data: 'x' }]), '/tmp'), 'overwrite');
    await copyToContainer(c.pid, makeTar([{ header: { name: 'd', type: 'file' }, data: 'replaced' }]), '/tmp', { noOverwriteDirNonDir: false });
    expect(readFileSync(inside(c.pid, '/tmp/d'), 'utf8')).toBe('replaced');
  });

  it('symlinks planted in the container resolve inside it: nothing is written on the host', async () => {
    const [canary, cleanup] = tempDir();
    const name = `ctk-copy-${randomBytes(4).toString('hex')}.txt`;
    try {
      writeFileSync(join(canary, 'secret'), 'HOST');
      const [src, cleanupSrc] = tempDir();
      await using c = await start(
        `ln -s / /evil; mkdir -p /x; ln -s ../../../../etc /x/y; mkdir -p ${canary}; echo CONTAINER > ${canary}/secret; ln -s ${canary} /c; touch /ready`,
      );
      await ready(c.pid, '/ready');
      const file = join(src, name);
      writeFileSync(file, 'payload');

      await copyToContainer(c.pid, file, '/evil'); // `/evil` is the container's `/`
      expect(existsSync(`/${name}`)).toBe(false);
      expect(readFileSync(inside(c.pid, `/${name}`), 'utf8')).toBe('payload');

      await copyToContainer(c.pid, file, '/x/y'); // `../../../../etc` stops at the container's root
      expect(existsSync(`/etc/${name}`)).toBe(false);
      expect(readFileSync(inside(c.pid, `/etc/${name}`), 'utf8')).toBe('payload');

      await copyToContainer(c.pid, file, '/c/dropped'); // an absolute symlink naming a host path
      await copyToContainer(c.pid, makeTar([{ header: { name: 'from-tar', type: 'file' }, data: 't' }]), '/c');
      await copyToContainer(c.pid, file, '/evil/x/y/'); // a symlink as a middle component
      expect(readFileSync(inside(c.pid, `${canary}/dropped`), 'utf8')).toBe('payload');
      expect(readFileSync(inside(c.pid, `${canary}/from-tar`), 'utf8')).toBe('t');
      expect(readdirSync(canary)).toEqual(['secret']);
      expect(readFileSync(join(canary, 'secret'), 'utf8')).toBe('HOST');

      // Reading goes through the same resolution: the container's file, never the host's.
      const secret = await readTar(copyFromContainer(c.pid, '/c/secret'));
      expect(secret.map((e) => e.data.toString())).toEqual(['CONTAINER\n']);
      cleanupSrc();
    } finally {
      cleanup();
    }
  });

  it('a malicious tar is refused with a typed error and writes nothing outside the destination', async () => {
    const [canary, cleanup] = tempDir();
    const shadow = sha('/etc/shadow');
    try {
      writeFileSync(join(canary, 'secret'), 'HOST');
      await using c = await start(`mkdir -p /tmp/mal; ln -s / /tmp/mal/planted; ln -s ${canary} /tmp/mal/hostpath; touch /ready`);
      await ready(c.pid, '/ready');
      const cases: Array<{ what: string; entries: Array<{ header: Headers; data?: string }> }> = [
        { what: 'a ../ name', entries: [{ header: { name: `../../../../../../${canary}/pwned`, type: 'file' }, data: 'x' }] },
        { what: 'a ../ in the middle', entries: [{ header: { name: 'a/../../pwned', type: 'file' }, data: 'x' }] },
        { what: 'an absolute name', entries: [{ header: { name: `${canary}/pwned`, type: 'file' }, data: 'x' }] },
        {
          what: 'a symlink to / then a write through it',
          entries: [{ header: { name: 's', type: 'symlink', linkname: '/' } }, { header: { name: `s${canary}/pwned`, type: 'file' }, data: 'x' }],
        },
        {
          what: 'a symlink climbing out then a write through it',
          entries: [
            { header: { name: 'up', type: 'symlink', linkname: '../../../../../..' } },
            { header: { name: `up${canary}/pwned`, type: 'file' }, data: 'x' },
          ],
        },
        {
          what: 'a symlink to a host path then a write through it',
          entries: [{ header: { name: 'h', type: 'symlink', linkname: canary } }, { header: { name: 'h/pwned', type: 'file' }, data: 'x' }],
        },
        { what: 'a write through a symlink the container planted', entries: [{ header: { name: `planted${canary}/pwned`, type: 'file' }, data: 'x' }] },
        { what: 'a directory through a planted symlink', entries: [{ header: { name: 'hostpath/newdir/', type: 'directory' } }] },
        { what: 'a hardlink to /etc/shadow', entries: [{ header: { name: 'shadow', type: 'link', linkname: '/etc/shadow' } }] },
        { what: 'a hardlink climbing to /etc/shadow', entries: [{ header: { name: 'shadow', type: 'link', linkname: '../../../../etc/shadow' } }] },
        { what: 'a hardlink through a planted symlink', entries: [{ header: { name: 'shadow', type: 'link', linkname: 'planted/etc/shadow' } }] },
      ];
      for (const { what, entries } of cases) {
        const e = await expectCopyError(copyToContainer(c.pid, makeTar(entries), '/tmp/mal'), 'unsafe-entry');
        expect(e.message, what).toMatch(/unsafe|outside|climb|absolute|leave/);
      }
      expect(readdirSync(canary)).toEqual(['secret']);
      expect(readFileSync(join(canary, 'secret'), 'utf8')).toBe('HOST');
      expect(sha('/etc/shadow')).toBe(shadow);
      expect(statSync('/etc/shadow').nlink).toBe(1);
      expect(existsSync(inside(c.pid, '/tmp/mal/shadow'))).toBe(false);
      // The container's own tree was not written through either.
      expect(existsSync(inside(c.pid, `${canary}/pwned`))).toBe(false);
      expect(existsSync(inside(c.pid, '/pwned'))).toBe(false);
    } finally {
      cleanup();
    }
  });

  it('copyFrom archives a symlink as a symlink, never what it points to', async () => {
    await using c = await start('ln -s / /evil; mkdir -p /x; ln -s ../../../../etc /x/y; touch /ready');
    await ready(c.pid, '/ready');
    const evil = await readTar(copyFromContainer(c.pid, '/evil'));
    expect(evil.map((e) => [e.header.name, e.header.type, e.header.linkname])).toEqual([['evil', 'symlink', '/']]);
    const y = await readTar(copyFromContainer(c.pid, '/x/y'));
    expect(y.map((e) => [e.header.name, e.header.type, e.header.linkname])).toEqual([['y', 'symlink', '../../../../etc']]);
    // A symlink in the middle is followed inside the container: /x/y/hostname is the container's /etc/hostname.
    const hostname = await readTar(copyFromContainer(c.pid, '/x/y/hostname'));
    expect(hostname.map((e) => e.header.name)).toEqual(['hostname']);
    expect(hostname[0]!.data.toString()).toBe(readFileSync(inside(c.pid, '/etc/hostname'), 'utf8'));
    // The directory holding them: the links are entries, their targets are not walked.
    const x = await readTar(copyFromContainer(c.pid, '/x'));
    expect(x.map((e) => e.header.name)).toEqual(['x/', 'x/y']);
  });

  it('a container swapping directories and symlinks while copies run cannot redirect them to the host', async () => {
    const [canary, cleanup] = tempDir();
    try {
      writeFileSync(join(canary, 'secret'), 'HOST SECRET');
      // /tmp/r/d flips between a real directory holding `secret` and a symlink to the host's canary path.
      await using c = await start(
        `mkdir -p /tmp/r /tmp/w; (while :; do rm -rf /tmp/r/d /tmp/w/d; mkdir /tmp/r/d /tmp/w/d; echo container > /tmp/r/d/secret; ` +
          `rm -rf /tmp/r/d /tmp/w/d; ln -s ${canary} /tmp/r/d; ln -s ${canary} /tmp/w/d; done) & touch /ready`,
      );
      await ready(c.pid, '/ready');
      const outcomes = new Set<string>();
      for (let i = 0; i < 150; i++) {
        const read = await readTar(copyFromContainer(c.pid, '/tmp/r')).then(
          (e) => e,
          (e: unknown) => e,
        );
        if (read instanceof Error) {
          expect(read).toBeInstanceOf(CopyError);
          outcomes.add(`read:${(read as CopyError).reason}`);
        } else {
          for (const e of read as TarEntry[]) expect(e.data.toString()).not.toContain('HOST');
          outcomes.add(`read:${(read as TarEntry[]).map((e) => e.header.type).join(',')}`);
        }
        const wrote = await copyToContainer(c.pid, makeTar([{ header: { name: `d/x${i}`, type: 'file' }, data: 'x' }]), '/tmp/w').then(
          () => 'ok',
          (e: unknown) => e,
        );
        if (wrote instanceof Error) {
          expect(wrote).toBeInstanceOf(CopyError);
          outcomes.add(`write:${(wrote as CopyError).reason}`);
        } else outcomes.add('write:ok');
      }
      expect(readdirSync(canary)).toEqual(['secret']);
      expect(readFileSync(join(canary, 'secret'), 'utf8')).toBe('HOST SECRET');
      expect(outcomes.size).toBeGreaterThan(1); // the race was actually run both ways
    } finally {
      cleanup();
    }
  });

  it('a missing path, a stopped container and an aborted copy are typed errors', async () => {
    const [dir, cleanup] = tempDir();
    try {
      let pid: number;
      {
        await using c = await start();
        pid = c.pid;
        expect(() => copyFromContainer(c.pid, '/does/not/exist')).toThrow(CopyError);
        try {
          copyFromContainer(c.pid, '/does/not/exist');
        } catch (e) {
          expect(e).toMatchObject({ code: 'ERR_COPY', reason: 'not-found' });
        }
        writeFileSync(join(dir, 'f'), 'x');
        await expect(copyToContainer(c.pid, join(dir, 'f'), '/tmp', { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ABORT_ERR' });
        const ac = new AbortController();
        const stream = copyFromContainer(c.pid, '/etc', { signal: ac.signal });
        ac.abort();
        await expect(readTar(stream)).rejects.toMatchObject({ code: 'ABORT_ERR' });
      }
      expect(() => copyFromContainer(pid, '/etc')).toThrow(CopyError);
      await expectCopyError(copyToContainer(pid, join(dir, 'f'), '/tmp'), 'container-gone');
    } finally {
      cleanup();
    }
  });

  it("/proc is read through the container's mounts: pseudo files whole, nothing hangs", async () => {
    await using c = await start();
    // start() resolves as execve closes the stage's descriptors, a moment before the kernel
    // renames the process: wait for the name the assertion is about.
    await eventually(() => readFileSync(`/proc/${c.pid}/comm`, 'utf8') === 'sleep\n');
    const status = await readTar(copyFromContainer(c.pid, '/proc/1/status'));
    expect(status).toHaveLength(1);
    expect(status[0]!.header.size).toBe(status[0]!.data.length);
    expect(status[0]!.data.toString()).toMatch(/^Name:\s+sleep$/m);
    expect(status[0]!.data.toString()).toMatch(/^NSpid:\s+1$/m); // the container's own /proc: PID 1 there, no host PID
    // A whole /proc/1 either completes or fails with a CopyError naming a file that refuses
    // to be read (mem, clear_refs ...) — within seconds, not a hang.
    // (A hang would fail the test by its timeout.)
    const whole = await readTar(copyFromContainer(c.pid, '/proc/1')).then(
      (e) => e,
      (e: unknown) => e,
    );
    if (whole instanceof Error) expect(whole).toBeInstanceOf(CopyError);
    else expect((whole as TarEntry[]).some((e) => e.header.name === '1/status')).toBe(true);
    // Devices are archived as headers, never opened.
    const dev = await readTar(copyFromContainer(c.pid, '/dev/null'));
    expect(dev.map((e) => [e.header.name, e.header.type, e.header.devmajor, e.header.devminor])).toEqual([['null', 'character-device', 1, 3]]);
  });
});
