import { CtrkitError } from '../errors.js';

/**
 * The monitor could not start or serve: the port is taken (`ERR_MONITOR_LISTEN`), or
 * prom-client, its optional Prometheus encoder, is not installed (`ERR_MONITOR_DEPENDENCY`).
 */
export class MonitorError extends CtrkitError {
  /** @internal */
  constructor(code: 'ERR_MONITOR_LISTEN' | 'ERR_MONITOR_DEPENDENCY', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
