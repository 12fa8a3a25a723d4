/**
 * The in-namespace init stage: the program util-linux `unshare --fork` starts as PID 1 of the
 * new namespaces. It talks to the parent over fd 3 (see ../protocol.ts), builds the
 * container's view of the system, then replaces itself with the user's command.
 *
 * It is written as a straight line of synchronous steps; any failure is sent to the parent
 * as a typed error naming the step, and the stage exits. Node is multi-threaded, which is
 * why the namespaces themselves were created by unshare(1) before Node started: everything
 * done here is allowed from a multi-threaded process (unshare(CLONE_NEWCGROUP) included).
 * @internal
 */
import { readlinkSync, statSync } from 'node:fs';
import { StageChannel } from './channel.js';
import type { InitStep, WireError } from '../protocol.js';
import { NAMESPACES, type NamespaceType } from '../types.js';
import { CLONE_NEWCGROUP, PR_SET_DUMPABLE } from '../../sys/constants.js';
import { chdir, execve, prctl, sethostname, setdomainname, unshare } from '../../sys/libc.js';
import { SysError } from '../../sys/sys-error.js';
import { enterRootfs, makeRootPrivate, remountProc } from './rootfs.js';
import { lastCapability, lookupCommand, prepareFds, resetSignals, restrictCapabilities, setNoNewPrivileges } from './exec.js';
import { bringLoopbackUp } from './loopback.js';

const channel = new StageChannel();
let step: InitStep = 'config';
const setStep = (s: InitStep): void => {
  step = s;
};

function wire(e: unknown): WireError {
  if (e instanceof SysError) {
    return { name: e.name, message: e.message, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path };
  }
  const err = e as NodeJS.ErrnoException;
  return { name: err?.name ?? 'Error', message: err?.message ?? String(e), code: err?.code, syscall: err?.syscall, path: err?.path };
}

function ownNamespaces(): Partial<Record<NamespaceType, number>> {
  const out: Partial<Record<NamespaceType, number>> = {};
  for (const { type } of NAMESPACES) {
    try {
      out[type] = statSync(`/proc/self/ns/${type}`).ino;
    } catch {
      // a kernel without that namespace type
    }
  }
  return out;
}

function main(): never {
  // Non-dumpable while we run inside the container's namespaces: nothing there may ptrace
  // us or open our /proc/PID/exe (a path back to the host's node binary, CVE-2019-5736).
  prctl(PR_SET_DUMPABLE, 0);
  const { config } = channel.receive('config');

  setStep('sync');
  channel.send({ t: 'pid', pid: Number(readlinkSync('/proc/self')) });
  channel.receive('go');

  if (config.namespaces.includes('cgroup')) {
    // Only now: the parent's hook has moved us into the container's cgroup, and a cgroup
    // namespace is rooted wherever its creator stood.
    setStep('cgroupns');
    unshare(CLONE_NEWCGROUP);
  }
  const namespaces = ownNamespaces();
  const lastCap = config.capabilities ? lastCapability() : 0;

  if (config.namespaces.includes('mnt')) {
    setStep('propagation');
    makeRootPrivate();
    if (config.rootfs) enterRootfs(config, config.rootfs, setStep);
    else if (config.mountProc) {
      setStep('proc');
      remountProc();
    }
  }
  if (config.hostname !== undefined) {
    setStep('hostname');
    sethostname(config.hostname);
  }
  if (config.domainname !== undefined) {
    setStep('hostname');
    setdomainname(config.domainname);
  }
  if (config.namespaces.includes('net')) {
    setStep('loopback');
    bringLoopbackUp();
  }
  setStep('cwd');
  chdir(config.cwd);
  setStep('lookup');
  const path = lookupCommand(config.argv[0]!, config.env);
  setStep('capabilities');
  if (config.capabilities) restrictCapabilities(config.capabilities, lastCap);
  if (config.noNewPrivileges) setNoNewPrivileges();
  setStep('fds');
  prepareFds();
  setStep('signals');
  resetSignals();
  setStep('exec');
  channel.send({ t: 'exec', namespaces });
  return execve(path, config.argv, config.env);
}

try {
  main();
} catch (e) {
  try {
    channel.send({ t: 'error', step, error: wire(e) });
  } catch {
    // The parent is gone: nobody is left to tell.
  }
  const failed = step as InitStep; // assigned through setStep(), which TypeScript cannot follow
  process.exit(failed === 'lookup' || failed === 'exec' ? 127 : 125);
}
