/**
 * The memory.stat fields cAdvisor derives its memory metrics from, for both cgroup
 * versions: v1 names hierarchical totals `total_*`, v2 has only hierarchical values.
 * @internal
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** What memory.stat adds to the usage counter. @internal */
export interface MemoryBreakdown {
  /** Anonymous memory (v1 total_rss, v2 anon). */
  readonly rss: number;
  /** Page cache (v1 total_cache, v2 file). */
  readonly cache: number;
  /** Page cache the kernel would reclaim first (v1 total_inactive_file, v2 inactive_file). */
  readonly inactiveFile: number;
}

/** Reads memory.stat in `dir` (the cgroup's memory directory); undefined when it is gone. @internal */
export async function readMemoryBreakdown(dir: string, version: 1 | 2): Promise<MemoryBreakdown | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, 'memory.stat'), 'utf8');
  } catch {
    return undefined; // the container ended between listing and reading
  }
  const kv = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [k, v] = line.split(' ');
    if (k && v !== undefined) kv.set(k, Number(v));
  }
  const get = (v1: string, v2: string) => kv.get(version === 1 ? v1 : v2) ?? 0;
  return { rss: get('total_rss', 'anon'), cache: get('total_cache', 'file'), inactiveFile: get('total_inactive_file', 'inactive_file') };
}
