/**
 * A runtime container's cgroup: config.json's `linux.cgroupsPath` in every hierarchy the host
 * has (v1 controllers, or the v2 tree), through ctrkit's own Cgroup building block.
 * @internal
 */
import { Cgroup } from '../cgroups/index.js';
import { RuntimeError } from './errors.js';

/**
 * The cgroup path of a container: `cgroupsPath` as given (absolute: below each hierarchy's
 * root; relative: below ctrkit's own `ctk-runtime`), or `ctk-runtime/ID` when there is none.
 * With `--systemd-cgroup`, `slice:prefix:name` becomes `slice/prefix-name.scope` (the cgroup is
 * made directly: systemd is not asked to make a unit).
 */
export function cgroupPathOf(cgroupsPath: string | undefined, id: string, systemd: boolean): string {
  if (!cgroupsPath) return `/ctk-runtime/${id}`;
  if (systemd) {
    const parts = cgroupsPath.split(':');
    if (parts.length !== 3)
      throw new RuntimeError('ERR_RUNTIME_CONFIG', `config.json: linux.cgroupsPath: "${cgroupsPath}" is not slice:prefix:name (--systemd-cgroup)`);
    const [slice, prefix, name] = parts as [string, string, string];
    return `/${slice || 'system.slice'}/${prefix ? `${prefix}-` : ''}${name}.scope`;
  }
  if (cgroupsPath.split('/').includes('..'))
    throw new RuntimeError('ERR_RUNTIME_CONFIG', `config.json: linux.cgroupsPath: "${cgroupsPath}" must not contain ".."`);
  return cgroupsPath.startsWith('/') ? cgroupsPath : `/ctk-runtime/${cgroupsPath}`;
}

/** The existing cgroup of a container, opened. */
export async function openCgroup(path: string): Promise<Cgroup> {
  return Cgroup.forHost(path).open();
}
