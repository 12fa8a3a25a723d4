import type { Socket } from 'node:net';
import { encode, type ParentMessage, type StageMessage } from './protocol.js';

/**
 * The parent's end of the sync socket: sends {@link ParentMessage}s and hands out
 * {@link StageMessage}s one at a time. `next()` resolves `null` once the socket has closed,
 * which after an `exec` message means the command is running.
 * @internal
 */
export class ParentChannel {
  private readonly queue: StageMessage[] = [];
  private waiter: ((m: StageMessage | null) => void) | undefined;
  private buffered = '';
  private closed = false;
  /** Text that was not a valid message (a bug, or a stage that crashed mid-line). */
  garbage = '';

  constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    const end = () => this.onClose();
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    let nl: number;
    while ((nl = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      try {
        this.push(JSON.parse(line) as StageMessage);
      } catch {
        this.garbage += `${line}\n`;
      }
    }
  }

  private push(m: StageMessage): void {
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w(m);
    } else this.queue.push(m);
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.garbage += this.buffered;
    const w = this.waiter;
    this.waiter = undefined;
    w?.(null);
  }

  /** The next message, or null when the stage closed its end (exec'd or died). */
  next(): Promise<StageMessage | null> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  send(msg: ParentMessage): void {
    if (!this.closed) this.socket.write(encode(msg));
  }

  destroy(): void {
    this.socket.destroy();
  }
}
