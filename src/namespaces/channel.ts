import type { Socket } from 'node:net';
import { initErrorFrom, InitError } from './errors.js';
import { encode, type InitStep, type ParentMessage, type StageMessage } from './protocol.js';

/** The stage closed its end of the socket before the message the parent waited for. @internal */
export class StageClosed extends Error {
  constructor() {
    super('the init stage closed the sync socket');
  }
}

/** What the channel needs to turn a stage's report into a typed error. @internal */
export interface ChannelContext {
  /** The command, named in CommandNotFoundError. */
  readonly argv0: string;
  /** What util-linux and the stage wrote to their diagnostics pipe so far. */
  diagnostics(): string;
  /** The step the parent is in, named in a protocol error. */
  step(): InitStep;
  /** Rejects with an AbortError once the caller aborts. */
  readonly aborted: Promise<never>;
}

type Message<T extends StageMessage['t']> = Extract<StageMessage, { t: T }>;

/**
 * The parent's end of the sync socket, with one method per message the protocol expects
 * (see ./protocol.ts), as youki's channel has: each resolves with that message, or throws —
 * the stage's own typed error when it reported one, {@link StageClosed} when it died (the
 * caller then says how), an AbortError when the caller aborted, a protocol error otherwise.
 * @internal
 */
export class ParentChannel {
  private readonly queue: StageMessage[] = [];
  private waiter: ((m: StageMessage | null) => void) | undefined;
  private buffered = '';
  private closed = false;
  /** Text that was not a valid message (a bug, or a stage that crashed mid-line). */
  garbage = '';

  constructor(
    private readonly socket: Socket,
    private readonly ctx: ChannelContext,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    const end = () => this.onClose();
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    for (let nl = this.buffered.indexOf('\n'); nl >= 0; nl = this.buffered.indexOf('\n')) {
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
  private next(): Promise<StageMessage | null> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  private async expect<T extends StageMessage['t']>(t: T): Promise<Message<T>> {
    const m = await Promise.race([this.next(), this.ctx.aborted]);
    if (m === null) throw new StageClosed();
    if (m.t === 'error') throw initErrorFrom(m.step, m.error, this.ctx.argv0, this.ctx.diagnostics());
    if (m.t !== t) {
      throw new InitError(this.ctx.step(), { name: 'Error', message: `protocol error: expected "${t}", received "${m.t}"` }, this.ctx.diagnostics());
    }
    return m as Message<T>;
  }

  /** With a user namespace: the barrier asks for the uid/gid maps. */
  async awaitUsernsRequest(): Promise<void> {
    await this.expect('userns');
  }

  /** The stage is up in its namespaces: its host PID and the fd of its close-on-exec pipe. */
  awaitPid(): Promise<Message<'pid'>> {
    return this.expect('pid');
  }

  /** With a terminal: the stage asks for the number of the pty the parent opened. */
  async awaitTtyRequest(): Promise<void> {
    await this.expect('tty');
  }

  /** The stage is about to execve: the inodes of the namespaces the command lives in. */
  async awaitExec(): Promise<Message<'exec'>['namespaces']> {
    return (await this.expect('exec')).namespaces;
  }

  /** After the exec pipe said "failed": the error the stage sent (after its "exec" when execve itself failed). */
  async awaitFailure(): Promise<never> {
    for (let m = await this.next(); m; m = await this.next()) {
      if (m.t === 'error') throw initErrorFrom(m.step, m.error, this.ctx.argv0, this.ctx.diagnostics());
    }
    throw new StageClosed();
  }

  send(msg: ParentMessage): void {
    if (!this.closed) this.socket.write(encode(msg));
  }

  destroy(): void {
    this.socket.destroy();
  }
}
