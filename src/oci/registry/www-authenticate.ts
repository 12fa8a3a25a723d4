/**
 * Parses a `WWW-Authenticate` header (RFC 7235): `Basic realm="x"` or
 * `Bearer realm="https://auth/token",service="registry",scope="repository:a/b:pull"`.
 * @internal
 */

/** One authentication challenge. */
export interface Challenge {
  /** `basic` or `bearer` (lowercased). */
  readonly scheme: string;
  /** Its parameters, names lowercased. */
  readonly params: Readonly<Record<string, string>>;
}

/** The challenges of a header, in order. */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const out: { scheme: string; params: Record<string, string> }[] = [];
  // Either `name=value` / `name="quoted, value"`, or a bare token (a scheme name).
  const token = /\s*,?\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)(?:\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*)))?/y;
  let m: RegExpExecArray | null;
  while ((m = token.exec(header)) !== null && m[0] !== '') {
    const [, name, quoted, bare] = m;
    const current = out.at(-1);
    if (quoted === undefined && bare === undefined) out.push({ scheme: name!.toLowerCase(), params: {} });
    else if (current) current.params[name!.toLowerCase()] = (quoted ?? bare ?? '').replace(/\\(.)/g, '$1');
  }
  return out;
}
