/** `spec [--bundle DIR]`: writes a default config.json (refuses to overwrite one). @internal */
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { str, type CommandLine } from '../args.js';
import { RuntimeError } from '../errors.js';
import { defaultSpec } from '../default-spec.js';

export default function spec(cl: CommandLine): number {
  const file = join(resolve(str(cl.flags, 'bundle') ?? '.'), 'config.json');
  if (existsSync(file)) throw new RuntimeError('ERR_RUNTIME_EXISTS', `File ${file} exists. Remove it first`);
  writeFileSync(file, `${JSON.stringify(defaultSpec(), null, '\t')}\n`);
  return 0;
}
