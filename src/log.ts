import { createRequire } from 'node:module';

/** A debug logger: printf-style, like the `debug` package's. @internal */
export type Logger = (formatter: string, ...args: unknown[]) => void;

type DebugFactory = (namespace: string) => Logger;
let factory: DebugFactory | undefined;

/**
 * A logger for `namespace` (`DEBUG=ctrkit:*` shows them all) backed by the `debug` package,
 * which is only loaded once `DEBUG` is set: importing it costs more than a container's init
 * stage does for most of its steps, and nearly every ctrkit process runs with logging off.
 * @internal
 */
export function logger(namespace: string): Logger {
  let log: Logger | undefined;
  return (formatter, ...args) => {
    if (!log) {
      if (!process.env.DEBUG) return;
      factory ??= createRequire(import.meta.url)('debug') as DebugFactory;
      log = factory(namespace);
    }
    log(formatter, ...args);
  };
}
