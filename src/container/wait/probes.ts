/**
 * Looking at a container from inside its network namespace, from this process: whether a
 * port listens there (its /proc/PID/net tables), and an HTTP request over a socket created
 * inside it. The caller's own namespace may not reach the container at all (its bridge may
 * live in another namespace), so nothing here goes through the host or a published port.
 * @internal
 */
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { Socket } from 'node:net';

/** The TCP ports with a listening socket in the network namespace of `pid`. @internal */
export async function listeningTcpPorts(pid: number): Promise<Set<number>> {
  const out = new Set<number>();
  for (const file of ['tcp', 'tcp6']) {
    const text = await readFile(`/proc/${pid}/net/${file}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 3 && f[3] === '0A') out.add(parseInt(f[1]!.split(':')[1]!, 16)); // 0A: LISTEN
    }
  }
  return out;
}

/** What {@link httpInside} got. @internal */
export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

/**
 * One HTTP request to `address:port` made from inside the network namespace of `pid`: the
 * socket is created there (synchronously, on a thread inside it) and Node drives it from here.
 * @internal
 */
export async function httpInside(
  pid: number,
  address: string,
  port: number,
  path: string,
  o: { method: string; headers: Record<string, string>; timeout: number; signal: AbortSignal },
): Promise<HttpAnswer> {
  const { NetworkNamespace } = await import('../../network/netns.js');
  const { inetSocket } = await import('../../sys/inet.js');
  const fd = NetworkNamespace.open(pid).runSync(() => inetSocket('tcp'));
  const socket = new Socket({ fd, readable: true, writable: true });
  return new Promise<HttpAnswer>((resolve, reject) => {
    const req = request(
      {
        host: address,
        port,
        path,
        method: o.method,
        headers: o.headers,
        timeout: o.timeout,
        signal: o.signal,
        createConnection: () => socket.connect(port, address),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${o.timeout} ms`)));
    req.on('error', (e) => {
      socket.destroy();
      reject(e);
    });
    req.end();
  });
}
