/**
 * Per-container logs in Docker's json-file format: {@link LogWriter} stores a container's
 * output as it is produced, bounded and rotated; {@link readLogLines} and
 * {@link followLogLines} read it back like `docker logs` and `docker logs -f`;
 * {@link formatLogLines} prints it.
 * @module
 */
export { formatLogLines, type FormatLogsOptions, type LogLine, type LogStream } from './format.js';
export type { LogWriterOptions, ReadLogsOptions } from './options.js';
export { LogWriter } from './writer.js';
export { readLogLines } from './reader.js';
export { followLogLines, type FollowLogsOptions } from './follow.js';
