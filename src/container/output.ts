import type { Readable } from 'node:stream';

/** Collects a stream into a string, keeping at most `max` bytes (the tail is dropped). @internal */
export function collect(stream: Readable | null, max: number): Promise<{ text: string; truncated: boolean }> {
  if (!stream) return Promise.resolve({ text: '', truncated: false });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let truncated = false;
    stream.on('data', (chunk: Buffer) => {
      if (size >= max) {
        truncated = true;
        return;
      }
      const room = max - size;
      if (chunk.length > room) truncated = true;
      const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
      chunks.push(kept);
      size += kept.length;
    });
    const done = () => resolve({ text: Buffer.concat(chunks).toString('utf8'), truncated });
    stream.once('end', done);
    stream.once('close', done);
    stream.once('error', done);
  });
}
