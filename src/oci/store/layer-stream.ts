/**
 * A layer unpacked while its blob downloads: the registry client hands every chunk to a
 * {@link StreamedLayer} as it arrives, which pushes it through the decompressor and the tar
 * unpacker into a temp directory. Only when the download is whole and its digest checked,
 * and the unpacked tar's diffID too, does the directory take its final name; anything else
 * removes it.
 * @internal
 */
import { mkdir, rename, rm } from 'node:fs/promises';
import type { BlobConsumer } from '../registry/client.js';
import type { UnpackOptions } from '../unpack/layer-writer.js';
import { type LayerSink, layerSink } from '../unpack/worker-pool.js';

/** Renames a finished layer dir into place; false when another process put it there first. */
export async function placeLayer(temp: string, final: string): Promise<boolean> {
  try {
    await rename(temp, final);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
    await rm(temp, { recursive: true, force: true });
    return false;
  }
}

/**
 * The consumer side of a streamed layer. A failure of the unpacking (a refused entry, a
 * corrupt archive) does not stop the download: the rest of the bytes are still hashed, so
 * that bytes that are not the blob are reported as a digest mismatch, not as whatever
 * unpacking them did; {@link StreamedLayer.finish} reports the unpacking's failure.
 */
export class StreamedLayer implements BlobConsumer {
  private writer: LayerSink;
  private failure: { error: unknown } | undefined;

  private constructor(
    private readonly temp: string,
    private readonly options: UnpackOptions,
    private readonly size: number,
  ) {
    this.writer = layerSink(temp, options, size);
  }

  /** Makes the temp directory `temp` and a consumer unpacking a blob of `size` bytes into it. */
  static async create(temp: string, options: UnpackOptions, size: number): Promise<StreamedLayer> {
    await mkdir(temp, { mode: 0o755 });
    try {
      return new StreamedLayer(temp, options, size);
    } catch (e) {
      await rm(temp, { recursive: true, force: true });
      throw e;
    }
  }

  private fail(e: unknown): void {
    this.failure ??= { error: e };
    void this.writer.destroy(); // discard() waits for it
  }

  write(chunk: Buffer): Promise<void> | undefined {
    if (this.failure) return undefined;
    try {
      return this.writer.write(chunk)?.catch((e: unknown) => this.fail(e));
    } catch (e) {
      this.fail(e);
      return undefined;
    }
  }

  async restart(): Promise<void> {
    await this.writer.destroy();
    await rm(this.temp, { recursive: true, force: true });
    await mkdir(this.temp, { mode: 0o755 });
    this.failure = undefined;
    this.writer = layerSink(this.temp, this.options, this.size);
  }

  /** After a whole, verified download: finishes the unpacking (diffID checked) and moves the directory to `final`. */
  async finish(final: string): Promise<void> {
    try {
      if (this.failure) throw this.failure.error;
      await this.writer.end();
    } catch (e) {
      await this.discard();
      throw e;
    }
    await placeLayer(this.temp, final);
  }

  /** Gives up: the temp directory goes. */
  async discard(): Promise<void> {
    await this.writer.destroy();
    await rm(this.temp, { recursive: true, force: true });
  }
}
