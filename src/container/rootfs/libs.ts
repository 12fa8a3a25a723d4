/**
 * Finds the shared libraries a set of binaries needs, the way the glibc dynamic loader
 * would, but by reading ELF headers instead of running `ldd` (which executes the binary's
 * own loader, and so is unsafe on untrusted files and useless across architectures).
 *
 * The search order mirrors ld.so(8): DT_RPATH (of the object and of the objects that loaded
 * it, ignored when the object has DT_RUNPATH), DT_RUNPATH, the directories of
 * /etc/ld.so.conf (standing in for /etc/ld.so.cache, which is built from them), and the
 * default directories. LD_LIBRARY_PATH is deliberately ignored: the caller's environment
 * must not change what goes into a rootfs. glibc-hwcaps subdirectories are not searched.
 * @internal
 */
import { readdir, readFile, realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { logger } from '../../log.js';
import { CtrkitError } from '../../errors.js';
import { readElf, type ElfInfo } from './elf.js';

const log = logger('ctrkit:rootfs');

/** A `DT_NEEDED` library that is in none of the directories the loader would search. */
export class SharedLibraryNotFoundError extends CtrkitError {
  /** Always `ERR_LIBRARY_NOT_FOUND`. */
  declare readonly code: 'ERR_LIBRARY_NOT_FOUND';
  /** The `DT_NEEDED` name, e.g. `libfoo.so.1`. */
  readonly library: string;
  /** The binary or library that needs it. */
  readonly neededBy: string;

  /**
   * @param library - the `DT_NEEDED` name
   * @param neededBy - the object that needs it
   * @param searched - the directories that were searched, for the message
   */
  constructor(library: string, neededBy: string, searched: string[]) {
    super(
      'ERR_LIBRARY_NOT_FOUND',
      `${library} (needed by ${neededBy}) was not found in ${searched.join(', ')}; ` +
        'add its directory to /etc/ld.so.conf.d/ or give the binary a DT_RUNPATH',
    );
    this.library = library;
    this.neededBy = neededBy;
  }
}

const MULTIARCH: Record<string, string> = {
  x64: 'x86_64-linux-gnu',
  arm64: 'aarch64-linux-gnu',
  ia32: 'i386-linux-gnu',
  arm: 'arm-linux-gnueabihf',
  riscv64: 'riscv64-linux-gnu',
  ppc64: 'powerpc64le-linux-gnu',
  s390x: 's390x-linux-gnu',
};

/**
 * The Debian multiarch tuple of a Node architecture, e.g. `x86_64-linux-gnu` for `x64`.
 * @param arch - a `process.arch` value
 * @internal
 */
export function multiarchTuple(arch: string = process.arch): string | undefined {
  return MULTIARCH[arch];
}

/**
 * The loader's built-in directories, searched last.
 * @internal
 */
export function defaultLibraryDirs(arch: string = process.arch): string[] {
  const tuple = multiarchTuple(arch);
  const multi = tuple ? [`/lib/${tuple}`, `/usr/lib/${tuple}`] : [];
  return [...multi, '/lib64', '/usr/lib64', '/lib', '/usr/lib'];
}

/**
 * The library directories listed in an ld.so.conf file, following its `include` lines.
 *
 * @param file - the configuration file, /etc/ld.so.conf by default
 * @returns absolute directories in file order, without duplicates; [] when the file is missing
 */
export async function ldSoConfDirs(file = '/etc/ld.so.conf'): Promise<string[]> {
  return [...new Set(await parseLdSoConf(file, new Set()))];
}

async function parseLdSoConf(file: string, visited: Set<string>): Promise<string[]> {
  if (visited.has(file)) return []; // an include cycle; ldconfig would loop forever
  visited.add(file);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    log('ld.so.conf: cannot read %s: %s', file, (err as Error).message);
    return [];
  }
  const dirs: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') continue;
    const include = /^include\s+(.*)$/.exec(line);
    if (include?.[1] !== undefined) {
      for (const pattern of include[1].trim().split(/\s+/)) {
        // Relative include patterns are relative to the including file, as in ldconfig.
        for (const f of await simpleGlob(resolve(dirname(file), pattern))) dirs.push(...(await parseLdSoConf(f, visited)));
      }
      continue;
    }
    if (/^hwcap\s/.test(line)) continue; // obsolete, and not a directory
    // ldconfig accepts several directories a line, separated by blanks, ':' or ','; a
    // trailing `=TYPE` is a libc5-era library type.
    for (const tok of line.split(/[\s:,]+/)) {
      const dir = tok.replace(/=.*$/, '');
      if (isAbsolute(dir)) dirs.push(dir.replace(/\/+$/, '') || '/');
    }
  }
  return dirs;
}

/**
 * Expands a glob whose wildcards (`*`, `?`) are only in the last component, like
 * `/etc/ld.so.conf.d/*.conf`, into the sorted list of existing matches.
 */
async function simpleGlob(pattern: string): Promise<string[]> {
  const dir = dirname(pattern);
  const base = basename(pattern);
  if (/[*?[]/.test(dir)) {
    log('ld.so.conf: unsupported include pattern %s (wildcards in a directory)', pattern);
    return [];
  }
  if (!/[*?[]/.test(base)) return [pattern];
  const re = new RegExp(
    '^' +
      base
        .split('')
        .map((c) => (c === '*' ? '[^/]*' : c === '?' ? '[^/]' : c.replace(/[\\^$.+()|{}[\]]/g, '\\$&')))
        .join('') +
      '$',
  );
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  // Like glob(3), a leading dot must be matched explicitly.
  return names
    .filter((n) => re.test(n) && (!n.startsWith('.') || base.startsWith('.')))
    .sort()
    .map((n) => join(dir, n));
}

/** Expands the dynamic string tokens of an RPATH/RUNPATH entry; drops what cannot be used. */
function expandTokens(dirs: string[], origin: string): string[] {
  const tuple = multiarchTuple();
  const out: string[] = [];
  for (const d of dirs) {
    const expanded = d
      .replace(/\$(ORIGIN\b|\{ORIGIN\})/g, origin)
      .replace(/\$(LIB\b|\{LIB\})/g, tuple ? `lib/${tuple}` : 'lib')
      .replace(/\$(PLATFORM\b|\{PLATFORM\})/g, process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : process.arch);
    // A relative entry would be relative to the loader's cwd at run time: meaningless for a rootfs.
    if (isAbsolute(expanded)) out.push(expanded);
    else log('ignoring relative library path %s', d);
  }
  return out;
}

interface LoadedObject {
  path: string;
  info: ElfInfo;
  /** What $ORIGIN means for this object. */
  origin: string;
  /** The usable DT_RPATH directories of the objects that loaded this one, nearest first. */
  loaderRpath: string[];
}

/**
 * The transitive closure of the shared libraries, and the program interpreters, that some
 * ELF binaries need, found by reading their headers (no `ldd`, nothing is executed).
 *
 * Non-ELF inputs (shell scripts ...) contribute nothing. A library is only accepted when it
 * is an ELF file of the same class and machine as the object that needs it, as the loader
 * would skip a 32-bit `libc.so.6` met first in a 64-bit search.
 *
 * @param binaryPaths - the executables (or libraries) to start from
 * @returns absolute paths as found in the search (they may be symlinks, e.g.
 *   `/lib64/ld-linux-x86-64.so.2`), interpreters first, without duplicates
 * @throws {@link SharedLibraryNotFoundError} when a needed library is nowhere to be found;
 *   {@link ElfFormatError} when an input binary is a malformed ELF file
 */
export async function resolveSharedLibraries(binaryPaths: string[]): Promise<string[]> {
  const confDirs = await ldSoConfDirs();
  const defaults = defaultLibraryDirs();
  const found: string[] = [];
  const add = (p: string): void => {
    if (!found.includes(p)) found.push(p);
  };
  // The loader does not load a second object with a name it has already loaded (by
  // DT_NEEDED name or DT_SONAME), wherever a later search would have found it.
  const byName = new Map<string, string>();
  const elfCache = new Map<string, Promise<ElfInfo | null>>();
  const probe = (p: string): Promise<ElfInfo | null> => {
    let r = elfCache.get(p);
    if (!r) {
      r = readElf(p).catch(() => null); // missing, a directory, malformed: not a candidate
      elfCache.set(p, r);
    }
    return r;
  };

  const queue: LoadedObject[] = [];
  for (const bin of binaryPaths) {
    const info = await readElf(bin);
    if (!info) {
      log('%s is not ELF; it needs no libraries', bin);
      continue;
    }
    if (info.interpreter !== undefined) {
      const interp = await probe(info.interpreter);
      if (!interp) throw new SharedLibraryNotFoundError(info.interpreter, bin, ['(PT_INTERP, an absolute path)']);
      add(info.interpreter);
      byName.set(basename(info.interpreter), info.interpreter);
      if (interp.soname !== undefined) byName.set(interp.soname, info.interpreter);
      queue.push({ path: info.interpreter, info: interp, origin: dirname(info.interpreter), loaderRpath: [] });
    }
    // For an executable, $ORIGIN is where the kernel found it, symlinks resolved.
    queue.push({ path: bin, info, origin: dirname(await realpath(bin)), loaderRpath: [] });
  }

  for (let obj = queue.shift(); obj; obj = queue.shift()) {
    const hasRunpath = obj.info.runpath.length > 0;
    const ownRpath = hasRunpath ? [] : expandTokens(obj.info.rpath, obj.origin);
    // DT_RUNPATH switches off every DT_RPATH, the loaders' included.
    const rpath = hasRunpath ? [] : [...ownRpath, ...obj.loaderRpath];
    const runpath = expandTokens(obj.info.runpath, obj.origin);
    const searchDirs = [...new Set([...rpath, ...runpath, ...confDirs, ...defaults])];

    for (const name of obj.info.needed) {
      if (byName.has(name)) continue;
      let hit: { path: string; info: ElfInfo } | undefined;
      // A name with a slash is a path, used as is (relative ones against the cwd, like ld.so).
      const candidates = name.includes('/') ? [resolve(name)] : searchDirs.map((d) => join(d, name));
      for (const candidate of candidates) {
        const info = await probe(candidate);
        if (info && info.elfClass === obj.info.elfClass && info.machine === obj.info.machine) {
          hit = { path: candidate, info };
          break;
        }
      }
      if (!hit) throw new SharedLibraryNotFoundError(name, obj.path, name.includes('/') ? candidates : searchDirs);
      log('%s: %s -> %s', obj.path, name, hit.path);
      add(hit.path);
      byName.set(name, hit.path);
      if (hit.info.soname !== undefined) byName.set(hit.info.soname, hit.path);
      queue.push({ path: hit.path, info: hit.info, origin: dirname(hit.path), loaderRpath: [...ownRpath, ...obj.loaderRpath] });
    }
  }
  return found;
}
