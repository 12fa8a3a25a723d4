/**
 * sha256 digests: validation, and a pass-through stream that hashes what flows through it
 * so that a blob is verified while it is written, never read twice.
 * @internal
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { ManifestError } from './errors.js';

const SHA256 = /^sha256:[a-f0-9]{64}$/;

/** The hex part of a `sha256:<hex>` digest; throws a typed error for anything else. */
export function digestHex(digest: string): string {
  if (!SHA256.test(digest)) throw new ManifestError('ERR_MANIFEST_INVALID', `unsupported or malformed digest "${digest}" (sha256 only)`);
  return digest.slice('sha256:'.length);
}

/** True for a well-formed `sha256:<hex>` digest. */
export function isSha256Digest(digest: unknown): digest is string {
  return typeof digest === 'string' && SHA256.test(digest);
}

/** `sha256:<hex>` of a buffer. */
export function sha256Of(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Passes bytes through, hashing and counting them. */
export class HashingStream extends Transform {
  /** The running hash; replaced by {@link HashingStream.reset}. */
  hash: Hash = createHash('sha256');
  /** Bytes seen. */
  bytes = 0;

  /** Starts over (a download restarted from byte 0). */
  reset(): void {
    this.hash = createHash('sha256');
    this.bytes = 0;
  }

  /** `sha256:<hex>` of everything seen; call once, at the end. */
  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }
}
