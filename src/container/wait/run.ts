/**
 * Runs a container's wait strategy against its exit, the startup timeout and the caller's
 * signal. A container that is not ready is removed before the error is thrown, so a failed
 * start leaves nothing behind.
 * @internal
 */
import { AbortError } from '../../errors.js';
import { logger } from '../../log.js';
import type { ContainerExit } from '../local.js';
import type { RunningContainer } from '../running.js';
import { StartupError } from './errors.js';
import type { WaitStrategy } from './strategy.js';

const log = logger('ctrkit:wait');
const TAIL = 20;

type Outcome = { kind: 'ready' } | { kind: 'exited'; exit: ContainerExit } | { kind: 'timeout' } | { kind: 'aborted' } | { kind: 'failed'; error: unknown };

/**
 * Resolves with the exit once `c` ended, or undefined once `signal` aborts. A handle of this
 * process's own container learns the exit from its child; any other is polled, and the
 * polling stops with the wait (a handle's own `wait()` would poll on, keeping the caller alive).
 */
async function exitOf(c: RunningContainer, signal: AbortSignal): Promise<ContainerExit | undefined> {
  if (c.process)
    return Promise.race([c.wait(), new Promise<undefined>((resolve) => signal.addEventListener('abort', () => resolve(undefined), { once: true }))]);
  const { pollUntil } = await import('./poll.js');
  const ended = async () => {
    const s = await c.status();
    return s === 'exited' || s === 'dead';
  };
  try {
    await pollUntil(ended, 50, signal);
  } catch {
    return undefined; // aborted: the wait is over
  }
  return c.wait();
}

/** Waits until `strategy` says `c` is ready; otherwise removes `c` and throws. @internal */
export async function waitUntilReady(c: RunningContainer, strategy: WaitStrategy, timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
  const inner = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const settled: Promise<Outcome>[] = [
    strategy.waitUntilReady(c, inner.signal).then(
      (): Outcome => ({ kind: 'ready' }),
      (error: unknown): Outcome => ({ kind: 'failed', error }),
    ),
    exitOf(c, inner.signal).then((exit): Outcome => (exit ? { kind: 'exited', exit } : { kind: 'ready' })),
    new Promise<Outcome>((resolve) => {
      timer = setTimeout(() => resolve({ kind: 'timeout' }), timeoutMs);
    }),
  ];
  let onAbort: (() => void) | undefined;
  if (signal) {
    settled.push(
      new Promise<Outcome>((resolve) => {
        onAbort = () => resolve({ kind: 'aborted' });
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      }),
    );
  }
  const started = performance.now();
  const outcome = await Promise.race(settled);
  clearTimeout(timer);
  if (onAbort) signal?.removeEventListener('abort', onAbort);
  inner.abort(new Error(outcome.kind));
  if (outcome.kind === 'ready') {
    log('%s ready after %d ms (%s)', c.id.slice(0, 12), Math.round(performance.now() - started), strategy.description);
    return;
  }
  // An exit is only final once the log is complete: read it after the container ended.
  if (outcome.kind !== 'exited') await c.kill('SIGKILL').catch(() => false);
  const exit = outcome.kind === 'exited' ? outcome.exit : await c.wait().catch(() => undefined);
  const logs = await c.logs({ tail: TAIL }).catch(() => '');
  await c.remove({ force: true }).catch((e: unknown) => log('removing %s after a failed start: %s', c.id, (e as Error).message));
  if (outcome.kind === 'aborted') throw new AbortError(signal?.reason);
  const details = { containerId: c.id, waitedFor: strategy.description, logs };
  if (outcome.kind === 'exited') {
    const how = exit?.signal ? `was killed by ${exit.signal}` : `exited with code ${String(exit?.exitCode)}`;
    throw new StartupError('ERR_STARTUP_EXITED', `container ${c.id.slice(0, 12)} ${how} before it was ready (waiting for ${strategy.description})`, {
      ...details,
      exit,
    });
  }
  if (outcome.kind === 'timeout') {
    throw new StartupError(
      'ERR_STARTUP_TIMEOUT',
      `container ${c.id.slice(0, 12)} was not ready after ${timeoutMs} ms (waiting for ${strategy.description})`,
      details,
    );
  }
  const cause = outcome.error;
  throw new StartupError('ERR_STARTUP_FAILED', `container ${c.id.slice(0, 12)} will not get ready: ${(cause as Error)?.message ?? String(cause)}`, {
    ...details,
    cause,
  });
}
