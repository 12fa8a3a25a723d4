import type { RunningContainer } from '../running.js';

/**
 * How {@link Container.start} knows a container is ready: `waitUntilReady` resolves when it
 * is, and rejects when it never will be (a failed health check). It is aborted (`signal`)
 * when the container exits or the startup timeout passes. Build one with {@link Wait}, or
 * implement this interface for a check of your own.
 */
export interface WaitStrategy {
  /** What it waits for, in words (for errors and logs), e.g. `log message /ready/ ×1`. */
  readonly description: string;
  /** Resolves once `container` is ready; must give up when `signal` aborts. */
  waitUntilReady(container: RunningContainer, signal: AbortSignal): Promise<void>;
}
