import { closeSync, fstatSync, openSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { logger } from '../../log.js';
import { encodeRecord, formatTime, PARTIAL_MAX_BYTES, recordLines, type LogLine, type LogRecord, type LogStream } from './format.js';
import { writerLimits, type LogWriterOptions } from './options.js';

const log = logger('ctrkit:logs');

/** Group-readable like Docker's log files, so an `adm`-style group can read them without root. */
const FILE_MODE = 0o640;

/** What one stream has received but not yet stored: a split UTF-8 sequence, a line without its newline. */
interface Pending {
  readonly decoder: StringDecoder;
  carry: string;
}

/** Whether `text` has grown past the partial-record limit; counts bytes only when it could have. */
function tooLong(text: string): boolean {
  // A UTF-16 unit is at most 3 UTF-8 bytes, so short strings need no byte count.
  return text.length * 3 > PARTIAL_MAX_BYTES && Buffer.byteLength(text) > PARTIAL_MAX_BYTES;
}

/** Removes `path` if it exists. */
function removeIfPresent(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** Renames `from` to `to` if `from` exists (a rotated file may not have been made yet). */
function renameIfPresent(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/**
 * Moves `path` out of the way: the oldest kept file goes, then `PATH.1` → `PATH.2` ... and
 * `path` → `PATH.1`. With one file there is nothing to keep and `path` goes.
 */
function shiftFiles(path: string, maxFiles: number): void {
  // A leftover from a run with a larger maxFiles would otherwise be read back as history
  // (readers take PATH.1, PATH.2 ... up to the first missing one).
  removeIfPresent(`${path}.${maxFiles}`);
  if (maxFiles === 1) {
    removeIfPresent(path);
    return;
  }
  // Removed rather than renamed over: ext4 flushes a file renamed over another to disk
  // (auto_da_alloc), which held the event loop for ~5-10 ms per rotation of an 8 MiB file.
  removeIfPresent(`${path}.${maxFiles - 1}`);
  for (let i = maxFiles - 1; i >= 2; i--) renameIfPresent(`${path}.${i - 1}`, `${path}.${i}`);
  renameIfPresent(path, `${path}.1`);
}

/** Writes all of `data` at the end of the file (a regular file may take less than asked on a full disk). */
function appendAll(fd: number, data: Buffer): void {
  for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done);
}

/**
 * Ends the file's last line if a writer was killed in the middle of a record, so the records
 * appended now do not join that fragment into one unreadable line.
 */
function endLine(fd: number): void {
  const { size } = fstatSync(fd);
  if (size === 0) return;
  const last = Buffer.alloc(1);
  readSync(fd, last, 0, 1, size - 1);
  if (last[0] !== 0x0a) appendAll(fd, Buffer.from('\n'));
}

/**
 * A container's log in Docker's json-file format: one JSON object per line of the file,
 * `{"log":"line1\nline2\n","stream":"stdout","time":"2026-11-30T04:31:07.123000000Z"}`.
 *
 * It is fed the raw chunks of the container's stdout and stderr pipes and stores one record
 * per chunk of whole lines (not one per line, so a chatty container costs one small write per
 * pipe read), with synchronous appends to an open file: ordered, and cheap enough that the
 * event loop draining the pipes is never held up for long. A line's unterminated end waits
 * for the stream's next chunk, up to 16 KiB, past which it is stored as a partial record.
 *
 * The file is rotated when the next record would take it past `maxSize`, keeping `maxFiles`
 * files in all (`PATH`, `PATH.1` ... newest first), so the log stays bounded however much a
 * container writes.
 *
 * @example
 * ```ts
 * const logs = LogWriter.open('/var/lib/app/c1/c1-json.log', { maxSize: 1 << 20, maxFiles: 3 });
 * child.stdout.on('data', (chunk: Buffer) => logs.write('stdout', chunk));
 * child.stderr.on('data', (chunk: Buffer) => logs.write('stderr', chunk));
 * child.on('close', () => logs.close());
 * ```
 */
export class LogWriter {
  /** The file written to; rotated files are this path with `.1`, `.2` ... appended. */
  readonly path: string;
  readonly #maxSize: number;
  readonly #maxFiles: number;
  readonly #onError: ((error: Error) => void) | undefined;
  readonly #pending: Record<LogStream, Pending> = {
    stdout: { decoder: new StringDecoder('utf8'), carry: '' },
    stderr: { decoder: new StringDecoder('utf8'), carry: '' },
  };
  readonly #listeners = new Set<(line: LogLine) => void>();
  #fd: number;
  #size: number;
  #closed = false;

  private constructor(path: string, fd: number, options: LogWriterOptions) {
    const { maxSize, maxFiles } = writerLimits(options);
    this.path = path;
    this.#maxSize = maxSize;
    this.#maxFiles = maxFiles;
    this.#onError = options.onError;
    this.#fd = fd;
    this.#size = fstatSync(fd).size;
  }

  /**
   * Opens (creating it with mode 0640 if needed) the log at `path` for appending: a log that
   * exists is continued, as when a container restarts.
   *
   * @param path - the log file; its directory must exist
   * @param options - rotation limits and an error callback
   * @throws {@link InvalidOptionError} for a `maxSize` or `maxFiles` out of range
   */
  static open(path: string, options: LogWriterOptions = {}): LogWriter {
    writerLimits(options); // refuse bad limits before creating anything
    // Read-write so that endLine can look at the last byte; O_APPEND keeps every write at the end.
    const fd = openSync(path, 'a+', FILE_MODE);
    try {
      endLine(fd);
      return new LogWriter(path, fd, options);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  /**
   * Stores a chunk of one stream's output: its whole lines now, its unterminated end with the
   * stream's next chunk. Does nothing once the writer is closed.
   *
   * @param stream - the pipe the chunk came from
   * @param chunk - raw bytes as read from the pipe; UTF-8 sequences may be split between chunks
   */
  write(stream: LogStream, chunk: Uint8Array): void {
    if (this.#closed || chunk.length === 0) return;
    const pending = this.#pending[stream];
    this.#take(stream, pending, pending.decoder.write(chunk));
  }

  /**
   * Calls `listener` with every line stored from now on, in order, as it is stored (partial
   * pieces included, marked `partial`): the hook that fans a container's output out to
   * `docker logs -f`-like subscribers without them reading the file.
   *
   * @returns a function that removes the listener
   */
  subscribe(listener: (line: LogLine) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /**
   * Stores what is still pending (each stream's unterminated last line, as a partial record)
   * and closes the file. Later writes are ignored; closing again does nothing.
   */
  close(): void {
    if (this.#closed) return;
    const time = new Date();
    for (const stream of ['stdout', 'stderr'] as const) {
      const pending = this.#pending[stream];
      const rest = pending.carry + pending.decoder.end();
      pending.carry = '';
      if (rest !== '') this.#store(stream, rest, time, true);
    }
    this.#closed = true;
    this.#listeners.clear();
    closeSync(this.#fd);
  }

  /** Closes the writer, so `using logs = LogWriter.open(...)` closes it at the end of the scope. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Splits decoded `text` into the whole lines stored now and the carry kept for later. */
  #take(stream: LogStream, pending: Pending, text: string): void {
    const end = text.lastIndexOf('\n');
    const time = new Date();
    if (end === -1) {
      pending.carry += text;
    } else {
      const whole = pending.carry + text.slice(0, end + 1);
      pending.carry = text.slice(end + 1);
      this.#store(stream, whole, time, false);
    }
    if (tooLong(pending.carry)) {
      const piece = pending.carry;
      pending.carry = '';
      this.#store(stream, piece, time, true);
    }
  }

  /** Appends one record, rotating first if it would not fit, and hands its lines to listeners. */
  #store(stream: LogStream, text: string, time: Date, partial: boolean): void {
    const data = Buffer.from(encodeRecord(stream, text, formatTime(time), partial));
    try {
      if (this.#size > 0 && this.#size + data.length > this.#maxSize) this.#rotate();
      appendAll(this.#fd, data);
      this.#size += data.length;
    } catch (error) {
      this.#fail(error);
    }
    if (this.#listeners.size > 0) this.#emit({ log: text, stream, time, partial });
  }

  /** Starts a new file at `path` after shifting the current one and its predecessors along. */
  #rotate(): void {
    shiftFiles(this.path, this.#maxFiles);
    // The old descriptor stays valid until the new file exists, so a failure here leaves the
    // writer appending to the renamed file rather than to nothing.
    const fd = openSync(this.path, 'a', FILE_MODE);
    closeSync(this.#fd);
    this.#fd = fd;
    this.#size = 0;
    log('rotated %s', this.path);
  }

  /** Hands a record's lines to the listeners; one that throws does not stop the others or the writer. */
  #emit(record: LogRecord): void {
    for (const line of recordLines(record)) {
      for (const listener of this.#listeners) {
        try {
          listener(line);
        } catch (error) {
          this.#fail(error);
        }
      }
    }
  }

  /** Reports a failure to the owner instead of throwing it into the pipe's data handler. */
  #fail(error: unknown): void {
    const err = error instanceof Error ? error : new Error(String(error));
    log('%s: %s', this.path, err.message);
    this.#onError?.(err);
  }
}
