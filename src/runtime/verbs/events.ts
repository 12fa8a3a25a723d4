/**
 * `events [--stats] [--interval 5s] ID`: with --stats one stats record, else a record every
 * interval (and one per OOM kill) until the container stops; each `{"type":...,"id":...,"data":...}`
 * on a line of its own.
 * @internal
 */
import { writeSync } from 'node:fs';
import { bool, containerId, str, type CommandLine } from '../args.js';
import type { Context } from '../context.js';
import { RuntimeError } from '../errors.js';
import { readRecord, statusOf } from '../state.js';

/** `5s`, `500ms`, `1m` or plain seconds as milliseconds. */
function interval(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text);
  if (!m) throw new RuntimeError('ERR_RUNTIME_USAGE', `invalid interval "${text}"`);
  const n = Number(m[1]);
  const ms = m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
  if (ms <= 0) throw new RuntimeError('ERR_RUNTIME_USAGE', 'the interval must be positive');
  return ms;
}

export default async function events(cl: CommandLine, ctx: Context): Promise<number> {
  const id = containerId(cl);
  const rec = readRecord(ctx.root, id);
  if (statusOf(ctx.root, rec) === 'stopped') throw new RuntimeError('ERR_RUNTIME_STATE', 'container not running');
  const every = interval(str(cl.flags, 'interval') ?? '5s');
  const [{ openCgroup }, { ociEventJson, ociOomKills, ociStats }] = await Promise.all([import('../cgroup.js'), import('../../cgroups/oci-stats.js')]);
  const cgroup = await openCgroup(rec.cgroupPath);
  const emit = async () => writeSync(1, `${ociEventJson({ type: 'stats', id, data: await ociStats(cgroup) })}\n`);
  if (bool(cl.flags, 'stats')) {
    await emit();
    return 0;
  }
  let ooms = await ociOomKills(cgroup);
  while (statusOf(ctx.root, rec) !== 'stopped') {
    const now = await ociOomKills(cgroup).catch(() => ooms);
    for (; ooms < now; ooms++) writeSync(1, `${ociEventJson({ type: 'oom', id })}\n`);
    await emit().catch(() => undefined);
    await new Promise((r) => setTimeout(r, every));
  }
  return 0;
}
