import { InvalidOptionError } from '../../errors.js';
import type { RunningContainer } from '../running.js';
import { pollUntil } from './poll.js';
import type { WaitStrategy } from './strategy.js';

/** Options of {@link Wait.forHttp}. */
export interface HttpWaitOptions {
  /** The status that means ready: a number, a list, or a predicate. @defaultValue 200 */
  readonly status?: number | readonly number[] | ((status: number) => boolean);
  /** Text the body must contain, or a pattern it must match. */
  readonly body?: string | RegExp;
  /** @defaultValue `'GET'` */
  readonly method?: string;
  /** Request headers. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Milliseconds one request may take. @defaultValue 2000 */
  readonly requestTimeout?: number;
  /** Milliseconds between attempts. @defaultValue 100 */
  readonly interval?: number;
}

/** Options of {@link Wait.forSuccessfulCommand} and {@link Wait.forListeningPorts}. */
export interface PollOptions {
  /** Milliseconds between attempts. @defaultValue 100 (200 for commands) */
  readonly interval?: number;
}

const INTERVAL = 100;

class LogMessageWait implements WaitStrategy {
  readonly description: string;
  constructor(
    private readonly pattern: RegExp | string,
    private readonly times: number,
  ) {
    this.description = `log message ${String(pattern)}${times > 1 ? ` ×${times}` : ''}`;
  }

  async waitUntilReady(c: RunningContainer, signal: AbortSignal): Promise<void> {
    let seen = 0;
    const matches = (text: string) => (typeof this.pattern === 'string' ? text.includes(this.pattern) : this.pattern.test(text));
    // From the log's first line: what the container printed before we looked counts too.
    for await (const line of c.followLogs({ signal })) {
      if (matches(line.text) && ++seen >= this.times) return;
    }
    signal.throwIfAborted();
    throw new Error(`the log ended after ${seen} of ${this.times} matching lines`);
  }
}

class ListeningPortsWait implements WaitStrategy {
  readonly description: string;
  constructor(
    private readonly ports: readonly number[] | undefined,
    private readonly interval: number,
  ) {
    this.description = ports ? `listening ports ${ports.join(', ')}` : 'listening ports (the published ones)';
  }

  async waitUntilReady(c: RunningContainer, signal: AbortSignal): Promise<void> {
    const ports = this.ports ?? [...new Set((await c.inspect()).ports.filter((p) => p.protocol === 'tcp').map((p) => p.containerPort))];
    if (ports.length === 0) return;
    const { listeningTcpPorts } = await import('./probes.js');
    await pollUntil(
      async () => {
        const open = await listeningTcpPorts(c.pid);
        return ports.every((p) => open.has(p));
      },
      this.interval,
      signal,
    );
  }
}

class HttpWait implements WaitStrategy {
  readonly description: string;
  constructor(
    private readonly path: string,
    private readonly port: number,
    private readonly o: HttpWaitOptions,
  ) {
    this.description = `HTTP ${o.method ?? 'GET'} ${path} on port ${port}${o.status !== undefined ? ` answering ${typeof o.status === 'function' ? 'an accepted status' : String(o.status)}` : ''}${o.body !== undefined ? ` with ${String(o.body)}` : ''}`;
  }

  private statusOk(s: number): boolean {
    const want = this.o.status ?? 200;
    return typeof want === 'function' ? want(s) : typeof want === 'number' ? s === want : want.includes(s);
  }

  async waitUntilReady(c: RunningContainer, signal: AbortSignal): Promise<void> {
    const { httpInside } = await import('./probes.js');
    const address = c.address ?? '127.0.0.1';
    const timeout = this.o.requestTimeout ?? 2000;
    await pollUntil(
      async () => {
        try {
          const a = await httpInside(c.pid, address, this.port, this.path, { method: this.o.method ?? 'GET', headers: { ...this.o.headers }, timeout, signal });
          const body = this.o.body;
          return this.statusOk(a.status) && (body === undefined || (typeof body === 'string' ? a.body.includes(body) : body.test(a.body)));
        } catch {
          return false; // not listening yet, reset, timed out: try again
        }
      },
      this.o.interval ?? INTERVAL,
      signal,
    );
  }
}

class HealthCheckWait implements WaitStrategy {
  readonly description = 'a healthy health check';

  async waitUntilReady(c: RunningContainer, signal: AbortSignal): Promise<void> {
    await pollUntil(
      async () => {
        const info = await c.inspect();
        if (!info.health)
          throw new InvalidOptionError('waitFor', 'Wait.forHealthCheck() needs a health check: the `healthcheck` option or an image HEALTHCHECK');
        if (info.health.status === 'unhealthy') {
          const last = info.health.log.at(-1);
          throw new Error(`the container became unhealthy${last ? ` (last check exited ${String(last.exitCode)}: ${last.output.trim()})` : ''}`);
        }
        return info.health.status === 'healthy';
      },
      INTERVAL,
      signal,
    );
  }
}

class CommandWait implements WaitStrategy {
  readonly description: string;
  private readonly command: readonly string[];
  constructor(
    command: string | readonly string[],
    private readonly interval: number,
  ) {
    this.command = typeof command === 'string' ? ['sh', '-c', command] : command;
    this.description = `command ${JSON.stringify(this.command)} to succeed`;
  }

  async waitUntilReady(c: RunningContainer, signal: AbortSignal): Promise<void> {
    await pollUntil(async () => (await c.exec({ command: this.command, signal })).exitCode === 0, this.interval, signal);
  }
}

class AllWait implements WaitStrategy {
  readonly description: string;
  constructor(private readonly strategies: readonly WaitStrategy[]) {
    this.description = strategies.map((s) => s.description).join(' and ');
  }

  async waitUntilReady(c: RunningContainer, signal: AbortSignal): Promise<void> {
    // One failing strategy ends the others' waits too.
    const inner = new AbortController();
    const stop = () => inner.abort(signal.reason);
    signal.addEventListener('abort', stop, { once: true });
    try {
      await Promise.all(
        this.strategies.map((s) =>
          s.waitUntilReady(c, inner.signal).catch((e: unknown) => {
            inner.abort(e);
            throw e;
          }),
        ),
      );
    } finally {
      signal.removeEventListener('abort', stop);
    }
  }
}

class StartedWait implements WaitStrategy {
  readonly description = 'the command to start';
  async waitUntilReady(): Promise<void> {}
}

function positive(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 1) throw new InvalidOptionError(what, `must be a positive integer, got ${String(n)}`);
  return n;
}

/**
 * Readiness checks for `Container.start({ waitFor })`, named as testcontainers names them.
 * Each gives a {@link WaitStrategy}; combine them with {@link Wait.forAll}.
 *
 * @example
 * ```ts
 * import { Container, Wait } from 'ctrkit';
 * const web = await Container.start({
 *   command: ['sh', '-c', 'sleep 1; echo ready; httpd -f -p 80'], network: 'bridge', ports: ['80'],
 *   waitFor: Wait.forAll([Wait.forLogMessage(/ready/), Wait.forHttp('/', 80)]), startupTimeout: 10_000,
 * });
 * ```
 */
export const Wait = {
  /** Ready once the log has `times` lines that match `pattern` (a RegExp, or text a line contains). */
  forLogMessage(pattern: RegExp | string, times = 1): WaitStrategy {
    return new LogMessageWait(pattern, positive(times, 'times'));
  },
  /**
   * Ready once each port listens inside the container's network namespace (TCP). Without
   * ports: the container ports it publishes. The default when ports are published.
   */
  forListeningPorts(ports?: readonly number[], options: PollOptions = {}): WaitStrategy {
    for (const p of ports ?? []) positive(p, 'ports');
    return new ListeningPortsWait(ports, options.interval ?? INTERVAL);
  },
  /**
   * Ready once an HTTP request to container `port` answers with `status` (200 unless told)
   * and, if given, a `body` that contains the text or matches the pattern. The request is
   * made inside the container's network namespace, to its address there.
   */
  forHttp(path: string, port: number, options: HttpWaitOptions = {}): WaitStrategy {
    if (!path.startsWith('/')) throw new InvalidOptionError('path', `must start with "/", got "${path}"`);
    return new HttpWait(path, positive(port, 'port'), options);
  },
  /** Ready once the health check (the `healthcheck` option, or the image's HEALTHCHECK) reports `healthy`; fails on `unhealthy`. */
  forHealthCheck(): WaitStrategy {
    return new HealthCheckWait();
  },
  /** Ready once `command` exits 0 inside the container (a string runs with `sh -c`). */
  forSuccessfulCommand(command: string | readonly string[], options: PollOptions = {}): WaitStrategy {
    return new CommandWait(command, options.interval ?? 200);
  },
  /** Ready once every strategy is; they wait in parallel, and one that fails fails them all. */
  forAll(strategies: readonly WaitStrategy[]): WaitStrategy {
    return new AllWait(strategies);
  },
  /** Ready as soon as the command runs (what `start()` does without ports): turns the default port wait off. */
  forStarted(): WaitStrategy {
    return new StartedWait();
  },
} as const;
