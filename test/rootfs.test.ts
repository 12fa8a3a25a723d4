import { execFile, spawnSync } from 'node:child_process';
import { existsSync, watch } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ElfFormatError, readElf } from '../dist/container/rootfs/elf.js';
import { ldSoConfDirs, resolveSharedLibraries, SharedLibraryNotFoundError } from '../dist/container/rootfs/libs.js';
import { buildRootfs, defaultRootfs, readManifest, RootfsBuildError, type RootfsManifest } from '../dist/container/rootfs/default-rootfs.js';
import { AbortError, CtrkitError } from '../dist/errors.js';

const execFileP = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const MACHINE = process.arch === 'arm64' ? 183 : 62;

const temps: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp('/tmp/ctk-test-');
  temps.push(d);
  return d;
}
afterAll(async () => {
  for (const d of temps) await rm(d, { recursive: true, force: true });
});

const staticBusybox = await (async () => {
  for (const p of ['/bin/busybox', '/usr/bin/busybox']) {
    const info = await readElf(p).catch(() => null);
    if (info?.static) return p;
  }
  return undefined;
})();

interface FakeElf {
  cls: 32 | 64;
  interp?: string;
  needed?: string[];
  rpath?: string;
  runpath?: string;
  soname?: string;
  machine?: number;
}

/**
 * A minimal ELF file: PT_INTERP, one PT_LOAD mapping the whole file at 0x400000 (so that
 * DT_STRTAB's address differs from its file offset), and PT_DYNAMIC.
 */
function makeElf(spec: FakeElf): Buffer {
  const is64 = spec.cls === 64;
  const ehsize = is64 ? 64 : 52;
  const phentsize = is64 ? 56 : 32;
  const dynsize = is64 ? 16 : 8;
  const base = 0x400000;
  // String table.
  const strs: string[] = [''];
  const offsetOf = (s: string): number => {
    let off = 0;
    for (const x of strs) {
      if (x === s) return off;
      off += Buffer.byteLength(x) + 1;
    }
    strs.push(s);
    return off;
  };
  const dyn: Array<[number, number]> = [];
  for (const n of spec.needed ?? []) dyn.push([1, offsetOf(n)]);
  if (spec.soname) dyn.push([14, offsetOf(spec.soname)]);
  if (spec.rpath) dyn.push([15, offsetOf(spec.rpath)]);
  if (spec.runpath) dyn.push([29, offsetOf(spec.runpath)]);
  const strtab = Buffer.from(strs.map((s) => `${s}\0`).join(''));
  const interp = spec.interp ? Buffer.from(`${spec.interp}\0`) : Buffer.alloc(0);
  const phnum = 3;
  const interpOff = ehsize + phnum * phentsize;
  const strOff = interpOff + interp.length;
  const dynOff = Math.ceil((strOff + strtab.length) / 8) * 8;
  dyn.push([5, base + strOff], [10, strtab.length], [0, 0]);
  const total = dynOff + dyn.length * dynsize;
  const b = Buffer.alloc(total);
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = is64 ? 2 : 1;
  b[5] = 1; // little-endian
  b[6] = 1;
  b.writeUInt16LE(3, 16); // ET_DYN
  b.writeUInt16LE(spec.machine ?? (is64 ? MACHINE : 3), 18);
  b.writeUInt32LE(1, 20);
  if (is64) {
    b.writeBigUInt64LE(BigInt(ehsize), 32);
    b.writeUInt16LE(ehsize, 52);
    b.writeUInt16LE(phentsize, 54);
    b.writeUInt16LE(phnum, 56);
  } else {
    b.writeUInt32LE(ehsize, 28);
    b.writeUInt16LE(ehsize, 40);
    b.writeUInt16LE(phentsize, 42);
    b.writeUInt16LE(phnum, 44);
  }
  const phdr = (i: number, type: number, offset: number, vaddr: number, filesz: number): void => {
    const at = ehsize + i * phentsize;
    b.writeUInt32LE(type, at);
    if (is64) {
      b.writeBigUInt64LE(BigInt(offset), at + 8);
      b.writeBigUInt64LE(BigInt(vaddr), at + 16);
      b.writeBigUInt64LE(BigInt(vaddr), at + 24);
      b.writeBigUInt64LE(BigInt(filesz), at + 32);
      b.writeBigUInt64LE(BigInt(filesz), at + 40);
    } else {
      b.writeUInt32LE(offset, at + 4);
      b.writeUInt32LE(vaddr, at + 8);
      b.writeUInt32LE(vaddr, at + 12);
      b.writeUInt32LE(filesz, at + 16);
      b.writeUInt32LE(filesz, at + 20);
    }
  };
  // An unused PT_NULL entry stands in for PT_INTERP when there is no interpreter.
  phdr(0, spec.interp ? 3 : 0, interpOff, base + interpOff, interp.length);
  phdr(1, 1, 0, base, total);
  phdr(2, 2, dynOff, base + dynOff, dyn.length * dynsize);
  interp.copy(b, interpOff);
  strtab.copy(b, strOff);
  dyn.forEach(([tag, val], i) => {
    const at = dynOff + i * dynsize;
    if (is64) {
      b.writeBigInt64LE(BigInt(tag), at);
      b.writeBigUInt64LE(BigInt(val), at + 8);
    } else {
      b.writeInt32LE(tag, at);
      b.writeUInt32LE(val, at + 4);
    }
  });
  return b;
}

/** Runs a command in the rootfs with chroot(8); returns its status and output. */
function inRoot(dir: string, script: string, extra: string[] = []): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('chroot', [...extra, dir, '/bin/sh', '-c', script], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Resolves a path the way a process chrooted into `root` would (absolute symlinks are
 * relative to `root`), and returns the host path of the final file, or undefined.
 */
async function resolveInRoot(root: string, path: string): Promise<string | undefined> {
  let pending = path.split('/').filter((c) => c !== '' && c !== '.');
  let cur: string[] = [];
  for (let hops = 0; pending.length > 0 && hops < 40; ) {
    const comp = pending.shift() as string;
    if (comp === '..') {
      cur.pop();
      continue;
    }
    const host = join(root, ...cur, comp);
    const st = await lstat(host).catch(() => null);
    if (!st) return undefined;
    if (st.isSymbolicLink()) {
      hops++;
      const target = await readlink(host);
      if (target.startsWith('/')) cur = [];
      pending = [...target.split('/').filter((c) => c !== '' && c !== '.'), ...pending];
    } else {
      cur.push(comp);
    }
  }
  return pending.length === 0 ? join(root, ...cur) : undefined;
}

async function tmpLeftovers(parent: string): Promise<string[]> {
  return (await readdir(parent)).filter((n) => n.includes('.tmp-') || n.includes('.old-'));
}

describe('readElf', () => {
  it('reads a dynamic executable (/bin/ls)', async () => {
    const info = await readElf('/bin/ls');
    expect(info).not.toBeNull();
    expect(info?.static).toBe(false);
    expect(info?.interpreter).toMatch(/^\/.*ld-linux.*\.so\.\d$/);
    expect(info?.needed).toContain('libc.so.6');
    expect(info?.elfClass).toBe(64);
    expect(info?.machine).toBe(MACHINE);
  });

  it.skipIf(!staticBusybox)('reads a static executable (busybox)', async () => {
    const info = await readElf(staticBusybox as string);
    expect(info?.static).toBe(true);
    expect(info?.interpreter).toBeUndefined();
    expect(info?.needed).toEqual([]);
  });

  it('reads the soname of a shared library', async () => {
    const libs = await resolveSharedLibraries(['/bin/ls']);
    const libc = libs.find((p) => p.endsWith('/libc.so.6'));
    expect((await readElf(libc as string))?.soname).toBe('libc.so.6');
  });

  it('returns null for files that are not ELF', async () => {
    const d = await tempDir();
    await writeFile(join(d, 'script.sh'), '#!/bin/sh\necho hi\n');
    await writeFile(join(d, 'empty'), '');
    await writeFile(join(d, 'tiny'), '\x7fE');
    expect(await readElf(join(d, 'script.sh'))).toBeNull();
    expect(await readElf(join(d, 'empty'))).toBeNull();
    expect(await readElf(join(d, 'tiny'))).toBeNull();
  });

  it('throws a typed error on truncated or garbage ELF files', async () => {
    const d = await tempDir();
    const whole = await readFile('/bin/ls');
    const cases: Record<string, Buffer> = {
      // Cut inside the header, inside the program headers, and before the dynamic section.
      header: whole.subarray(0, 40),
      phdrs: whole.subarray(0, 100),
      dynamic: whole.subarray(0, 4096),
      garbage: Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]), Buffer.alloc(200, 0xa5)]),
      bigEndian: Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 2, 1]), Buffer.alloc(100)]),
      badClass: Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 7, 1, 1]), Buffer.alloc(100)]),
    };
    for (const [name, bytes] of Object.entries(cases)) {
      await writeFile(join(d, name), bytes);
      const err = await readElf(join(d, name)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, name).toBeInstanceOf(ElfFormatError);
      expect(err, name).toBeInstanceOf(CtrkitError);
      expect((err as ElfFormatError).code).toBe('ERR_ELF_FORMAT');
    }
  });

  it.each([32, 64] as const)('reads a synthetic %i-bit ELF (strtab mapped through PT_LOAD)', async (cls) => {
    const d = await tempDir();
    const f = join(d, `elf${cls}`);
    await writeFile(
      f,
      makeElf({ cls, interp: '/lib/ld-test.so.1', needed: ['liba.so.1', 'libb.so.2'], rpath: '/r1:/r2', runpath: '$ORIGIN/../lib', soname: 'libself.so.3' }),
    );
    expect(await readElf(f)).toEqual({
      interpreter: '/lib/ld-test.so.1',
      needed: ['liba.so.1', 'libb.so.2'],
      rpath: ['/r1', '/r2'],
      runpath: ['$ORIGIN/../lib'],
      soname: 'libself.so.3',
      static: false,
      elfClass: cls,
      machine: cls === 64 ? MACHINE : 3,
    });
  });
});

describe('resolveSharedLibraries', () => {
  it('finds libc and the interpreter of /bin/ls, all existing', async () => {
    const libs = await resolveSharedLibraries(['/bin/ls']);
    const interp = (await readElf('/bin/ls'))?.interpreter as string;
    expect(libs).toContain(interp);
    expect(libs.some((p) => p.endsWith('/libc.so.6'))).toBe(true);
    for (const p of libs) expect(existsSync(p), p).toBe(true);
    expect(new Set(libs).size).toBe(libs.length);
  });

  it('ignores shell scripts', async () => {
    const d = await tempDir();
    await writeFile(join(d, 's'), '#!/bin/sh\n');
    expect(await resolveSharedLibraries([join(d, 's')])).toEqual([]);
  });

  it('searches DT_RPATH only without DT_RUNPATH, and expands $ORIGIN', async () => {
    const d = await tempDir();
    for (const sub of ['bin', 'lib', 'rp']) await mkdir(join(d, sub));
    const lib = makeElf({ cls: 64, soname: 'libctk.so.1' });
    await writeFile(join(d, 'lib', 'libctk.so.1'), lib);
    await writeFile(join(d, 'rp', 'libctk.so.1'), lib);
    const both = join(d, 'bin', 'both');
    const rpathOnly = join(d, 'bin', 'rpath-only');
    await writeFile(both, makeElf({ cls: 64, needed: ['libctk.so.1'], rpath: join(d, 'rp'), runpath: '$ORIGIN/../lib' }));
    await writeFile(rpathOnly, makeElf({ cls: 64, needed: ['libctk.so.1'], rpath: join(d, 'rp') }));
    expect(await resolveSharedLibraries([both])).toEqual([join(d, 'lib', 'libctk.so.1')]);
    expect(await resolveSharedLibraries([rpathOnly])).toEqual([join(d, 'rp', 'libctk.so.1')]);
  });

  it('skips libraries of another class, and reports missing ones with a typed error', async () => {
    const d = await tempDir();
    await mkdir(join(d, 'lib32'));
    await mkdir(join(d, 'lib64'));
    await writeFile(join(d, 'lib32', 'libctk.so.1'), makeElf({ cls: 32 }));
    await writeFile(join(d, 'lib64', 'libctk.so.1'), makeElf({ cls: 64 }));
    const bin = join(d, 'bin');
    await writeFile(bin, makeElf({ cls: 64, needed: ['libctk.so.1'], runpath: `${d}/lib32:${d}/lib64` }));
    expect(await resolveSharedLibraries([bin])).toEqual([join(d, 'lib64', 'libctk.so.1')]);

    const missing = join(d, 'missing');
    await writeFile(missing, makeElf({ cls: 64, needed: ['libctk-nowhere.so.9'] }));
    const err = await resolveSharedLibraries([missing]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SharedLibraryNotFoundError);
    expect((err as SharedLibraryNotFoundError).code).toBe('ERR_LIBRARY_NOT_FOUND');
  });

  it('parses ld.so.conf with include globs', async () => {
    const d = await tempDir();
    await mkdir(join(d, 'conf.d'));
    await writeFile(join(d, 'ld.so.conf'), '# comment\n/opt/a\ninclude conf.d/*.conf\n/opt/z # trailing\n');
    await writeFile(join(d, 'conf.d', 'b.conf'), '/opt/b1 /opt/b2\n');
    await writeFile(join(d, 'conf.d', 'a.conf'), `/opt/a1\ninclude ${join(d, 'ld.so.conf')}\n`);
    await writeFile(join(d, 'conf.d', 'ignored.txt'), '/opt/nope\n');
    expect(await ldSoConfDirs(join(d, 'ld.so.conf'))).toEqual(['/opt/a', '/opt/a1', '/opt/b1', '/opt/b2', '/opt/z']);
    expect(await ldSoConfDirs(join(d, 'absent.conf'))).toEqual([]);
  });
});

/** Checks the layout every mode shares, and that a non-root user can use it. */
async function checkLayout(dir: string, manifest: RootfsManifest): Promise<void> {
  expect(await readManifest(dir)).toEqual(manifest);
  const mode = async (p: string): Promise<number> => (await lstat(join(dir, p))).mode & 0o7777;
  expect(await mode('.')).toBe(0o755);
  expect(await mode('tmp')).toBe(0o1777);
  expect(await mode('var/tmp')).toBe(0o1777);
  expect(await mode('root')).toBe(0o700);
  for (const d of ['proc', 'dev', 'sys', 'etc', 'run', 'bin', 'sbin', 'usr/bin', 'usr/sbin']) expect(await mode(d), d).toBe(0o755);
  expect(await readFile(join(dir, 'etc/passwd'), 'utf8')).toContain('root:x:0:0:root:/root:/bin/sh');
  expect(await readFile(join(dir, 'etc/passwd'), 'utf8')).toContain('nobody:x:65534:65534:nobody:/nonexistent:/bin/false');
  expect(await readFile(join(dir, 'etc/group'), 'utf8')).toMatch(/^root:x:0:\ntty:x:5:\nnogroup:x:65534:\n$/);
  expect(await readFile(join(dir, 'etc/os-release'), 'utf8')).toContain('ctrkit default rootfs');
  if (isRoot) {
    const st = await stat(join(dir, 'bin/sh'));
    expect([st.uid, st.gid]).toEqual([0, 0]);
  }
}

describe('buildRootfs', () => {
  it.skipIf(!staticBusybox)('busybox mode: a rootfs that runs /bin/sh under chroot', async () => {
    const dir = join(await tempDir(), 'rootfs');
    const manifest = await buildRootfs(dir, { mode: 'busybox' });
    expect(manifest.kind).toBe('busybox');
    expect(manifest.commands).toEqual(expect.arrayContaining(['sh', 'ls', 'cat', 'echo', '[']));
    await checkLayout(dir, manifest);
    expect((await lstat(join(dir, 'bin/busybox'))).mode & 0o7777).toBe(0o755);
    for (const c of manifest.commands) expect((await readFile(join(dir, 'bin', c))).length).toBeGreaterThan(0);
    expect(await readdir(join(dir, 'bin'))).toHaveLength(manifest.commands.length + 1);
    if (!isRoot) return;
    const r = inRoot(dir, 'echo ok; ls /; cat /etc/passwd');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^ok\n/);
    expect(r.stdout).toContain('proc');
    expect(r.stdout).toContain('root:x:0:0');
    // Usable by an unprivileged user too.
    const u = inRoot(dir, 'echo ok; id -u; ls / >/tmp/ls.out && rm /tmp/ls.out', ['--userspec=65534:65534']);
    expect(u.status).toBe(0);
    expect(u.stdout).toBe('ok\n65534\n');
  });

  it('host-binaries mode: host commands and their libraries run under chroot', async () => {
    const dir = join(await tempDir(), 'rootfs');
    const manifest = await buildRootfs(dir, { mode: 'host-binaries' });
    expect(manifest.kind).toBe('host-binaries');
    expect(manifest.commands).toEqual(expect.arrayContaining(['sh', 'ls', 'cat', 'echo', 'id']));
    await checkLayout(dir, manifest);
    // Every library is at its host path inside the rootfs, symlink chains (such as the
    // interpreter's) recreated so that they resolve inside it, to a regular file.
    const libs = await resolveSharedLibraries(['/bin/ls', '/bin/cat', '/bin/sh']);
    for (const lib of libs) {
      const real = await resolveInRoot(dir, lib);
      expect(real, lib).toBeDefined();
      expect((await lstat(real as string)).isFile(), lib).toBe(true);
      expect((await lstat(real as string)).mode & 0o444, lib).toBe(0o444);
    }
    if (!isRoot) return;
    const r = inRoot(dir, 'echo ok; ls /; cat /etc/passwd');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^ok\n/);
    expect(r.stdout).toContain('proc');
    expect(r.stdout).toContain('root:x:0:0');
    // The same, seen from inside (chroot resolves absolute symlinks in the rootfs).
    const l = inRoot(dir, `ls -L ${libs.join(' ')} >/dev/null && id`);
    expect(l.stderr).toBe('');
    expect(l.stdout).toContain('uid=0(root) gid=0(root)');
    const u = inRoot(dir, 'echo ok; id -u', ['--userspec=65534:65534']);
    expect(u.status).toBe(0);
    expect(u.stdout).toBe('ok\n65534\n');
  });

  it('refuses a non-empty directory with a typed error', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'x'), '');
    const err = await buildRootfs(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RootfsBuildError);
    expect((err as RootfsBuildError).code).toBe('ERR_ROOTFS_BUILD');
  });
});

describe('defaultRootfs', () => {
  async function withCacheDir<T>(cache: string, f: () => Promise<T>): Promise<T> {
    const saved = process.env.CTRKIT_CACHE_DIR;
    process.env.CTRKIT_CACHE_DIR = cache;
    try {
      return await f();
    } finally {
      if (saved === undefined) delete process.env.CTRKIT_CACHE_DIR;
      else process.env.CTRKIT_CACHE_DIR = saved;
    }
  }

  it('builds once and then reuses the cached rootfs; rebuild replaces it', async () => {
    const cache = await tempDir();
    await withCacheDir(cache, async () => {
      const first = await defaultRootfs();
      expect(first).toBe(join(cache, 'ctrkit', `rootfs-v3-${process.arch}`));
      const m1 = (await readManifest(first)) as RootfsManifest;
      expect(m1).not.toBeNull();
      await new Promise((r) => setTimeout(r, 5));
      expect(await defaultRootfs()).toBe(first);
      expect((await readManifest(first))?.createdAt).toBe(m1.createdAt);

      expect(await defaultRootfs({ rebuild: true })).toBe(first);
      expect((await readManifest(first))?.createdAt).not.toBe(m1.createdAt);
      expect(await tmpLeftovers(join(cache, 'ctrkit'))).toEqual([]);
    });
  });

  it('replaces a directory without a valid manifest', async () => {
    const dir = join(await tempDir(), 'rfs');
    await mkdir(dir);
    await writeFile(join(dir, 'junk'), 'x');
    expect(await defaultRootfs({ dir })).toBe(dir);
    expect(await readManifest(dir)).not.toBeNull();
    expect(existsSync(join(dir, 'junk'))).toBe(false);
  });

  it('two concurrent calls in one process share one rootfs and leave no temp dirs', async () => {
    const cache = await tempDir();
    const [a, b] = await withCacheDir(cache, () => Promise.all([defaultRootfs(), defaultRootfs()]));
    expect(a).toBe(b);
    expect(await readManifest(a)).not.toBeNull();
    expect(await tmpLeftovers(join(cache, 'ctrkit'))).toEqual([]);
  });

  it('two concurrent processes share one rootfs and leave no temp dirs', async () => {
    const cache = await tempDir();
    const url = new URL('../dist/container/rootfs/default-rootfs.js', import.meta.url).href;
    const script = `const { defaultRootfs } = await import(${JSON.stringify(url)}); process.stdout.write(await defaultRootfs());`;
    const env = { ...process.env, CTRKIT_CACHE_DIR: cache };
    const run = () => execFileP(process.execPath, ['--input-type=module', '-e', script], { env });
    const [a, b] = await Promise.all([run(), run()]);
    expect(a.stdout).toBe(join(cache, 'ctrkit', `rootfs-v3-${process.arch}`));
    expect(b.stdout).toBe(a.stdout);
    expect(await readManifest(a.stdout)).not.toBeNull();
    expect(await tmpLeftovers(join(cache, 'ctrkit'))).toEqual([]);
  });

  it('honours an aborted signal and removes the partial build', async () => {
    const parent = await tempDir();
    const dir = join(parent, 'rfs');
    const pre = await defaultRootfs({ dir, signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(pre).toBeInstanceOf(AbortError);
    expect(existsSync(dir)).toBe(false);

    // Abort as soon as the temporary directory appears, i.e. mid-build.
    const ac = new AbortController();
    const watcher = watch(parent, (_event, name) => {
      if (name?.includes('.tmp-')) ac.abort();
    });
    try {
      const res = await defaultRootfs({ dir, signal: ac.signal }).catch((e: unknown) => e);
      // Whoever wins the race, there is either an AbortError or a complete rootfs, never a leftover.
      if (res instanceof Error) {
        expect(res).toBeInstanceOf(AbortError);
        expect(existsSync(dir)).toBe(false);
      } else {
        expect(await readManifest(dir)).not.toBeNull();
      }
      expect(await tmpLeftovers(parent)).toEqual([]);
    } finally {
      watcher.close();
    }
  });
});
