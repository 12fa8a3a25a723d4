/**
 * A container joining a named network: after its address is known and its own /etc files
 * are written, it becomes a member (every member's hosts file then lists it), and leaving is
 * part of its release.
 * @internal
 */
import { readFile } from 'node:fs/promises';
import type { Network } from '../network/index.js';
import { leaveNetwork } from '../network/network.js';
import { identify } from '../sys/liveness.js';
import { ContainerError } from './errors.js';
import type { ContainerParts } from './local.js';

/** Who joins. @internal */
export interface Joining {
  readonly id: string;
  readonly hostname: string;
  readonly name: string | undefined;
  readonly aliases: readonly string[];
  readonly address: string;
  /** The container's init on the host. */
  readonly pid: number;
}

/** Makes the container a member of `net`; `parts.membership` then knows how to leave. @internal */
export async function joinNetwork(net: Network, parts: ContainerParts, who: Joining): Promise<void> {
  const hostsFile = parts.etc!.hostsFile;
  const init = identify(who.pid);
  if (!init) throw new ContainerError('ERR_CONTAINER_NOT_RUNNING', `container ${who.id.slice(0, 12)} exited while joining network ${net.name}`);
  const baseHosts = await readFile(hostsFile, 'utf8');
  let left: Promise<void> | undefined;
  parts.membership = { leave: () => (left ??= leaveNetwork(net.stateDir, net.name, who.id)) };
  await net.join({ id: who.id, address: who.address, hostname: who.hostname, name: who.name, aliases: who.aliases, hostsFile, baseHosts, init });
}
