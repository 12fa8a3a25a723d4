/**
 * One HTTP exchange with a registry, the way the distribution spec wants it: plain HTTP only
 * where allowed, redirects followed by hand so that `Authorization` never travels to another
 * host (a blob redirect to a CDN must not carry the registry's credentials), and an idle
 * timeout that fires when a body stops flowing.
 * @internal
 */
import fetch, { type Response } from 'node-fetch';
import { AbortError } from '../../errors.js';
import { logger } from '../../log.js';
import { RegistryError } from '../errors.js';

const log = logger('ctrkit:oci');
const MAX_REDIRECTS = 10;

/** A request's headers and cancellation. */
export interface ExchangeOptions {
  readonly method?: 'GET' | 'HEAD';
  readonly headers?: Record<string, string>;
  readonly signal?: AbortSignal | undefined;
  /** Milliseconds without a byte (headers or body) before giving up. */
  readonly idleTimeout: number;
}

/** A response whose body keeps the idle watchdog running until it is consumed or `done()` is called. */
export interface Exchange {
  readonly response: Response;
  /** The URL that finally answered (after redirects). */
  readonly url: string;
  /** Re-arms the idle watchdog; the body reader calls it per chunk. */
  readonly touch: () => void;
  /** Stops the watchdog and releases the request. */
  readonly done: () => void;
  /** True when the watchdog fired. */
  readonly timedOut: () => boolean;
}

/** True for the loopback hosts, where plain HTTP cannot be sniffed by anyone else. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\./.test(h);
}

/** Sends one request, following redirects; never throws for an HTTP status. */
export async function exchange(url: string, options: ExchangeOptions): Promise<Exchange> {
  const controller = new AbortController();
  let fired = false;
  let timer: NodeJS.Timeout | undefined;
  const touch = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      fired = true;
      controller.abort();
    }, options.idleTimeout);
  };
  const onAbort = (): void => controller.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const done = (): void => {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  };
  let current = url;
  const origin = new URL(url).host;
  try {
    for (let hop = 0; ; hop++) {
      const headers = { ...options.headers };
      if (new URL(current).host !== origin) delete headers.Authorization;
      touch();
      const response = await fetch(current, { method: options.method ?? 'GET', headers, redirect: 'manual', signal: controller.signal, compress: false });
      if (response.status >= 300 && response.status < 400 && response.headers.has('location')) {
        if (hop >= MAX_REDIRECTS) throw new RegistryError('ERR_REGISTRY_PROTOCOL', `more than ${MAX_REDIRECTS} redirects from ${url}`, { url });
        response.body?.resume();
        const next = new URL(response.headers.get('location')!, current);
        if (next.protocol !== 'https:' && next.protocol !== 'http:')
          throw new RegistryError('ERR_REGISTRY_PROTOCOL', `redirect to ${next.protocol} URL`, { url });
        if (next.protocol === 'http:' && new URL(current).protocol === 'https:' && !isLoopback(next.host)) {
          throw new RegistryError('ERR_REGISTRY_INSECURE', `redirect from HTTPS to plain HTTP (${next.host}) refused`, { url });
        }
        log('redirect %s -> %s', current, next.href);
        current = next.href;
        continue;
      }
      return { response, url: current, touch, done, timedOut: () => fired };
    }
  } catch (e) {
    done();
    if (options.signal?.aborted) throw new AbortError(options.signal.reason);
    if (fired) throw new RegistryError('ERR_REGISTRY_TIMEOUT', `no answer from ${current} within ${options.idleTimeout} ms`, { url: current, cause: e });
    if (e instanceof RegistryError) throw e;
    throw new RegistryError('ERR_REGISTRY_UNREACHABLE', `cannot reach ${current}: ${(e as Error).message}`, { url: current, cause: e });
  }
}
