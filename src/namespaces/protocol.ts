/**
 * The typed messages between the parent and the in-namespace init stage, one JSON object
 * per line over a socketpair (fd 3 in the stage). The order is fixed:
 *
 * ```
 *  parent                                   stage (inside the new namespaces)
 *                      ◄── userns            (only with a user namespace: waiting for maps)
 *  maps ──►                                  (uid/gid maps are written)
 *  config ──►
 *                      ◄── pid {hostPid, execFd}  namespaces exist, nothing is mounted yet
 *  (opens /proc/PID/fd/execFd; the spawn hook runs: cgroups, network ...)
 *  go ──►
 *                      ◄── tty               (only with a tty: /dev/pts is the container's now)
 *  (opens /proc/PID/root/dev/pts/ptmx, unlocks it, sets its size)
 *  tty {n} ──►                               (the stage opens /dev/pts/N as its terminal)
 *                      ◄── exec {namespaces} about to execve
 *                      ◄── error {step,...}  at any point instead; the stage then exits
 * ```
 * The socket cannot tell the parent that execve succeeded: util-linux unshare, the stage's
 * parent, holds a copy of it until the container ends. So the stage also owns a
 * close-on-exec pipe, whose read end the parent opens through /proc: end-of-file on it
 * means the exec happened, a byte on it means an error message is on the socket.
 * @internal
 */
import type { NamespaceType } from './types.js';
import type { StageConfig } from './init/config.js';

/** The setup step the stage was in. Shown in {@link InitError}. */
export type InitStep =
  | 'start'
  | 'maps'
  | 'join'
  | 'config'
  | 'sync'
  | 'cgroup'
  | 'cgroupns'
  | 'propagation'
  | 'idmap'
  | 'overlay'
  | 'rootfs'
  | 'proc'
  | 'dev'
  | 'sys'
  | 'mask'
  | 'binds'
  | 'netns'
  | 'hostname'
  | 'domainname'
  | 'loopback'
  | 'sysctl'
  | 'devices'
  | 'pivot-root'
  | 'session'
  | 'tty'
  | 'cwd'
  | 'lookup'
  | 'seccomp'
  | 'capabilities'
  | 'user'
  | 'fds'
  | 'signals'
  | 'exec';

/** An error as it crosses the process boundary. @internal */
export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly code?: string | undefined;
  readonly errno?: number | undefined;
  readonly syscall?: string | undefined;
  readonly path?: string | undefined;
}

/** Parent → stage. @internal */
export type ParentMessage =
  | { readonly t: 'maps' }
  | { readonly t: 'config'; readonly config: StageConfig }
  | { readonly t: 'go' }
  /** The pseudo-terminal the parent allocated for the stage: `/dev/pts/<n>` inside the container. */
  | { readonly t: 'tty'; readonly n: number };

/** Stage → parent. @internal */
export type StageMessage =
  | { readonly t: 'userns' }
  | { readonly t: 'pid'; readonly pid: number; readonly execFd: number }
  /** The container's /dev/pts is in place (mounted, pivoted into or joined): allocate the pty now. */
  | { readonly t: 'tty' }
  | { readonly t: 'exec'; readonly namespaces: Partial<Record<NamespaceType, number>> }
  | { readonly t: 'error'; readonly step: InitStep; readonly error: WireError };

/** @internal */
export function encode(msg: ParentMessage | StageMessage): string {
  return `${JSON.stringify(msg)}\n`;
}
