/**
 * Safe layer unpacking: a tar (gzip or plain) into a directory, every path resolved inside
 * it, nothing ever written through a symlink, every refusal a typed error naming the entry.
 * The work is done by layer-writer.ts, in this thread or (large layers) in a worker's.
 */
import { createReadStream, statSync } from 'node:fs';
import { AbortError } from '../../errors.js';
import { CHUNK } from './decompress.js';
import type { UnpackOptions, UnpackResult } from './layer-writer.js';
import { type LayerSink, layerSink } from './worker-pool.js';

export type { UnpackOptions, UnpackResult } from './layer-writer.js';

/**
 * Unpacks an image layer (a path or a stream; gzip or plain tar) into `targetDir`, which
 * must exist. Files, directories, symlinks, hardlinks, devices, fifos, modes, owners, mtimes
 * and xattrs are kept; whiteouts are applied or written in overlay form (see
 * {@link UnpackOptions.whiteouts}).
 *
 * Safe against hostile layers: every path is resolved inside the target without following a
 * symlink out of it, nothing is written through a symlink, a hardlink must name a regular
 * file inside the target, and `..`, invalid whiteouts and overlay markers in disguise are
 * refused. Absolute names are taken as relative to the target.
 *
 * @throws {@link UnsafeLayerError} (`ERR_UNSAFE_LAYER`) naming the refused entry (or, for a
 *   malformed archive, the header's offset)
 * @throws {@link DigestMismatchError} when `diffID` is given and differs
 */
export async function unpackLayer(layer: string | NodeJS.ReadableStream, targetDir: string, options: UnpackOptions = {}): Promise<UnpackResult> {
  const { signal } = options;
  if (signal?.aborted) throw new AbortError(signal.reason);
  const input = typeof layer === 'string' ? createReadStream(layer, { highWaterMark: CHUNK }) : layer;
  const onAbort = (): void => {
    (input as { destroy?: (e?: Error) => void }).destroy?.(new AbortError(signal?.reason));
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  let writer: LayerSink | undefined;
  try {
    writer = layerSink(targetDir, options, typeof layer === 'string' ? statSync(layer).size : undefined);
    for await (const chunk of input as AsyncIterable<Buffer | string>) {
      const p = writer.write(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
      if (p) await p;
      if (signal?.aborted) throw new AbortError(signal.reason);
    }
    return await writer.end();
  } catch (e) {
    await writer?.destroy(); // nothing touches the target once this rejects
    (input as { destroy?: () => void }).destroy?.();
    if (signal?.aborted) throw new AbortError(signal.reason);
    throw e;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
