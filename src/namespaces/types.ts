import { CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWTIME, CLONE_NEWUSER, CLONE_NEWUTS } from '../sys/constants.js';
import { InvalidOptionError } from '../errors.js';

/**
 * The name of a Linux namespace type, as it appears under `/proc/PID/ns/`.
 * `mnt` is the mount namespace.
 */
export type NamespaceType = 'pid' | 'net' | 'mnt' | 'uts' | 'ipc' | 'user' | 'cgroup' | 'time';

/** What the kernel says about one namespace type: the chapter's table, as data. */
export interface NamespaceInfo {
  /** The `/proc/PID/ns/` name. */
  readonly type: NamespaceType;
  /** The name people use for it. */
  readonly title: string;
  /** The clone/unshare/setns flag, e.g. `CLONE_NEWPID`. */
  readonly flagName: string;
  /** The numeric value of that flag. */
  readonly flag: number;
  /** The Linux version that introduced it. */
  readonly since: string;
  /** What it isolates. */
  readonly isolates: string;
}

/**
 * The eight namespace types (Linux 5.6 and later), in the order a runtime creates them:
 * user first, since it owns every other one.
 */
export const NAMESPACES: readonly NamespaceInfo[] = Object.freeze([
  { type: 'user', title: 'USER', flagName: 'CLONE_NEWUSER', flag: CLONE_NEWUSER, since: '3.8', isolates: 'user and group IDs, capabilities' },
  { type: 'pid', title: 'PID', flagName: 'CLONE_NEWPID', flag: CLONE_NEWPID, since: '2.6.24', isolates: 'process IDs' },
  { type: 'net', title: 'NET', flagName: 'CLONE_NEWNET', flag: CLONE_NEWNET, since: '2.6.29', isolates: 'network devices, addresses, ports, routes, firewall' },
  { type: 'mnt', title: 'MNT', flagName: 'CLONE_NEWNS', flag: CLONE_NEWNS, since: '2.4.19', isolates: 'mount points' },
  { type: 'uts', title: 'UTS', flagName: 'CLONE_NEWUTS', flag: CLONE_NEWUTS, since: '2.6.19', isolates: 'hostname and NIS domain name' },
  { type: 'ipc', title: 'IPC', flagName: 'CLONE_NEWIPC', flag: CLONE_NEWIPC, since: '2.6.19', isolates: 'System V IPC, POSIX message queues' },
  { type: 'cgroup', title: 'Cgroup', flagName: 'CLONE_NEWCGROUP', flag: CLONE_NEWCGROUP, since: '4.6', isolates: 'the cgroup root directory' },
  { type: 'time', title: 'Time', flagName: 'CLONE_NEWTIME', flag: CLONE_NEWTIME, since: '5.6', isolates: 'the boot-time and monotonic clocks' },
] satisfies NamespaceInfo[]);

const BY_TYPE = new Map(NAMESPACES.map((n) => [n.type, n]));

/** The table entry of one namespace type. */
export function namespaceInfo(type: NamespaceType): NamespaceInfo {
  const info = BY_TYPE.get(type);
  if (!info) throw unknownNamespace(String(type), 'namespace');
  return info;
}

/** True when `name` is one of the eight namespace type names. */
export function isNamespaceType(name: string): name is NamespaceType {
  return BY_TYPE.has(name as NamespaceType);
}

function unknownNamespace(name: string, option: string): InvalidOptionError {
  const valid = NAMESPACES.map((n) => n.type).join(', ');
  return new InvalidOptionError(option, `unknown namespace "${name}" (expected one of: ${valid})`);
}

/**
 * Checks a list of namespace names from the caller and returns it without duplicates,
 * in creation order. Throws {@link InvalidOptionError} naming the unknown entry.
 * @internal
 */
export function normalizeNamespaces(names: Iterable<string>, option = 'namespaces'): NamespaceType[] {
  const wanted = new Set<string>();
  for (const name of names) {
    if (!isNamespaceType(name)) throw unknownNamespace(name, option);
    wanted.add(name);
  }
  return NAMESPACES.map((n) => n.type).filter((t) => wanted.has(t));
}
