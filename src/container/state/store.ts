/**
 * Container records on disk, like runc's state directory: one directory per container
 * (`ROOT/containers/ID/state.json` plus its log), names as symlinks (`ROOT/names/NAME` → ID,
 * created atomically, so two processes can never take one name). The root is per user:
 * `/run/ctrkit` for root, `$XDG_RUNTIME_DIR/ctrkit` otherwise, gone at reboot like the
 * processes it describes.
 * @internal
 */
import { mkdirSync, readlinkSync, renameSync, rmdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile, readlink, symlink, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logger } from '../../log.js';
import { ContainerError } from '../errors.js';
import { discardDirectory } from '../layer-trash.js';
import type { ContainerRecord } from './record.js';

/**
 * Where container records live unless told otherwise: `$CTRKIT_STATE_ROOT` when set, else
 * `/run/ctrkit` for root and `$XDG_RUNTIME_DIR/ctrkit` for other users.
 */
export function defaultStateRoot(): string {
  if (process.env.CTRKIT_STATE_ROOT) return process.env.CTRKIT_STATE_ROOT;
  if (process.getuid?.() === 0) return '/run/ctrkit';
  const runtime = process.env.XDG_RUNTIME_DIR;
  return runtime ? join(runtime, 'ctrkit') : join(tmpdir(), `ctrkit-${process.getuid?.() ?? 0}`);
}

const log = logger('ctrkit:container');
const errno = (e: unknown): string | undefined => (e as NodeJS.ErrnoException)?.code;

/** Records of the containers under one state root. @internal */
export class StateStore {
  readonly root: string;

  constructor(root: string = defaultStateRoot()) {
    this.root = root;
  }

  /** The directory of one container (its record and its log). */
  dirOf(id: string): string {
    return join(this.root, 'containers', id);
  }

  private nameLink(name: string): string {
    return join(this.root, 'names', name);
  }

  /** Creates the container's directory and first record, taking its name when it has one. */
  async create(record: ContainerRecord): Promise<void> {
    if (record.name !== undefined) await this.reserveName(record.name, record.id);
    try {
      // Recursive: another process may just have removed an empty `containers`.
      mkdirSync(this.dirOf(record.id), { recursive: true, mode: 0o711 }); // synchronously, like write()
      // The first record, in its new directory: written in place (a reader that meets it half
      // written takes it for absent, as it was a moment before), no temp file to rename.
      writeFileSync(join(this.dirOf(record.id), 'state.json'), JSON.stringify(record), { mode: 0o600, flag: 'wx' });
    } catch (e) {
      await this.remove(record.id, record.name);
      throw e;
    }
  }

  private async reserveName(name: string, id: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await mkdir(join(this.root, 'names'), { recursive: true, mode: 0o711 });
        await symlink(id, this.nameLink(name));
        return;
      } catch (e) {
        // ENOENT: another process removed the empty `names` between our mkdir and symlink.
        if (errno(e) === 'ENOENT' && attempt < 3) continue;
        if (errno(e) !== 'EEXIST' || attempt > 2) {
          if (errno(e) === 'EEXIST')
            throw new ContainerError(
              'ERR_NAME_IN_USE',
              `the name "${name}" is in use by container ${await readlink(this.nameLink(name)).catch(() => '?')}: remove it first`,
            );
          throw e;
        }
        // A name whose container record is gone was left by a crash: take it over.
        const holder = await readlink(this.nameLink(name)).catch(() => undefined);
        if (holder !== undefined && (await this.read(holder))) {
          throw new ContainerError('ERR_NAME_IN_USE', `the name "${name}" is in use by container ${holder}: remove it first`);
        }
        await unlink(this.nameLink(name)).catch(() => undefined);
      }
    }
  }

  /**
   * Replaces the record atomically. A record whose directory was removed meanwhile (the
   * container was removed from another process) stays removed.
   */
  async write(record: ContainerRecord): Promise<boolean> {
    const file = join(this.dirOf(record.id), 'state.json');
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      // Synchronously: a record is a few hundred bytes on a tmpfs (/run), where each step of
      // an fs/promises call is a thread-pool round trip for microseconds of work; and two
      // writes of one record from this process can never interleave their temp files.
      writeFileSync(tmp, JSON.stringify(record), { mode: 0o600 });
      renameSync(tmp, file);
      return true;
    } catch (e) {
      if (errno(e) === 'ENOENT') return false;
      throw e;
    }
  }

  /** The record of `id`, or undefined when there is none (or it is unreadable, being replaced). */
  async read(id: string): Promise<ContainerRecord | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dirOf(id), 'state.json'), 'utf8')) as ContainerRecord;
    } catch {
      return undefined;
    }
  }

  /** Every record, in creation order. */
  async list(): Promise<ContainerRecord[]> {
    const ids = await readdir(join(this.root, 'containers')).catch(() => [] as string[]);
    const records = await Promise.all(ids.filter((id) => /^[0-9a-f]{64}$/.test(id)).map((id) => this.read(id)));
    return records.filter((r): r is ContainerRecord => r !== undefined).sort((a, b) => a.created.localeCompare(b.created));
  }

  /** Finds a container by id, unique id prefix or name, as Docker does. */
  async find(idOrName: string): Promise<ContainerRecord> {
    if (/^[0-9a-f]{64}$/.test(idOrName)) {
      const r = await this.read(idOrName);
      if (r) return r;
    }
    const byName = await readlink(this.nameLink(idOrName)).catch(() => undefined);
    if (byName !== undefined && !idOrName.includes('/')) {
      const r = await this.read(byName);
      if (r) return r;
    }
    if (/^[0-9a-f]{1,63}$/.test(idOrName)) {
      const matches = (await readdir(join(this.root, 'containers')).catch(() => [] as string[])).filter((id) => id.startsWith(idOrName));
      if (matches.length > 1) throw new ContainerError('ERR_AMBIGUOUS_ID', `"${idOrName}" matches ${matches.length} containers: give more of the id`);
      const r = matches[0] === undefined ? undefined : await this.read(matches[0]);
      if (r) return r;
    }
    throw new ContainerError('ERR_NO_SUCH_CONTAINER', `no such container: ${idOrName} (in ${this.root})`);
  }

  /**
   * Deletes the record, its log and its name. Idempotent. The record is gone from view at
   * once, moved into the trash (see ../layer-trash.ts), and deleted in the background; then
   * `containers` too, when that left it empty.
   */
  async remove(id: string, name: string | undefined): Promise<void> {
    const dir = this.dirOf(id);
    try {
      void discardDirectory(dir, this.root, [join(this.root, 'containers')]).catch((e: unknown) =>
        log('deleting the record of %s: %s', id, (e as Error).message),
      );
    } catch {
      rmSync(dir, { recursive: true, force: true }); // it could not be moved: deleted in place
    }
    if (name !== undefined) {
      let holder: string | undefined;
      try {
        holder = readlinkSync(this.nameLink(name));
      } catch {
        // no such name link
      }
      if (holder === id) ignoring(() => unlinkSync(this.nameLink(name)));
    }
    // Leave no empty directories behind (another process may be creating one: ENOTEMPTY/ENOENT are fine).
    if (name !== undefined) ignoring(() => rmdirSync(join(this.root, 'names')));
  }
}

/** Runs a best-effort file operation whose failure changes nothing. */
function ignoring(f: () => void): void {
  try {
    f();
  } catch {
    // ENOENT, ENOTEMPTY: someone else's, or gone already
  }
}
