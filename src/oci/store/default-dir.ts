/** Where an image store lives when the caller does not say. */
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * The default image store directory: `$CTRKIT_IMAGES` when set; else `/var/lib/ctrkit/images`
 * for root (like `/var/lib/docker`), and `$XDG_DATA_HOME/ctrkit/images` (or
 * `~/.local/share/ctrkit/images`) for anyone else.
 */
export function defaultImageStoreDir(): string {
  if (process.env.CTRKIT_IMAGES) return process.env.CTRKIT_IMAGES;
  if (process.getuid?.() === 0) return '/var/lib/ctrkit/images';
  return join(process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'ctrkit', 'images');
}
