import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { InvalidOptionError } from '../../errors.js';
import type { LogLine } from './format.js';
import { toLogQuery, type LogQuery, type ReadLogsOptions } from './options.js';
import { appendSelected, closeAll, openIfPresent, openLogFiles, readFiles, scanForward, type LogFile } from './reader.js';

/** Options of {@link followLogLines}. */
export interface FollowLogsOptions extends ReadLogsOptions {
  /**
   * Whether the writer has finished (the container exited and its writer was closed). Asked
   * after each wake-up; once it says true, what remains in the log is yielded and the
   * iteration ends.
   */
  readonly done: () => boolean | Promise<boolean>;
  /** Ends the iteration (normally, without an error) when aborted. */
  readonly signal?: AbortSignal;
  /**
   * How often to look at the file when no change notification came, in milliseconds
   * (notifications can be missed: inotify limits, network filesystems). Default 100.
   */
  readonly pollMs?: number;
}

/** The file being followed and how far it has been read. */
interface Followed {
  readonly file: LogFile;
  offset: number;
}

/**
 * Resolves a pending wait when the log's directory changes, the poll interval passes or the
 * follow is aborted. A change that comes while nobody waits is remembered, so one that lands
 * between a read and the next wait is not slept through.
 */
class Waker {
  readonly #watcher: FSWatcher | undefined;
  #resolve: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #pending = false;

  constructor(path: string) {
    this.#watcher = watchDirectory(path, () => this.wake());
  }

  /**
   * Waits for a change or `ms`. The timer is ref'd on purpose: it is what keeps Node running
   * while a caller awaits the next line (the watcher is not, so it never holds a process).
   */
  wait(ms: number): Promise<void> {
    if (this.#pending) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.#resolve = resolve;
      this.#timer = setTimeout(() => this.wake(), ms);
    });
  }

  wake(): void {
    const resolve = this.#resolve;
    if (!resolve) {
      this.#pending = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#resolve = undefined;
    resolve();
  }

  close(): void {
    this.#watcher?.close();
    this.wake();
  }
}

/**
 * Watches the directory (not the file) so that a rotation, or the file's creation, is seen
 * too; other files there are filtered out by name. Returns undefined where the platform
 * cannot watch, and then the follower polls.
 */
function watchDirectory(path: string, onChange: () => void): FSWatcher | undefined {
  const name = basename(path);
  try {
    const watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
      if (file === null || String(file).startsWith(name)) onChange();
    });
    // The directory going away (or inotify failing) leaves polling, not an error.
    watcher.on('error', () => watcher.close());
    return watcher;
  } catch {
    return undefined;
  }
}

/** The inode now at `path`, or undefined when there is no file there. */
async function inodeAt(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).ino;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Where the file that followed the one with inode `ino` is now, or undefined when `ino` is
 * still the current file or its successor does not exist yet. Looked up by name rather than
 * taken to be `path`: when the writer rotated more than once since the last look, `path` is
 * a later file and the ones in between are `PATH.1` ...
 */
async function successorOf(path: string, ino: number): Promise<{ path: string; ino: number } | undefined> {
  const current = await inodeAt(path);
  if (current === ino) return undefined;
  const files: { path: string; ino: number | undefined }[] = [{ path, ino: current }];
  for (let i = 1; ; i++) {
    const name = `${path}.${i}`;
    const found = await inodeAt(name);
    if (found === undefined) break;
    files.push({ path: name, ino: found });
  }
  const at = files.findIndex((f) => f.ino === ino);
  // Gone (dropped as the oldest, or maxFiles 1): the oldest file left is the nearest one after it.
  const next = at === -1 ? files.at(-1) : files[at - 1];
  return next?.ino === undefined ? undefined : { path: next.path, ino: next.ino };
}

/** Opens the file at `path` to follow it from its start, if it is still the file with inode `ino`. */
async function openFollowed(path: string, ino?: number): Promise<Followed | undefined> {
  const handle = await openIfPresent(path);
  if (!handle) return undefined;
  try {
    const opened = (await handle.stat()).ino;
    if (ino === undefined || opened === ino) return { file: { handle, ino: opened, end: 0 }, offset: 0 };
  } catch (error) {
    await handle.close();
    throw error;
  }
  await handle.close(); // renamed again since it was looked up
  return undefined;
}

/** The selected lines written to `followed` since the last read, advancing its offset. */
async function readNew(followed: Followed, query: LogQuery): Promise<LogLine[]> {
  const { size } = await followed.file.handle.stat();
  // Shorter than what was read: truncated in place (copytruncate-style); start over.
  if (size < followed.offset) followed.offset = 0;
  const out: LogLine[] = [];
  for await (const batch of scanForward(followed.file.handle, followed.offset, size)) {
    appendSelected(out, batch.records, query);
    followed.offset = batch.next;
  }
  return out;
}

/** The state of one follow: the file being read and the lines still to hand out. */
class Follower {
  #followed: Followed | undefined;

  constructor(
    readonly path: string,
    readonly query: LogQuery,
    followed: Followed | undefined,
  ) {
    this.#followed = followed;
  }

  /**
   * Everything appended since the last call, across rotations: when the file being followed
   * has been renamed away, it is read once more to its final end (the writer does not write
   * to a file after renaming it), closed, and its successor followed from offset 0.
   */
  async *drain(): AsyncGenerator<LogLine[]> {
    for (;;) {
      this.#followed ??= await openFollowed(this.path);
      const followed = this.#followed;
      if (!followed) return;
      yield await readNew(followed, this.query);
      const next = await successorOf(this.path, followed.file.ino);
      if (!next) return;
      yield await readNew(followed, this.query);
      const opened = await openFollowed(next.path, next.ino);
      // Not opened: renamed again meanwhile, so look it up again (the old file stays open till then).
      if (!opened) continue;
      this.#followed = opened;
      await followed.file.handle.close();
    }
  }

  async close(): Promise<void> {
    await this.#followed?.file.handle.close().catch(() => undefined);
    this.#followed = undefined;
  }
}

/** The lines {@link readLogLines} would return now, and a follower starting where they end. */
async function start(path: string, query: LogQuery): Promise<{ history: LogLine[]; follower: Follower }> {
  const { rotated, current } = await openLogFiles(path);
  try {
    const history = await readFiles(current ? [...rotated, current] : rotated, query);
    return { history, follower: new Follower(path, query, current && { file: current, offset: current.end }) };
  } catch (error) {
    if (current) await closeAll([current]);
    throw error;
  } finally {
    await closeAll(rotated);
  }
}

/** Whether the follow is over: the caller's `done`, or an `until` that has passed. */
async function finished(options: FollowLogsOptions, query: LogQuery): Promise<boolean> {
  return (await options.done()) || Date.now() > query.until;
}

/** The generator behind {@link followLogLines}; options are checked before it starts. */
async function* follow(path: string, query: LogQuery, options: FollowLogsOptions, pollMs: number): AsyncGenerator<LogLine, void, undefined> {
  const { signal } = options;
  const waker = new Waker(path);
  const onAbort = () => waker.wake();
  signal?.addEventListener('abort', onAbort, { once: true });
  let follower: Follower | undefined;
  try {
    const started = await start(path, query);
    follower = started.follower;
    for (const line of started.history) {
      if (signal?.aborted) return;
      yield line;
    }
    while (!signal?.aborted) {
      // Asked before reading, so that whatever was written before it turned true is read.
      const last = await finished(options, query);
      for await (const lines of follower.drain()) {
        for (const line of lines) {
          if (signal?.aborted) return;
          yield line;
        }
      }
      if (last) return;
      await waker.wait(pollMs);
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    waker.close();
    await follower?.close();
  }
}

/**
 * Follows a container's log like `docker logs -f`: first what {@link readLogLines} would
 * return (honouring `tail`, `since`, `until`, `streams`), then each line as it is appended,
 * across rotations (the renamed file is read to its end before the new one is started at
 * its beginning). Waits on change notifications for the log's directory, with a poll every
 * `pollMs` as a fallback; never spins. Ends, after yielding everything written, once
 * `done()` returns true (or `until` has passed), and ends early, without an error, when
 * `signal` is aborted or the loop breaks. A log that does not exist yet is waited for.
 *
 * @example
 * ```ts
 * for await (const line of followLogLines(logPath, { tail: 10, done: () => exited, signal })) {
 *   process.stdout.write(formatLogLines([line]));
 * }
 * ```
 *
 * @param path - the log file {@link LogWriter} writes
 * @param options - which lines, when to stop, and the poll interval
 * @throws {@link InvalidOptionError} (at the call, not at the first `next()`) for a malformed option
 */
export function followLogLines(path: string, options: FollowLogsOptions): AsyncIterableIterator<LogLine> {
  const query = toLogQuery(options);
  const pollMs = options.pollMs ?? 100;
  if (!Number.isFinite(pollMs) || pollMs <= 0) throw new InvalidOptionError('pollMs', `${String(pollMs)} is not an interval (expected milliseconds > 0)`);
  if (typeof options.done !== 'function') throw new InvalidOptionError('done', 'expected a function that says when the writer has finished');
  return follow(path, query, options, pollMs);
}
