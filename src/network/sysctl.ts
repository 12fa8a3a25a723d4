/**
 * Network sysctls of one namespace. /proc/sys/net is resolved against the network namespace
 * of the thread that opens the file, so the write happens inside {@link NetworkNamespace.runSync}.
 * @internal
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { NetworkNamespace } from './netns.js';

/** Writes `/proc/sys/net/<key>` (e.g. `ipv4/ip_forward`) in `netns`; returns the previous value. */
export function writeNetSysctl(netns: NetworkNamespace, key: string, value: string): string {
  return netns.runSync(() => {
    const path = `/proc/sys/net/${key}`;
    const before = readFileSync(path, 'utf8').trim();
    if (before !== value) writeFileSync(path, value);
    return before;
  });
}
