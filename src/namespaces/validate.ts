import { InvalidOptionError } from '../errors.js';

/** Checks a command array: non-empty strings without NUL. @internal */
export function checkCommand(command: readonly string[] | undefined): void {
  if (!Array.isArray(command) || command.length === 0) throw new InvalidOptionError('command', 'must be a non-empty array of strings');
  command.forEach((a, i) => {
    if (typeof a !== 'string') throw new InvalidOptionError(`command[${i}]`, 'must be a string');
    if (a.includes('\0')) throw new InvalidOptionError(`command[${i}]`, 'must not contain NUL');
  });
  if (command[0] === '') throw new InvalidOptionError('command[0]', 'must not be empty');
}

/** KEY=VALUE strings from an env object, refusing names and values execve cannot carry. @internal */
export function envList(env: Readonly<Record<string, string>>): string[] {
  return Object.entries(env).map(([k, v]) => {
    if (k === '' || k.includes('=') || k.includes('\0')) throw new InvalidOptionError(`env.${k}`, 'invalid variable name');
    if (typeof v !== 'string' || v.includes('\0')) throw new InvalidOptionError(`env.${k}`, 'value must be a string without NUL');
    return `${k}=${v}`;
  });
}

/** Checks the ids of a `user` option; the supplementary groups default to the gid alone. @internal */
export function checkUser(
  user: { readonly uid: number; readonly gid: number; readonly groups?: readonly number[] } | undefined,
): { readonly uid: number; readonly gid: number; readonly groups: readonly number[] } | undefined {
  if (user === undefined) return undefined;
  for (const [k, v] of [['uid', user.uid], ['gid', user.gid], ...(user.groups ?? []).map((g, i) => [`groups[${i}]`, g] as const)] as const) {
    if (!Number.isInteger(v) || (v as number) < 0 || (v as number) >= 0xffffffff)
      throw new InvalidOptionError(`user.${k}`, `must be an id from 0 to 4294967294, got ${String(v)}`);
  }
  return { uid: user.uid, gid: user.gid, groups: user.groups ?? [user.gid] };
}
