/**
 * Puts a device filter program on a cgroup v2 directory, the way runc does: load it, attach it
 * with BPF_F_ALLOW_MULTI, then detach the programs it replaces. While both are attached the
 * kernel runs both and allows only what both allow, so an update never widens access, not
 * even for an instant. The program fd is closed once attached: the attachment holds the
 * program, which lives until it is detached or the cgroup is removed.
 * @internal
 */
import { closeSync, constants, openSync } from 'node:fs';
import { logger } from '../log.js';
import { BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI, BPF_PROG_TYPE_CGROUP_DEVICE, progAttach, progDetach, progFdById, progLoad, progQuery } from '../sys/bpf.js';
import { errnoName } from '../sys/errno.js';
import { SysError } from '../sys/sys-error.js';
import { deviceProgram } from './device-bpf.js';
import { DeviceProgramError } from './errors.js';
import type { DeviceCgroupRule } from './resources.js';

const log = logger('ctrkit:cgroups');

/*
 * The license only gates GPL-only helpers, and the program calls no helper at all; so it
 * carries the package's own license (runc's carries "Apache" for the same reason).
 */
const LICENSE = 'MIT';
const PROGRAM_NAME = 'ctk_devices';

function openCgroup(dir: string): number {
  try {
    return openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch (e) {
    throw new DeviceProgramError('open', dir, `cannot open the cgroup directory: ${(e as NodeJS.ErrnoException).code}`, { cause: e });
  }
}

function why(e: unknown): string {
  if (!(e instanceof SysError)) return (e as Error).message;
  if (e.code === 'EPERM') return `${e.message} (needs CAP_SYS_ADMIN, or CAP_BPF with CAP_NET_ADMIN)`;
  if (e.code === 'EBADF' || e.code === 'ENOTDIR') return `${e.message} (not a cgroup2 directory?)`;
  return e.message;
}

/**
 * Loads the program for `rules` and makes it the cgroup's only device program.
 * Returns the new program's id (`bpftool prog show id N`).
 */
export function attachDeviceFilter(dir: string, rules: readonly DeviceCgroupRule[]): number {
  const insns = deviceProgram(rules);
  const loaded = progLoad(BPF_PROG_TYPE_CGROUP_DEVICE, insns, LICENSE, PROGRAM_NAME);
  if (!('fd' in loaded)) {
    const name = errnoName(loaded.errno);
    const hint = name === 'EPERM' ? ' (needs CAP_SYS_ADMIN, or CAP_BPF)' : '';
    throw new DeviceProgramError('load', dir, `the kernel refused the device program: ${name}${hint}${loaded.log ? `; verifier log:\n${loaded.log}` : ''}`, {
      errnoName: name,
      verifierLog: loaded.log,
    });
  }
  let cg: number | undefined;
  try {
    cg = openCgroup(dir);
    const before = queryOrThrow(cg, dir);
    try {
      progAttach(cg, loaded.fd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI, dir);
    } catch (e) {
      throw new DeviceProgramError('attach', dir, why(e), { cause: e, errnoName: e instanceof SysError ? e.code : undefined });
    }
    // Only now the old programs go: until here both ran, and only what both allow was allowed.
    for (const id of before) detachById(cg, id, dir);
    const added = queryOrThrow(cg, dir).filter((id) => !before.includes(id));
    log('device program %o attached to %s (%d instructions, replaced %o)', added, dir, insns.length / 8, before);
    return added[0] ?? -1;
  } finally {
    closeSync(loaded.fd); // the attachment holds the program now (or nothing does, and it is freed)
    if (cg !== undefined) closeSync(cg);
  }
}

function detachById(cg: number, id: number, dir: string): void {
  let fd: number;
  try {
    fd = progFdById(id);
  } catch (e) {
    if (e instanceof SysError && e.code === 'ENOENT') return; // detached and freed meanwhile
    throw new DeviceProgramError('detach', dir, why(e), { cause: e, errnoName: e instanceof SysError ? e.code : undefined });
  }
  try {
    progDetach(cg, fd, BPF_CGROUP_DEVICE, dir);
  } catch (e) {
    if (e instanceof SysError && e.code === 'ENOENT') return;
    throw new DeviceProgramError('detach', dir, why(e), { cause: e, errnoName: e instanceof SysError ? e.code : undefined });
  } finally {
    closeSync(fd);
  }
}

/** Detaches every device program attached directly to the cgroup. */
export function detachDeviceFilters(dir: string): void {
  const cg = openCgroup(dir);
  try {
    for (const id of queryOrThrow(cg, dir)) detachById(cg, id, dir);
  } finally {
    closeSync(cg);
  }
}

/** The ids of the device programs attached directly to the cgroup, in the order they run. */
export function deviceFilterIds(dir: string): number[] {
  const cg = openCgroup(dir);
  try {
    return queryOrThrow(cg, dir);
  } finally {
    closeSync(cg);
  }
}

function queryOrThrow(cg: number, dir: string): number[] {
  try {
    return progQuery(cg, BPF_CGROUP_DEVICE, dir);
  } catch (e) {
    throw new DeviceProgramError('query', dir, why(e), { cause: e, errnoName: e instanceof SysError ? e.code : undefined });
  }
}
