/**
 * The default rootfs: a minimal root file system made from the host's own files, so a
 * container can run on a fresh machine without pulling any image.
 *
 * With a static busybox on the host it is that one file plus applet symlinks. Otherwise it
 * is a handful of the host's own commands plus every shared library they need, each at the
 * same absolute path as on the host (symlink chains included), found by reading ELF headers.
 */
import { execFile } from 'node:child_process';
import type { Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { chmod, copyFile, constants as fsc, lstat, mkdir, readdir, readFile, readlink, realpath, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, posix, resolve } from 'node:path';
import { promisify } from 'node:util';
import { logger } from '../../log.js';
import { AbortError, CtrkitError } from '../../errors.js';
import { readElf } from './elf.js';
import { resolveSharedLibraries } from './libs.js';

const log = logger('ctrkit:rootfs');
const execFileP = promisify(execFile);

/** The name of the manifest file at the top of a built rootfs. */
export const MANIFEST_NAME = '.ctrkit-rootfs.json';

/** Bump when the layout changes, so old caches are rebuilt rather than trusted. */
const MANIFEST_VERSION = 1;

/** The file {@link buildRootfs} writes last, at the top of the rootfs: its presence means "complete". */
export interface RootfsManifest {
  /** The manifest format version, currently 1. */
  version: 1;
  /** `busybox`: a static busybox and its applet links; `host-binaries`: host commands and their libraries. */
  kind: RootfsKind;
  /** The commands available in `/bin`, by name. */
  commands: string[];
  /** When the rootfs was built, as an ISO 8601 string. */
  createdAt: string;
}

/** How a default rootfs is made; see {@link RootfsManifest.kind}. */
export type RootfsKind = 'busybox' | 'host-binaries';

/** Options of {@link defaultRootfs}. */
export interface DefaultRootfsOptions {
  /**
   * Where the rootfs lives. Defaults to
   * `$CTRKIT_CACHE_DIR/ctrkit/rootfs-v3-<arch>`, or under `$XDG_CACHE_HOME` (else `~/.cache`)
   * when `CTRKIT_CACHE_DIR` is unset.
   */
  dir?: string;
  /** Build it again even when a complete one is already there. Default `false`. */
  rebuild?: boolean;
  /** Cancels the build (checked between steps); the partial build is removed. */
  signal?: AbortSignal;
}

/** Options of {@link buildRootfs}. */
export interface BuildRootfsOptions {
  /** Cancels the build (checked between steps). */
  signal?: AbortSignal;
  /**
   * Forces how the rootfs is made instead of picking `busybox` when the host has a static
   * busybox; mostly for tests. Forcing `busybox` without a static busybox fails.
   */
  mode?: RootfsKind;
}

/** Building a default rootfs failed; `cause` has the underlying error. */
export class RootfsBuildError extends CtrkitError {
  /** Always `ERR_ROOTFS_BUILD`. */
  declare readonly code: 'ERR_ROOTFS_BUILD';
  /**
   * @param message - what failed
   * @param options - `cause` for the underlying error
   */
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_ROOTFS_BUILD', message, options);
  }
}

/** The busybox applets linked into `/bin`, when the host's busybox has them. */
const BUSYBOX_APPLETS = [
  'sh',
  'ash',
  'ls',
  'ps',
  'cat',
  'echo',
  'hostname',
  'id',
  'mount',
  'umount',
  'sleep',
  'true',
  'false',
  'env',
  'pwd',
  'mkdir',
  'rm',
  'cp',
  'mv',
  'ln',
  'touch',
  'grep',
  'sed',
  'awk',
  'head',
  'tail',
  'wc',
  'printf',
  'test',
  '[',
  'kill',
  'stat',
  'readlink',
  'uname',
  'dd',
  'yes',
  'seq',
  'sort',
  'uniq',
  'cut',
  'tr',
  'date',
  'find',
  'xargs',
  'chmod',
  'chown',
  'ip',
  'ping',
  'wget',
  'nc',
  'vi',
  'less',
  'tee',
  'du',
  'df',
  'free',
  'top',
  'dmesg',
  'sync',
  'realpath',
  'basename',
  'dirname',
  'whoami',
  'nproc',
  'httpd',
  'stty',
  'tty',
  'fold',
  'mknod',
  'unshare',
  'nsenter',
  'chroot',
];

/** The host commands copied when there is no static busybox; `sh` is the only one required. */
const HOST_COMMANDS = ['sh', 'ls', 'ps', 'cat', 'hostname', 'echo', 'id', 'sleep', 'true', 'false', 'env', 'mount'];

/** Where host commands are looked for; the sbin ones only as a fallback (mount lives there on some hosts). */
const HOST_BIN_DIRS = ['/bin', '/usr/bin', '/sbin', '/usr/sbin'];

const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox'];

// Directories and their modes: /tmp-like ones are sticky and world-writable, /root is private.
const LAYOUT: ReadonlyArray<readonly [string, number]> = [
  ['bin', 0o755],
  ['sbin', 0o755],
  ['usr', 0o755],
  ['usr/bin', 0o755],
  ['usr/sbin', 0o755],
  ['etc', 0o755],
  ['proc', 0o755],
  ['dev', 0o755],
  ['sys', 0o755],
  ['run', 0o755],
  ['tmp', 0o1777],
  ['root', 0o700],
  ['var', 0o755],
  ['var/tmp', 0o1777],
];

const ETC_FILES: Record<string, string> = {
  passwd: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
  group: 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n',
  'os-release': 'NAME="ctrkit default rootfs"\nID=ctrkit\nPRETTY_NAME="ctrkit default rootfs"\n',
  // Mount points for the files a container runtime binds in: present, so that binding needs
  // no write access to /etc (a user-namespaced root may have none).
  hosts: '127.0.0.1\tlocalhost\n',
  hostname: 'localhost\n',
  'resolv.conf': '',
};

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError(signal.reason);
}

/**
 * Builds a default rootfs into `dir`.
 *
 * Every file is world-readable and every directory and binary mode 0755 (owned by the
 * caller, root when run as root), so an unprivileged user can use it as a container rootfs.
 * The manifest is written last; a directory without one is an incomplete build. On failure
 * `dir` is left as it is: use {@link defaultRootfs} for an atomic, cached build.
 *
 * @param dir - the target directory; it must not exist, or be empty (its parent is created)
 * @param options - see {@link BuildRootfsOptions}
 * @returns the manifest that was written to `dir/.ctrkit-rootfs.json`
 * @throws {@link RootfsBuildError} when `dir` is not empty, no usable `sh` is found, or
 *   copying fails; {@link AbortError} when `signal` aborts
 */
export async function buildRootfs(dir: string, options: BuildRootfsOptions = {}): Promise<RootfsManifest> {
  const { signal } = options;
  checkAbort(signal);
  try {
    await prepareEmptyDir(dir);
    for (const [d, mode] of LAYOUT) await makeDir(join(dir, d), mode);
    for (const [name, text] of Object.entries(ETC_FILES)) await writeFileMode(join(dir, 'etc', name), text, 0o644);
    checkAbort(signal);

    const busybox = options.mode === 'host-binaries' ? undefined : await findStaticBusybox();
    if (options.mode === 'busybox' && !busybox) throw new RootfsBuildError('no static busybox on this host (install busybox-static)');
    const kind: RootfsKind = busybox ? 'busybox' : 'host-binaries';
    const commands = busybox ? await installBusybox(dir, busybox, signal) : await installHostBinaries(dir, signal);
    checkAbort(signal);

    const manifest: RootfsManifest = { version: MANIFEST_VERSION, kind, commands, createdAt: new Date().toISOString() };
    await writeFileMode(join(dir, MANIFEST_NAME), `${JSON.stringify(manifest, null, 2)}\n`, 0o644);
    log('built %s rootfs in %s: %s', kind, dir, commands.join(' '));
    return manifest;
  } catch (err) {
    // An abort may surface as whatever the interrupted step threw (execFile's own AbortError).
    if (signal?.aborted && !(err instanceof AbortError)) throw new AbortError(signal.reason);
    if (err instanceof AbortError || err instanceof RootfsBuildError) throw err;
    throw new RootfsBuildError(`building the default rootfs in ${dir} failed: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The path of a ready default rootfs, built on first use and cached.
 *
 * The build goes into a sibling temporary directory that is renamed into place, so a
 * reader never sees a half-built rootfs, and concurrent callers (in this or other
 * processes) may both build but end up sharing the one that was renamed first.
 *
 * @param options - see {@link DefaultRootfsOptions}
 * @returns the absolute path of the rootfs directory
 * @throws {@link RootfsBuildError} when the build fails (the temporary directory is removed);
 *   {@link AbortError} when `signal` aborts
 */
export async function defaultRootfs(options: DefaultRootfsOptions = {}): Promise<string> {
  const { signal } = options;
  const dir = resolve(options.dir ?? defaultRootfsDir());
  checkAbort(signal);
  if (!options.rebuild && (await readManifest(dir))) {
    log('reusing %s', dir);
    return dir;
  }
  await mkdir(dirname(dir), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  try {
    await buildRootfs(tmp, { signal });
    checkAbort(signal);
    await installBuilt(tmp, dir, options.rebuild === true);
    return dir;
  } catch (err) {
    await rm(tmp, { recursive: true, force: true }).catch((e: unknown) => log('cannot remove %s: %s', tmp, (e as Error).message));
    if (err instanceof AbortError || err instanceof RootfsBuildError) throw err;
    throw new RootfsBuildError(`installing the default rootfs at ${dir} failed: ${(err as Error).message}`, { cause: err });
  }
}

/** The default location of the cached rootfs; see {@link DefaultRootfsOptions.dir}. @internal */
export function defaultRootfsDir(): string {
  const env = process.env;
  // Root's home is 0700, and a container with a user namespace runs as a mapped uid that
  // must still reach its rootfs: root's cache lives in the world-traversable /var/cache.
  const xdg = env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : process.getuid?.() === 0 ? '/var/cache' : join(homedir(), '.cache');
  return join(env.CTRKIT_CACHE_DIR || xdg, 'ctrkit', `rootfs-v3-${process.arch}`);
}

/**
 * Reads and checks the manifest of a built rootfs.
 * @param dir - a rootfs directory
 * @returns the manifest, or `null` when `dir` has none or an invalid one
 */
export async function readManifest(dir: string): Promise<RootfsManifest | null> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(join(dir, MANIFEST_NAME), 'utf8'));
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const m = parsed as Record<string, unknown>;
  const ok =
    m.version === MANIFEST_VERSION &&
    (m.kind === 'busybox' || m.kind === 'host-binaries') &&
    Array.isArray(m.commands) &&
    m.commands.every((c) => typeof c === 'string') &&
    typeof m.createdAt === 'string';
  return ok ? (parsed as RootfsManifest) : null;
}

/**
 * Renames a finished build into place. rename(2) onto a non-empty directory fails, which is
 * what makes concurrent builders safe: the first rename wins, later ones use the winner's.
 */
async function installBuilt(tmp: string, dir: string, replace: boolean): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await rename(tmp, dir);
      log('installed %s', dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    }
    // Something is in the way: a winner (use it, unless asked to rebuild) or a broken
    // leftover without a manifest (move it aside, then retry the rename).
    if (!replace && (await readManifest(dir))) {
      log('another build of %s won the race; using it', dir);
      await rm(tmp, { recursive: true, force: true });
      return;
    }
    const aside = `${dir}.old-${process.pid}-${randomBytes(6).toString('hex')}`;
    try {
      await rename(dir, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    await rm(aside, { recursive: true, force: true });
    replace = false; // replaced once; if another builder now wins, its rootfs is as new as ours
  }
  throw new RootfsBuildError(`could not rename ${tmp} to ${dir}: it keeps being replaced`);
}

async function prepareEmptyDir(dir: string): Promise<void> {
  await mkdir(dirname(dir), { recursive: true });
  try {
    await mkdir(dir, 0o755);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const st = await lstat(dir);
    if (!st.isDirectory()) throw new RootfsBuildError(`${dir} exists and is not a directory`);
    if ((await readdir(dir)).length > 0) throw new RootfsBuildError(`${dir} is not empty`);
  }
  await chmod(dir, 0o755); // the umask may have taken bits away
}

/** mkdir that sets the exact mode (the umask would mask 1777 down) and refuses symlinks. */
async function makeDir(path: string, mode: number): Promise<void> {
  try {
    await mkdir(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    if (!(await lstat(path)).isDirectory()) throw new RootfsBuildError(`${path} exists and is not a directory`);
  }
  await chmod(path, mode);
}

async function writeFileMode(path: string, text: string, mode: number): Promise<void> {
  // 'wx' so that nothing already there (a symlink least of all) is written through.
  await writeFile(path, text, { flag: 'wx', mode });
  await chmod(path, mode);
}

/** Copies a regular file; COPYFILE_EXCL keeps it from writing through an existing link. */
async function copyRegular(src: string, dst: string, mode: number): Promise<void> {
  await copyFile(src, dst, fsc.COPYFILE_EXCL);
  await chmod(dst, mode);
}

/** The host's busybox, when it is a static ELF that can run in an empty rootfs. */
async function findStaticBusybox(): Promise<string | undefined> {
  for (const candidate of BUSYBOX_CANDIDATES) {
    try {
      const real = await realpath(candidate);
      const info = await readElf(real);
      if (info?.static && info.interpreter === undefined) return real;
      log('%s is not a static busybox', candidate);
    } catch (err) {
      log('no busybox at %s: %s', candidate, (err as Error).message);
    }
  }
  return undefined;
}

async function installBusybox(root: string, busybox: string, signal: AbortSignal | undefined): Promise<string[]> {
  // Run once to learn which applets this build has; linking a missing one would leave a
  // command that prints "applet not found".
  const { stdout } = await execFileP(busybox, ['--list'], { signal, maxBuffer: 1 << 20 });
  const available = new Set(stdout.split('\n').map((s) => s.trim()));
  await copyRegular(busybox, join(root, 'bin', 'busybox'), 0o755);
  const commands: string[] = [];
  for (const applet of BUSYBOX_APPLETS) {
    if (!available.has(applet)) continue;
    await symlink('busybox', join(root, 'bin', applet)); // relative: valid inside and outside the rootfs
    commands.push(applet);
  }
  if (!commands.includes('sh')) throw new RootfsBuildError(`${busybox} has no sh applet`);
  return commands;
}

async function installHostBinaries(root: string, signal: AbortSignal | undefined): Promise<string[]> {
  const commands: string[] = [];
  const sources: string[] = [];
  for (const name of HOST_COMMANDS) {
    const real = await findHostCommand(name);
    if (!real) {
      if (name === 'sh') throw new RootfsBuildError('the host has no sh in /bin or /usr/bin');
      log('host command %s not found; skipped', name);
      continue;
    }
    // Keep the command's name, not the target's: /bin/sh -> dash is copied as bin/sh.
    await copyRegular(real, join(root, 'bin', name), 0o755);
    commands.push(name);
    sources.push(real);
  }
  checkAbort(signal);
  const libs = await resolveSharedLibraries(sources);
  for (const lib of libs) {
    checkAbort(signal);
    await mirrorHostPath(root, lib);
  }
  log('copied %d libraries', libs.length);
  return commands;
}

/** The real file behind a host command, when it is an ELF executable. */
async function findHostCommand(name: string): Promise<string | undefined> {
  for (const d of HOST_BIN_DIRS) {
    let real: string;
    try {
      real = await realpath(join(d, name));
      if (!(await lstat(real)).isFile()) continue;
    } catch {
      continue;
    }
    // A script would need its interpreter too; an ELF file is what this mode knows to copy.
    if (await readElf(real).catch(() => null)) return real;
    log('%s is not ELF; skipped', real);
  }
  return undefined;
}

/**
 * Copies a host file into the rootfs at the same absolute path, recreating every symlink on
 * the way (directory links such as `/lib64 -> usr/lib64` as well as file links such as
 * `ld-linux-x86-64.so.2 -> ...`) and copying the final regular file.
 *
 * Resolution is done on the host's side, component by component; nothing is ever written
 * through a symlink inside the rootfs, since an absolute one there would point at the host.
 */
async function mirrorHostPath(root: string, hostPath: string): Promise<void> {
  let pending = hostPath.split('/').filter((c) => c !== '' && c !== '.');
  let resolved = '/'; // a host path with no symlink in it, mirrored as directories so far
  for (let hops = 0; pending.length > 0; ) {
    const comp = pending.shift() as string;
    if (comp === '..') {
      resolved = posix.dirname(resolved);
      continue;
    }
    const host = posix.join(resolved, comp);
    const inRoot = join(root, host);
    const st = await lstat(host);
    if (st.isSymbolicLink()) {
      if (++hops > 40) throw new RootfsBuildError(`${hostPath}: too many levels of symbolic links`);
      const target = await readlink(host);
      await ensureSymlink(inRoot, target);
      const rest = target.split('/').filter((c) => c !== '' && c !== '.');
      pending = [...rest, ...pending];
      if (target.startsWith('/')) resolved = '/';
    } else if (st.isDirectory()) {
      await ensureDir(inRoot);
      resolved = host;
    } else if (st.isFile() && pending.length === 0) {
      await ensureFile(host, inRoot, st.mode);
    } else {
      throw new RootfsBuildError(`${hostPath}: ${host} is neither a directory, a regular file nor a symlink`);
    }
  }
}

async function lstatOrNull(path: string): Promise<Stats | null> {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

async function ensureSymlink(path: string, target: string): Promise<void> {
  const st = await lstatOrNull(path);
  if (!st) return symlink(target, path);
  if (st.isSymbolicLink() && (await readlink(path)) === target) return;
  throw new RootfsBuildError(`${path} is already there and is not a symlink to ${target}`);
}

async function ensureDir(path: string): Promise<void> {
  const st = await lstatOrNull(path);
  if (!st) return makeDir(path, 0o755);
  if (!st.isDirectory()) throw new RootfsBuildError(`${path} is already there and is not a directory`);
}

async function ensureFile(src: string, dst: string, hostMode: number): Promise<void> {
  const st = await lstatOrNull(dst);
  if (st?.isFile()) return; // reached before through another symlink chain
  if (st) throw new RootfsBuildError(`${dst} is already there and is not a regular file`);
  // World-readable, and executable by all when the host file is executable by anyone
  // (the loader itself is run directly, libraries are only mmapped).
  await copyRegular(src, dst, hostMode & 0o111 ? 0o755 : 0o644);
}
