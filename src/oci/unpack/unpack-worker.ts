/**
 * An unpack worker thread: runs one {@link LayerWriter} at a time on the bytes the main thread
 * sends (decompression, diffID hash, tar parsing, every file system call), so that layers
 * unpack on all cores while the main thread downloads. See worker-pool.ts.
 * @internal
 */
import { parentPort } from 'node:worker_threads';
import { LayerWriter } from './layer-writer.js';
import { type FromWorker, serializeError, type ToWorker } from './worker-protocol.js';

interface Job {
  readonly id: number;
  writer: LayerWriter | undefined;
  /** The job's operations, one after the other. */
  queue: Promise<void>;
  failed: boolean;
  over: boolean;
}

const port = parentPort!;
let job: Job | undefined;
const post = (m: FromWorker, transfer?: ArrayBuffer[]): void => port.postMessage(m, transfer);

function fail(j: Job, e: unknown): void {
  if (j.failed || j.over) return;
  j.failed = true;
  void j.writer?.destroy();
  post({ op: 'error', id: j.id, error: serializeError(e) });
}

function enqueue(j: Job, op: () => Promise<void> | undefined): void {
  j.queue = j.queue.then(async () => {
    if (j.over) return;
    try {
      await op();
    } catch (e) {
      fail(j, e);
    }
  });
}

port.on('message', (m: ToWorker) => {
  if (m.op === 'start') {
    const j: Job = { id: m.id, writer: undefined, queue: Promise.resolve(), failed: false, over: false };
    job = j;
    try {
      j.writer = new LayerWriter(m.target, m.options);
    } catch (e) {
      fail(j, e);
    }
    return;
  }
  const j = job;
  if (!j || j.id !== m.id) return;
  switch (m.op) {
    case 'data': {
      const chunk = Buffer.from(m.chunk.buffer, m.chunk.byteOffset, m.chunk.byteLength);
      enqueue(j, async () => {
        if (!j.failed) await j.writer!.write(chunk);
        post({ op: 'ack', id: j.id, bytes: chunk.length });
      });
      break;
    }
    case 'end':
      enqueue(j, async () => {
        if (j.failed) return;
        const result = await j.writer!.end();
        j.over = true;
        post({ op: 'done', id: j.id, result });
      });
      break;
    case 'destroy':
      // Between two tasks of this thread: no file operation is under way, and once the writer
      // is destroyed none starts. The main thread may remove the target when it hears so.
      j.over = true;
      void j.writer?.destroy();
      job = undefined;
      post({ op: 'destroyed', id: j.id });
      break;
  }
});
