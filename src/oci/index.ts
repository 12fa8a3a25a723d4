/**
 * `ctrkit/oci`: OCI images — the chapter's 5.3 from the registry side.
 *
 * - {@link parseReference}: image references (`busybox`, `registry:5000/a/b@sha256:...`).
 * - {@link ImageStore}: an OCI image layout on disk (skopeo and umoci read and write it);
 *   {@link ImageStore.pull} from a registry, {@link ImageStore.lowers} for overlay
 *   lowerdirs (layers unpacked once, shared by diffID), list, remove, gc.
 * - {@link RegistryClient}: the distribution API with anonymous, basic and token auth.
 * - {@link unpackLayer}: safe layer unpacking (typed refusals naming the entry).
 * - {@link imageConfig}: an image's run defaults; {@link prepareImageRun}: lowers, argv, env,
 *   cwd and uid/gid to run an image on overlay; {@link createBundle} / {@link readBundle}:
 *   OCI runtime bundles (`config.json` + rootfs) that runc runs.
 *
 * Importing it never loads the FFI layer. Guide: docs/oci.md.
 * @packageDocumentation
 */
export { parseReference, ImageReference, ImageReferenceError, DEFAULT_REGISTRY } from './reference.js';
export {
  RegistryError,
  ManifestError,
  DigestMismatchError,
  UnsafeLayerError,
  ImageStoreError,
  BundleError,
  type RegistryErrorCode,
  type ManifestErrorCode,
  type ImageStoreErrorCode,
} from './errors.js';
export {
  OCI_MANIFEST,
  OCI_INDEX,
  OCI_CONFIG,
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  DOCKER_CONFIG,
  LAYER_COMPRESSION,
} from './media-types.js';
export {
  parseManifestDocument,
  parseImageConfig,
  type Platform,
  type Descriptor,
  type ImageManifest,
  type ImageIndex,
  type ImageConfigDocument,
  type ManifestDocument,
} from './manifest.js';
export { hostPlatform, parsePlatform, formatPlatform, selectPlatform } from './platform.js';
export type { PullEvent } from './progress.js';
export { RegistryClient, type RegistryClientOptions, type RequestOptions, type DownloadOptions, type BlobConsumer } from './registry/client.js';
export { dockerConfigCredentials, type Credentials } from './registry/credentials.js';
export { ImageStore, type LayerOptions, type GetOptions } from './store/image-store.js';
export type { PullOptions } from './store/pull.js';
export type { Image, ImageLayer, ImageSummary, GcResult } from './store/image.js';
export { unpackLayer, type UnpackOptions, type UnpackResult } from './unpack/unpack-layer.js';
export type { LayerCompression } from './unpack/decompress.js';
export { imageConfig, resolveCommand, type RunDefaults, type CommandOverrides } from './image-config.js';
export { createBundle, readBundle, type BundleOptions, type Bundle } from './runtime/bundle.js';
export { prepareImageRun, type ImageRun, type ImageRunOverrides } from './runtime/run-spec.js';
export { defaultImageStoreDir } from './store/default-dir.js';
