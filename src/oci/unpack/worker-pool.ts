/**
 * Unpacking on every core. Node runs JavaScript and synchronous system calls on one thread,
 * and unpacking a layer is mostly that (the diffID hash, tar parsing, an open/write/close per
 * file): with the main thread also downloading, it was the bottleneck while the other core
 * idled. A large layer is therefore unpacked in a worker thread of a small pool: the main
 * thread copies its bytes into 1 MiB blocks and hands them over (transferred, not copied
 * again), with at most a few blocks in flight per layer so a download never runs far ahead of
 * its unpacking. Small layers, single-core machines and code run from sources (no built
 * worker file) unpack in the calling thread.
 * @internal
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { AbortError } from '../../errors.js';
import { logger } from '../../log.js';
import { LayerWriter, type UnpackOptions, type UnpackResult } from './layer-writer.js';
import { type FromWorker, reviveError, type ToWorker } from './worker-protocol.js';

const log = logger('ctrkit:oci');

/** Layers smaller than this (compressed) unpack in the calling thread: a worker hop costs more than it saves. */
export const WORKER_MIN_BYTES = 2 * 1024 * 1024;
const BLOCK = 1024 * 1024;
/** Bytes handed to a worker and not yet unpacked before `write` makes the caller wait. */
const MAX_IN_FLIGHT = 4 * BLOCK;
/** Idle workers kept for the next layers. */
const MAX_IDLE = 4;
/** Layers unpacked in workers at once; more unpack in the calling thread (one thread per core). */
const MAX_BUSY = Math.max(2, availableParallelism());

/** Where a layer's bytes go: {@link LayerWriter} in this thread, or its twin in a worker. */
export interface LayerSink {
  /** The layer's next bytes (any size). Wait for the promise before writing more. */
  write(chunk: Buffer): Promise<void> | undefined;
  /** The last byte was written: resolves when the layer is unpacked and its diffID checked. */
  end(): Promise<UnpackResult>;
  /** Gives up; resolves once nothing touches the target any more (it stays as it is). */
  destroy(): Promise<void>;
}

const WORKER_FILE = new URL('./unpack-worker.js', import.meta.url);
/** Workers need the built file: run from TypeScript sources (the unit tests), there is none. */
const workersPossible = WORKER_FILE.pathname.endsWith('.js') && !import.meta.url.endsWith('.ts');

class PooledWorker {
  readonly worker: Worker;
  /** The job it runs, which receives its messages. */
  job: RemoteLayerWriter | undefined;
  dead = false;

  constructor() {
    this.worker = new Worker(WORKER_FILE);
    this.worker.on('message', (m: FromWorker) => this.job?.message(m));
    const die = (e: Error): void => {
      this.dead = true;
      const i = idle.indexOf(this);
      if (i >= 0) idle.splice(i, 1);
      this.job?.crashed(e);
    };
    this.worker.on('error', die);
    this.worker.on('exit', (code) => die(new Error(`the unpack worker exited (code ${code})`)));
  }
}

const idle: PooledWorker[] = [];
/** Workers running a job. */
let busy = 0;
let nextId = 0;

function acquire(): PooledWorker {
  const w = idle.pop() ?? new PooledWorker();
  busy++;
  w.worker.ref(); // a job under way keeps the process alive; an idle worker never does
  return w;
}

/** The job of `w` is over (or `w` died under it). */
function release(w: PooledWorker): void {
  busy--;
  w.job = undefined;
  if (w.dead) return;
  if (idle.length < MAX_IDLE) {
    w.worker.unref();
    idle.push(w);
  } else void w.worker.terminate();
}

/** A layer unpacked by a worker thread; the same contract as {@link LayerWriter}. */
class RemoteLayerWriter implements LayerSink {
  private readonly id = ++nextId;
  private block: Buffer | undefined;
  private fill = 0;
  private inFlight = 0;
  private waiter: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  private failure: { error: unknown } | undefined;
  private ending: { resolve: (r: UnpackResult) => void; reject: (e: unknown) => void } | undefined;
  /** Resolves {@link RemoteLayerWriter.destroy}'s promise. */
  private destroyed: (() => void) | undefined;
  private destroying: Promise<void> | undefined;
  private worker: PooledWorker | undefined;

  constructor(target: string, options: UnpackOptions) {
    this.worker = acquire();
    this.worker.job = this;
    const { signal: _signal, ...rest } = options;
    this.post({ op: 'start', id: this.id, target, options: rest });
  }

  private post(m: ToWorker, transfer?: ArrayBuffer[]): void {
    this.worker?.worker.postMessage(m, transfer);
  }

  /** A message of the worker for this job. */
  message(m: FromWorker): void {
    if (m.id !== this.id) return;
    if (m.op === 'ack') {
      this.inFlight -= m.bytes;
      if (this.inFlight <= MAX_IN_FLIGHT / 2 && this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w.resolve();
      }
    } else if (m.op === 'done') {
      this.finish();
      this.ending?.resolve(m.result);
    } else if (m.op === 'destroyed') {
      this.finish();
      this.destroyed?.();
    } else this.failed(reviveError(m.error));
  }

  /** The worker died under this job. */
  crashed(e: Error): void {
    this.finish();
    this.failed(e);
    this.destroyed?.();
  }

  private failed(e: unknown): void {
    this.failure ??= { error: e };
    this.waiter?.reject(e);
    this.waiter = undefined;
    if (this.ending) {
      this.finish();
      this.ending.reject(this.failure.error);
    }
  }

  /** The job is over: the worker goes back to the pool. */
  private finish(): void {
    const w = this.worker;
    this.worker = undefined;
    if (w) release(w);
  }

  private flush(): void {
    if (!this.block || this.fill === 0) return;
    const chunk = this.fill === this.block.length ? this.block : this.block.subarray(0, this.fill);
    this.inFlight += this.fill;
    this.post({ op: 'data', id: this.id, chunk }, [chunk.buffer as ArrayBuffer]);
    this.block = undefined;
    this.fill = 0;
  }

  write(chunk: Buffer): Promise<void> | undefined {
    if (this.failure) throw this.failure.error;
    for (let off = 0; off < chunk.length; ) {
      this.block ??= Buffer.allocUnsafeSlow(BLOCK);
      const n = chunk.copy(this.block, this.fill, off);
      this.fill += n;
      off += n;
      if (this.fill === BLOCK) this.flush();
    }
    if (this.inFlight <= MAX_IN_FLIGHT) return undefined;
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  end(): Promise<UnpackResult> {
    return new Promise((resolve, reject) => {
      this.ending = { resolve, reject };
      if (this.failure) {
        this.finish();
        reject(this.failure.error);
        return;
      }
      this.flush();
      this.post({ op: 'end', id: this.id });
    });
  }

  destroy(): Promise<void> {
    if (!this.worker) return Promise.resolve();
    if (this.destroying) return this.destroying;
    this.failed(new AbortError());
    this.destroying = new Promise<void>((resolve) => {
      this.destroyed = resolve;
    });
    this.post({ op: 'destroy', id: this.id });
    return this.destroying;
  }
}

/**
 * Where to unpack a layer of `size` bytes (compressed; undefined when unknown) into
 * `target`: a worker for a large layer where there are cores to spare, else this thread.
 */
export function layerSink(target: string, options: UnpackOptions, size: number | undefined): LayerSink {
  if (workersPossible && size !== undefined && size >= WORKER_MIN_BYTES && busy < MAX_BUSY && availableParallelism() > 1) {
    try {
      return new RemoteLayerWriter(target, options);
    } catch (e) {
      log('unpack: no worker thread (%s), unpacking in this one', (e as Error).message);
    }
  }
  return new LayerWriter(target, options);
}
