/**
 * `ctrkit monitor [--port N] [--host H]`: serves the running containers' metrics until
 * interrupted, like `docker run -p 8080:8080 google/cadvisor`.
 * @internal
 */
import { parseArgs } from 'node:util';

/** `ctrkit monitor`. */
export async function monitor(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { port: { type: 'string', short: 'p' }, host: { type: 'string' } } });
  const port = values.port === undefined ? 8080 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw Object.assign(new Error(`--port ${values.port}: expected a port number`), { code: 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' });
  }
  const { startMonitor } = await import('../monitor/index.js');
  const abort = new AbortController();
  const m = await startMonitor({ port, host: values.host, signal: abort.signal });
  process.stdout.write(`ctrkit monitor: ${m.url} (metrics at ${m.url}metrics); Ctrl-C stops it\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  abort.abort();
  await m.close();
  return 0;
}
