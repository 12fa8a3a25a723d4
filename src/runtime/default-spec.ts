/**
 * The config.json `spec` writes: the bundle config ctrkit writes for runc (../oci/runtime/spec.ts)
 * with runc's own defaults for what `runc spec` leaves open (`sh`, a TERM, a read-only root,
 * hostname, no cgroup path), so a bundle made for runc runs here and the other way round.
 * @internal
 */
import { runtimeSpec } from '../oci/runtime/spec.js';
import { OCI_VERSION } from './state.js';

/** A default runtime-spec configuration (the rootfs at `rootfs` in the bundle). */
export function defaultSpec(): Record<string, unknown> {
  const spec = runtimeSpec({
    args: ['sh'],
    env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', TERM: 'xterm' },
    cwd: '/',
    uid: 0,
    gid: 0,
    hostname: 'ctrkit',
    readonly: true,
    cgroupsPath: undefined,
    network: true,
  });
  // runc's default has a cgroup namespace of its own too.
  const linux = spec.linux as { namespaces: { type: string }[] };
  return { ...spec, ociVersion: OCI_VERSION, linux: { ...linux, namespaces: [...linux.namespaces, { type: 'cgroup' }] } };
}
