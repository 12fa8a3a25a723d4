/**
 * What every command of the runtime is given besides its command line.
 * @internal
 */
import type { RuntimeLog } from './log.js';

export interface Context {
  /** `--root`: where containers' state lives. */
  readonly root: string;
  readonly log: RuntimeLog;
  /** `--systemd-cgroup`: cgroupsPath is `slice:prefix:name` (systemd itself is not asked). */
  readonly systemdCgroup: boolean;
}
