/**
 * The errors of ctrkit's OCI runtime command. Their messages carry the phrases containerd's
 * shim and runtime-tools look for ("does not exist", "container not running").
 * @internal
 */
import { CtrkitError } from '../errors.js';

/** The codes of {@link RuntimeError}. */
export type RuntimeErrorCode =
  /** A command line the runtime does not understand. */
  | 'ERR_RUNTIME_USAGE'
  /** No container with that id under `--root`. */
  | 'ERR_RUNTIME_NOT_FOUND'
  /** A container with that id exists already. */
  | 'ERR_RUNTIME_EXISTS'
  /** The container is in a state the command cannot act on (start of a running one, kill of a stopped one). */
  | 'ERR_RUNTIME_STATE'
  /** The bundle's config.json is missing, malformed, or asks for something invalid. */
  | 'ERR_RUNTIME_CONFIG'
  /** config.json asks for something this runtime does not do (yet). */
  | 'ERR_RUNTIME_UNSUPPORTED'
  /** A hook failed or timed out. */
  | 'ERR_RUNTIME_HOOK';

/** A failure of an OCI runtime command. */
export class RuntimeError extends CtrkitError {
  declare readonly code: RuntimeErrorCode;
  constructor(code: RuntimeErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** `container "ID" does not exist`, as runc words it (the shim matches "does not exist"). */
export function notFound(id: string): RuntimeError {
  return new RuntimeError('ERR_RUNTIME_NOT_FOUND', `container "${id}" does not exist`);
}

/** A config.json field refused, named by its JSON path. */
export function badConfig(field: string, why: string): RuntimeError {
  return new RuntimeError('ERR_RUNTIME_CONFIG', `config.json: ${field}: ${why}`);
}

/** A config.json field this runtime cannot honour, named by its JSON path. */
export function unsupported(field: string, why: string): RuntimeError {
  return new RuntimeError('ERR_RUNTIME_UNSUPPORTED', `config.json: ${field}: ${why}`);
}
