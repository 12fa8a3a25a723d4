/**
 * The runtime's log: records go to `--log FILE` (appended, written synchronously: `create`
 * ends with _exit) as text or, with `--log-format json`, one JSON object per line. containerd's
 * shim shows the last `"level":"error"` record's `msg` of a failed call to the user.
 * @internal
 */
import { appendFileSync, writeSync } from 'node:fs';

/** Where and how the runtime logs. */
export class RuntimeLog {
  constructor(
    private readonly file: string | undefined,
    private readonly format: 'text' | 'json',
    private readonly debugging: boolean,
  ) {}

  /** A failure: to the log file, and to stderr (runtime-tools and people read that). */
  error(msg: string): void {
    this.write('error', msg);
    try {
      writeSync(2, `ctrkit-runtime: ${msg}\n`);
    } catch {
      // stderr closed: the log file has it
    }
  }

  warn(msg: string): void {
    this.write('warning', msg);
  }

  debug(msg: string): void {
    if (this.debugging) this.write('debug', msg);
  }

  private write(level: string, msg: string): void {
    if (!this.file) {
      if (level !== 'error') {
        try {
          writeSync(2, `ctrkit-runtime: ${level}: ${msg}\n`);
        } catch {
          // nowhere to say it
        }
      }
      return;
    }
    const time = new Date().toISOString();
    const line = this.format === 'json' ? JSON.stringify({ level, msg, time }) : `time="${time}" level=${level} msg=${JSON.stringify(msg)}`;
    try {
      appendFileSync(this.file, `${line}\n`);
    } catch {
      // an unwritable log must not turn a success into a failure
    }
  }
}
