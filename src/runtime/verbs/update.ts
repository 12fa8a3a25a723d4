/**
 * `update [--resources FILE|-] [--memory N --cpu-quota N ...] ID`: an OCI LinuxResources object
 * (from the file, stdin, or the flags) applied to the container's cgroup.
 * @internal
 */
import { readFileSync } from 'node:fs';
import { containerId, str, type CommandLine } from '../args.js';
import type { Context } from '../context.js';
import { badConfig, RuntimeError } from '../errors.js';
import { readRecord, statusOf } from '../state.js';

/** The flags of `runc update` and where each goes in a LinuxResources object. */
const FLAG_FIELDS: readonly (readonly [string, string, string, 'int' | 'string'])[] = [
  ['memory', 'memory', 'limit', 'int'],
  ['memory-reservation', 'memory', 'reservation', 'int'],
  ['memory-swap', 'memory', 'swap', 'int'],
  ['kernel-memory', 'memory', 'kernel', 'int'],
  ['kernel-memory-tcp', 'memory', 'kernelTCP', 'int'],
  ['cpu-shares', 'cpu', 'shares', 'int'],
  ['cpu-quota', 'cpu', 'quota', 'int'],
  ['cpu-period', 'cpu', 'period', 'int'],
  ['cpu-rt-period', 'cpu', 'realtimePeriod', 'int'],
  ['cpu-rt-runtime', 'cpu', 'realtimeRuntime', 'int'],
  ['cpuset-cpus', 'cpu', 'cpus', 'string'],
  ['cpuset-mems', 'cpu', 'mems', 'string'],
  ['blkio-weight', 'blockIO', 'weight', 'int'],
  ['pids-limit', 'pids', 'limit', 'int'],
];

/** Sizes as runc's update takes them: bytes, or with a k/m/g suffix; -1 for unlimited. */
function intValue(flag: string, text: string): number {
  const m = /^(-?\d+)([kmgt]?)b?$/i.exec(text.trim());
  if (!m) throw new RuntimeError('ERR_RUNTIME_USAGE', `invalid value for --${flag}: "${text}"`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Number(m[1]) * unit;
}

function resourcesOf(cl: CommandLine): Record<string, Record<string, unknown>> {
  const file = str(cl.flags, 'resources');
  if (file) {
    const text = readFileSync(file === '-' ? 0 : file, 'utf8');
    try {
      const r = JSON.parse(text) as unknown;
      if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new Error('must hold a JSON object');
      return r as Record<string, Record<string, unknown>>;
    } catch (e) {
      throw badConfig(file === '-' ? 'resources (stdin)' : file, (e as Error).message);
    }
  }
  const out: Record<string, Record<string, unknown>> = {};
  for (const [flag, group, field, kind] of FLAG_FIELDS) {
    const v = str(cl.flags, flag);
    if (v === undefined) continue;
    out[group] ??= {};
    out[group][field] = kind === 'int' ? intValue(flag, v) : v;
  }
  return out;
}

export default async function update(cl: CommandLine, ctx: Context): Promise<number> {
  const rec = readRecord(ctx.root, containerId(cl));
  if (statusOf(ctx.root, rec) === 'stopped') throw new RuntimeError('ERR_RUNTIME_STATE', 'container not running');
  const resources = resourcesOf(cl);
  const [{ openCgroup }, { applyOciResources }] = await Promise.all([import('../cgroup.js'), import('../../cgroups/oci-resources.js')]);
  const r = await applyOciResources(await openCgroup(rec.cgroupPath), resources as Parameters<typeof applyOciResources>[1], { update: true });
  for (const i of r.ignored) ctx.log.warn(`resources.${i.field}: ignored (${i.reason})`);
  return 0;
}
