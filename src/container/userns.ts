/**
 * `userns: 'auto'`: a user namespace for a rootful container whose root is an unused range of
 * host ids, like Podman's `--userns=auto`.
 *
 * The ranges come from what /etc/subuid and /etc/subgid delegate to the user `ctrkit` (the
 * user need not exist; Podman's is `containers`), cut into blocks of {@link AUTO_USERNS_SIZE}
 * ids. Without such a line the start fails, naming the line to add: only the administrator
 * knows which ids are free on a host (directory users, another runtime's ranges, systemd's
 * container range), and /etc/subuid is where that is written down — shadow-utils keeps other
 * users' delegations apart from it.
 *
 * A block is taken under a file lock, so parallel starts (any process, any state root) get
 * distinct ones: one file per taken block in {@link USERNS_STATE_DIR}, naming the container,
 * its owner and its init. A block is free again once its file is gone (the container was
 * released) or both processes it names are gone (a crash). /run is a tmpfs: reboots forget all.
 * @internal
 */
import { readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IdMapping, SubIdRange } from '../namespaces/index.js';
import { removeLockFile, withFileLock } from '../sys/file-lock.js';
import { identify, isAlive, type ProcessIdentity } from '../sys/liveness.js';
import { ContainerError } from './errors.js';

/** The user whose /etc/subuid and /etc/subgid ranges `userns: 'auto'` hands out. */
export const AUTO_USERNS_USER = 'ctrkit';
/** Ids per container with `userns: 'auto'`: 0..65535 inside, as Podman's default. */
export const AUTO_USERNS_SIZE = 65536;
/**
 * The line `userns: 'auto'` suggests for /etc/subuid and /etc/subgid: 2048 containers' worth
 * from 0x70000000, above systemd-nspawn's automatic range (0x80000–0x6FFFFFFF) and below
 * Podman's `containers:2147483647:2147483648`.
 */
export const SUGGESTED_SUBID_LINE = `${AUTO_USERNS_USER}:1879048192:134217728`;
/** Where taken ranges are recorded: machine-wide, whatever a container's state root. */
export const USERNS_STATE_DIR = '/run/ctrkit/userns';

/** Where the ranges come from (tests point these elsewhere). @internal */
export interface SubIdSources {
  readonly subuid: string;
  readonly subgid: string;
  readonly stateDir: string;
}

const HOST: SubIdSources = { subuid: '/etc/subuid', subgid: '/etc/subgid', stateDir: USERNS_STATE_DIR };

/** A taken range, as its file and the container record keep it. */
export interface UsernsRange {
  /** First host uid: root inside. */
  readonly uid: number;
  /** First host gid. */
  readonly gid: number;
  /** How many ids, from 0 inside. */
  readonly size: number;
}

interface Claim extends UsernsRange {
  readonly id: string;
  readonly owner: ProcessIdentity;
  readonly init?: ProcessIdentity | undefined;
}

interface Entry {
  readonly owner: string;
  readonly start: number;
  readonly count: number;
}

function entries(file: string): Entry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: Entry[] = [];
  for (const line of text.split('\n')) {
    const [owner, start, count] = line.trim().split(':');
    const s = Number(start);
    const c = Number(count);
    if (owner && Number.isInteger(s) && Number.isInteger(c) && s >= 0 && c > 0) out.push({ owner, start: s, count: c });
  }
  return out;
}

/** The blocks of `size` ids delegated to ctrkit, without those another user's delegation or id 0 overlaps. */
function blocks(file: string, size: number): SubIdRange[] {
  const all = entries(file);
  const others = all.filter((e) => e.owner !== AUTO_USERNS_USER);
  const out: SubIdRange[] = [];
  for (const e of all.filter((x) => x.owner === AUTO_USERNS_USER)) {
    for (let s = e.start; s + size <= e.start + e.count; s += size) {
      if (s === 0) continue; // root inside would be root outside
      if (others.some((o) => s < o.start + o.count && o.start < s + size)) continue;
      out.push({ start: s, count: size });
    }
  }
  return out;
}

function claimFile(dir: string, uid: number): string {
  return join(dir, `${uid}.json`);
}

function readClaim(file: string): Claim | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Claim;
  } catch {
    return undefined;
  }
}

function writeClaim(file: string, claim: Claim): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(claim), { mode: 0o600 });
  renameSync(tmp, file);
}

/** A claim whose owner and container are both gone no longer holds its range. */
function inUse(c: Claim | undefined): boolean {
  return c !== undefined && (isAlive(c.owner) || (c.init !== undefined && isAlive(c.init)));
}

/** Runs `fn` holding the allocation lock (a flock: a crashed holder never wedges the others). */
function locked<T>(dir: string, fn: () => T, signal?: AbortSignal): Promise<T> {
  const lock = join(dir, '.lock');
  return withFileLock(lock, fn, { signal, timedOut: () => new ContainerError('ERR_USERNS_RANGE', `timed out waiting for the lock ${lock}`) });
}

/** Under the lock: once no range is taken, the lock file and its directory go too. */
function removeIfUnused(dir: string): void {
  if (!readdirSync(dir).some((n) => /^\d+\.json$/.test(n))) removeLockFile(join(dir, '.lock'));
}

/** The range a container holds with `userns: 'auto'`, until {@link release}. @internal */
export class UsernsAllocation implements UsernsRange {
  readonly uid: number;
  readonly gid: number;
  readonly size: number;

  constructor(
    private readonly claim: Claim,
    private readonly dir: string,
  ) {
    this.uid = claim.uid;
    this.gid = claim.gid;
    this.size = claim.size;
  }

  /** Root inside is the range's first id, and so on up. */
  get uidMap(): IdMapping[] {
    return [{ inside: 0, outside: this.uid, count: this.size }];
  }

  get gidMap(): IdMapping[] {
    return [{ inside: 0, outside: this.gid, count: this.size }];
  }

  /** What the container record keeps. */
  get range(): UsernsRange {
    return { uid: this.uid, gid: this.gid, size: this.size };
  }

  /** Records the container's init: the range stays taken while it lives, even if its owner dies. */
  recordInit(pid: number): void {
    writeClaim(claimFile(this.dir, this.uid), { ...this.claim, init: identify(pid) });
  }

  /** Frees the range (once every process of the container is gone). */
  release(): Promise<void> {
    return releaseUsernsRange(this.claim.id, this.uid, this.dir);
  }
}

/**
 * Takes the lowest free range for container `id`.
 * @throws ContainerError `ERR_USERNS_RANGE` when nothing is delegated to `ctrkit`, or every range is taken
 * @internal
 */
export async function allocateUserns(id: string, signal?: AbortSignal, sources: SubIdSources = HOST): Promise<UsernsAllocation> {
  const size = AUTO_USERNS_SIZE;
  const uids = blocks(sources.subuid, size);
  const gids = blocks(sources.subgid, size);
  if (uids.length === 0 || gids.length === 0) {
    const file = uids.length === 0 ? sources.subuid : sources.subgid;
    throw new ContainerError(
      'ERR_USERNS_RANGE',
      `userns 'auto' takes its ids from what ${file} delegates to the user "${AUTO_USERNS_USER}", and it delegates no range of ${size} ids ` +
        `(none of another user's): add a line such as "${SUGGESTED_SUBID_LINE}" to /etc/subuid and to /etc/subgid ` +
        `(any range of ids the host does not use otherwise; the user itself need not exist)`,
    );
  }
  const slots = Math.min(uids.length, gids.length);
  return locked(
    sources.stateDir,
    () => {
      for (let i = 0; i < slots; i++) {
        const file = claimFile(sources.stateDir, uids[i]!.start);
        if (inUse(readClaim(file))) continue;
        const claim: Claim = { id, uid: uids[i]!.start, gid: gids[i]!.start, size, owner: identify(process.pid)!, init: undefined };
        writeClaim(file, claim);
        return new UsernsAllocation(claim, sources.stateDir);
      }
      throw new ContainerError(
        'ERR_USERNS_RANGE',
        `every range of ${size} ids delegated to "${AUTO_USERNS_USER}" in ${sources.subuid} and ${sources.subgid} is in use (${slots}): ` +
          'delegate more, or end a container',
      );
    },
    signal,
  );
}

/** Frees the range starting at host uid `uid` if container `id` still holds it. Idempotent. @internal */
export async function releaseUsernsRange(id: string, uid: number, dir: string = USERNS_STATE_DIR): Promise<void> {
  await locked(dir, () => {
    const file = claimFile(dir, uid);
    if (readClaim(file)?.id !== id) return;
    unlinkSync(file);
    removeIfUnused(dir);
  });
}

/** Removes the files of ranges no live process holds any more (what crashed owners left). @internal */
export async function pruneUsernsClaims(dir: string = USERNS_STATE_DIR): Promise<number> {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => /^\d+\.json$/.test(n));
  } catch {
    return 0;
  }
  if (names.length === 0) return 0;
  return locked(dir, () => {
    let n = 0;
    for (const name of names) {
      const file = join(dir, name);
      if (inUse(readClaim(file))) continue;
      try {
        unlinkSync(file);
        n++;
      } catch {
        // gone meanwhile
      }
    }
    removeIfUnused(dir);
    return n;
  });
}

/** The ranges taken now (for tests and `ctrkit`'s own checks). @internal */
export function takenUsernsRanges(dir: string = USERNS_STATE_DIR): (UsernsRange & { readonly id: string })[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => /^\d+\.json$/.test(n))
    .map((n) => readClaim(join(dir, n)))
    .filter((c): c is Claim => inUse(c))
    .map((c) => ({ id: c.id, uid: c.uid, gid: c.gid, size: c.size }));
}
