/**
 * config.json's `mounts` as ctrkit's mount plan. The standard ones (/proc, /dev and what is in
 * it, /sys, /sys/fs/cgroup) are what ctrkit's root set-up makes itself (namespaces/init/rootfs.ts,
 * the same on every start path); every other entry becomes a mount of its own, in order.
 * @internal
 */
import type { CgroupHierarchy, MountOperation } from '../namespaces/index.js';
import { badConfig } from './errors.js';

const MS = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  SYNCHRONOUS: 0x10,
  REMOUNT: 0x20,
  MANDLOCK: 0x40,
  DIRSYNC: 0x80,
  NOSYMFOLLOW: 0x100,
  NOATIME: 0x400,
  NODIRATIME: 0x800,
  BIND: 0x1000,
  REC: 0x4000,
  SILENT: 0x8000,
  UNBINDABLE: 1 << 17,
  PRIVATE: 1 << 18,
  SLAVE: 1 << 19,
  SHARED: 1 << 20,
  RELATIME: 1 << 21,
  STRICTATIME: 1 << 24,
  LAZYTIME: 1 << 25,
} as const;

/** Options that set a flag ([flag, true]) or clear one ([flag, false]). */
const FLAGS: Readonly<Record<string, readonly [number, boolean]>> = {
  ro: [MS.RDONLY, true],
  rw: [MS.RDONLY, false],
  nosuid: [MS.NOSUID, true],
  suid: [MS.NOSUID, false],
  nodev: [MS.NODEV, true],
  dev: [MS.NODEV, false],
  noexec: [MS.NOEXEC, true],
  exec: [MS.NOEXEC, false],
  sync: [MS.SYNCHRONOUS, true],
  async: [MS.SYNCHRONOUS, false],
  remount: [MS.REMOUNT, true],
  mand: [MS.MANDLOCK, true],
  nomand: [MS.MANDLOCK, false],
  dirsync: [MS.DIRSYNC, true],
  nosymfollow: [MS.NOSYMFOLLOW, true],
  symfollow: [MS.NOSYMFOLLOW, false],
  noatime: [MS.NOATIME, true],
  atime: [MS.NOATIME, false],
  nodiratime: [MS.NODIRATIME, true],
  diratime: [MS.NODIRATIME, false],
  bind: [MS.BIND, true],
  rbind: [MS.BIND | MS.REC, true],
  silent: [MS.SILENT, true],
  loud: [MS.SILENT, false],
  relatime: [MS.RELATIME, true],
  norelatime: [MS.RELATIME, false],
  strictatime: [MS.STRICTATIME, true],
  nostrictatime: [MS.STRICTATIME, false],
  lazytime: [MS.LAZYTIME, true],
  nolazytime: [MS.LAZYTIME, false],
  defaults: [0, true],
};

/** Propagation options as mount(2) flags. */
export const PROPAGATION: Readonly<Record<string, number>> = {
  private: MS.PRIVATE,
  rprivate: MS.PRIVATE | MS.REC,
  shared: MS.SHARED,
  rshared: MS.SHARED | MS.REC,
  slave: MS.SLAVE,
  rslave: MS.SLAVE | MS.REC,
  unbindable: MS.UNBINDABLE,
  runbindable: MS.UNBINDABLE | MS.REC,
};

/** One entry of config.json's `mounts`. */
export interface OciMount {
  readonly destination: string;
  readonly type?: string;
  readonly source?: string;
  readonly options?: readonly string[];
  readonly uidMappings?: readonly unknown[];
  readonly gidMappings?: readonly unknown[];
}

/** The parsed options of a mount: flags, propagation, and the rest as the file system's data. */
export function parseMountOptions(options: readonly string[], field: string): { flags: number; propagation: number; data: string } {
  let flags = 0;
  let propagation = 0;
  const data: string[] = [];
  for (const o of options) {
    const flag = FLAGS[o];
    if (flag) {
      flags = flag[1] ? flags | flag[0] : flags & ~flag[0];
      continue;
    }
    const p = PROPAGATION[o];
    if (p !== undefined) {
      propagation = p;
      continue;
    }
    if (
      /^(r?idmap|rro|rrw|rnosuid|rsuid|rnodev|rdev|rnoexec|rexec|rnoatime|ratime|rrelatime|rnorelatime|rstrictatime|rnostrictatime|rnodiratime|rdiratime|rnosymfollow|rsymfollow|tmpcopyup)$/.test(
        o,
      )
    ) {
      throw badConfig(field, `mount option "${o}" is not supported by this runtime`);
    }
    data.push(o);
  }
  return { flags, propagation, data: data.join(',') };
}

/** Destinations ctrkit's root set-up makes itself, with the file system types that may stand there. */
const BUILT_IN: Readonly<Record<string, readonly string[]>> = {
  '/proc': ['proc'],
  '/dev': ['tmpfs'],
  '/dev/pts': ['devpts'],
  '/dev/shm': ['tmpfs'],
  '/dev/mqueue': ['mqueue'],
  '/sys': ['sysfs'],
};

/**
 * The mount plan of config.json's `mounts`. `cgroupfs` is how /sys/fs/cgroup is made (the
 * container's own cgroup namespace shown read-only) when the container has a cgroup namespace;
 * without one, /sys/fs/cgroup is left as /sys shows it.
 */
export function mountPlan(mounts: readonly OciMount[], bundle: string, cgroupfs: MountOperation | undefined): MountOperation[] {
  const plan: MountOperation[] = [];
  mounts.forEach((m, i) => {
    const field = `mounts[${i}]`;
    if (typeof m.destination !== 'string' || !m.destination.startsWith('/'))
      throw badConfig(`${field}.destination`, `must be an absolute path, got ${JSON.stringify(m.destination)}`);
    if (m.uidMappings?.length || m.gidMappings?.length) throw badConfig(field, 'idmapped mounts are not supported by this runtime');
    const dest = m.destination.replace(/\/+$/, '') || '/';
    if (dest === '/') throw badConfig(`${field}.destination`, 'must not be /');
    const { flags, propagation, data } = parseMountOptions(m.options ?? [], `${field}.options`);
    const type = m.type ?? (flags & MS.BIND ? 'bind' : '');
    if (BUILT_IN[dest]?.includes(type)) return; // made by the root set-up itself
    if (dest === '/sys/fs/cgroup' && (type === 'cgroup' || type === 'cgroup2')) {
      if (cgroupfs) plan.push(cgroupfs);
      return;
    }
    const bind = (flags & MS.BIND) !== 0 || type === 'bind';
    let source = m.source ?? type;
    if (bind && !source.startsWith('/')) source = `${bundle}/${source}`;
    plan.push({
      op: 'mount',
      source,
      target: dest,
      fstype: bind ? 'bind' : type,
      flags: bind ? flags | MS.BIND : flags,
      data: data || undefined,
      propagation: propagation || undefined,
    });
  });
  return plan;
}

/** The cgroupfs operation for a container with a cgroup namespace, from the host's hierarchies. */
export function cgroupfsOperation(hierarchies: readonly CgroupHierarchy[]): MountOperation {
  return { op: 'cgroupfs', hierarchies };
}
