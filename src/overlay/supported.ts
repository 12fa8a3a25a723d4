import { readFile } from 'node:fs/promises';

/** True when the running kernel lists `overlay` in /proc/filesystems. */
export async function overlaySupported(): Promise<boolean> {
  const text = await readFile('/proc/filesystems', 'utf8');
  return text.split('\n').some((l) => l.trim().split(/\s+/).pop() === 'overlay');
}
