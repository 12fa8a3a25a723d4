export { Container } from './container.js';
export type { RunOptions, RunResult } from './options.js';
export { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from './security.js';
export { RunningContainer, type ContainerExit, type ExecOptions } from './running.js';
export type { ResourceLimits, DeviceRate } from './limits.js';
export { defaultStateDir, type ContainerLayer } from './writable-root.js';
export type { PruneOptions, PruneResult } from './prune.js';
