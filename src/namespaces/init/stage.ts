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
import { closeSync, openSync, readlinkSync, statSync, writeFileSync, writeSync } from 'node:fs';
import type { StageConfig } from './config.js';
import { StageChannel } from './channel.js';
import type { InitStep } from '../protocol.js';
import { toWire } from './wire.js';
import { NAMESPACES, type NamespaceType } from '../types.js';
import { CLONE_FS, CLONE_NEWCGROUP, CLONE_NEWNET, CLONE_NEWNS, PR_SET_DUMPABLE, PR_SET_KEEPCAPS } from '../../sys/constants.js';
import { chdir, close, execve, pipe, seccompFilter, prctl, setgroups, setns, setresgid, setresuid, unshare } from '../../sys/libc.js';
import { enterRootfs, makeRootPrivate, remountProc } from './rootfs.js';
import {
  clearAmbientCapabilities,
  effectiveFromPermitted,
  lastCapability,
  lookupCommand,
  prepareFds,
  raiseAmbient,
  resetSignals,
  restrictCapabilities,
  setNoNewPrivileges,
} from './exec.js';
import { setUpNamesAndLoopback } from './names.js';
import { newSession, openTerminal } from './terminal.js';

const channel = new StageChannel();
let execPipe = -1;
let step: InitStep = 'config';
const setStep = (s: InitStep): void => {
  step = s;
};

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

/** Mounts, names and interfaces of namespaces that were just created. */
function setUpNewNamespaces(config: StageConfig): void {
  if (config.namespaces.includes('mnt')) {
    setStep('propagation');
    makeRootPrivate();
    if (config.rootfs) enterRootfs(config, config.rootfs, setStep);
    else if (config.mountProc) {
      setStep('proc');
      remountProc();
    }
  }
  setUpNamesAndLoopback(config, setStep);
}

/**
 * Enters another process's mount namespace, which also moves our root and cwd to its root.
 * setns(CLONE_NEWNS) needs a private fs_struct, which threads share: unshare(CLONE_FS)
 * gives the main thread its own first (allowed in a multi-threaded process).
 */
function joinMountNamespace(pid: number): void {
  const path = `/proc/${pid}/ns/mnt`;
  const fd = openSync(path, 'r');
  try {
    unshare(CLONE_FS);
    setns(fd, CLONE_NEWNS, path);
  } finally {
    closeSync(fd);
  }
}

function main(): never {
  // Non-dumpable while we run inside the container's namespaces: nothing there may ptrace
  // us or open our /proc/PID/exe (a path back to the host's node binary, CVE-2019-5736).
  prctl(PR_SET_DUMPABLE, 0);
  const { config } = channel.receive('config');
  if (config.userns) {
    // Our ids were unmapped when we started; now that the parent has written the maps,
    // become root of the new user namespace (the ambient capabilities allow it).
    setStep('maps');
    try {
      setgroups([]);
    } catch {
      // setgroups is denied when an unprivileged caller mapped only its own gid
    }
    setresgid(0);
    setresuid(0);
  }

  setStep('sync');
  const [execRead, execWrite] = pipe(); // both close-on-exec
  execPipe = execWrite;
  channel.send({ t: 'pid', pid: Number(readlinkSync('/proc/self')), execFd: execRead });
  channel.receive('go');
  close(execRead); // the parent has its own by now

  const lastCap = config.capabilities ? lastCapability() : 0;
  let namespaces: Partial<Record<NamespaceType, number>>;
  if (config.mode === 'join') {
    if (config.joinMountOf !== undefined) {
      setStep('join');
      joinMountNamespace(config.joinMountOf);
    }
    namespaces = ownNamespaces();
  } else {
    if (config.cgroupTasks?.length) {
      setStep('cgroup');
      for (const file of config.cgroupTasks) writeFileSync(file, '0');
    }
    if (config.namespaces.includes('cgroup')) {
      // Only now: the parent's hook has moved us into the container's cgroup, and a cgroup
      // namespace is rooted wherever its creator stood.
      setStep('cgroupns');
      unshare(CLONE_NEWCGROUP);
    }
    if (config.joinNetOf !== undefined) {
      // Another container's network (docker's --network container:X): setns(net) is allowed
      // to a multi-threaded process, and the exec'd command keeps the main thread's.
      setStep('netns');
      const path = `/proc/${config.joinNetOf}/ns/net`;
      const fd = openSync(path, 'r');
      try {
        setns(fd, CLONE_NEWNET, path);
      } finally {
        closeSync(fd);
      }
    }
    namespaces = ownNamespaces();
    setUpNewNamespaces(config);
  }
  // Now that /dev/pts is the container's (mounted and pivoted into, or joined).
  setStep('session');
  newSession();
  let terminal: number | null = null;
  if (config.tty) {
    setStep('tty');
    terminal = openTerminal(channel, config);
  }
  setStep('cwd');
  chdir(config.cwd);
  setStep('lookup');
  const path = lookupCommand(config.argv[0]!, config.env);
  if (config.seccomp) {
    // First, while we still hold every capability the filter needs to be installed without
    // no_new_privs; everything the stage does after this (capset, prctl, setres[ug]id,
    // setgroups, fcntl, close_range, rt_sig*, write, execve, exit_group) is on the allow-list.
    setStep('seccomp');
    seccompFilter(Buffer.from(config.seccomp, 'base64'), config.seccompFlags ?? 0);
  }
  if (config.user) {
    // The ids first: changing them takes CAP_SETUID and CAP_SETGID, which the container need
    // not keep (glibc changes every thread's, and a thread refused aborts the process).
    // Becoming a uid that is not root clears the effective and permitted sets; with a
    // capability list, KEEPCAPS keeps the permitted set for the narrowing below, and the
    // exec then leaves such a user only its ambient set.
    setStep('user');
    if (config.capabilities) prctl(PR_SET_KEEPCAPS, 1);
    setgroups(config.user.groups);
    setresgid(config.user.gid);
    setresuid(config.user.uid);
    if (config.capabilities) effectiveFromPermitted();
  }
  setStep('capabilities');
  if (config.capabilities) restrictCapabilities(config.capabilities, lastCap);
  else if (config.userns) clearAmbientCapabilities(); // what --keep-caps left for the barrier
  if (config.ambient?.length) raiseAmbient(config.ambient, lastCap);
  if (config.noNewPrivileges) setNoNewPrivileges();
  setStep('fds');
  prepareFds(terminal);
  setStep('signals');
  resetSignals(config.umask);
  setStep('exec');
  channel.send({ t: 'exec', namespaces });
  return execve(path, config.argv, config.env);
}

try {
  main();
} catch (e) {
  try {
    channel.send({ t: 'error', step, error: toWire(e) });
    if (execPipe >= 0) writeSync(execPipe, 'E');
  } catch {
    // The parent is gone: nobody is left to tell.
  }
  const failed = step as InitStep; // assigned through setStep(), which TypeScript cannot follow
  process.exit(failed === 'lookup' || failed === 'exec' ? 127 : 125);
}
