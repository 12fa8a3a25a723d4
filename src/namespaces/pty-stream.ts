/**
 * A pty master as a Node stream: what `NamespacedProcess.tty` is.
 *
 * Reading goes through `tty.ReadStream`, the only stream Node puts on a terminal fd, so the
 * event loop is told when output arrives. Writing does not: libuv writes to a pty master in
 * blocking mode (it cannot reopen a master the way it reopens a slave), so a program that
 * stops reading its input would freeze our whole process. Keyboard input is written with
 * non-blocking `fs.write` on a duplicate of the master fd instead, retried on EAGAIN.
 * @internal
 */
import { readSync, write } from 'node:fs';
import { Duplex } from 'node:stream';
import { ReadStream } from 'node:tty';
import { F_DUPFD_CLOEXEC, F_GETFL, F_SETFL, O_NONBLOCK } from '../sys/constants.js';
import { close, fcntl } from '../sys/libc.js';
import { setWindowSize, type TtySize } from './pty.js';

/**
 * How long, once the process has exited, the master is still read for output on its way.
 * The slave's last close normally ends the stream first (EIO); this only matters when a
 * process that outlived the command (started by an `nsenter`ed one) still holds the slave.
 */
const HANGUP_GRACE_MS = 100;
/** How soon a write that found the terminal's input queue full (EAGAIN) is tried again. */
const WRITE_RETRY_MS = 5;
/** More than the kernel ever buffers in a pty (its flip buffers and the line discipline's). */
const DRAIN_LIMIT = 1 << 20;

/** Errors that mean "the other side of the terminal is gone", not a failure. */
function isHangup(e: NodeJS.ErrnoException | null | undefined): boolean {
  return e?.code === 'EIO';
}

/**
 * The master of a container's pseudo-terminal: readable is what the program writes to its
 * terminal, writable is its keyboard input. Ends (never errors) when the terminal hangs up.
 * @internal
 */
export class PtyMaster extends Duplex {
  readonly #reader: ReadStream;
  /** Our own descriptor for writes and ioctls; -1 once closed. */
  #fd: number;
  #writing = false;
  #hungUp = false;
  #timer: NodeJS.Timeout | undefined;

  /** Takes ownership of `fd`, a pty master. */
  constructor(fd: number) {
    super({ allowHalfOpen: false });
    this.#fd = -1;
    try {
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
      this.#fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
      this.#reader = new ReadStream(fd);
    } catch (e) {
      if (this.#fd >= 0) close(this.#fd);
      close(fd);
      throw e;
    }
    this.#reader.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) this.#reader.pause();
    });
    this.#reader.on('end', () => this.#hangUp());
    this.#reader.on('error', (e: NodeJS.ErrnoException) => (isHangup(e) ? this.#hangUp() : this.destroy(e)));
  }

  /** Sets the terminal's size; a no-op once the terminal is gone. */
  resize(size: TtySize): void {
    if (this.#fd >= 0 && !this.#hungUp) setWindowSize(this.#fd, size);
  }

  /**
   * The process has exited: end the stream once what it wrote has been read, even if a
   * leftover process still holds the slave open.
   */
  processExited(): void {
    if (this.#hungUp || this.destroyed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      // A consumer applying backpressure still has output coming: wait for it.
      if (this.#reader.isPaused() && !this.#reader.destroyed) this.processExited();
      else this.#hangUp();
    }, HANGUP_GRACE_MS);
    this.#timer.unref();
  }

  override _read(): void {
    this.#reader.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#writeAll(chunk, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    // A terminal has no end-of-input of its own (the program would read ^D for that).
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.#timer);
    this.#reader.destroy();
    this.#releaseFd();
    callback(error);
  }

  /** Writes all of `chunk`; input for a terminal that hung up is dropped, as a real one drops it. */
  #writeAll(chunk: Buffer, callback: (error?: Error | null) => void): void {
    if (this.#fd < 0 || this.#hungUp || chunk.length === 0) {
      callback();
      return;
    }
    this.#writing = true;
    write(this.#fd, chunk, 0, chunk.length, null, (err, n) => {
      this.#writing = false;
      if (this.#hungUp || this.destroyed) {
        this.#releaseFd();
        callback();
      } else if (err?.code === 'EAGAIN') {
        setTimeout(() => this.#writeAll(chunk, callback), WRITE_RETRY_MS);
      } else if (err) {
        callback(isHangup(err) ? null : err);
      } else {
        this.#writeAll(chunk.subarray(n), callback);
      }
    });
  }

  /** The slave's last holder closed it: end the readable side and let go of the master. */
  #hangUp(): void {
    if (this.#hungUp) return;
    this.#hungUp = true;
    clearTimeout(this.#timer);
    this.#drain();
    this.push(null);
    this.#reader.destroy();
    this.#releaseFd();
  }

  /**
   * Reads what is still buffered in the kernel. After a hangup, libuv takes the first short
   * read for end-of-file, but a pty master hands out its buffered output a line-discipline
   * buffer (4 KiB) at a time: the rest would be lost. Non-blocking reads return it all, then
   * EIO (or EAGAIN, when a leftover process still holds the slave).
   */
  #drain(): void {
    if (this.#fd < 0) return;
    const buf = Buffer.allocUnsafe(65536);
    for (let total = 0; total < DRAIN_LIMIT; ) {
      let n: number;
      try {
        n = readSync(this.#fd, buf, 0, buf.length, null);
      } catch {
        return;
      }
      if (n === 0) return;
      this.push(Buffer.from(buf.subarray(0, n)));
      total += n;
    }
  }

  /** Closes our duplicate, unless a write on it is still in flight (it closes it when done). */
  #releaseFd(): void {
    if (this.#writing || this.#fd < 0) return;
    close(this.#fd);
    this.#fd = -1;
  }
}
