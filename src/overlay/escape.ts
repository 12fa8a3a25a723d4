/**
 * Escaping of paths for overlayfs's options, as Linux 6.18 parses them (the tests check
 * each case on the real kernel):
 *
 * - `upperdir` and `workdir` lose one backslash before any character, whichever API
 *   delivered them — so a literal `\` must be doubled even with fsconfig;
 * - a `lowerdir+` value is taken verbatim (one path per call: nothing to split);
 * - the legacy option string is split on `,` (between options) and `:` (between lowers),
 *   so there `\`, `,` and `:` are all escaped with a backslash.
 * @internal
 */

/** An upperdir/workdir value for fsconfig: only the backslash is special. */
export function escapeUpperForFsconfig(path: string): string {
  return path.replace(/\\/g, '\\\\');
}

/** A value inside the legacy `lowerdir=...,upperdir=...` string: `\`, `:` and `,` escaped. */
export function escapeForOptionString(path: string): string {
  return path.replace(/[\\:,]/g, (c) => `\\${c}`);
}
