import { CtrkitError } from '../../errors.js';
import type { ContainerExit } from '../local.js';

/** The codes of {@link StartupError}. */
export type StartupErrorCode = 'ERR_STARTUP_TIMEOUT' | 'ERR_STARTUP_EXITED' | 'ERR_STARTUP_FAILED';

/**
 * A container never got ready: it exited first (`ERR_STARTUP_EXITED`), the startup timeout
 * passed (`ERR_STARTUP_TIMEOUT`), or the wait strategy gave up (`ERR_STARTUP_FAILED`, e.g. it
 * became unhealthy). The container was removed; its last log lines are in `logs`.
 */
export class StartupError extends CtrkitError {
  declare readonly code: StartupErrorCode;
  /** The container's id. */
  readonly containerId: string;
  /** What was waited for. */
  readonly waitedFor: string;
  /** The last lines the container wrote (stdout and stderr), as `docker logs --tail` prints them. */
  readonly logs: string;
  /** How it ended, when it exited by itself. */
  readonly exit: ContainerExit | undefined;

  /** @internal */
  constructor(
    code: StartupErrorCode,
    message: string,
    details: { containerId: string; waitedFor: string; logs: string; exit?: ContainerExit | undefined; cause?: unknown },
  ) {
    super(code, details.logs ? `${message}; its last output:\n${details.logs.trimEnd()}` : `${message} (it wrote nothing)`, { cause: details.cause });
    this.containerId = details.containerId;
    this.waitedFor = details.waitedFor;
    this.logs = details.logs;
    this.exit = details.exit;
  }
}
