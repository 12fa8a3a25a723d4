import { CtrkitError } from '../errors.js';

/** The registry a reference without a domain refers to. */
export const DEFAULT_REGISTRY = 'docker.io';
const MAX_NAME = 255;
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;

/** An image reference that does not follow the grammar. `code` is `ERR_INVALID_REFERENCE`. */
export class ImageReferenceError extends CtrkitError {
  /** Always `ERR_INVALID_REFERENCE`. */
  declare readonly code: 'ERR_INVALID_REFERENCE';
  /** The text that was parsed. */
  readonly reference: string;
  /** @internal */
  constructor(reference: string, why: string) {
    super('ERR_INVALID_REFERENCE', `invalid image reference "${reference}": ${why}`);
    this.reference = reference;
  }
}

/** A parsed, normalized image reference: `registry/repository[:tag][@digest]`. */
export class ImageReference {
  /** @internal */
  constructor(
    /** The registry host, with port: `docker.io`, `127.0.0.1:5000`. */
    readonly registry: string,
    /** The repository path: `library/busybox`, `team/app`. */
    readonly repository: string,
    /** The tag, when given (and `latest` when neither tag nor digest was). */
    readonly tag: string | undefined,
    /** The digest, when given: `sha256:...`. */
    readonly digest: string | undefined,
  ) {}

  /** The fully qualified form, e.g. `docker.io/library/busybox:latest`. */
  toString(): string {
    return `${this.registry}/${this.repository}${this.tag ? `:${this.tag}` : ''}${this.digest ? `@${this.digest}` : ''}`;
  }

  /** What to ask the registry's manifest endpoint for: the digest when pinned, else the tag. */
  get manifestRef(): string {
    return this.digest ?? this.tag ?? 'latest';
  }
}

function isDomain(first: string): boolean {
  return first === 'localhost' || first.includes('.') || first.includes(':') || first !== first.toLowerCase();
}

/**
 * Parses an image reference with the grammar of the distribution project: `busybox`,
 * `library/busybox:1.36`, `registry:5000/a/b@sha256:...`. Docker Hub defaults apply
 * (`docker.io`, the `library/` namespace, tag `latest`).
 * @throws {@link ImageReferenceError} naming what is wrong
 */
export function parseReference(text: string): ImageReference {
  if (typeof text !== 'string' || text === '') throw new ImageReferenceError(String(text), 'empty');
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new ImageReferenceError(text, `bad digest "${digest}"`);
    if (digest.startsWith('sha256:') && !/^sha256:[a-f0-9]{64}$/.test(digest))
      throw new ImageReferenceError(text, 'a sha256 digest is 64 lowercase hex digits');
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new ImageReferenceError(text, `bad tag "${tag}"`);
  }
  if (rest.length > MAX_NAME) throw new ImageReferenceError(text, `name longer than ${MAX_NAME} characters`);
  const parts = rest.split('/');
  let registry = DEFAULT_REGISTRY;
  if (parts.length > 1 && isDomain(parts[0]!)) {
    registry = parts.shift()!;
    const [host = '', port] = registry.split(':');
    const hostOk = host.startsWith('[') ? /^\[[0-9a-fA-F:]+\]$/.test(host) : host.split('.').every((c) => DOMAIN_COMPONENT.test(c));
    if (!hostOk || (port !== undefined && !/^\d{1,5}$/.test(port))) throw new ImageReferenceError(text, `bad registry "${registry}"`);
  }
  for (const c of parts) {
    if (!COMPONENT.test(c)) {
      throw new ImageReferenceError(text, `bad path component "${c}" (lowercase letters, digits and separators . _ __ - only)`);
    }
  }
  if (registry === 'index.docker.io') registry = DEFAULT_REGISTRY;
  if (registry === DEFAULT_REGISTRY && parts.length === 1) parts.unshift('library');
  if (!tag && !digest) tag = 'latest';
  return new ImageReference(registry, parts.join('/'), tag, digest);
}
