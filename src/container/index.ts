export { Container, type LookupOptions } from './container.js';
export { ContainerPool, type PrewarmOptions, type PoolRunOptions } from './prewarm.js';
export type { RunOptions, RunResult, HealthcheckOptions } from './options.js';
export { Wait, StartupError, type WaitStrategy, type HttpWaitOptions, type PollOptions, type StartupErrorCode } from './wait/index.js';
export type { HealthState, HealthLogEntry } from './health.js';
export { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, DEFAULT_PIDS_LIMIT } from './security.js';
export {
  RunningContainer,
  type ContainerExit,
  type ExecOptions,
  type ExecResult,
  type LogsOptions,
  type ContainerInfo,
} from './running.js';
export type { ResourceLimits, DeviceRate } from './limits.js';
export { defaultStateDir, type ContainerLayer } from './writable-root.js';
export type { PruneOptions, PruneResult } from './prune.js';
export { ContainerError, CopyError, type ContainerErrorCode, type CopyErrorReason } from './errors.js';
export type { ContainerStatus } from './state/record.js';
export { defaultStateRoot } from './state/store.js';
export type { LogLine, LogStream, ReadLogsOptions } from './logs/index.js';
export type { CopyToOptions, CopyFromOptions } from './copy.js';
