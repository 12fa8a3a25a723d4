/**
 * `startMonitor`: a small cAdvisor for the containers of one state root — Prometheus text at
 * `/metrics`, JSON at `/api/containers`, a live page at `/`. Every request samples afresh
 * (no background polling): an idle monitor costs nothing.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AbortError } from '../errors.js';
import { logger } from '../log.js';
import { MonitorError } from './errors.js';
import { monitorPage } from './page.js';
import { exposition } from './prometheus.js';
import { sampleContainers } from './sample.js';

const log = logger('ctrkit:monitor');

/** Options of {@link startMonitor}. */
export interface MonitorOptions {
  /** TCP port; `0` picks a free one. @defaultValue 8080, like cAdvisor */
  readonly port?: number;
  /** Address to listen on. @defaultValue `'127.0.0.1'`: only this machine can read the metrics */
  readonly host?: string;
  /** The state root whose running containers are shown. @defaultValue ctrkit's default state root */
  readonly stateRoot?: string;
  /** Stops the server when aborted (like {@link Monitor.close}). */
  readonly signal?: AbortSignal;
}

/** A running monitor. */
export interface Monitor extends AsyncDisposable {
  /** Its base URL, e.g. `http://127.0.0.1:8080/`. */
  readonly url: string;
  /** The port it listens on (the chosen one, with `port: 0`). */
  readonly port: number;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

async function respond(req: IncomingMessage, res: ServerResponse, stateRoot: string | undefined): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://monitor').pathname;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  switch (path) {
    case '/':
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(monitorPage());
      return;
    case '/metrics': {
      const m = await exposition(await sampleContainers({ stateRoot }));
      res.writeHead(200, { 'content-type': m.contentType }).end(m.text);
      return;
    }
    case '/api/containers': {
      const containers = await sampleContainers({ stateRoot });
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify({ timestampMs: Date.now(), containers }));
      return;
    }
    case '/healthz':
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    default:
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  }
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(
        new MonitorError(
          'ERR_MONITOR_LISTEN',
          `cannot listen on ${host}:${port}: ${e.code ?? e.message}${e.code === 'EADDRINUSE' ? ' (the port is taken: choose another with --port)' : ''}`,
          { cause: e },
        ),
      );
    });
    server.listen(port, host, () => resolve(server.address() as AddressInfo));
  });
}

/**
 * Serves the running containers' metrics over HTTP, as cAdvisor does for Docker:
 *
 * - `/metrics`: Prometheus text format with cAdvisor's metric names
 *   (`container_cpu_usage_seconds_total`, `container_memory_working_set_bytes`, …) and
 *   labels `id` (the cgroup path), `name`, `image`;
 * - `/api/containers`: the same samples as JSON ({@link ContainerSample});
 * - `/`: a page with live CPU, memory, task and IO charts.
 *
 * Containers started without resource limits have no cgroup, so only their start time is
 * exported.
 *
 * @example
 * ```ts
 * import { startMonitor } from 'ctrkit/monitor';
 * await using m = await startMonitor({ port: 8080 });
 * console.log(`open ${m.url}`);
 * ```
 */
export async function startMonitor(options: MonitorOptions = {}): Promise<Monitor> {
  if (options.signal?.aborted) throw new AbortError(options.signal.reason);
  const host = options.host ?? '127.0.0.1';
  const server = createServer((req, res) => {
    respond(req, res, options.stateRoot).catch((e: unknown) => {
      log('%s %s failed: %s', req.method, req.url, (e as Error).message);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`${(e as Error).message}\n`);
    });
  });
  const address = await listen(server, options.port ?? 8080, host);
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= new Promise<void>((resolve) => {
      options.signal?.removeEventListener('abort', close);
      server.close(() => resolve());
      server.closeAllConnections(); // a browser's keep-alive connection would hold close() open
    });
    return closed;
  };
  options.signal?.addEventListener('abort', close, { once: true });
  const shown = host.includes(':') ? `[${host}]` : host;
  const url = `http://${shown}:${address.port}/`;
  log('monitor for %s at %s', options.stateRoot ?? 'the default state root', url);
  return { url, port: address.port, close, [Symbol.asyncDispose]: close };
}
