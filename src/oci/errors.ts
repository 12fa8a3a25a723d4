/**
 * The typed errors of `ctrkit/oci`. Every one carries a stable `code` to branch on; the
 * message names the registry, blob or tar entry concerned.
 */
import { CtrkitError } from '../errors.js';

/**
 * Why talking to a registry failed. Stable: callers may branch on it.
 *
 * - `ERR_REGISTRY_UNREACHABLE` — no connection (refused, reset, DNS) after every retry.
 * - `ERR_REGISTRY_AUTH` — credentials refused, no credentials for a registry that needs
 *   them, or the token service failed.
 * - `ERR_REGISTRY_NOT_FOUND` — the repository, tag or blob does not exist (404).
 * - `ERR_REGISTRY_HTTP` — any other unexpected status, after retries for 5xx and 429.
 * - `ERR_REGISTRY_INSECURE` — plain HTTP asked of a registry that is neither loopback nor marked insecure.
 * - `ERR_REGISTRY_TIMEOUT` — the registry stopped sending for longer than `idleTimeout`.
 * - `ERR_REGISTRY_TRUNCATED` — a blob ended before its size, and could not be resumed.
 * - `ERR_REGISTRY_PROTOCOL` — a reply that breaks the distribution spec (a redirect loop, a bad Content-Range, an oversized document).
 */
export type RegistryErrorCode =
  | 'ERR_REGISTRY_UNREACHABLE'
  | 'ERR_REGISTRY_AUTH'
  | 'ERR_REGISTRY_NOT_FOUND'
  | 'ERR_REGISTRY_HTTP'
  | 'ERR_REGISTRY_INSECURE'
  | 'ERR_REGISTRY_TIMEOUT'
  | 'ERR_REGISTRY_TRUNCATED'
  | 'ERR_REGISTRY_PROTOCOL';

/** A registry could not be reached, refused us, or answered outside the spec. */
export class RegistryError extends CtrkitError {
  /** Why it failed; see {@link RegistryErrorCode}. */
  declare readonly code: RegistryErrorCode;
  /** The HTTP status, when there was a response. */
  readonly status: number | undefined;
  /** The URL asked for. */
  readonly url: string | undefined;

  /**
   * @param code - why it failed
   * @param message - what failed and on what
   * @param details - status, URL and underlying error
   */
  constructor(code: RegistryErrorCode, message: string, details: { status?: number; url?: string; cause?: unknown } = {}) {
    super(code, message, { cause: details.cause });
    this.status = details.status;
    this.url = details.url;
  }
}

/**
 * Why a manifest, index or image config was refused. Stable.
 *
 * - `ERR_MANIFEST_MEDIA_TYPE` — an unsupported media type, or a `mediaType` that differs from the Content-Type.
 * - `ERR_MANIFEST_AMBIGUOUS` — a document with both `manifests` and `layers` (CVE-2021-41190).
 * - `ERR_MANIFEST_INVALID` — not JSON, or missing or malformed fields.
 * - `ERR_MANIFEST_PLATFORM` — an index with no entry for the wanted platform.
 * - `ERR_MANIFEST_UNSUPPORTED` — a layer in a form ctrkit cannot unpack (e.g. zstd on this Node).
 */
export type ManifestErrorCode =
  | 'ERR_MANIFEST_MEDIA_TYPE'
  | 'ERR_MANIFEST_AMBIGUOUS'
  | 'ERR_MANIFEST_INVALID'
  | 'ERR_MANIFEST_PLATFORM'
  | 'ERR_MANIFEST_UNSUPPORTED';

/** A manifest, index or image config that ctrkit refuses to use. */
export class ManifestError extends CtrkitError {
  /** Why it was refused; see {@link ManifestErrorCode}. */
  declare readonly code: ManifestErrorCode;

  /**
   * @param code - why it was refused
   * @param message - what is wrong, in which document
   */
  constructor(code: ManifestErrorCode, message: string) {
    super(code, message);
  }
}

/** Content whose sha256 differs from the digest it was asked for by. `code` is `ERR_DIGEST_MISMATCH`. */
export class DigestMismatchError extends CtrkitError {
  /** Always `ERR_DIGEST_MISMATCH`. */
  declare readonly code: 'ERR_DIGEST_MISMATCH';
  /** The digest that was expected. */
  readonly expected: string;
  /** The digest of what arrived. */
  readonly actual: string;

  /**
   * @param what - what was checked: a blob, a manifest, a layer's diffID
   * @param expected - the digest asked for
   * @param actual - the digest computed
   */
  constructor(what: string, expected: string, actual: string) {
    super('ERR_DIGEST_MISMATCH', `${what}: expected ${expected}, got ${actual}`);
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * A layer entry that unpacking refuses because it would reach outside the target directory
 * or corrupt it: `..`, a symlink or hardlink escape, an invalid whiteout, an overlay marker
 * in disguise. `code` is `ERR_UNSAFE_LAYER`; {@link UnsafeLayerError.entry} names the entry.
 * Nothing of the entry has been written when this is thrown.
 */
export class UnsafeLayerError extends CtrkitError {
  /** Always `ERR_UNSAFE_LAYER`. */
  declare readonly code: 'ERR_UNSAFE_LAYER';
  /** The tar entry's name, as it appears in the archive. */
  readonly entry: string;

  /**
   * @param entry - the tar entry's name
   * @param why - what makes it unsafe
   */
  constructor(entry: string, why: string) {
    super('ERR_UNSAFE_LAYER', `unsafe layer entry "${entry}": ${why}`);
    this.entry = entry;
  }
}

/**
 * Why the image store refused an operation. Stable.
 *
 * - `ERR_STORE_IMAGE_NOT_FOUND` — no image of that reference or digest in the store.
 * - `ERR_STORE_BLOB_NOT_FOUND` — a blob an image needs is missing from the store.
 * - `ERR_STORE_LAYOUT` — the directory is not an OCI image layout ctrkit can use.
 * - `ERR_STORE_LOCKED` — another process kept the store locked too long.
 */
export type ImageStoreErrorCode = 'ERR_STORE_IMAGE_NOT_FOUND' | 'ERR_STORE_BLOB_NOT_FOUND' | 'ERR_STORE_LAYOUT' | 'ERR_STORE_LOCKED';

/** The image store refused an operation. */
export class ImageStoreError extends CtrkitError {
  /** Why; see {@link ImageStoreErrorCode}. */
  declare readonly code: ImageStoreErrorCode;

  /**
   * @param code - why
   * @param message - what, on which image or blob
   */
  constructor(code: ImageStoreErrorCode, message: string) {
    super(code, message);
  }
}

/** A runtime bundle that cannot be written or read. `code` is `ERR_BUNDLE_INVALID`. */
export class BundleError extends CtrkitError {
  /** Always `ERR_BUNDLE_INVALID`. */
  declare readonly code: 'ERR_BUNDLE_INVALID';
  /** The bundle directory. */
  readonly bundle: string;

  /**
   * @param bundle - the bundle directory
   * @param message - what is wrong with it
   * @param cause - the underlying error
   */
  constructor(bundle: string, message: string, cause?: unknown) {
    super('ERR_BUNDLE_INVALID', `bundle ${bundle}: ${message}`, { cause });
    this.bundle = bundle;
  }
}
