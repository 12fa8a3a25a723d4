import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** One mounted cgroup hierarchy. */
export interface CgroupMount {
  /** `1` for a v1 hierarchy, `2` for the unified one. */
  readonly version: 1 | 2;
  /** Where it is mounted, e.g. `/sys/fs/cgroup/memory`. */
  readonly path: string;
  /** v1: the controllers bound to it (`memory`, `cpu`, `cpuacct` ...); v2: empty (read cgroup.controllers). */
  readonly controllers: readonly string[];
}

/** How the host's cgroups are arranged. */
export interface CgroupLayout {
  /** `v2`: only the unified hierarchy; `v1`: only v1 hierarchies; `hybrid`: both. */
  readonly mode: 'v1' | 'v2' | 'hybrid';
  /** Every cgroup mount visible to this process. */
  readonly mounts: readonly CgroupMount[];
  /** The unified (v2) mount, when there is one. */
  readonly unified: CgroupMount | undefined;
}

function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * Reads /proc/self/mountinfo and tells whether the host uses cgroup v1, v2, or both
 * (hybrid, as systemd sets up when the unified tree is mounted beside v1 controllers).
 * @param mountinfo - the text of a mountinfo file, for testing; read from /proc by default
 */
export async function detectCgroupLayout(mountinfo?: string): Promise<CgroupLayout> {
  return parseCgroupLayout(mountinfo ?? (await readFile('/proc/self/mountinfo', 'utf8')));
}

/** The same, synchronously (one small read of /proc). @internal */
export function detectCgroupLayoutSync(): CgroupLayout {
  return parseCgroupLayout(readFileSync('/proc/self/mountinfo', 'utf8'));
}

/** The last text parsed and its layout: mountinfo rarely changes between two container starts. */
let parsed: { readonly text: string; readonly layout: CgroupLayout } | undefined;

/** Parses mountinfo text into a {@link CgroupLayout} (the same object for the same text: treat it as read-only). @internal */
export function parseCgroupLayout(text: string): CgroupLayout {
  if (parsed?.text === text) return parsed.layout;
  const layout = parseCgroupLayoutOf(text);
  parsed = { text, layout };
  return layout;
}

function parseCgroupLayoutOf(text: string): CgroupLayout {
  const mounts: CgroupMount[] = [];
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fields = line.slice(0, sep).split(' ');
    const [fstype, , superOpts = ''] = line.slice(sep + 3).split(' ');
    const path = unescapeMountPath(fields[4] ?? '');
    if (fstype === 'cgroup2') mounts.push({ version: 2, path, controllers: [] });
    else if (fstype === 'cgroup') {
      const known = ['rw', 'ro', 'clone_children', 'noprefix', 'xattr', 'nsdelegate', 'cpuset_v2_mode', 'favordynmods'];
      const controllers = superOpts.split(',').filter((o) => !known.includes(o) && !o.startsWith('release_agent='));
      mounts.push({ version: 1, path, controllers });
    }
  }
  const hasV1 = mounts.some((m) => m.version === 1 && m.controllers.some((c) => !c.startsWith('name=')));
  const unified = mounts.find((m) => m.version === 2);
  const mode = unified && hasV1 ? 'hybrid' : unified ? 'v2' : 'v1';
  return { mode, mounts, unified };
}
