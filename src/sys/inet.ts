/**
 * IPv4 sockets made synchronously through koffi, for the two jobs Node's own sockets cannot
 * do in another network namespace: Node binds and connects after a `process.nextTick` (its
 * address lookup), by which time the thread has left the namespace. A socket belongs to the
 * namespace of the thread that calls socket(2), so callers run these inside
 * `NetworkNamespace.runSync` and may use the fd from anywhere afterwards.
 * @internal
 */
import { koffi } from './koffi.js';
import { SysError } from './sys-error.js';
import { close } from './libc.js';

type Fn = (...args: unknown[]) => unknown;
interface BoundInet {
  socket: Fn;
  bind: Fn;
  listen: Fn;
  getsockname: Fn;
}
let bound: BoundInet | undefined;

function lib(): BoundInet {
  if (bound) return bound;
  const c = koffi().load('libc.so.6');
  bound = {
    socket: c.func('int socket(int domain, int type, int protocol)'),
    bind: c.func('int bind(int fd, const uint8_t *addr, uint32_t len)'),
    listen: c.func('int listen(int fd, int backlog)'),
    getsockname: c.func('int getsockname(int fd, _Inout_ uint8_t *addr, _Inout_ uint32_t *len)'),
  };
  return bound;
}

const AF_INET = 2;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;

function errno(): number {
  return koffi().errno();
}

function sockaddrIn(address: string, port: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(AF_INET, 0);
  b.writeUInt16BE(port, 2);
  for (const [i, o] of address.split('.').entries()) b.writeUInt8(Number(o), 4 + i);
  return b;
}

/** A new IPv4 TCP (`tcp`) or UDP socket in the calling thread's network namespace, close-on-exec. */
export function inetSocket(protocol: 'tcp' | 'udp'): number {
  const fd = Number(lib().socket(AF_INET, (protocol === 'tcp' ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0));
  if (fd < 0) throw new SysError(`socket(AF_INET, ${protocol})`, errno());
  return fd;
}

/**
 * Binds a socket of `protocol` to `address:0` (a TCP one also listens), so the kernel picks
 * a free port and nothing else can take it while the fd is open. Returns the fd and the port.
 */
export function bindEphemeral(protocol: 'tcp' | 'udp', address: string): { fd: number; port: number } {
  const fd = inetSocket(protocol);
  try {
    if (Number(lib().bind(fd, sockaddrIn(address, 0), 16)) < 0) throw new SysError(`bind(${address}:0/${protocol})`, errno());
    // Listening (with the smallest backlog) makes the port show as taken the way docker-proxy's do.
    if (protocol === 'tcp' && Number(lib().listen(fd, 1)) < 0) throw new SysError(`listen(${address}/${protocol})`, errno());
    const out = Buffer.alloc(16);
    const len = [16];
    if (Number(lib().getsockname(fd, out, len)) < 0) throw new SysError('getsockname', errno());
    return { fd, port: out.readUInt16BE(2) };
  } catch (e) {
    close(fd);
    throw e;
  }
}

/** Closes a socket made here. */
export function closeSocket(fd: number): void {
  close(fd);
}
