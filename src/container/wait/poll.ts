import { AbortError } from '../../errors.js';

/** Calls `check` every `interval` ms until it returns true; rejects when `signal` aborts. @internal */
export async function pollUntil(check: () => Promise<boolean>, interval: number, signal: AbortSignal): Promise<void> {
  for (;;) {
    if (signal.aborted) throw new AbortError(signal.reason);
    if (await check()) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, interval);
      function done(): void {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
