/**
 * One netlink socket (rtnetlink, or nfnetlink for nftables) and the request/response
 * exchange on it: a request with NLM_F_ACK answered by one NLMSG_ERROR (errno 0 is success),
 * a dump answered by NLM_F_MULTI messages up to NLMSG_DONE, or an nfnetlink batch answered
 * by one ack or error per message. Everything is synchronous: the kernel answers these
 * requests inline, in well under a millisecond.
 * @internal
 */
import { constants } from 'node:os';
import { netlinkClose, netlinkRecv, netlinkSend, netlinkSocket, NETLINK_ROUTE } from '../../sys/netlink.js';
import { NetlinkError } from '../errors.js';
import { decodeAttrs, readStr } from './attributes.js';
import { NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP, NLM_F_REQUEST, NLMSGERR_ATTR_MSG } from './constants.js';

/** One received message: its type, flags and payload after the 16-byte header. @internal */
export interface NetlinkMessage {
  readonly type: number;
  readonly flags: number;
  readonly payload: Buffer;
}

const HEADER = 16;

/** One message of a {@link NetlinkSocket.batch}. @internal */
export interface BatchMessage {
  readonly type: number;
  readonly flags: number;
  readonly body: Buffer;
  /** Batch begin/end: sent without NLM_F_ACK, never answered. */
  readonly framing?: boolean;
  /** What to name in an error about this message. */
  readonly operation?: string;
}

/** @internal */
export class NetlinkSocket {
  private fd: number;
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private readonly buf = Buffer.alloc(1 << 16);

  constructor(protocol = NETLINK_ROUTE) {
    this.fd = netlinkSocket(protocol);
  }

  /**
   * Sends several messages in one datagram, each with NLM_F_ACK, and waits for the answer to
   * every one of them (nfnetlink answers each message of a batch, and reports every error).
   * The first error is thrown once all answers are in, so none is left for a later request.
   * Messages in `framing` (batch begin/end) are sent without an ack.
   */
  batch(messages: readonly BatchMessage[], operation: string): void {
    if (this.fd < 0) throw new NetlinkError(operation, constants.errno.EBADF, 'the netlink client is closed');
    const pending = new Map<number, string>();
    const parts: Buffer[] = [];
    for (const m of messages) {
      const seq = (this.seq = (this.seq + 1) & 0x7fffffff);
      const msg = Buffer.alloc(HEADER + m.body.length);
      msg.writeUInt32LE(msg.length, 0);
      msg.writeUInt16LE(m.type, 4);
      msg.writeUInt16LE(NLM_F_REQUEST | m.flags | (m.framing ? 0 : NLM_F_ACK), 6);
      msg.writeUInt32LE(seq, 8);
      m.body.copy(msg, HEADER);
      parts.push(msg);
      if (!m.framing) pending.set(seq, m.operation ?? operation);
    }
    netlinkSend(this.fd, Buffer.concat(parts));
    let first: NetlinkError | undefined;
    while (pending.size > 0) {
      for (const { type: mtype, flags: mflags, seq: mseq, payload } of this.receive()) {
        const what = pending.get(mseq);
        if (what === undefined || mtype !== NLMSG_ERROR) continue;
        pending.delete(mseq);
        const err = -payload.readInt32LE(0);
        if (err !== 0) first ??= new NetlinkError(what, err, extAckMessage(payload, mflags));
      }
    }
    if (first) throw first;
  }

  /** One recv(2), split into its netlink messages (header fields and a copy of each payload). */
  private receive(): { type: number; flags: number; seq: number; payload: Buffer }[] {
    const n = netlinkRecv(this.fd, this.buf);
    const out: { type: number; flags: number; seq: number; payload: Buffer }[] = [];
    for (let off = 0; off + HEADER <= n; ) {
      const len = this.buf.readUInt32LE(off);
      if (len < HEADER || off + len > n) break;
      out.push({
        type: this.buf.readUInt16LE(off + 4),
        flags: this.buf.readUInt16LE(off + 6),
        seq: this.buf.readUInt32LE(off + 8),
        payload: Buffer.from(this.buf.subarray(off + HEADER, off + len)),
      });
      off += (len + 3) & ~3;
    }
    return out;
  }

  /**
   * Sends `body` as message `type` and waits for the kernel's ack; returns what the kernel
   * sent before the ack (a GET's answer). Throws {@link NetlinkError}.
   */
  request(type: number, flags: number, body: Buffer, operation: string): NetlinkMessage[] {
    return this.exchange(type, flags | NLM_F_ACK, body, operation);
  }

  /** Sends a dump request and returns every answer message. */
  dump(type: number, body: Buffer, operation: string): NetlinkMessage[] {
    return this.exchange(type, NLM_F_DUMP, body, operation);
  }

  private exchange(type: number, flags: number, body: Buffer, operation: string): NetlinkMessage[] {
    if (this.fd < 0) throw new NetlinkError(operation, constants.errno.EBADF, 'the netlink client is closed');
    const seq = (this.seq = (this.seq + 1) & 0x7fffffff);
    const msg = Buffer.alloc(HEADER + body.length);
    msg.writeUInt32LE(msg.length, 0);
    msg.writeUInt16LE(type, 4);
    msg.writeUInt16LE(flags | NLM_F_REQUEST, 6);
    msg.writeUInt32LE(seq, 8);
    body.copy(msg, HEADER);
    netlinkSend(this.fd, msg);
    const out: NetlinkMessage[] = [];
    for (;;) {
      for (const { type: mtype, flags: mflags, seq: mseq, payload } of this.receive()) {
        if (mseq !== seq) continue; // a late answer to an earlier request
        if (mtype === NLMSG_DONE) return out;
        if (mtype === NLMSG_ERROR) {
          const err = -payload.readInt32LE(0);
          if (err === 0) return out;
          throw new NetlinkError(operation, err, extAckMessage(payload, mflags));
        }
        out.push({ type: mtype, flags: mflags, payload });
      }
    }
  }

  close(): void {
    if (this.fd >= 0) netlinkClose(this.fd);
    this.fd = -1;
  }
}

/** The kernel's error text from an NLMSG_ERROR with extended-ack TLVs. */
function extAckMessage(payload: Buffer, flags: number): string | undefined {
  if (!(flags & NLM_F_ACK_TLVS)) return undefined;
  // errno (4) + the original header (16), plus its payload unless the ack was capped.
  let off = 4 + HEADER;
  if (!(flags & NLM_F_CAPPED)) off = 4 + payload.readUInt32LE(4);
  return readStr(decodeAttrs(payload.subarray(off)).get(NLMSGERR_ATTR_MSG));
}
