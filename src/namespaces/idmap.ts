import { readFileSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { userInfo } from 'node:os';
import { promisify } from 'node:util';
import { InvalidOptionError, CtrkitError } from '../errors.js';

const execFileAsync = promisify(execFile);

/** One line of a uid_map or gid_map: `count` ids starting at `inside` map to ids starting at `outside`. */
export interface IdMapping {
  /** First id inside the user namespace. */
  readonly inside: number;
  /** First id outside, in the caller's user namespace. */
  readonly outside: number;
  /** How many consecutive ids. */
  readonly count: number;
}

/** A range of subordinate ids delegated to a user in /etc/subuid or /etc/subgid. */
export interface SubIdRange {
  /** First id of the range. */
  readonly start: number;
  /** How many ids. */
  readonly count: number;
}

const MAX_ID = 0xffffffff; // (uid_t)-1 is never valid
const MAX_LINES = 340; // the kernel's limit since Linux 4.15

/**
 * The ranges that `/etc/subuid` (or `/etc/subgid`) delegates to a user, who may be named
 * by login name or by numeric id, as shadow-utils accepts both.
 * @param file - `/etc/subuid` or `/etc/subgid`
 * @param user - the login name
 * @param id - the numeric uid or gid
 */
export function readSubIds(file: string, user: string, id: number): SubIdRange[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const ranges: SubIdRange[] = [];
  for (const line of text.split('\n')) {
    const [owner, start, count] = line.trim().split(':');
    if (!owner || start === undefined || count === undefined) continue;
    if (owner !== user && owner !== String(id)) continue;
    const s = Number(start);
    const c = Number(count);
    if (Number.isInteger(s) && Number.isInteger(c) && c > 0) ranges.push({ start: s, count: c });
  }
  return ranges;
}

/** The identity of a calling process, as used to check id maps. */
export interface Caller {
  readonly uid: number;
  readonly gid: number;
  readonly user: string;
}

/** @internal */
export function currentCaller(): Caller {
  const uid = process.geteuid?.() ?? 0;
  const gid = process.getegid?.() ?? 0;
  return { uid, gid, user: userName(uid) };
}

/** The user name of each uid this process ran as: reading the passwd database on every start costs more than the start's other checks together. */
const userNames = new Map<number, string>();

function userName(uid: number): string {
  let user = userNames.get(uid);
  if (user !== undefined) return user;
  user = String(uid);
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry: the numeric id is all /etc/subuid can match
  }
  userNames.set(uid, user);
  return user;
}

/**
 * The maps a rootless container gets when the caller gives none: the caller becomes root
 * inside, and the first subordinate range (if any) maps ids 1 and up, as rootless Podman
 * and `unshare --map-auto` do.
 */
export function defaultIdMaps(caller: Caller = currentCaller()): { uidMap: IdMapping[]; gidMap: IdMapping[] } {
  if (caller.uid === 0) {
    // Root may map anything; keep root as root, like a rootful runtime in a user namespace.
    const all = [{ inside: 0, outside: 0, count: 65536 }];
    return { uidMap: all, gidMap: all };
  }
  const build = (own: number, file: string): IdMapping[] => {
    const maps: IdMapping[] = [{ inside: 0, outside: own, count: 1 }];
    const sub = readSubIds(file, caller.user, own)[0];
    if (sub) maps.push({ inside: 1, outside: sub.start, count: sub.count });
    return maps;
  };
  return { uidMap: build(caller.uid, '/etc/subuid'), gidMap: build(caller.gid, '/etc/subgid') };
}

function overlaps(a: number, an: number, b: number, bn: number): boolean {
  return a < b + bn && b < a + an;
}

/**
 * Checks a uid or gid map before any process exists, so a map the kernel or newuidmap
 * would refuse fails with a clear error instead of a half-started container.
 * A non-root caller may map its own id, and ranges delegated to it in /etc/subuid.
 * @internal
 */
export function validateIdMap(map: readonly IdMapping[], kind: 'uid' | 'gid', caller: Caller = currentCaller()): void {
  const option = `${kind}Map`;
  if (map.length === 0) throw new InvalidOptionError(option, 'must have at least one entry');
  if (map.length > MAX_LINES) throw new InvalidOptionError(option, `has ${map.length} entries; the kernel accepts at most ${MAX_LINES}`);
  const own = kind === 'uid' ? caller.uid : caller.gid;
  const sub = caller.uid === 0 ? [] : readSubIds(kind === 'uid' ? '/etc/subuid' : '/etc/subgid', caller.user, own);
  map.forEach((m, i) => {
    const where = `${option}[${i}]`;
    for (const [k, v] of Object.entries(m)) {
      if (!Number.isInteger(v) || v < 0 || v >= MAX_ID) throw new InvalidOptionError(where, `${k} must be an integer in 0..${MAX_ID - 1}, got ${String(v)}`);
    }
    if (m.count < 1) throw new InvalidOptionError(where, 'count must be at least 1');
    if (m.inside + m.count > MAX_ID || m.outside + m.count > MAX_ID) throw new InvalidOptionError(where, 'range runs past the largest id');
    map.forEach((o, j) => {
      if (j <= i) return;
      if (overlaps(m.inside, m.count, o.inside, o.count)) throw new InvalidOptionError(where, `inside range overlaps ${option}[${j}]`);
      if (overlaps(m.outside, m.count, o.outside, o.count)) throw new InvalidOptionError(where, `outside range overlaps ${option}[${j}]`);
    });
    if (caller.uid === 0) return;
    const isOwn = m.outside === own && m.count === 1;
    const delegated = sub.some((r) => m.outside >= r.start && m.outside + m.count <= r.start + r.count);
    if (!isOwn && !delegated) {
      const file = kind === 'uid' ? '/etc/subuid' : '/etc/subgid';
      throw new InvalidOptionError(
        where,
        `${kind} ${m.outside}..${m.outside + m.count - 1} may not be mapped by ${caller.user} (${kind} ${own}): ` +
          `only its own ${kind} and the ranges ${file} delegates to it (${sub.map((r) => `${r.start}+${r.count}`).join(', ') || 'none'})`,
      );
    }
  });
}

/** The text the kernel expects in /proc/PID/uid_map. @internal */
export function formatIdMap(map: readonly IdMapping[]): string {
  return map.map((m) => `${m.inside} ${m.outside} ${m.count}\n`).join('');
}

/** Writing a uid/gid map failed. */
export class IdMapError extends CtrkitError {
  /** Always `ERR_ID_MAP`. */
  declare readonly code: 'ERR_ID_MAP';
  /** @internal */
  constructor(message: string, cause?: unknown) {
    super('ERR_ID_MAP', message, { cause });
  }
}

/**
 * Writes the uid and gid maps of the user namespace that process `pid` lives in.
 * Root writes the files itself; anyone else goes through the setuid newuidmap/newgidmap
 * helpers (package uidmap), which check /etc/subuid, unless only its own id is mapped.
 * @internal
 */
export async function writeIdMaps(pid: number, uidMap: readonly IdMapping[], gidMap: readonly IdMapping[], caller: Caller = currentCaller()): Promise<void> {
  const onlyOwn = (map: readonly IdMapping[], own: number) => map.length === 1 && map[0]!.outside === own && map[0]!.count === 1;
  const write = async (kind: 'uid' | 'gid', map: readonly IdMapping[]) => {
    const own = kind === 'uid' ? caller.uid : caller.gid;
    try {
      if (caller.uid === 0 || onlyOwn(map, own)) {
        if (kind === 'gid' && caller.uid !== 0) writeFileSync(`/proc/${pid}/setgroups`, 'deny');
        writeFileSync(`/proc/${pid}/${kind}_map`, formatIdMap(map));
      } else {
        const helper = kind === 'uid' ? 'newuidmap' : 'newgidmap';
        const args = [String(pid), ...map.flatMap((m) => [String(m.inside), String(m.outside), String(m.count)])];
        await execFileAsync(helper, args);
      }
    } catch (e) {
      const detail = (e as { stderr?: string }).stderr?.trim() || (e as Error).message;
      throw new IdMapError(`writing ${kind}_map of process ${pid} failed: ${detail}`, e);
    }
  };
  await write('uid', uidMap);
  await write('gid', gidMap);
}
