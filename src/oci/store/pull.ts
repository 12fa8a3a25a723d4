/**
 * A pull: resolve the reference to a manifest (choosing the platform from an index),
 * download the config and the missing layers (in parallel, verified while streaming, each
 * renamed into the store only when whole) — unpacking each layer while it downloads, into a
 * directory of its own that is renamed into place only once the blob's digest and the tar's
 * diffID are checked — then store the manifest and name it.
 * @internal
 */
import { rm } from 'node:fs/promises';
import { logger } from '../../log.js';
import { ManifestError } from '../errors.js';
import { parseImageConfig, type Descriptor, type Platform } from '../manifest.js';
import { isManifestType, LAYER_COMPRESSION } from '../media-types.js';
import { formatPlatform, hostPlatform, parsePlatform, selectPlatform } from '../platform.js';
import type { PullEvent } from '../progress.js';
import type { ImageReference } from '../reference.js';
import { type BlobConsumer, RegistryClient, type RegistryClientOptions } from '../registry/client.js';
import type { Image } from './image.js';
import { mapLimit } from './limit.js';

const log = logger('ctrkit:oci');

/** Options of {@link ImageStore.pull}. */
export interface PullOptions extends RegistryClientOptions {
  /** The platform to pick from a multi-platform image: an object or `os/arch[/variant]`. @defaultValue this host's */
  readonly platform?: Platform | string | undefined;
  /** Layers downloaded (and unpacked) at once. @defaultValue 4 */
  readonly concurrency?: number | undefined;
  /** Unpack the layers for overlay use, each while it downloads. @defaultValue true */
  readonly unpack?: boolean | undefined;
  /** Receives progress: one event per step and per chunk of each layer. */
  readonly onProgress?: ((event: PullEvent) => void) | undefined;
  /** Cancels the pull; nothing partial is left under a digest or a name. */
  readonly signal?: AbortSignal | undefined;
}

/**
 * What a pull needs of the store it fills: blob reads, atomic blob writes, holds that keep a
 * concurrent gc off the blobs, naming the manifest, and reading the image back (unpacked).
 * The image store passes itself; pull.ts names this instead of importing it, as the store
 * imports pull.ts.
 * @internal
 */
export interface PullDestination {
  /** Marks blobs as in use until the returned function is called. */
  hold(digests: readonly string[]): () => void;
  /** Whether the blob is already stored. */
  hasBlob(digest: string): Promise<boolean>;
  /** A stored blob's bytes, verified. */
  readBlob(digest: string): Promise<Buffer>;
  /** A temp path for a blob download, on the store's filesystem. */
  tempBlobPath(digest: string): string;
  /** Moves a verified download into place under its digest. */
  commitBlob(temp: string, digest: string): Promise<void>;
  /** Stores bytes under their digest (atomically, verified). */
  writeBlob(digest: string, bytes: Buffer): Promise<void>;
  /** Names a manifest. */
  tag(name: string, descriptor: Descriptor): Promise<void>;
  /** The stored image `ref` names, for `platform`. */
  get(ref: string, options: { readonly platform?: Platform | string | undefined }): Promise<Image>;
  /** Unpacks a stored layer blob (once); returns its directory. */
  layerDir(digest: string, diffID: string, signal?: AbortSignal): Promise<string>;
  /** Whether the layer is unpacked. */
  hasLayer(diffID: string): Promise<boolean>;
  /** Waits for an unpacking of the layer under way in this process, if any. */
  unpacked(diffID: string): Promise<void>;
  /** Unpacks a layer from the bytes `download` passes to the consumer it gets, as they arrive. */
  unpackWhileDownloading(
    blob: { readonly size: number },
    diffID: string,
    download: (consumer: BlobConsumer) => Promise<void>,
    signal?: AbortSignal,
  ): Promise<string>;
}

/** The default of {@link PullOptions.concurrency}. */
const LAYERS_AT_ONCE = 4;

/** The image manifest `ref` names for `platform` (through its index, if it names one), and its descriptor. */
async function resolveManifest(client: RegistryClient, ref: ImageReference, platform: Platform, signal?: AbortSignal) {
  const repo = ref.repository;
  let doc = await client.getManifest(repo, ref.manifestRef, { signal });
  let descriptor: Descriptor = { mediaType: doc.mediaType, digest: doc.digest, size: doc.bytes.length };
  if (doc.kind === 'index') {
    const chosen = selectPlatform(doc.index, platform);
    if (!isManifestType(chosen.mediaType))
      throw new ManifestError('ERR_MANIFEST_MEDIA_TYPE', `index entry ${chosen.digest} is a ${chosen.mediaType}, not an image manifest`);
    doc = await client.getManifest(repo, chosen.digest, { signal });
    if (doc.mediaType !== chosen.mediaType) {
      throw new ManifestError('ERR_MANIFEST_MEDIA_TYPE', `index says ${chosen.digest} is a ${chosen.mediaType}, the registry served ${doc.mediaType}`);
    }
    descriptor = { mediaType: doc.mediaType, digest: doc.digest, size: doc.bytes.length, platform: chosen.platform };
  }
  if (doc.kind !== 'manifest') throw new ManifestError('ERR_MANIFEST_MEDIA_TYPE', `${ref.toString()}: an index where an image manifest was expected`);
  for (const l of doc.manifest.layers) {
    if (LAYER_COMPRESSION[l.mediaType] === undefined)
      throw new ManifestError('ERR_MANIFEST_UNSUPPORTED', `layer ${l.digest} has media type ${l.mediaType}, which ctrkit cannot unpack`);
  }
  return { doc, descriptor };
}

/** Pulls `ref` into `store`; returns the stored image. @internal */
export async function pullImage(store: PullDestination, ref: ImageReference, options: PullOptions): Promise<Image> {
  const { signal } = options;
  const emit = options.onProgress ?? (() => {});
  const platform = typeof options.platform === 'string' ? parsePlatform(options.platform) : (options.platform ?? hostPlatform());
  const client = new RegistryClient(ref.registry, options);
  const repo = ref.repository;
  const { doc, descriptor } = await resolveManifest(client, ref, platform, signal);
  const { manifest } = doc;
  const release = store.hold([doc.digest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)]);
  try {
    const configBytes = (await store.hasBlob(manifest.config.digest))
      ? await store.readBlob(manifest.config.digest)
      : await client.getBlob(repo, manifest.config, { signal });
    const config = parseImageConfig(configBytes, manifest.config.digest, manifest.layers.length); // refused before any layer is fetched
    const actual = { os: config.os ?? 'linux', architecture: config.architecture ?? 'unknown', variant: config.variant };
    emit({ type: 'resolved', reference: ref.toString(), digest: doc.digest, platform: formatPlatform(actual), layers: manifest.layers.length });

    const diffIDs = config.rootfs.diff_ids;
    const unpack = options.unpack !== false;
    // Layer directories are in place before the image is named: a gc meanwhile must leave them.
    const releaseLayers = unpack ? store.hold(diffIDs) : () => {};
    try {
      /** Downloads a layer's blob into the store, handing its bytes to `consumer` as they arrive. */
      const download = async (layer: Descriptor, consumer?: BlobConsumer): Promise<void> => {
        const temp = store.tempBlobPath(layer.digest);
        try {
          await client.downloadBlob(repo, layer, temp, {
            signal,
            consumer,
            onBytes: (bytes) => emit({ type: 'layer-progress', digest: layer.digest, bytes, total: layer.size }),
          });
          await store.commitBlob(temp, layer.digest);
        } finally {
          await rm(temp, { force: true });
        }
        emit({ type: 'layer-downloaded', digest: layer.digest, total: layer.size });
      };
      await mapLimit(manifest.layers, options.concurrency ?? LAYERS_AT_ONCE, async (layer, i) => {
        const diffID = diffIDs[i]!;
        if (unpack) await store.unpacked(diffID); // another pull of this process is unpacking it: wait, then see
        const haveBlob = await store.hasBlob(layer.digest);
        const haveLayer = unpack && (await store.hasLayer(diffID));
        if (haveBlob) emit({ type: 'layer-cached', digest: layer.digest, total: layer.size });
        else if (unpack && !haveLayer) await store.unpackWhileDownloading(layer, diffID, (consumer) => download(layer, consumer), signal);
        else await download(layer);
        if (!unpack) return;
        if (haveBlob && !haveLayer) await store.layerDir(layer.digest, diffID, signal);
        emit({ type: 'layer-unpacked', digest: layer.digest, diffID });
      });
      // The config and manifest go in last, the name after them: whoever sees the name finds every blob.
      await store.writeBlob(manifest.config.digest, configBytes);
      await store.writeBlob(doc.digest, doc.bytes);
      const name = ref.toString();
      await store.tag(name, descriptor);
      log('pulled %s as %s', name, doc.digest);
      const image = await store.get(name, { platform });
      emit({ type: 'done', reference: name, digest: doc.digest });
      return image;
    } finally {
      releaseLayers();
    }
  } finally {
    release();
  }
}
