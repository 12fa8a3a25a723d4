/**
 * Docker-style health checks, run by the container's owner (this process, or the owner
 * helper for a detached container) as `exec`s into the container. The status lands in the
 * container's record, where `inspect()`, `ctrkit ps` and `Wait.forHealthCheck()` read it.
 * @internal
 */
import { InvalidOptionError } from '../errors.js';
import { logger } from '../log.js';
import type { HealthcheckOptions } from './options.js';
import type { RunningContainer } from './running.js';

const log = logger('ctrkit:health');
const KEEP = 5;

/** One health check run, as `inspect()` shows it. */
export interface HealthLogEntry {
  /** When it started (ISO). */
  readonly start: string;
  /** When it ended (ISO). */
  readonly end: string;
  /** Its exit code; null when it was killed (a timeout). */
  readonly exitCode: number | null;
  /** The start of its output. */
  readonly output: string;
}

/** A container's health, as `inspect()` shows it. */
export interface HealthState {
  /** `starting` until the first success (or enough failures), then `healthy` or `unhealthy`. */
  readonly status: 'starting' | 'healthy' | 'unhealthy';
  /** Failures in a row. */
  readonly failingStreak: number;
  /** The last few runs, oldest first. */
  readonly log: readonly HealthLogEntry[];
}

/** The command of a health check, or undefined for `['NONE']`. @internal */
export function healthCommand(test: HealthcheckOptions['test']): readonly string[] | undefined {
  if (typeof test === 'string') return ['sh', '-c', test];
  const [kind, ...rest] = test;
  if (kind === 'NONE') return undefined;
  if (kind === 'CMD-SHELL') return ['sh', '-c', rest.join(' ')];
  const cmd = kind === 'CMD' ? rest : test;
  if (cmd.length === 0) throw new InvalidOptionError('healthcheck.test', 'names no command');
  return cmd;
}

/** Checks the numbers of a health check. @internal */
export function validateHealthcheck(h: HealthcheckOptions): void {
  healthCommand(h.test);
  for (const k of ['interval', 'timeout', 'retries', 'startPeriod'] as const) {
    const v = h[k];
    if (v !== undefined && !(Number.isFinite(v) && v >= (k === 'startPeriod' ? 0 : 1)))
      throw new InvalidOptionError(`healthcheck.${k}`, `must be a positive number, got ${String(v)}`);
  }
}

/** Runs the checks until `stop()`; calls `report` with every new state. @internal */
export function startHealthMonitor(c: RunningContainer, h: HealthcheckOptions, report: (s: HealthState) => void): { stop(): void } {
  const command = healthCommand(h.test);
  if (!command) return { stop: () => undefined };
  const interval = h.interval ?? 30_000;
  const timeout = h.timeout ?? 30_000;
  const retries = h.retries ?? 3;
  const graceUntil = Date.now() + (h.startPeriod ?? 0);
  let state: HealthState = { status: 'starting', failingStreak: 0, log: [] };
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const ac = new AbortController();
  report(state);
  const once = async () => {
    const start = new Date().toISOString();
    const r = await c
      .exec({ command, timeout, signal: ac.signal })
      .catch((e: unknown) => ({ exitCode: null, stdout: '', stderr: (e as Error).message, timedOut: false }));
    if (stopped) return;
    const ok = r.exitCode === 0;
    const entry: HealthLogEntry = { start, end: new Date().toISOString(), exitCode: r.exitCode, output: `${r.stdout}${r.stderr}`.slice(0, 4096) };
    const streak = ok ? 0 : Date.now() < graceUntil ? state.failingStreak : state.failingStreak + 1;
    const status = ok ? 'healthy' : streak >= retries ? 'unhealthy' : state.status;
    state = { status, failingStreak: streak, log: [...state.log, entry].slice(-KEEP) };
    if (status !== 'healthy') log('%s health check: exit %s (%d in a row)', c.id.slice(0, 12), String(r.exitCode), streak);
    report(state);
  };
  const loop = async () => {
    await once().catch((e: unknown) => log('health check of %s: %s', c.id, (e as Error).message));
    if (!stopped) timer = setTimeout(() => void loop(), interval).unref(); // checks alone must not keep the owner alive
  };
  void loop();
  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
      ac.abort();
    },
  };
}
