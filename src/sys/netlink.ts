/**
 * AF_NETLINK sockets through koffi: socket, bind, send, recv, setsockopt. Kept apart from
 * libc.ts so the network code loads only what it uses.
 *
 * A netlink socket is bound to the network namespace of the thread that created it, for its
 * whole life: callers that want a socket in another namespace create it while the calling
 * thread is inside that namespace (see src/network/netns.ts) and may use it from anywhere.
 * @internal
 */
import { constants } from 'node:os';
import { koffi } from './koffi.js';
import { SysError } from './sys-error.js';
import { close } from './libc.js';

type Fn = (...args: unknown[]) => unknown;
interface BoundNetlink {
  socket: Fn;
  bind: Fn;
  send: Fn;
  recv: Fn;
  setsockopt: Fn;
}
let bound: BoundNetlink | undefined;

function lib(): BoundNetlink {
  if (bound) return bound;
  const c = koffi().load('libc.so.6');
  bound = {
    socket: c.func('int socket(int domain, int type, int protocol)'),
    bind: c.func('int bind(int fd, const uint8_t *addr, uint32_t len)'),
    send: c.func('long send(int fd, const uint8_t *buf, size_t len, int flags)'),
    recv: c.func('long recv(int fd, _Out_ uint8_t *buf, size_t len, int flags)'),
    setsockopt: c.func('int setsockopt(int fd, int level, int name, const uint8_t *value, uint32_t len)'),
  };
  return bound;
}

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const SOL_NETLINK = 270;
const NETLINK_CAP_ACK = 10;
const NETLINK_EXT_ACK = 11;
const { EAGAIN, EINTR } = constants.errno;

/** The netlink protocol of rtnetlink (links, addresses, routes, neighbours). @internal */
export const NETLINK_ROUTE = 0;

function errno(): number {
  return koffi().errno();
}

function setIntOption(fd: number, level: number, name: number, value: number, what: string): void {
  const v = Buffer.alloc(4);
  v.writeInt32LE(value, 0);
  if (Number(lib().setsockopt(fd, level, name, v, 4)) < 0) throw new SysError(`setsockopt(${what})`, errno());
}

/**
 * Opens a netlink socket of `protocol` in the calling thread's network namespace, bound to a
 * kernel-chosen port, with extended acks (the kernel's error text) and capped acks (errors
 * do not echo the whole request back). Receives time out after `timeoutMs`, so a kernel
 * that never answers cannot hang the process.
 * @internal
 */
export function netlinkSocket(protocol: number, timeoutMs = 10_000): number {
  const fd = Number(lib().socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol));
  if (fd < 0) throw new SysError('socket(AF_NETLINK)', errno());
  try {
    const addr = Buffer.alloc(12); // sockaddr_nl: family, pad, pid 0 (kernel picks), groups 0
    addr.writeUInt16LE(AF_NETLINK, 0);
    if (Number(lib().bind(fd, addr, 12)) < 0) throw new SysError('bind(AF_NETLINK)', errno());
    setIntOption(fd, SOL_SOCKET, SO_SNDBUF, 1 << 20, 'SO_SNDBUF');
    setIntOption(fd, SOL_SOCKET, SO_RCVBUF, 1 << 20, 'SO_RCVBUF');
    // Both are best effort: an old kernel without them still answers, only less helpfully.
    try {
      setIntOption(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1, 'NETLINK_EXT_ACK');
    } catch {
      /* optional */
    }
    try {
      setIntOption(fd, SOL_NETLINK, NETLINK_CAP_ACK, 1, 'NETLINK_CAP_ACK');
    } catch {
      /* optional */
    }
    const tv = Buffer.alloc(16);
    tv.writeBigInt64LE(BigInt(Math.floor(timeoutMs / 1000)), 0);
    tv.writeBigInt64LE(BigInt((timeoutMs % 1000) * 1000), 8);
    if (Number(lib().setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16)) < 0) throw new SysError('setsockopt(SO_RCVTIMEO)', errno());
    return fd;
  } catch (e) {
    close(fd);
    throw e;
  }
}

/** send(2) of one whole message. @internal */
export function netlinkSend(fd: number, message: Buffer): void {
  for (;;) {
    const n = Number(lib().send(fd, message, message.length, 0));
    if (n === message.length) return;
    if (n < 0 && errno() === EINTR) continue;
    if (n < 0) throw new SysError('send(AF_NETLINK)', errno());
    throw new SysError('send(AF_NETLINK)', 5 /* EIO */, undefined, `short send: ${n} of ${message.length} bytes`);
  }
}

/** recv(2) of one datagram (one or more netlink messages) into `buf`; returns its length. @internal */
export function netlinkRecv(fd: number, buf: Buffer): number {
  for (;;) {
    const n = Number(lib().recv(fd, buf, buf.length, 0));
    if (n >= 0) return n;
    const e = errno();
    if (e === EINTR) continue;
    throw new SysError('recv(AF_NETLINK)', e, undefined, e === EAGAIN ? 'the kernel did not answer in time' : undefined);
  }
}

/** Closes a netlink socket. @internal */
export function netlinkClose(fd: number): void {
  close(fd);
}
