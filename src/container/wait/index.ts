export { Wait, type HttpWaitOptions, type PollOptions } from './strategies.js';
export type { WaitStrategy } from './strategy.js';
export { StartupError, type StartupErrorCode } from './errors.js';
