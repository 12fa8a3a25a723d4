/**
 * The two threads of one start, talking to each other without the main thread: a few cells
 * of shared memory they wait on with Atomics. The spawner says when it has entered the
 * container's cgroups and made its PID and cgroup namespaces (the builder mounts cgroupfs in
 * that cgroup namespace); the builder says when it has made the container's namespaces (the
 * spawner enters them while the root is being built) and when the root is built, handing
 * over the command's path found in it (the spawner posix_spawns it at once). A start whose
 * caller still prepares (its files, its cgroup: see SpawnRequest.gate) has one more cell,
 * set by the main thread: the spawner enters nothing and the builder binds nothing before. Each message through the
 * main thread would cost a wake-up of its event loop and a structured clone on the way.
 * @internal
 */

/** How long any barrier of a start may take before it is given up (and its threads replaced). */
export const BARRIER_TIMEOUT_MS = 30_000;

const ENTERED = 0;
const NAMESPACES = 1;
const BUILT = 2;
const PATH_LENGTH = 3;
const READY = 4;
const CELLS = 5;
const PATH_BYTES = 4096;

/** A cell's values: not yet, done, or failed (the other thread gives up too). */
const DONE = 1;
const FAILED = 2;

/** The shared memory of one start: made by the main thread, sent to both threads. */
export type Handoff = SharedArrayBuffer;

export function newHandoff(): Handoff {
  return new SharedArrayBuffer(CELLS * 4 + PATH_BYTES);
}

const cells = (h: Handoff) => new Int32Array(h, 0, CELLS);

function set(h: Handoff, cell: number, value: number): void {
  Atomics.store(cells(h), cell, value);
  Atomics.notify(cells(h), cell);
}

/** Waits (blocking this thread) until `cell` is set; throws when it failed or `ms` passed. */
function wait(h: Handoff, cell: number, ms: number, what: string): void {
  const c = cells(h);
  const deadline = Date.now() + ms;
  for (;;) {
    const v = Atomics.load(c, cell);
    if (v === DONE) return;
    if (v === FAILED) throw new HandoffError(`${what} failed`);
    const left = deadline - Date.now();
    if (left <= 0) throw new HandoffError(`${what} did not happen within ${ms} ms`);
    Atomics.wait(c, cell, 0, left);
  }
}

/**
 * The other thread failed (or never got there): its own error is the one to report. Named so
 * that the main thread can tell it from a failure of the thread's own.
 */
export class HandoffError extends Error {
  override readonly name = 'HandoffError';
}

/** Main thread: what the start waits for (see SpawnRequest.gate) is there, or (`ok` false) never will be. */
export function ready(h: Handoff, ok: boolean): void {
  set(h, READY, ok ? DONE : FAILED);
}

/** Either thread: waits for {@link ready} (a start with a gate). */
export function waitReady(h: Handoff, ms: number): void {
  wait(h, READY, ms, "the caller's preparations");
}

/** Spawner: the cgroups are joined and the namespaces for children made (or not: `ok` false). */
export function entered(h: Handoff, ok: boolean): void {
  set(h, ENTERED, ok ? DONE : FAILED);
}

/** Builder: waits for {@link entered}. */
export function waitEntered(h: Handoff, ms: number): void {
  wait(h, ENTERED, ms, 'the spawner thread entering the container');
}

/** Builder: the container's namespaces exist (the spawner enters them while the root is built). */
export function namespacesMade(h: Handoff): void {
  set(h, NAMESPACES, DONE);
}

/** Spawner: waits for {@link namespacesMade}. */
export function waitNamespaces(h: Handoff, ms: number): void {
  wait(h, NAMESPACES, ms, "the builder thread's namespaces");
}

/** Builder: the root is built and the command is `path` in it; or (`path` undefined) the build failed. */
export function built(h: Handoff, path: string | undefined): void {
  const bytes = path === undefined ? undefined : Buffer.from(path);
  if (bytes === undefined || bytes.length > PATH_BYTES) {
    // Failed, maybe before the namespaces existed: a spawner waiting for those gives up too.
    if (Atomics.compareExchange(cells(h), NAMESPACES, 0, FAILED) === 0) Atomics.notify(cells(h), NAMESPACES);
    set(h, BUILT, FAILED);
    return;
  }
  new Uint8Array(h, CELLS * 4, PATH_BYTES).set(bytes);
  Atomics.store(cells(h), PATH_LENGTH, bytes.length);
  set(h, BUILT, DONE);
}

/** Spawner: waits for {@link built}; the command's path. */
export function waitBuilt(h: Handoff, ms: number): string {
  wait(h, BUILT, ms, "the builder thread's build");
  const length = Atomics.load(cells(h), PATH_LENGTH);
  return Buffer.from(new Uint8Array(h, CELLS * 4, length)).toString();
}
