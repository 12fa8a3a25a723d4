import { InvalidOptionError } from '../errors.js';

/** A Linux capability name, without the `CAP_` prefix. */
export type Capability =
  | 'CHOWN'
  | 'DAC_OVERRIDE'
  | 'DAC_READ_SEARCH'
  | 'FOWNER'
  | 'FSETID'
  | 'KILL'
  | 'SETGID'
  | 'SETUID'
  | 'SETPCAP'
  | 'LINUX_IMMUTABLE'
  | 'NET_BIND_SERVICE'
  | 'NET_BROADCAST'
  | 'NET_ADMIN'
  | 'NET_RAW'
  | 'IPC_LOCK'
  | 'IPC_OWNER'
  | 'SYS_MODULE'
  | 'SYS_RAWIO'
  | 'SYS_CHROOT'
  | 'SYS_PTRACE'
  | 'SYS_PACCT'
  | 'SYS_ADMIN'
  | 'SYS_BOOT'
  | 'SYS_NICE'
  | 'SYS_RESOURCE'
  | 'SYS_TIME'
  | 'SYS_TTY_CONFIG'
  | 'MKNOD'
  | 'LEASE'
  | 'AUDIT_WRITE'
  | 'AUDIT_CONTROL'
  | 'SETFCAP'
  | 'MAC_OVERRIDE'
  | 'MAC_ADMIN'
  | 'SYSLOG'
  | 'WAKE_ALARM'
  | 'BLOCK_SUSPEND'
  | 'AUDIT_READ'
  | 'PERFMON'
  | 'BPF'
  | 'CHECKPOINT_RESTORE';

/** Capability names in kernel order: the index is the capability number. */
export const CAPABILITIES: readonly Capability[] = Object.freeze([
  'CHOWN',
  'DAC_OVERRIDE',
  'DAC_READ_SEARCH',
  'FOWNER',
  'FSETID',
  'KILL',
  'SETGID',
  'SETUID',
  'SETPCAP',
  'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE',
  'NET_BROADCAST',
  'NET_ADMIN',
  'NET_RAW',
  'IPC_LOCK',
  'IPC_OWNER',
  'SYS_MODULE',
  'SYS_RAWIO',
  'SYS_CHROOT',
  'SYS_PTRACE',
  'SYS_PACCT',
  'SYS_ADMIN',
  'SYS_BOOT',
  'SYS_NICE',
  'SYS_RESOURCE',
  'SYS_TIME',
  'SYS_TTY_CONFIG',
  'MKNOD',
  'LEASE',
  'AUDIT_WRITE',
  'AUDIT_CONTROL',
  'SETFCAP',
  'MAC_OVERRIDE',
  'MAC_ADMIN',
  'SYSLOG',
  'WAKE_ALARM',
  'BLOCK_SUSPEND',
  'AUDIT_READ',
  'PERFMON',
  'BPF',
  'CHECKPOINT_RESTORE',
] satisfies Capability[]);

/**
 * The capabilities a container keeps by default: the same set Docker, runc's spec template
 * and Podman grant. Everything else (SYS_ADMIN, NET_ADMIN, SYS_PTRACE, SYS_MODULE ...) is
 * dropped from the bounding, effective, permitted, inheritable and ambient sets.
 */
export const DEFAULT_CAPABILITIES: readonly Capability[] = Object.freeze([
  'CHOWN',
  'DAC_OVERRIDE',
  'FSETID',
  'FOWNER',
  'MKNOD',
  'NET_RAW',
  'SETGID',
  'SETUID',
  'SETFCAP',
  'SETPCAP',
  'NET_BIND_SERVICE',
  'SYS_CHROOT',
  'KILL',
  'AUDIT_WRITE',
] satisfies Capability[]);

/** @internal */
export function capabilityNumbers(caps: readonly string[], option = 'capabilities'): number[] {
  return caps.map((c) => {
    const name = c.toUpperCase().replace(/^CAP_/, '');
    const n = CAPABILITIES.indexOf(name as Capability);
    if (n < 0) throw new InvalidOptionError(option, `unknown capability "${c}" (expected a name like NET_ADMIN or CAP_NET_ADMIN)`);
    return n;
  });
}
