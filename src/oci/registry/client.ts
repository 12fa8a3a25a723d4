/**
 * A registry client (distribution spec v2): the `/v2/` ping, anonymous, basic and bearer
 * token auth, manifests and blobs with retries and backoff, blobs streamed to disk with
 * their sha256 checked on the fly and resumed with Range after a broken connection.
 */
import { createHash } from 'node:crypto';
import { type FileHandle, open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { AbortError } from '../../errors.js';
import { logger } from '../../log.js';
import { DEFAULT_REGISTRY } from '../reference.js';
import { DigestMismatchError, RegistryError } from '../errors.js';
import { sha256Of } from '../digest.js';
import { parseManifestDocument, type Descriptor, type ManifestDocument } from '../manifest.js';
import { MANIFEST_ACCEPT } from '../media-types.js';
import { RegistryAuth } from './auth.js';
import { bodyError, readLimited } from './body.js';
import type { Credentials } from './credentials.js';
import { exchange, isLoopback, type Exchange } from './transport.js';
import { parseWwwAuthenticate } from './www-authenticate.js';

const log = logger('ctrkit:oci');
/** Manifests and configs are small; a registry sending more is refused (a memory bomb otherwise). */
const MAX_DOCUMENT_BYTES = 8 * 1024 * 1024;
/** Bytes of a blob gathered before one write to disk. */
const WRITE_BATCH = 1024 * 1024;

/** Options of a {@link RegistryClient}. */
export interface RegistryClientOptions {
  /** Credentials for the registry (and its token service). Default: from Docker's config file. */
  readonly credentials?: Credentials | undefined;
  /** Docker's config file to read credentials from, or false for none. @defaultValue `~/.docker/config.json` */
  readonly dockerConfig?: string | false | undefined;
  /**
   * Speak plain HTTP to this registry. Loopback registries (127.0.0.0/8, ::1, localhost)
   * always may; any other must be marked insecure by the caller. @defaultValue false
   */
  readonly insecure?: boolean | undefined;
  /** Retries after a connection failure, a 5xx or a 429. @defaultValue 3 */
  readonly retries?: number | undefined;
  /** The first backoff delay in ms; it doubles each retry. @defaultValue 200 */
  readonly retryDelay?: number | undefined;
  /** Milliseconds without a byte before a request is given up (then retried). @defaultValue 30000 */
  readonly idleTimeout?: number | undefined;
}

/** Per-request options. */
export interface RequestOptions {
  /** Cancels the request. */
  readonly signal?: AbortSignal | undefined;
}

/** Options of {@link RegistryClient.downloadBlob}. */
export interface DownloadOptions extends RequestOptions {
  /** Called as bytes arrive, with the total so far. */
  readonly onBytes?: ((received: number) => void) | undefined;
  /** Also receives the blob's bytes as they arrive, in order (to unpack a layer while it downloads). */
  readonly consumer?: BlobConsumer | undefined;
}

/**
 * Takes a blob's bytes while it downloads ({@link DownloadOptions.consumer}). A download that
 * breaks off is resumed where it stopped, which the consumer does not notice; one the registry
 * will not resume starts again from byte 0, after {@link BlobConsumer.restart}. Whether the
 * bytes were the right ones is known only when `downloadBlob` resolves.
 */
export interface BlobConsumer {
  /** The next bytes. A promise holds the download back until it settles; a rejection fails it. */
  write(chunk: Buffer): Promise<void> | undefined;
  /** Forget every byte so far: the blob comes again from its start. */
  restart(): Promise<void>;
}

async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) throw new AbortError(signal.reason);
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', abort);
      resolve();
    }, ms);
    const abort = (): void => {
      clearTimeout(t);
      reject(new AbortError(signal?.reason));
    };
    signal?.addEventListener('abort', abort, { once: true });
  });
}

/** A consumer's error, told apart from the body's (which is retried). */
class ConsumerFailure {
  constructor(readonly error: unknown) {}
}

function consume(consumer: BlobConsumer | undefined, chunk: Buffer): Promise<void> | undefined {
  if (!consumer) return undefined;
  try {
    return consumer.write(chunk)?.catch((e: unknown) => {
      throw new ConsumerFailure(e);
    });
  } catch (e) {
    throw new ConsumerFailure(e);
  }
}

function retryable(e: unknown): boolean {
  return e instanceof RegistryError && (e.code === 'ERR_REGISTRY_UNREACHABLE' || e.code === 'ERR_REGISTRY_TIMEOUT' || e.code === 'ERR_REGISTRY_TRUNCATED');
}

/**
 * A blob being downloaded into a file: hashed in order, handed to the consumer, and written
 * 1 MiB at a time (one write per 16 KiB socket read was a thread-pool round trip each), with
 * one writev, no copy into one buffer first.
 */
class BlobFile {
  private hash = createHash('sha256');
  /** Bytes received (and hashed) so far. */
  received = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly fh: FileHandle,
    private readonly consumer: BlobConsumer | undefined,
  ) {}

  /** Takes the next chunk; a promise holds the download back until the file write and the consumer let it go on. */
  add(b: Buffer): Promise<unknown> | undefined {
    this.hash.update(b);
    this.received += b.length;
    this.pending.push(b);
    this.pendingBytes += b.length;
    // The consumer and the file write run side by side; both hold the download back.
    const consumed = consume(this.consumer, b);
    const flushed = this.pendingBytes >= WRITE_BATCH ? this.flush() : undefined;
    return consumed || flushed ? Promise.all([consumed, flushed]) : undefined;
  }

  async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const chunks = this.pending;
    const bytes = this.pendingBytes;
    const at = this.received - bytes;
    this.pending = [];
    this.pendingBytes = 0;
    const { bytesWritten } = await this.fh.writev(chunks, at);
    if (bytesWritten < bytes) {
      const rest = Buffer.concat(chunks).subarray(bytesWritten);
      for (let off = 0; off < rest.length; ) off += (await this.fh.write(rest, off, rest.length - off, at + bytesWritten + off)).bytesWritten;
    }
  }

  /** The blob starts again from byte 0 (a registry that will not resume). */
  async restart(): Promise<void> {
    this.hash = createHash('sha256');
    this.received = 0;
    this.pending = [];
    this.pendingBytes = 0;
    await this.fh.truncate(0);
    await this.consumer?.restart();
  }

  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }

  sync(): Promise<void> {
    return this.fh.sync();
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

/**
 * A client of one registry. How it wants auth is learnt from the `/v2/`
 * ping; `Authorization` goes only to the registry's own host and its token realm.
 */
export class RegistryClient {
  /** The registry host as in references (`docker.io`, `127.0.0.1:5000`). */
  readonly registry: string;
  /** `https://host` or `http://host`. */
  readonly baseUrl: string;
  private readonly auth: RegistryAuth;
  private pinged = false;
  private readonly retries: number;
  private readonly retryDelay: number;
  private readonly idleTimeout: number;

  /**
   * @param registry - host[:port] as in an image reference
   * @param options - credentials, insecure, retries, timeouts
   */
  constructor(registry: string, options: RegistryClientOptions = {}) {
    this.registry = registry;
    const host = registry === DEFAULT_REGISTRY ? 'registry-1.docker.io' : registry;
    // Plain HTTP only where nobody else can listen in: loopback, or where the caller said so.
    const plain = options.insecure === true || isLoopback(host);
    this.baseUrl = `${plain ? 'http' : 'https'}://${host}`;
    this.retries = options.retries ?? 3;
    this.retryDelay = options.retryDelay ?? 200;
    this.idleTimeout = options.idleTimeout ?? 30_000;
    this.auth = new RegistryAuth(registry, { ...options, idleTimeout: this.idleTimeout });
  }

  /** `GET /v2/`: checks the registry speaks the v2 API and learns how it wants auth. */
  async ping(options: RequestOptions = {}): Promise<void> {
    const ex = await this.send('/v2/', undefined, {}, options.signal);
    ex.response.body?.resume();
    ex.done();
    this.pinged = true;
    if (!ex.response.ok)
      throw new RegistryError('ERR_REGISTRY_HTTP', `${this.baseUrl}/v2/ answered ${ex.response.status}`, { status: ex.response.status, url: ex.url });
  }

  /**
   * Sends a request with auth, answering one 401 with a fresh challenge, and retrying
   * connection failures, 5xx and 429 with exponential backoff. Returns any other status.
   */
  private async send(path: string, scope: string | undefined, headers: Record<string, string>, signal?: AbortSignal): Promise<Exchange> {
    let reauthed = false;
    for (let attempt = 0; ; attempt++) {
      const h: Record<string, string> = { 'User-Agent': 'ctrkit', ...headers };
      const auth = await this.auth.authorization(scope, signal);
      if (auth) h.Authorization = auth;
      let ex: Exchange;
      try {
        ex = await exchange(`${this.baseUrl}${path}`, { headers: h, signal, idleTimeout: this.idleTimeout });
      } catch (e) {
        if (retryable(e) && attempt < this.retries) {
          log('retry %s after %s', path, (e as Error).message);
          await sleep(this.retryDelay * 2 ** attempt, signal);
          continue;
        }
        throw e;
      }
      const status = ex.response.status;
      if (status === 401) {
        ex.response.body?.resume();
        ex.done();
        const challenges = parseWwwAuthenticate(ex.response.headers.get('www-authenticate') ?? '');
        const next = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
        if (!reauthed && next) {
          reauthed = true;
          this.auth.challenged(next);
          continue;
        }
        throw new RegistryError('ERR_REGISTRY_AUTH', `${this.registry} refused ${auth ? 'the credentials' : 'anonymous access'} for ${path}`, {
          status,
          url: ex.url,
        });
      }
      if ((status >= 500 || status === 429) && attempt < this.retries) {
        ex.response.body?.resume();
        ex.done();
        const after = Number(ex.response.headers.get('retry-after'));
        log('retry %s after HTTP %d', path, status);
        await sleep(Number.isFinite(after) && after > 0 ? Math.min(after * 1000, 10_000) : this.retryDelay * 2 ** attempt, signal);
        continue;
      }
      return ex;
    }
  }

  private async ensurePinged(signal?: AbortSignal): Promise<void> {
    // Learning the challenge first saves every later request its anonymous 401 round trip.
    if (!this.pinged) await this.ping({ signal });
  }

  private async failOnStatus(ex: Exchange, what: string): Promise<void> {
    const status = ex.response.status;
    if (status >= 200 && status < 300) return;
    const body = (await readLimited(ex, 64 * 1024).catch(() => Buffer.alloc(0))).toString('utf8').slice(0, 300);
    if (status === 404)
      throw new RegistryError('ERR_REGISTRY_NOT_FOUND', `${what} not found on ${this.registry}${body ? `: ${body}` : ''}`, { status, url: ex.url });
    throw new RegistryError('ERR_REGISTRY_HTTP', `${what}: ${this.registry} answered ${status}${body ? `: ${body}` : ''}`, { status, url: ex.url });
  }

  /**
   * Fetches and checks a manifest or index. Pulled by digest, its bytes must hash to it.
   * @param repository - `library/busybox`
   * @param reference - a tag or a digest
   */
  async getManifest(repository: string, reference: string, options: RequestOptions = {}): Promise<ManifestDocument> {
    await this.ensurePinged(options.signal);
    const what = `manifest ${repository}:${reference}`;
    const ex = await this.send(`/v2/${repository}/manifests/${reference}`, `repository:${repository}:pull`, { Accept: MANIFEST_ACCEPT }, options.signal);
    await this.failOnStatus(ex, what);
    const bytes = await readLimited(ex, MAX_DOCUMENT_BYTES);
    const digest = sha256Of(bytes);
    if (reference.includes(':') && reference !== digest) throw new DigestMismatchError(what, reference, digest);
    return parseManifestDocument(bytes, ex.response.headers.get('content-type') ?? undefined, digest);
  }

  /** Fetches a small blob (an image config) into memory, checking its size and digest. */
  async getBlob(repository: string, descriptor: Descriptor, options: RequestOptions = {}): Promise<Buffer> {
    await this.ensurePinged(options.signal);
    if (descriptor.size > MAX_DOCUMENT_BYTES) throw new RegistryError('ERR_REGISTRY_PROTOCOL', `blob ${descriptor.digest} is too large to read into memory`);
    const ex = await this.send(`/v2/${repository}/blobs/${descriptor.digest}`, `repository:${repository}:pull`, {}, options.signal);
    await this.failOnStatus(ex, `blob ${descriptor.digest}`);
    const bytes = await readLimited(ex, descriptor.size);
    const digest = sha256Of(bytes);
    if (digest !== descriptor.digest) throw new DigestMismatchError(`blob ${repository}@${descriptor.digest}`, descriptor.digest, digest);
    return bytes;
  }

  /**
   * Streams a blob into `file` (created or truncated), hashing it on the way. A body that
   * breaks off is resumed with `Range: bytes=N-` where the registry honours it (206 with a
   * matching Content-Range), else fetched again from byte 0. The file is fsynced. Nothing
   * says the file is good until this resolves: the caller renames it into place only then.
   * @throws {@link DigestMismatchError} when the bytes do not hash to the digest
   * @throws {@link RegistryError} `ERR_REGISTRY_TRUNCATED` when the blob stays short after every retry
   */
  async downloadBlob(repository: string, descriptor: Descriptor, file: string, options: DownloadOptions = {}): Promise<void> {
    await this.ensurePinged(options.signal);
    const { digest, size } = descriptor;
    const blob = new BlobFile(await open(file, 'w', 0o644), options.consumer);
    try {
      for (let attempt = 0; ; attempt++) {
        const headers: Record<string, string> = blob.received > 0 ? { Range: `bytes=${blob.received}-` } : {};
        const ex = await this.send(`/v2/${repository}/blobs/${digest}`, `repository:${repository}:pull`, headers, options.signal);
        await this.failOnStatus(ex, `blob ${digest}`);
        if (blob.received > 0 && !this.resumes(ex, blob.received)) {
          log('blob %s: no resume from %d, starting over', digest, blob.received);
          await blob.restart();
        }
        try {
          for await (const chunk of ex.response.body as Readable) {
            ex.touch();
            const b = chunk as Buffer;
            if (blob.received + b.length > size)
              throw new DigestMismatchError(`blob ${repository}@${digest}`, digest, `more than the ${size} bytes its descriptor says`);
            const taken = blob.add(b);
            if (taken) await taken;
            options.onBytes?.(blob.received);
          }
          await blob.flush();
        } catch (e) {
          if (options.signal?.aborted) throw new AbortError(options.signal.reason);
          if (e instanceof DigestMismatchError) throw e;
          if (e instanceof ConsumerFailure) throw e.error; // the consumer's own failure: not the body's, not retried
          await blob.flush(); // what arrived is good (hashed in order): keep it for the resume
          const err = bodyError(ex, e);
          if (attempt >= this.retries) throw err;
          log('blob %s broke off at %d: %s', digest, blob.received, err.message);
          await sleep(this.retryDelay * 2 ** attempt, options.signal);
          continue;
        } finally {
          ex.done();
        }
        if (blob.received === size) break;
        if (attempt >= this.retries) {
          throw new RegistryError('ERR_REGISTRY_TRUNCATED', `blob ${digest} ended after ${blob.received} of ${size} bytes`, { url: ex.url });
        }
        await sleep(this.retryDelay * 2 ** attempt, options.signal);
      }
      const actual = blob.digest();
      if (actual !== digest) throw new DigestMismatchError(`blob ${repository}@${digest}`, digest, actual);
      await blob.sync();
    } finally {
      await blob.close();
    }
  }

  /** True when a ranged answer continues exactly at `from`. */
  private resumes(ex: Exchange, from: number): boolean {
    if (ex.response.status !== 206) return false;
    const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(ex.response.headers.get('content-range') ?? '');
    return m !== null && Number(m[1]) === from;
  }
}
