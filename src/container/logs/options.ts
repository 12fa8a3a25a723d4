import { InvalidOptionError } from '../../errors.js';
import type { LogRecord, LogStream } from './format.js';

/** Which lines `logs()` and `followLogs()` return. */
export interface ReadLogsOptions {
  /**
   * Only the last `tail` lines (among those the other options select), like
   * `docker logs --tail`; counted in lines, not records. Default: all of them.
   */
  readonly tail?: number;
  /**
   * Only lines written at or after this time, like `docker logs --since`: a Date, epoch
   * milliseconds, an ISO 8601 date, Unix seconds as a string (`'1767225600.5'`), or a
   * duration back from now (`'30s'`, `'10m'`, `'2h'`, `'1h30m'`, Go's units `ns us ms s m h`).
   */
  readonly since?: Date | number | string;
  /** Only lines written at or before this time; the same forms as {@link ReadLogsOptions.since}. */
  readonly until?: Date | number | string;
  /** Only lines of these streams. Default: both. */
  readonly streams?: readonly LogStream[];
}

/** {@link ReadLogsOptions}, checked and in the form the readers compare against. @internal */
export interface LogQuery {
  readonly tail: number;
  readonly since: number;
  readonly until: number;
  readonly stdout: boolean;
  readonly stderr: boolean;
}

const UNIT_MS: Readonly<Record<string, number>> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION = /^(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/;
const DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g;
const UNIX_SECONDS = /^\d+(?:\.\d+)?$/;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

/** A Go-style duration (`'1h30m'`) in milliseconds, or undefined when `text` is not one. */
function parseDuration(text: string): number | undefined {
  if (!DURATION.test(text)) return undefined;
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(DURATION_PART)) ms += Number(amount) * (UNIT_MS[unit!] ?? 0);
  return ms;
}

/**
 * A `since`/`until` value as epoch milliseconds. A bare number string is Unix seconds, as
 * Docker reads it; `'0'` is therefore the epoch, not a zero duration.
 * @internal
 */
export function parseLogTime(option: string, value: Date | number | string, now = Date.now()): number {
  if (value instanceof Date) {
    const ms = value.getTime();
    if (Number.isNaN(ms)) throw new InvalidOptionError(option, 'is an invalid Date');
    return ms;
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new InvalidOptionError(option, `${value} is not a time (expected epoch milliseconds)`);
    return value;
  }
  if (typeof value !== 'string') throw new InvalidOptionError(option, 'expected a Date, epoch milliseconds or a string');
  const text = value.trim();
  if (UNIX_SECONDS.test(text)) return Number(text) * 1000;
  const duration = parseDuration(text);
  if (duration !== undefined) return now - duration;
  const ms = ISO_DATE.test(text) ? Date.parse(text.replace(' ', 'T')) : Number.NaN;
  if (Number.isNaN(ms)) {
    throw new InvalidOptionError(
      option,
      `invalid time "${value}" (expected an ISO 8601 date like "2026-11-30T04:31:07Z", Unix seconds, or a duration like "10m" or "1h30m")`,
    );
  }
  return ms;
}

/** Checks `options` and turns them into a {@link LogQuery}. @internal */
export function toLogQuery(options: ReadLogsOptions = {}): LogQuery {
  const { tail, since, until, streams } = options;
  if (tail !== undefined && (!Number.isInteger(tail) || tail < 0)) {
    throw new InvalidOptionError('tail', `${String(tail)} is not a number of lines (expected an integer >= 0)`);
  }
  for (const s of streams ?? []) {
    if (s !== 'stdout' && s !== 'stderr') throw new InvalidOptionError('streams', `unknown stream "${String(s)}" (expected "stdout" or "stderr")`);
  }
  const now = Date.now();
  return {
    tail: tail ?? Infinity,
    since: since === undefined ? -Infinity : parseLogTime('since', since, now),
    until: until === undefined ? Infinity : parseLogTime('until', until, now),
    stdout: streams ? streams.includes('stdout') : true,
    stderr: streams ? streams.includes('stderr') : true,
  };
}

/** Whether a record's lines are wanted: all of them share its stream and time. @internal */
export function selects(query: LogQuery, record: LogRecord): boolean {
  const t = record.time.getTime();
  return query[record.stream] && t >= query.since && t <= query.until;
}

/** Options of {@link LogWriter.open}. */
export interface LogWriterOptions {
  /** The size in bytes at which the file is rotated, like json-file's `max-size`. Default 8 MiB. */
  readonly maxSize?: number;
  /**
   * How many files to keep, the current one included, like json-file's `max-file`. Default 2:
   * the file and `PATH.1`. With 1 the file is started afresh when full.
   */
  readonly maxFiles?: number;
  /**
   * Called when writing to the file fails (a full disk, say). The writer drops the record
   * and carries on rather than throwing into the code that drains the container's pipes:
   * a container must not stall or die because its log cannot be written. Default: ignored,
   * visible with `DEBUG=ctrkit:logs`.
   */
  readonly onError?: (error: Error) => void;
}

/** The writer's limits, checked. @internal */
export function writerLimits(options: LogWriterOptions): { maxSize: number; maxFiles: number } {
  const { maxSize = 8 * 1024 * 1024, maxFiles = 2 } = options;
  if (!Number.isSafeInteger(maxSize) || maxSize < 1)
    throw new InvalidOptionError('maxSize', `${String(maxSize)} is not a size (expected a positive number of bytes)`);
  if (!Number.isSafeInteger(maxFiles) || maxFiles < 1)
    throw new InvalidOptionError('maxFiles', `${String(maxFiles)} is not a number of files (expected an integer >= 1)`);
  return { maxSize, maxFiles };
}
