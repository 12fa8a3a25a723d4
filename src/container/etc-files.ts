import { rm } from 'node:fs/promises';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { selfIdentity } from '../sys/liveness.js';
import { join } from 'node:path';
import { writeNetworkFiles } from '../network/etc-files.js';
import type { BindMount } from '../namespaces/index.js';

/** The container's /etc/hosts, /etc/hostname and /etc/resolv.conf, kept outside its root. @internal */
export interface EtcFiles {
  /** Their own directory, when they are not inside a writable layer. */
  readonly dir: string | undefined;
  /** The binds that put them in place. */
  readonly binds: readonly BindMount[];
  /** The hosts file on the host (a named network rewrites it in place as members come and go). */
  readonly hostsFile: string;
  /** Rewrites them once the container's address is known (`dns`: its name servers, when not the host's). */
  write(address: string | undefined, dns?: readonly string[]): Promise<void>;
  /** Removes them (unless they live in a kept writable layer, which goes with it). */
  dispose(): Promise<void>;
}

/**
 * Plans the three files in `layerDir/etc` when the container has a writable-layer directory
 * (they then share its fate), else in a directory of their own in `stateDir` (made now).
 * Nothing is written yet: `write(undefined)` writes them, the start's mounts are planned
 * with their paths meanwhile.
 * @internal
 */
export function planEtcFiles(
  layerDir: string | undefined,
  stateDir: string,
  hostname: string,
  hostNetwork: boolean,
  extraHosts: Readonly<Record<string, string>> = {},
): EtcFiles {
  let own: string | undefined;
  if (layerDir === undefined) {
    // Synchronous, like the files themselves (../network/etc-files.ts): a few microseconds each.
    mkdirSync(stateDir, { recursive: true, mode: 0o711 });
    own = mkdtempSync(join(stateDir, 'ctk-etc-'));
    chmodSync(own, 0o755);
    writeFileSync(join(own, 'owner.json'), JSON.stringify(selfIdentity())); // for prune
  }
  const dir = own ?? join(layerDir!, 'etc');
  const write = async (address: string | undefined, dns?: readonly string[]) => {
    await writeNetworkFiles(dir, { hostname, address, keepLoopbackDns: hostNetwork, extraHosts, dns });
  };
  return {
    dir: own,
    binds: [
      { source: join(dir, 'hosts'), target: '/etc/hosts', optional: true },
      { source: join(dir, 'hostname'), target: '/etc/hostname', optional: true },
      { source: join(dir, 'resolv.conf'), target: '/etc/resolv.conf', optional: true },
    ],
    hostsFile: join(dir, 'hosts'),
    write,
    dispose: async () => {
      if (own) await rm(own, { recursive: true, force: true });
    },
  };
}
