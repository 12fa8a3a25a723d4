/**
 * Reading registry response bodies: whole small documents with a size cap, and the error a
 * body that stops or breaks off becomes.
 * @internal
 */
import type { Readable } from 'node:stream';
import { RegistryError } from '../errors.js';
import type { Exchange } from './transport.js';

/** Reads a whole body, refusing more than `limit` bytes. */
export async function readLimited(ex: Exchange, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of ex.response.body as Readable) {
      ex.touch();
      total += (chunk as Buffer).length;
      if (total > limit) throw new RegistryError('ERR_REGISTRY_PROTOCOL', `${ex.url}: document larger than ${limit} bytes`, { url: ex.url });
      chunks.push(chunk as Buffer);
    }
  } catch (e) {
    if (e instanceof RegistryError) throw e;
    throw bodyError(ex, e);
  } finally {
    ex.done();
  }
  return Buffer.concat(chunks);
}

export function bodyError(ex: Exchange, e: unknown): RegistryError {
  if (ex.timedOut()) return new RegistryError('ERR_REGISTRY_TIMEOUT', `${ex.url}: the body stopped flowing`, { url: ex.url, cause: e });
  return new RegistryError('ERR_REGISTRY_TRUNCATED', `${ex.url}: the body broke off: ${(e as Error).message}`, { url: ex.url, cause: e });
}
