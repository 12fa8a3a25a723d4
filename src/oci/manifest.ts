/**
 * The OCI / Docker schema 2 documents a pull reads — manifests, indexes, image configs —
 * typed, and checked before anything trusts them.
 */
import { isSha256Digest } from './digest.js';
import { ManifestError } from './errors.js';
import { isIndexType, isManifestType } from './media-types.js';

/** A platform, with Go's GOOS/GOARCH names: `{ os: 'linux', architecture: 'amd64' }`. */
export interface Platform {
  /** `linux`, `windows` ... */
  readonly os: string;
  /** `amd64`, `arm64`, `arm`, `386`, `ppc64le`, `s390x`, `riscv64` ... */
  readonly architecture: string;
  /** `v7`, `v8` ... for ARM. */
  readonly variant?: string | undefined;
  /** The OS version (Windows images). */
  readonly 'os.version'?: string | undefined;
}

/** A content descriptor: what a manifest or index points at. */
export interface Descriptor {
  /** The media type of the content. */
  readonly mediaType: string;
  /** `sha256:<hex>` of the content. */
  readonly digest: string;
  /** Its size in bytes. */
  readonly size: number;
  /** The platform of a manifest an index lists. */
  readonly platform?: Platform | undefined;
  /** Annotations, e.g. `org.opencontainers.image.ref.name`. */
  readonly annotations?: Readonly<Record<string, string>> | undefined;
  /** Other places to fetch it from (foreign layers). */
  readonly urls?: readonly string[] | undefined;
}

/** An image manifest (OCI, or Docker schema 2). */
export interface ImageManifest {
  /** 2. */
  readonly schemaVersion: number;
  /** The manifest's media type. */
  readonly mediaType: string;
  /** The image config. */
  readonly config: Descriptor;
  /** The layers, base first. */
  readonly layers: readonly Descriptor[];
  /** Annotations. */
  readonly annotations?: Readonly<Record<string, string>> | undefined;
}

/** An image index (OCI) or manifest list (Docker): one manifest per platform. */
export interface ImageIndex {
  /** 2. */
  readonly schemaVersion: number;
  /** The index's media type. */
  readonly mediaType: string;
  /** The manifests, each with its platform. */
  readonly manifests: readonly Descriptor[];
  /** Annotations. */
  readonly annotations?: Readonly<Record<string, string>> | undefined;
}

/** The image config (the parts ctrkit reads; see the OCI image spec's config.md). */
export interface ImageConfigDocument {
  /** CPU architecture, GOARCH names. */
  readonly architecture?: string;
  /** OS, GOOS names. */
  readonly os?: string;
  /** Variant (ARM). */
  readonly variant?: string;
  /** When the image was created (RFC 3339). */
  readonly created?: string;
  /** The execution defaults. */
  readonly config?: {
    readonly User?: string;
    readonly ExposedPorts?: Readonly<Record<string, object>>;
    readonly Env?: readonly string[];
    readonly Entrypoint?: readonly string[] | null;
    readonly Cmd?: readonly string[] | null;
    readonly Volumes?: Readonly<Record<string, object>>;
    readonly WorkingDir?: string;
    readonly Labels?: Readonly<Record<string, string>>;
    readonly StopSignal?: string;
    /** Docker's `HEALTHCHECK` (durations in nanoseconds); not in the OCI spec, but in images Docker builds. */
    readonly Healthcheck?: {
      readonly Test?: readonly string[];
      readonly Interval?: number;
      readonly Timeout?: number;
      readonly StartPeriod?: number;
      readonly Retries?: number;
    };
  };
  /** The uncompressed layers' digests, base first. */
  readonly rootfs: { readonly type: string; readonly diff_ids: readonly string[] };
  /** Build history. */
  readonly history?: readonly object[];
}

/** A parsed manifest or index, with the digest of its exact bytes. */
export type ManifestDocument =
  | { readonly kind: 'manifest'; readonly mediaType: string; readonly digest: string; readonly manifest: ImageManifest; readonly bytes: Buffer }
  | { readonly kind: 'index'; readonly mediaType: string; readonly digest: string; readonly index: ImageIndex; readonly bytes: Buffer };

function checkDescriptor(d: unknown, where: string): Descriptor {
  const x = d as Partial<Descriptor> | null;
  if (
    !x ||
    typeof x !== 'object' ||
    typeof x.mediaType !== 'string' ||
    !isSha256Digest(x.digest) ||
    typeof x.size !== 'number' ||
    !Number.isSafeInteger(x.size) ||
    x.size < 0
  ) {
    throw new ManifestError('ERR_MANIFEST_INVALID', `${where}: not a valid descriptor (mediaType, sha256 digest and size are required)`);
  }
  return x as Descriptor;
}

/**
 * Parses a manifest or index and checks it: valid JSON; a `mediaType` equal to the
 * Content-Type it was served with (when both are present); never both `manifests` and
 * `layers` (a document readable both ways is refused, CVE-2021-41190); well-formed descriptors.
 * @param bytes - the exact bytes served (the digest is of these)
 * @param contentType - the Content-Type served, or undefined when read from disk
 * @param digest - the digest of `bytes`
 */
export function parseManifestDocument(bytes: Buffer, contentType: string | undefined, digest: string): ManifestDocument {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new ManifestError('ERR_MANIFEST_INVALID', `manifest ${digest} is not JSON: ${(e as Error).message}`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new ManifestError('ERR_MANIFEST_INVALID', `manifest ${digest} is not a JSON object`);
  if ('manifests' in doc && 'layers' in doc) {
    throw new ManifestError(
      'ERR_MANIFEST_AMBIGUOUS',
      `document ${digest} has both "manifests" and "layers": it could be read as an index or as a manifest, so it is refused`,
    );
  }
  const served = contentType?.split(';')[0]?.trim().toLowerCase();
  const declared = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  if (declared !== undefined && served !== undefined && served !== '' && declared !== served) {
    throw new ManifestError('ERR_MANIFEST_MEDIA_TYPE', `document ${digest} says mediaType ${declared} but was served as ${served}`);
  }
  // An OCI document may omit mediaType; then its shape (and the Content-Type) tells.
  const mediaType = declared ?? served ?? ('manifests' in doc ? 'application/vnd.oci.image.index.v1+json' : 'application/vnd.oci.image.manifest.v1+json');
  if (doc.schemaVersion !== 2)
    throw new ManifestError('ERR_MANIFEST_INVALID', `document ${digest}: schemaVersion ${String(doc.schemaVersion)} (only 2 is supported)`);
  if (isIndexType(mediaType)) {
    if (!Array.isArray(doc.manifests)) throw new ManifestError('ERR_MANIFEST_INVALID', `index ${digest} has no "manifests" array`);
    for (const [i, m] of doc.manifests.entries()) checkDescriptor(m, `index ${digest} manifests[${i}]`);
    return { kind: 'index', mediaType, digest, index: { ...(doc as unknown as ImageIndex), mediaType }, bytes };
  }
  if (isManifestType(mediaType)) {
    if ('manifests' in doc) throw new ManifestError('ERR_MANIFEST_AMBIGUOUS', `manifest ${digest} carries "manifests"`);
    checkDescriptor(doc.config, `manifest ${digest} config`);
    if (!Array.isArray(doc.layers)) throw new ManifestError('ERR_MANIFEST_INVALID', `manifest ${digest} has no "layers" array`);
    for (const [i, l] of doc.layers.entries()) checkDescriptor(l, `manifest ${digest} layers[${i}]`);
    return { kind: 'manifest', mediaType, digest, manifest: { ...(doc as unknown as ImageManifest), mediaType }, bytes };
  }
  throw new ManifestError('ERR_MANIFEST_MEDIA_TYPE', `document ${digest} has unsupported media type ${mediaType}`);
}

/** Parses an image config and checks what unpacking relies on: one diffID per layer. */
export function parseImageConfig(bytes: Buffer, digest: string, layerCount: number): ImageConfigDocument {
  let doc: ImageConfigDocument;
  try {
    doc = JSON.parse(bytes.toString('utf8')) as ImageConfigDocument;
  } catch (e) {
    throw new ManifestError('ERR_MANIFEST_INVALID', `image config ${digest} is not JSON: ${(e as Error).message}`);
  }
  const ids = doc?.rootfs?.diff_ids;
  if (!Array.isArray(ids) || !ids.every(isSha256Digest)) throw new ManifestError('ERR_MANIFEST_INVALID', `image config ${digest} has no valid rootfs.diff_ids`);
  if (ids.length !== layerCount) {
    throw new ManifestError('ERR_MANIFEST_INVALID', `image config ${digest} lists ${ids.length} diffIDs for ${layerCount} layers`);
  }
  return doc;
}
