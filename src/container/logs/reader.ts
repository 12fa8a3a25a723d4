import { open, type FileHandle } from 'node:fs/promises';
import { decodeRecord, recordLines, type LogLine, type LogRecord } from './format.js';
import { selects, toLogQuery, type LogQuery, type ReadLogsOptions } from './options.js';

/** Reads forward in large blocks: a whole-log read is bounded by JSON.parse, not by syscalls. */
const FORWARD_BLOCK = 1024 * 1024;
/** Reads backward in small blocks: a tail of a few lines should touch a few pages of a big file. */
const BACKWARD_BLOCK = 64 * 1024;
const NEWLINE = 0x0a;
const EMPTY = Buffer.alloc(0);

/**
 * An open log file and how much of it holds whole records. A record is only complete with its
 * newline: the bytes after the last one are a record being written, or the cut-off end of one
 * whose writer was killed, and are left for a later read (or never read). @internal
 */
export interface LogFile {
  readonly handle: FileHandle;
  readonly ino: number;
  readonly end: number;
}

/** The log's files as opened at one moment, oldest first. @internal */
export interface LogFiles {
  readonly rotated: readonly LogFile[];
  readonly current: LogFile | undefined;
}

/** Opens `path` for reading, or returns undefined when there is no such file. @internal */
export async function openIfPresent(path: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Up to `length` bytes at `position` (fewer at the end of the file). @internal */
export async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await handle.read(buffer, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buffer.subarray(0, got);
}

/** The offset just past the last newline before `size`: where the whole records end. */
async function completeEnd(handle: FileHandle, size: number): Promise<number> {
  for (let pos = size; pos > 0; ) {
    const start = Math.max(0, pos - BACKWARD_BLOCK);
    const block = await readAt(handle, start, pos - start);
    const nl = block.lastIndexOf(NEWLINE);
    if (nl !== -1) return start + nl + 1;
    pos = start;
  }
  return 0;
}

/** Opens one file of the log and measures it. */
async function openLogFile(path: string): Promise<LogFile | undefined> {
  const handle = await openIfPresent(path);
  if (!handle) return undefined;
  try {
    const { ino, size } = await handle.stat();
    return { handle, ino, end: await completeEnd(handle, size) };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/**
 * Opens `path` and its rotated files `PATH.1`, `PATH.2` ... (up to the first missing one).
 * Newest first, so that a rotation while this runs shows up as a file already opened under
 * its old name (skipped by inode) rather than as a file missed; open descriptors keep their
 * contents however the writer renames them afterwards. @internal
 */
export async function openLogFiles(path: string): Promise<LogFiles> {
  const current = await openLogFile(path);
  const rotated: LogFile[] = [];
  const seen = new Set(current ? [current.ino] : []);
  try {
    for (let i = 1; ; i++) {
      const file = await openLogFile(`${path}.${i}`);
      if (!file) break;
      if (seen.has(file.ino)) await file.handle.close();
      else rotated.push(file);
      seen.add(file.ino);
    }
  } catch (error) {
    await closeAll([...rotated, ...(current ? [current] : [])]);
    throw error;
  }
  return { rotated: rotated.reverse(), current };
}

/** Closes files, ignoring failures: they were only read. @internal */
export async function closeAll(files: readonly LogFile[]): Promise<void> {
  await Promise.all(files.map((f) => f.handle.close().catch(() => undefined)));
}

/** Records of the complete lines in `buffer[from, to)`; lines that are not records are skipped. */
function decodeLines(buffer: Buffer, from: number, to: number): LogRecord[] {
  const records: LogRecord[] = [];
  for (let start = from; start < to; ) {
    const nl = buffer.indexOf(NEWLINE, start);
    if (nl === -1 || nl >= to) break;
    const record = decodeRecord(buffer.toString('utf8', start, nl));
    if (record) records.push(record);
    start = nl + 1;
  }
  return records;
}

/** The records of a block and the offset after the last whole line in it. @internal */
export interface RecordBatch {
  readonly records: readonly LogRecord[];
  readonly next: number;
}

/**
 * The records whose lines end in `[start, end)`, block by block. A trailing line without a
 * newline is not read (its `next` stays before it), so a follower retries it once complete.
 * @internal
 */
export async function* scanForward(handle: FileHandle, start: number, end: number): AsyncGenerator<RecordBatch> {
  let buffer = Buffer.allocUnsafe(FORWARD_BLOCK);
  for (let offset = start; offset < end; ) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, end - offset), offset);
    if (bytesRead === 0) return;
    const last = buffer.lastIndexOf(NEWLINE, bytesRead - 1);
    if (last === -1) {
      if (bytesRead < buffer.length) return; // an unfinished record at the end
      buffer = Buffer.allocUnsafe(buffer.length * 2); // a record longer than the block
      continue;
    }
    // Strings are made before the next read reuses the buffer.
    yield { records: decodeLines(buffer, 0, last + 1), next: offset + last + 1 };
    offset += last + 1;
  }
}

/** Appends the lines of the records `query` selects to `out`. @internal */
export function appendSelected(out: LogLine[], records: readonly LogRecord[], query: LogQuery): void {
  for (const record of records) {
    if (!selects(query, record)) continue;
    // A loop, not push(...lines): one record can hold tens of thousands of short lines.
    for (const line of recordLines(record)) out.push(line);
  }
}

/**
 * Walks the lines of `buffer[from, buffer.length)` (which ends with a newline) from the last
 * one back, collecting the selected records' lines until `need` lines are found.
 * @returns how many lines were added to `found` (one array per record, newest first)
 */
function collectBackward(buffer: Buffer, from: number, query: LogQuery, found: LogLine[][], need: number): number {
  let got = 0;
  for (let end = buffer.length - 1; end >= from && got < need; ) {
    // lastIndexOf takes a negative offset as counted from the end, hence the guard.
    const prev = end > 0 ? buffer.lastIndexOf(NEWLINE, end - 1) : -1;
    const record = decodeRecord(buffer.toString('utf8', prev + 1, end));
    if (record && selects(query, record)) {
      const lines = recordLines(record);
      found.push(lines);
      got += lines.length;
    }
    end = prev;
  }
  return got;
}

/**
 * The last `want` selected lines of `file`, read from its end in blocks so that a tail of a
 * big file costs what the tail is, not what the file is.
 */
async function tailFile(file: LogFile, query: LogQuery, want: number): Promise<LogLine[]> {
  const found: LogLine[][] = [];
  let count = 0;
  // The start of a line cut by the block's start, finished by the block before it.
  let rest: Buffer = EMPTY;
  for (let pos = file.end; pos > 0 && count < want; ) {
    const start = Math.max(0, pos - BACKWARD_BLOCK);
    const block = await readAt(file.handle, start, pos - start);
    const buffer = rest.length > 0 ? Buffer.concat([block, rest]) : block;
    pos = start;
    let from = 0;
    if (start > 0) {
      const nl = buffer.indexOf(NEWLINE);
      rest = nl === -1 ? buffer : buffer.subarray(0, nl + 1);
      if (nl === -1) continue;
      from = nl + 1;
    }
    count += collectBackward(buffer, from, query, found, want - count);
  }
  return found.reverse().flat().slice(-want);
}

/** Every selected line of `file`, oldest first. */
async function allLines(file: LogFile, query: LogQuery, out: LogLine[]): Promise<void> {
  for await (const batch of scanForward(file.handle, 0, file.end)) appendSelected(out, batch.records, query);
}

/** The lines `query` selects from files opened together, oldest file first. @internal */
export async function readFiles(files: readonly LogFile[], query: LogQuery): Promise<LogLine[]> {
  if (query.tail === 0) return [];
  const out: LogLine[] = [];
  if (query.tail === Infinity) {
    for (const file of files) await allLines(file, query, out);
    return out;
  }
  // Newest file first, into older ones only while the tail is not complete yet.
  const parts: LogLine[][] = [];
  let count = 0;
  for (let i = files.length - 1; i >= 0 && count < query.tail; i--) {
    const lines = await tailFile(files[i]!, query, query.tail - count);
    parts.push(lines);
    count += lines.length;
  }
  for (const part of parts.reverse()) for (const line of part) out.push(line);
  return out;
}

/**
 * Reads a container's log: the rotated files oldest first (`PATH.2`, `PATH.1`), then `path`.
 * A record cut short at the end of a file (its writer killed mid-write) is skipped; so are
 * lines that are not records. With `tail` the files are read backwards from their ends.
 *
 * @example
 * ```ts
 * const lines = await readLogLines(logPath, { tail: 100, since: '10m', streams: ['stderr'] });
 * process.stdout.write(formatLogLines(lines, { timestamps: true }));
 * ```
 *
 * @param path - the log file {@link LogWriter} writes
 * @param options - which lines (tail, since, until, streams); all of them by default
 * @returns the lines, oldest first; none when there is no log yet
 * @throws {@link InvalidOptionError} for a malformed option (an unparsable `since`, say)
 */
export async function readLogLines(path: string, options: ReadLogsOptions = {}): Promise<LogLine[]> {
  const query = toLogQuery(options);
  const { rotated, current } = await openLogFiles(path);
  const files = current ? [...rotated, current] : rotated;
  try {
    return await readFiles(files, query);
  } finally {
    await closeAll(files);
  }
}
