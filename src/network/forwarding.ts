/**
 * `net.ipv4.ip_forward` of a namespace, turned on by ctrkit only when a bridge NATs or a port
 * is published, and turned off again when ctrkit's nftables table goes (nothing of ctrkit's
 * forwards there anymore) — but only if it was ctrkit that turned it on: a marker file in
 * the state directory, per namespace, remembers that. Both run under the NAT lock.
 * @internal
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { logger } from '../log.js';
import type { NetworkNamespace } from './netns.js';
import { writeNetSysctl } from './sysctl.js';

const log = logger('ctrkit:network');
const marker = (netns: NetworkNamespace, stateDir: string) => join(stateDir, `ip_forward-${netns.inode}.ctk`);

/** Turns forwarding on in `netns`, remembering when it was off. @internal */
export function enableForwarding(netns: NetworkNamespace, stateDir: string): void {
  const before = writeNetSysctl(netns, 'ipv4/ip_forward', '1');
  if (before === '0' && !existsSync(marker(netns, stateDir))) writeFileSync(marker(netns, stateDir), '0\n');
}

/** Turns forwarding off again in `netns` if ctrkit turned it on. @internal */
export function restoreForwarding(netns: NetworkNamespace, stateDir: string): void {
  const file = marker(netns, stateDir);
  if (!existsSync(file)) return;
  writeNetSysctl(netns, 'ipv4/ip_forward', '0');
  rmSync(file, { force: true });
  log('ip_forward restored to 0 in %s', netns.path);
}
