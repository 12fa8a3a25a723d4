/** An image as the store holds it. */
import type { Descriptor, ImageConfigDocument, ImageManifest, Platform } from '../manifest.js';

/** One layer of an {@link Image}. */
export interface ImageLayer {
  /** `sha256:` of the blob as stored (compressed): its name in the store and the registry. */
  readonly digest: string;
  /** `sha256:` of the uncompressed tar: its identity across images (what the unpacked-layer cache is keyed by). */
  readonly diffID: string;
  /** Bytes of the blob. */
  readonly size: number;
  /** The layer's media type. */
  readonly mediaType: string;
}

/** An image in an {@link ImageStore}: its manifest, config and layers, read from the store. */
export interface Image {
  /** The name it is stored under (`127.0.0.1:5000/a/b:v1`, or whatever name skopeo/umoci gave it). */
  readonly name: string;
  /** `sha256:` of its manifest: the image's identity. */
  readonly digest: string;
  /** The manifest's descriptor, as `index.json` holds it. */
  readonly descriptor: Descriptor;
  /** The manifest. */
  readonly manifest: ImageManifest;
  /** `sha256:` of its config blob. */
  readonly configDigest: string;
  /** The config. */
  readonly config: ImageConfigDocument;
  /** The layers, base first. */
  readonly layers: readonly ImageLayer[];
  /** Its platform, from the config. */
  readonly platform: Platform;
}

/** A line of {@link ImageStore.list}, like `docker images`. */
export interface ImageSummary {
  /** The name it is stored under. */
  readonly name: string;
  /** `sha256:` of its manifest. */
  readonly digest: string;
  /** Bytes of its config and layer blobs. */
  readonly size: number;
  /** Its creation time from the config, when there is one. */
  readonly created: string | undefined;
  /** `os/arch[/variant]`. */
  readonly platform: string;
}

/** What {@link ImageStore.gc} removed. */
export interface GcResult {
  /** Blobs no image referenced. */
  readonly blobsRemoved: number;
  /** Unpacked layers no image referenced. */
  readonly layersRemoved: number;
  /** Bytes freed from blobs. */
  readonly bytesFreed: number;
}
