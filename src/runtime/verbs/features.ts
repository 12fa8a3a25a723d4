/** `features`: what this runtime supports, as the runtime-spec's features document. @internal */
import { writeSync } from 'node:fs';
import { FEATURES } from '../features.js';

export default function features(): number {
  writeSync(1, `${JSON.stringify(FEATURES, null, 2)}\n`);
  return 0;
}
