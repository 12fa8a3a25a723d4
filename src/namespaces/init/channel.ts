import { readSync, writeSync } from 'node:fs';
import { encode, type ParentMessage, type StageMessage } from '../protocol.js';
import { SYNC_FD } from './config.js';

/**
 * The stage's end of the sync socket. Deliberately synchronous: the stage is a straight
 * line of steps, and a blocking read is exactly "wait until the parent says go".
 * @internal
 */
export class StageChannel {
  private buffered = '';

  send(msg: StageMessage): void {
    const data = Buffer.from(encode(msg));
    let off = 0;
    while (off < data.length) off += writeSync(SYNC_FD, data, off);
  }

  /** Blocks until one message arrives. Throws when the parent has gone away. */
  receive<T extends ParentMessage['t']>(expected: T): Extract<ParentMessage, { t: T }> {
    const chunk = Buffer.alloc(64 * 1024);
    let nl = this.buffered.indexOf('\n');
    while (nl < 0) {
      let n: number;
      try {
        n = readSync(SYNC_FD, chunk, 0, chunk.length, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue;
        throw e;
      }
      if (n === 0) throw new Error(`the parent went away while the stage waited for "${expected}"`);
      this.buffered += chunk.toString('utf8', 0, n);
      nl = this.buffered.indexOf('\n');
    }
    const line = this.buffered.slice(0, nl);
    this.buffered = this.buffered.slice(nl + 1);
    const msg = JSON.parse(line) as ParentMessage;
    if (msg.t !== expected) throw new Error(`unexpected message from the parent: expected "${expected}", received "${msg.t}"`);
    return msg as Extract<ParentMessage, { t: T }>;
  }
}
