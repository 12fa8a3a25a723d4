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

