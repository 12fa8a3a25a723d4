/**
 * Commit: a writable layer becomes an OCI image layer — the basis of `docker commit`.
 * The tar is hashed on its way into gzip (the diffID, what an image config's rootfs lists)
 * and the gzip on its way to disk (the digest, what a manifest lists), in one pass.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { AbortError } from '../errors.js';
import { writeArchive } from './archive.js';
import type { Change } from './changes.js';
import { scanChanges, type DiffOptions } from './diff.js';
import { LayerError } from './errors.js';

/** The media type of a gzip-compressed OCI layer. */
export const OCI_LAYER_MEDIA_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';

/** Options of {@link commit}. */
export interface CommitOptions extends DiffOptions {
  /** The file to write the compressed layer to (created or replaced). */
  readonly output: string;
  /** gzip level, 0-9. @defaultValue 6 (zlib's default, what docker uses) */
  readonly compressionLevel?: number;
}

/** A committed layer: the file and the numbers an OCI manifest and image config need. */
export interface CommittedLayer {
  /** Always {@link OCI_LAYER_MEDIA_TYPE}. */
  readonly mediaType: typeof OCI_LAYER_MEDIA_TYPE;
  /** `sha256:<hex>` of the compressed file: the layer's digest in a manifest. */
  readonly digest: string;
  /** `sha256:<hex>` of the uncompressed tar: the layer's diffID in an image config. */
  readonly diffID: string;
  /** Bytes of the compressed file. */
  readonly size: number;
  /** Bytes of the uncompressed tar. */
  readonly uncompressedSize: number;
  /** Where the layer was written (`output`). */
  readonly path: string;
  /** The changes the layer holds, as {@link diff} reports them. */
  readonly changes: readonly Change[];
  /** How many tar entries it holds (parents and whiteout markers included). */
  readonly entries: number;
}

/** Passes bytes through, hashing and counting them. */
class HashTap extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }
}

/**
 * Turns a writable layer (an overlay upper, or the copy driver's copy) into a gzip-compressed
 * OCI layer at `output`: changed entries with their parent directories, deletions as
 * `.wh.NAME`, opaque directories as `.wh..wh..opq`. Applying it over the lowers gives back
 * the merged view. On failure or abort the partial file is removed.
 *
 * @example
 * ```ts
 * const layer = await commit({ upper: '/srv/c1/upper', lower: ['/srv/rootfs'], output: '/srv/layer.tar.gz' });
 * layer.digest; // 'sha256:…'  (manifest)      layer.diffID; // 'sha256:…'  (image config rootfs.diff_ids)
 * ```
 */
export async function commit(options: CommitOptions): Promise<CommittedLayer> {
  const scanned = await scanChanges(options);
  const root = options.upper;
  const tar = new HashTap();
  const gz = new HashTap();
  // Loaded here, not at import: only a commit needs the tar writer.
  const { default: tarStream } = await import('tar-stream');
  const pack = tarStream.pack();
  const writing = pipeline(
    async function* () {
      for await (const chunk of pack) yield chunk as Buffer;
    },
    tar,
    createGzip({ level: options.compressionLevel ?? 6 }),
    gz,
    createWriteStream(options.output),
    ...(options.signal ? [{ signal: options.signal }] : []),
  );
  const producing = writeArchive(pack, root, scanned, options.signal).catch((e: unknown) => {
    pack.destroy(e as Error);
    throw e;
  });
  const [produced, written] = await Promise.allSettled([producing, writing]);
  if (produced.status === 'rejected' || written.status === 'rejected') {
    await rm(options.output, { force: true });
    const cause = produced.status === 'rejected' ? produced.reason : (written as PromiseRejectedResult).reason;
    if (options.signal?.aborted) throw new AbortError(options.signal.reason);
    if (cause instanceof LayerError) throw cause;
    throw new LayerError('ERR_LAYER_IO', `committing ${root} to ${options.output} failed: ${(cause as Error)?.message ?? String(cause)}`, root, cause);
  }
  return {
    mediaType: OCI_LAYER_MEDIA_TYPE,
    digest: `sha256:${gz.hash.digest('hex')}`,
    diffID: `sha256:${tar.hash.digest('hex')}`,
    size: gz.bytes,
    uncompressedSize: tar.bytes,
    path: options.output,
    changes: scanned.map(({ path, kind, type, opaque }) => (opaque ? { path, kind, type, opaque } : { path, kind, type })),
    entries: produced.value,
  };
}
