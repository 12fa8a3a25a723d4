/**
 * File descriptors passed between processes over a UNIX socket (SCM_RIGHTS): socketpair,
 * sendmsg, recvmsg. Node passes only its own socket handles between processes; a detached
 * mount (open_tree) must cross as a plain fd.
 *
 * The message headers are laid out by hand in memory koffi allocates, with the 64-bit ABI
 * of x86_64 and arm64 (the architectures ctrkit runs on): msghdr is 56 bytes, cmsghdr 16.
 * @internal
 */
import { closeSync } from 'node:fs';
import { constants } from 'node:os';
import { koffi } from './koffi.js';
import { SysError } from './sys-error.js';

type Fn = (...args: unknown[]) => unknown;
interface Bound {
  socket: Fn;
  connect: Fn;
  socketpair: Fn;
  sendmsg: Fn;
  recvmsg: Fn;
}
let bound: Bound | undefined;

function lib(): Bound {
  if (bound) return bound;
  const c = koffi().load('libc.so.6');
  bound = {
    socket: c.func('int socket(int domain, int type, int protocol)'),
    connect: c.func('int connect(int fd, const uint8_t *addr, uint32_t len)'),
    socketpair: c.func('int socketpair(int domain, int type, int protocol, _Out_ int *sv)'),
    sendmsg: c.func('long sendmsg(int fd, void *msg, int flags)'),
    recvmsg: c.func('long recvmsg(int fd, void *msg, int flags)'),
  };
  return bound;
}

const AF_UNIX = 1;
const SOCK_SEQPACKET = 5;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_NOSIGNAL = 0x4000;
const MSG_CTRUNC = 0x8;
const MSG_CMSG_CLOEXEC = 0x40000000;
const { EINTR } = constants.errno;

/** The most fds one message carries (the kernel's SCM_MAX_FD is 253). */
export const MAX_FDS_PER_MESSAGE = 250;

// Offsets in the scratch memory: msghdr, iovec, one data byte, then the control message.
const MSG = 0;
const IOV = 56;
const DATA = 72;
const CONTROL = 80;
const CMSG_HEADER = 16;

function errno(): number {
  return koffi().errno();
}

const SOCK_STREAM = 1;

/**
 * A close-on-exec SOCK_STREAM socket connected to the UNIX socket at `path` (an OCI runtime's
 * `--console-socket`, where the terminal's master goes with {@link sendFds}). Close it with close(2).
 * @internal
 */
export function connectUnix(path: string): number {
  const name = Buffer.from(path);
  if (name.length >= 108) throw new SysError('connect', constants.errno.ENAMETOOLONG, path);
  const fd = Number(lib().socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd < 0) throw new SysError('socket(AF_UNIX)', errno(), path);
  const addr = Buffer.alloc(110); // struct sockaddr_un { sa_family_t sun_family; char sun_path[108]; }
  addr.writeUInt16LE(AF_UNIX, 0);
  name.copy(addr, 2);
  if (Number(lib().connect(fd, addr, 2 + name.length + 1)) < 0) {
    const e = errno();
    closeSync(fd);
    throw new SysError('connect', e, path);
  }
  return fd;
}

/** A connected pair of close-on-exec SOCK_SEQPACKET sockets: message boundaries kept, one message per fd batch. @internal */
export function seqpacketPair(): [number, number] {
  const sv = [0, 0];
  if (Number(lib().socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) < 0) throw new SysError('socketpair', errno());
  return [sv[0]!, sv[1]!];
}

/** Scratch memory for one message header with room for `n` fds; `fill` lays it out, `use` runs the call. */
function withMessage<T>(n: number, use: (ptr: unknown, view: DataView, base: bigint) => T): T {
  const k = koffi();
  const size = CONTROL + CMSG_HEADER + 4 * n + 8;
  const ptr = k.alloc('uint8_t', size);
  try {
    const view = new DataView(k.view(ptr, size));
    for (let i = 0; i < size; i++) view.setUint8(i, 0);
    const base = k.address(ptr);
    view.setBigUint64(MSG + 16, base + BigInt(IOV), true); // msg_iov
    view.setBigUint64(MSG + 24, 1n, true); // msg_iovlen
    view.setBigUint64(MSG + 32, base + BigInt(CONTROL), true); // msg_control
    view.setBigUint64(MSG + 40, BigInt(CMSG_HEADER + 4 * n + ((4 * n) % 8 ? 4 : 0)), true); // msg_controllen: CMSG_SPACE
    view.setBigUint64(IOV, base + BigInt(DATA), true); // iov_base
    view.setBigUint64(IOV + 8, 1n, true); // iov_len: one byte of data carries the fds
    return use(ptr, view, base);
  } finally {
    k.free(ptr);
  }
}

/**
 * Sends `fds` over a connected UNIX socket as SCM_RIGHTS, in messages of at most
 * {@link MAX_FDS_PER_MESSAGE}. The receiver gets its own copies; the caller may close its own.
 * @internal
 */
export function sendFds(sock: number, fds: readonly number[]): void {
  for (let off = 0; off < fds.length; off += MAX_FDS_PER_MESSAGE) {
    const batch = fds.slice(off, off + MAX_FDS_PER_MESSAGE);
    withMessage(batch.length, (ptr, view) => {
      view.setBigUint64(CONTROL, BigInt(CMSG_HEADER + 4 * batch.length), true); // cmsg_len: CMSG_LEN
      view.setInt32(CONTROL + 8, SOL_SOCKET, true);
      view.setInt32(CONTROL + 12, SCM_RIGHTS, true);
      for (const [i, fd] of batch.entries()) view.setInt32(CONTROL + CMSG_HEADER + 4 * i, fd, true);
      for (;;) {
        if (Number(lib().sendmsg(sock, ptr, MSG_NOSIGNAL)) >= 0) return;
        const e = errno();
        if (e !== EINTR) throw new SysError('sendmsg(SCM_RIGHTS)', e);
      }
    });
  }
}

/**
 * Receives exactly `count` fds sent by {@link sendFds} (blocking), close-on-exec. Throws when
 * the peer closed first or sent fewer.
 * @internal
 */
export function receiveFds(sock: number, count: number): number[] {
  const out: number[] = [];
  while (out.length < count) {
    const want = Math.min(MAX_FDS_PER_MESSAGE, count - out.length);
    const got = withMessage(want, (ptr, view) => {
      let n: number;
      for (;;) {
        n = Number(lib().recvmsg(sock, ptr, MSG_CMSG_CLOEXEC));
        if (n >= 0) break;
        const e = errno();
        if (e !== EINTR) throw new SysError('recvmsg(SCM_RIGHTS)', e);
      }
      const fds: number[] = [];
      const controllen = Number(view.getBigUint64(MSG + 40, true));
      if (controllen >= CMSG_HEADER && view.getInt32(CONTROL + 8, true) === SOL_SOCKET && view.getInt32(CONTROL + 12, true) === SCM_RIGHTS) {
        const len = Number(view.getBigUint64(CONTROL, true));
        for (let i = 0; i < (len - CMSG_HEADER) / 4; i++) fds.push(view.getInt32(CONTROL + CMSG_HEADER + 4 * i, true));
      }
      if (view.getInt32(MSG + 48, true) & MSG_CTRUNC) throw new SysError('recvmsg(SCM_RIGHTS)', constants.errno.EMSGSIZE, undefined, 'fds were cut off');
      if (n === 0 && fds.length === 0) throw new SysError('recvmsg(SCM_RIGHTS)', constants.errno.EPIPE, undefined, 'the sender went away');
      return fds;
    });
    if (got.length === 0) throw new SysError('recvmsg(SCM_RIGHTS)', constants.errno.EPROTO, undefined, 'a message without fds');
    out.push(...got);
  }
  return out;
}
