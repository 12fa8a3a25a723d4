/**
 * Hostname, NIS domain name and loopback of new UTS and network namespaces: the same steps
 * whichever start path made them (the init stage, or the thread path's builder).
 * @internal
 */
import { writeFileSync } from 'node:fs';
import { sethostname, setdomainname } from '../../sys/libc.js';
import type { StageConfig } from './config.js';
import { bringLoopbackUp } from './loopback.js';
import type { StepTracker } from './rootfs.js';

/** Names the new UTS namespace, brings up `lo` in the new network namespace and writes the sysctls. */
export function setUpNamesAndLoopback(config: StageConfig, step: StepTracker, loopbackIsUp = false): void {
  if (config.hostname !== undefined) {
    step('hostname');
    sethostname(config.hostname);
  }
  if (config.domainname !== undefined) {
    step('domainname');
    setdomainname(config.domainname);
  }
  if (config.namespaces.includes('net') && !config.joinPaths?.net && !loopbackIsUp) {
    step('loopback');
    bringLoopbackUp();
  }
  if (config.sysctl) {
    // Network and IPC parameters belong to the namespaces of the thread that writes them:
    // this one stands in the container's. The caller checked that each is namespaced.
    step('sysctl');
    for (const [key, value] of Object.entries(config.sysctl)) writeFileSync(`/proc/sys/${key.replaceAll('.', '/')}`, value);
  }
}
