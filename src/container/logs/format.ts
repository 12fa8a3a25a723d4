/** Which of a container's output pipes a line came from. */
export type LogStream = 'stdout' | 'stderr';

/**
 * One line of a container's output, as read back from its log (or handed to a
 * `onLog` listener as it is written).
 */
export interface LogLine {
  /** The pipe the line was written to. */
  readonly stream: LogStream;
  /** The line's text, without its trailing newline. */
  readonly text: string;
  /** When the writer received the chunk that completed the line (millisecond precision). */
  readonly time: Date;
  /**
   * True when the line has no newline of its own: a line longer than 16 KiB cut into pieces
   * (every piece but the last is partial), or the unterminated end of a stream at close.
   * Absent otherwise.
   */
  readonly partial?: boolean;
}

/**
 * How long a line may grow before the writer stores what it has as a partial record, like
 * Docker's 16 KiB partial messages: a process that never writes a newline must not make the
 * writer hold an ever-growing string. @internal
 */
export const PARTIAL_MAX_BYTES = 16 * 1024;

/** A decoded line of the log file: one chunk's worth of whole lines of one stream. @internal */
export interface LogRecord {
  readonly log: string;
  readonly stream: LogStream;
  readonly time: Date;
  readonly partial: boolean;
}

/**
 * `date` in RFC 3339 with nine fraction digits, the fixed width Docker's json-file driver and
 * `docker logs -t` use (so columns line up); the last six digits are zero because Node's wall
 * clock has millisecond resolution. @internal
 */
export function formatTime(date: Date): string {
  const iso = date.toISOString(); // 2026-11-30T04:31:07.123Z
  return `${iso.slice(0, -1)}000000Z`;
}

/**
 * One record as a line of the log file. Built by concatenation rather than from an object:
 * this runs once per chunk of a container's output, and only `log` needs escaping. @internal
 */
export function encodeRecord(stream: LogStream, log: string, time: string, partial: boolean): string {
  const tail = partial ? '","partial":true}\n' : '"}\n';
  return `{"log":${JSON.stringify(log)},"stream":"${stream}","time":"${time}${tail}`;
}

/**
 * Parses one line of a log file, or returns undefined when it is not a record: the last line
 * of a file whose writer was killed mid-write is cut short, and a reader should show what
 * precedes it rather than fail. @internal
 */
export function decodeRecord(json: string): LogRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { log, stream, time, partial } = value as Record<string, unknown>;
  if (typeof log !== 'string' || (stream !== 'stdout' && stream !== 'stderr') || typeof time !== 'string') return undefined;
  const ms = Date.parse(time);
  if (Number.isNaN(ms)) return undefined;
  // Docker marks a partial message only by the missing newline; ctrkit also says so explicitly.
  return { log, stream, time: new Date(ms), partial: partial === true || !log.endsWith('\n') };
}

/**
 * The lines of a record: each piece ended by a newline, then the text after the last newline
 * (in a partial record) as a partial line. A loop over indexOf rather than split + map, since
 * a record of short lines holds tens of thousands of them. @internal
 */
export function recordLines(record: LogRecord): LogLine[] {
  const { log, stream, time } = record;
  const lines: LogLine[] = [];
  let start = 0;
  for (let nl = log.indexOf('\n'); nl !== -1; nl = log.indexOf('\n', start)) {
    lines.push({ stream, text: log.slice(start, nl), time });
    start = nl + 1;
  }
  if (start < log.length) lines.push({ stream, text: log.slice(start), time, partial: true });
  return lines;
}

/** Options of {@link formatLogLines}. */
export interface FormatLogsOptions {
  /** Prefix every line with its RFC 3339 time (nine fraction digits) and a space, like `docker logs -t`. */
  readonly timestamps?: boolean;
}

/**
 * Lines as `docker logs` prints them: each followed by a newline, except a partial line, whose
 * text the next piece continues (so a long line comes out whole, as the container wrote it, and
 * with `timestamps` only its first piece is prefixed).
 *
 * @param lines - lines from {@link readLogLines} or {@link followLogLines}
 * @param options - `timestamps` to prefix each line with its time
 * @returns the text, empty when there are no lines
 */
export function formatLogLines(lines: Iterable<LogLine>, options: FormatLogsOptions = {}): string {
  let out = '';
  let lineStart = true;
  for (const line of lines) {
    // A piece that continues a partial line is not a new line and gets no second timestamp.
    if (options.timestamps && lineStart) out += `${formatTime(line.time)} `;
    out += line.partial ? line.text : `${line.text}\n`;
    lineStart = line.partial !== true;
  }
  return out;
}
