/**
 * ctrkit: Linux containers from the kernel's own parts, as typed pieces that compose.
 *
 * The root entry point holds the high-level {@link Container} API and the shared error
 * types; the building blocks live in subpaths (`ctrkit/namespaces`, `ctrkit/cgroups`,
 * `ctrkit/overlay`, `ctrkit/network`, `ctrkit/oci`).
 * @packageDocumentation
 */
export {
  Container,
  ContainerPool,
  type PrewarmOptions,
  type PoolRunOptions,
  DEFAULT_MASKED_PATHS,
  DEFAULT_READONLY_PATHS,
  DEFAULT_PIDS_LIMIT,
  RunningContainer,
  type RunOptions,
  type RunResult,
  type ContainerExit,
  type ExecOptions,
  type ExecResult,
  type LogsOptions,
  type ContainerInfo,
  type LookupOptions,
  type ResourceLimits,
  type DeviceRate,
  type ContainerLayer,
  defaultStateDir,
  defaultStateRoot,
  type PruneOptions,
  type PruneResult,
  ContainerError,
  type ContainerErrorCode,
  type ContainerStatus,
  type LogLine,
  type LogStream,
  type ReadLogsOptions,
  CopyError,
  type CopyErrorReason,
  type CopyToOptions,
  type CopyFromOptions,
  Wait,
  StartupError,
  type WaitStrategy,
  type HttpWaitOptions,
  type PollOptions,
  type StartupErrorCode,
  type HealthcheckOptions,
  type HealthState,
  type HealthLogEntry,
} from './container/index.js';
export { CtrkitError, InvalidOptionError, AbortError } from './errors.js';
export { OwnerHelperError } from './owner/errors.js';
export type { CtrkitErrorCode, BtrfsErrorCode, MonitorErrorCode } from './error-codes.js';
export { SysError, type ErrnoCode } from './sys/sys-error.js';
export {
  InitError,
  CommandNotFoundError,
  CommandNotExecutableError,
  SpawnError,
  IdMapError,
  NamespacedProcess,
  type ExitStatus,
  type InitStep,
} from './namespaces/index.js';
export {
  defaultRootfs,
  buildRootfs,
  RootfsBuildError,
  type DefaultRootfsOptions,
  type BuildRootfsOptions,
  type RootfsManifest,
  type RootfsKind,
} from './container/rootfs/default-rootfs.js';
