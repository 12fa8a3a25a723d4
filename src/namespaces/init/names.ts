/**
 * Hostname, NIS domain name and loopback of new UTS and network namespaces: the same steps
 * whichever start path made them (the init stage, or the thread path's builder).
 * @internal
 */
import { sethostname, setdomainname } from '../../sys/libc.js';
import type { StageConfig } from './config.js';
import { bringLoopbackUp } from './loopback.js';
import type { StepTracker } from './rootfs.js';

/** Names the new UTS namespace and brings up `lo` in the new network namespace. */
export function setUpNamesAndLoopback(config: StageConfig, step: StepTracker): void {
  if (config.hostname !== undefined) {
    step('hostname');
    sethostname(config.hostname);
  }
  if (config.domainname !== undefined) {
    step('domainname');
    setdomainname(config.domainname);
  }
  if (config.namespaces.includes('net')) {
    step('loopback');
    bringLoopbackUp();
  }
}
