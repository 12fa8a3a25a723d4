/**
 * The messages between the main thread and an unpack worker (see worker-pool.ts), and how an
 * error crosses the thread boundary with its class and fields.
 * @internal
 */
import { AbortError } from '../../errors.js';
import { SysError } from '../../sys/sys-error.js';
import { DigestMismatchError, ImageStoreError, ManifestError, UnsafeLayerError } from '../errors.js';
import type { UnpackOptions, UnpackResult } from './layer-writer.js';

/** Main thread → worker. `id` names the job; messages of a job that is over are ignored. */
export type ToWorker =
  | { readonly op: 'start'; readonly id: number; readonly target: string; readonly options: Omit<UnpackOptions, 'signal'> }
  | { readonly op: 'data'; readonly id: number; readonly chunk: Uint8Array }
  | { readonly op: 'end'; readonly id: number }
  | { readonly op: 'destroy'; readonly id: number };

/** Worker → main thread. */
export type FromWorker =
  | { readonly op: 'ack'; readonly id: number; readonly bytes: number }
  | { readonly op: 'done'; readonly id: number; readonly result: UnpackResult }
  | { readonly op: 'destroyed'; readonly id: number }
  | { readonly op: 'error'; readonly id: number; readonly error: SerializedError };

/** An error as it crosses threads: its class name, message, stack and primitive fields. */
export interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly stack: string | undefined;
  readonly fields: Record<string, string | number | boolean | undefined>;
}

export function serializeError(e: unknown): SerializedError {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e), stack: undefined, fields: {} };
  const fields: SerializedError['fields'] = {};
  for (const [k, v] of Object.entries(e)) {
    if (v === undefined || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') fields[k] = v;
  }
  return { name: e.name, message: e.message, stack: e.stack, fields };
}

/** The classes an unpack can throw, rebuilt as themselves so that `instanceof` and `code` hold. */
const CLASSES: Record<string, { prototype: Error }> = {
  UnsafeLayerError,
  DigestMismatchError,
  ManifestError,
  ImageStoreError,
  SysError,
  AbortError,
};

export function reviveError(s: SerializedError): Error {
  const cls = CLASSES[s.name];
  const e = cls ? (Object.create(cls.prototype) as Error) : new Error(s.message);
  Object.assign(e, s.fields);
  Object.defineProperty(e, 'message', { value: s.message, writable: true, configurable: true, enumerable: false });
  Object.defineProperty(e, 'name', { value: s.name, writable: true, configurable: true, enumerable: false });
  Object.defineProperty(e, 'stack', { value: s.stack ?? `${s.name}: ${s.message}`, writable: true, configurable: true, enumerable: false });
  return e;
}
