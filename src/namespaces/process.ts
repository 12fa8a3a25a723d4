import type { Duplex, Readable, Writable } from 'node:stream';
import { constants } from 'node:os';
import { close, pidfdSendSignal } from '../sys/libc.js';
import type { NamespaceRef } from './handle.js';
import { checkTtySize } from './pty.js';
import type { PtyMaster } from './pty-stream.js';
import type { NamespaceType } from './types.js';

/** How a containerized process ended: exactly one of the two is set. */
export interface ExitStatus {
  /** The exit code, when it exited normally. */
  readonly exitCode: number | null;
  /** The signal that ended it, e.g. `SIGKILL`. */
  readonly signal: NodeJS.Signals | null;
}

/** @internal */
export interface ProcessParts {
  pid: number;
  pidfd: number;
  namespaces: Partial<Record<NamespaceType, NamespaceRef>>;
  stdin: Writable | null;
  stdout: Readable | null;
  stderr: Readable | null;
  tty: PtyMaster | null;
  exited: Promise<ExitStatus>;
}

/**
 * A running program in its own namespaces: what `unshare`, `nsenter` and `Container.start` return
 * once the command has started.
 *
 * It owns kernel resources (the process and, with a PID namespace, everything in it), so
 * `await using p = await unshare(...)` kills and reaps it when the scope ends.
 */
export class NamespacedProcess implements AsyncDisposable {
  /** The PID of the command (PID 1 of its PID namespace) as the caller's /proc sees it. */
  readonly pid: number;
  /** The namespaces the command lives in, new and inherited, by type. */
  readonly namespaces: Readonly<Partial<Record<NamespaceType, NamespaceRef>>>;
  /** The command's stdin, when it was given `'pipe'`. */
  readonly stdin: Writable | null;
  /** The command's stdout, when it was given `'pipe'`. */
  readonly stdout: Readable | null;
  /** The command's stderr, when it was given `'pipe'`. */
  readonly stderr: Readable | null;
  /**
   * The master side of the command's pseudo-terminal, when it was started with `tty: true`:
   * read what the program writes to its terminal, write its keyboard input (bytes as typed:
   * `\r` for Enter, `\x03` for Ctrl-C). The stream ends, without an error, once the last
   * process holding the terminal has closed it and its output has been read (a process the
   * command left behind holding it is given 100 ms after the command's exit); input written
   * after that is dropped. Destroying it, or disposing of this object, closes the master.
   */
  readonly tty: Duplex | null;
  /** Settles when the command has exited and been reaped. Never rejects. */
  readonly exited: Promise<ExitStatus>;
  private readonly pidfd: number;
  private readonly terminal: PtyMaster | null;
  private done = false;

  /** @internal */
  constructor(parts: ProcessParts) {
    this.pid = parts.pid;
    this.pidfd = parts.pidfd;
    this.namespaces = Object.freeze({ ...parts.namespaces });
    this.stdin = parts.stdin;
    this.stdout = parts.stdout;
    this.stderr = parts.stderr;
    this.terminal = parts.tty;
    this.tty = parts.tty;
    this.exited = parts.exited.finally(() => {
      this.done = true;
      close(this.pidfd);
      this.terminal?.processExited();
    });
  }

  /**
   * Sets the size of the command's terminal (TIOCSWINSZ on the master); the kernel sends
   * SIGWINCH to the terminal's foreground process group. A no-op without a tty, or once the
   * terminal has hung up.
   * @param cols - columns, 0 to 65535
   * @param rows - rows, 0 to 65535
   */
  resize(cols: number, rows: number): void {
    const size = { cols, rows };
    checkTtySize(size, 'resize');
    this.terminal?.resize(size);
  }

  /**
   * Sends a signal to the command. With a PID namespace the command is its init: the kernel
   * delivers only signals it has a handler for, except SIGKILL, which ends the whole
   * namespace. Uses a pidfd, so a recycled PID is never signalled by mistake.
   * @param signal - a signal name or number (default `SIGTERM`)
   * @returns false when the process had already exited
   */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    if (this.done) return false;
    const n = typeof signal === 'number' ? signal : constants.signals[signal];
    if (n === undefined) throw new TypeError(`unknown signal ${String(signal)}`);
    return pidfdSendSignal(this.pidfd, n);
  }

  /** Waits for the exit. Same as awaiting {@link NamespacedProcess.exited}. */
  wait(): Promise<ExitStatus> {
    return this.exited;
  }

  /**
   * Kills the command (SIGKILL: with a PID namespace, every process in it), waits for it,
   * and closes its terminal, if it has one.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.kill('SIGKILL');
    await this.exited;
    this.terminal?.destroy();
  }
}
