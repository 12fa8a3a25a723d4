/**
 * The open prewarmed pools of this process, for `Container.run`/`Container.start` to take a
 * prepared container from when their options match a pool's (see ./prewarm.ts). Kept apart
 * so that a process that never prewarms loads nothing of the pools.
 * @internal
 */
import type { PreparedNamespaces } from '../namespaces/spawn-request.js';
import type { PreparedContainer } from './start.js';
import type { RunOptions } from './options.js';

/** A container prepared ahead, with its namespaces. @internal */
export interface Prewarmed {
  readonly container: PreparedContainer;
  readonly namespaces: PreparedNamespaces;
  /** Told the start once it is under way: a refill waits for it (it would delay it on the threads). */
  readonly launched?: ((start: Promise<unknown>) => void) | undefined;
}

/** What the registry needs of a pool. @internal */
export interface PoolEntry {
  /** The pool's matching key (see {@link matchKey}). */
  readonly key: string;
  /** A ready container, now owned by the caller, or undefined. */
  take(): Prewarmed | undefined;
}

const pools = new Set<PoolEntry>();

/** The options a run may change from the pool's without losing the match. */
const PER_RUN = new Set([
  'command',
  'env',
  'cwd',
  'input',
  'stdio',
  'timeout',
  'maxBuffer',
  'signal',
  'onLog',
  'onNamespaces',
  'waitFor',
  'startupTimeout',
  'log',
]);

function plain(v: unknown): boolean {
  if (v === null || ['string', 'number', 'boolean', 'undefined'].includes(typeof v)) return true;
  if (Array.isArray(v)) return v.every(plain);
  if (typeof v !== 'object' || Object.getPrototypeOf(v) !== Object.prototype) return false;
  return Object.values(v as object).every(plain);
}

function sorted(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sorted);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v)
        .filter(([, x]) => x !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, x]) => [k, sorted(x)]),
    );
  }
  return v;
}

/**
 * The matching key of `options`: every option but the per-run ones (command, env, cwd,
 * streams, input, timeouts, signal, callbacks, log rotation), as sorted JSON; undefined when
 * one of them is not plain data (a function, a class instance), which never matches.
 * @internal
 */
export function matchKey(options: RunOptions): string | undefined {
  const rest = Object.fromEntries(Object.entries(options).filter(([k]) => !PER_RUN.has(k)));
  if (!plain(rest)) return undefined;
  return JSON.stringify(sorted(rest));
}

/** Adds or removes an open pool. @internal */
export function registerPool(pool: PoolEntry, open: boolean): void {
  if (open) pools.add(pool);
  else pools.delete(pool);
}

/** A ready prepared container of an open pool whose options match `options`, if any. @internal */
export function takePrewarmed(options: RunOptions): Prewarmed | undefined {
  if (pools.size === 0 || options.detach) return undefined;
  const key = matchKey(options);
  if (key === undefined) return undefined;
  for (const pool of pools) {
    if (pool.key !== key) continue;
    const taken = pool.take();
    if (taken) return taken;
  }
  return undefined;
}
