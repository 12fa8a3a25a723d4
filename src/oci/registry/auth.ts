/**
 * Registry auth: answers the registry's `WWW-Authenticate` challenge with Basic credentials
 * or a Bearer token from its token service (distribution's token spec), tokens cached per
 * scope and renewed shortly before they expire.
 * @internal
 */
import { logger } from '../../log.js';
import { RegistryError } from '../errors.js';
import { readLimited } from './body.js';
import { dockerConfigCredentials, type Credentials } from './credentials.js';
import { exchange, isLoopback } from './transport.js';
import type { Challenge } from './www-authenticate.js';

const log = logger('ctrkit:oci');
/** A token without expires_in lives 60 s (distribution's token spec). */
const DEFAULT_TOKEN_SECONDS = 60;
/** Tokens are renewed this long before they expire, so none expires mid-request. */
const TOKEN_MARGIN_MS = 5_000;

interface CachedToken {
  readonly value: string;
  readonly expires: number;
}

/** Where credentials come from, and how the token service may be reached. */
export interface AuthOptions {
  readonly credentials?: Credentials | undefined;
  readonly dockerConfig?: string | false | undefined;
  readonly insecure?: boolean | undefined;
  readonly idleTimeout: number;
}

/** The auth state of one registry client. */
export class RegistryAuth {
  private challenge: Challenge | undefined;
  private credentials: Promise<Credentials | undefined> | undefined;
  private readonly tokens = new Map<string, CachedToken>();

  constructor(
    private readonly registry: string,
    private readonly options: AuthOptions,
  ) {}

  /** A 401 brought this challenge: use it from now on, with fresh tokens (the old ones were refused). */
  challenged(challenge: Challenge): void {
    this.challenge = challenge;
    this.tokens.clear();
  }

  private creds(): Promise<Credentials | undefined> {
    this.credentials ??= this.options.credentials
      ? Promise.resolve(this.options.credentials)
      : this.options.dockerConfig === false
        ? Promise.resolve(undefined)
        : dockerConfigCredentials(this.registry, this.options.dockerConfig);
    return this.credentials;
  }

  private static basic(c: Credentials): string {
    return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
  }

  /** The `Authorization` header for a request needing `scope`, or undefined before any challenge. */
  async authorization(scope: string | undefined, signal?: AbortSignal): Promise<string | undefined> {
    const ch = this.challenge;
    if (!ch) return undefined;
    if (ch.scheme === 'basic') {
      const c = await this.creds();
      if (!c)
        throw new RegistryError(
          'ERR_REGISTRY_AUTH',
          `${this.registry} asks for a user name and password, and none were given (credentials, or ~/.docker/config.json)`,
        );
      return RegistryAuth.basic(c);
    }
    if (ch.scheme !== 'bearer') throw new RegistryError('ERR_REGISTRY_AUTH', `${this.registry} asks for unsupported auth scheme "${ch.scheme}"`);
    const realm = ch.params.realm;
    if (!realm) throw new RegistryError('ERR_REGISTRY_AUTH', `${this.registry}: Bearer challenge without a realm`);
    const wanted = scope ?? ch.params.scope;
    const key = `${realm} ${ch.params.service ?? ''} ${wanted ?? ''}`;
    const cached = this.tokens.get(key);
    if (cached && cached.expires - TOKEN_MARGIN_MS > Date.now()) return `Bearer ${cached.value}`;
    const token = await this.fetchToken(realm, ch.params.service, wanted, signal);
    this.tokens.set(key, token);
    return `Bearer ${token.value}`;
  }

  private async fetchToken(realm: string, service: string | undefined, scope: string | undefined, signal?: AbortSignal): Promise<CachedToken> {
    const url = new URL(realm);
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && (isLoopback(url.host) || this.options.insecure))) {
      throw new RegistryError('ERR_REGISTRY_INSECURE', `token realm ${realm} is plain HTTP; credentials are not sent there`);
    }
    if (service) url.searchParams.set('service', service);
    if (scope) url.searchParams.set('scope', scope);
    const c = await this.creds();
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (c) headers.Authorization = RegistryAuth.basic(c);
    log('token %s', url.href);
    const ex = await exchange(url.href, { headers, signal, idleTimeout: this.options.idleTimeout });
    const body = await readLimited(ex, 1024 * 1024);
    if (!ex.response.ok) {
      throw new RegistryError('ERR_REGISTRY_AUTH', `token service ${url.origin}${url.pathname} answered ${ex.response.status} for scope ${scope ?? '(none)'}`, {
        status: ex.response.status,
        url: url.href,
      });
    }
    let parsed: { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
    try {
      parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
    } catch (e) {
      throw new RegistryError('ERR_REGISTRY_AUTH', `token service ${url.origin} sent no JSON`, { url: url.href, cause: e });
    }
    const value = parsed.token ?? parsed.access_token;
    if (!value) throw new RegistryError('ERR_REGISTRY_AUTH', `token service ${url.origin} sent no token`, { url: url.href });
    const seconds = typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : DEFAULT_TOKEN_SECONDS;
    // Counted from issued_at when the server says (never later than now: a skewed clock must not extend it).
    const issued = parsed.issued_at ? Date.parse(parsed.issued_at) : NaN;
    return { value, expires: (Number.isFinite(issued) ? Math.min(issued, Date.now()) : Date.now()) + seconds * 1000 };
  }
}
