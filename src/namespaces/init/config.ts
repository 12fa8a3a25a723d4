import type { DeviceNode, IdmappedPath, MountOperation, RootMount } from '../mount-plan.js';
import type { NamespaceType } from '../types.js';

/**
 * Everything the in-namespace init stage needs, sent by the parent as the first message.
 * Plain data only: it crosses a process boundary as JSON.
 * @internal
 */
export interface StageConfig {
  /** The command; argv[0] is looked up in the container's PATH when it has no slash. */
  readonly argv: readonly string[];
  /** Environment of the command as KEY=VALUE strings. */
  readonly env: readonly string[];
  /** Working directory inside the container (absolute). */
  readonly cwd: string;
  /**
   * `create`: the namespaces in `namespaces` were just created by unshare(1) and are set up
   * here. `join`: they belong to an existing process that nsenter(1) entered; nothing is set
   * up, and the mount namespace of `joinMountOf` is entered by the stage itself.
   */
  readonly mode: 'create' | 'join';
  /** The namespaces that were created new (create) or entered (join). */
  readonly namespaces: readonly NamespaceType[];
  /**
   * create: v1 `tasks` files the stage writes `0` to before anything of the user's runs (the
   * calling thread only: the one that execs the command). A move of one's own thread skips
   * the RCU grace period a move of another process waits for (10-20 ms per start).
   */
  readonly cgroupTasks?: readonly string[] | undefined;
  /**
   * create, thread start path only: namespaces among `namespaces` entered from these paths
   * (/proc/PID/ns/net, a bind-mounted /run/netns/X ...) instead of made new: an OCI config's
   * `linux.namespaces[].path`.
   */
  readonly joinPaths?: Readonly<Partial<Record<NamespaceType, string>>> | undefined;
  /** create: enter this process's network namespace instead of having one of our own. */
  readonly joinNetOf?: number | undefined;
  /** join: the PID whose mount namespace (and so root directory) to enter. */
  readonly joinMountOf?: number | undefined;
  /**
   * Kernel parameters written under /proc/sys from inside the container's namespaces (the
   * network and IPC ones are per namespace), e.g. `net.ipv4.ip_forward`.
   */
  readonly sysctl?: Readonly<Record<string, string>> | undefined;
  /** Hostname and NIS domain name (needs a new uts namespace). */
  readonly hostname?: string | undefined;
  readonly domainname?: string | undefined;
  /** Mount a fresh /proc in place (no rootfs; needs new pid and mnt namespaces). */
  readonly mountProc: boolean;
  /** Pivot into this directory, with /proc, /dev, /sys set up inside it. */
  readonly rootfs?: RootfsConfig | undefined;
  /** Capabilities the command keeps (numbers), or null to leave them as they are. */
  readonly capabilities: readonly number[] | null;
  /**
   * Capabilities (numbers, all among `capabilities`) a command run as a `user` other than root
   * keeps through exec: its ambient set. Without, such a command has none.
   */
  readonly ambient?: readonly number[] | undefined;
  /** The command's umask. @defaultValue 0o022 */
  readonly umask?: number | undefined;
  /** Run the command as this user (ids inside the container's user namespace, if any). */
  readonly user?: { readonly uid: number; readonly gid: number; readonly groups: readonly number[] } | undefined;
  /** A seccomp filter program (base64 of classic BPF) to install before exec. */
  readonly seccomp?: string | undefined;
  /**
   * With an OCI seccomp profile (and only then, 0 included): the SECCOMP_FILTER_FLAG_* bits
   * to install `seccomp` with, through seccomp(2).
   */
  readonly seccompFlags?: number | undefined;
  /** Set PR_SET_NO_NEW_PRIVS before exec. */
  readonly noNewPrivileges: boolean;
  /** Whether the stage runs inside a new user namespace (devices are then bind-mounted). */
  readonly userns: boolean;
  /**
   * Give the command a pseudo-terminal, which the parent allocates in the devpts at /dev/pts
   * once the stage stands in the container's root (see ../protocol.ts). Without one, the
   * container has no /dev/tty either.
   */
  readonly tty: boolean;
}

/** @internal */
export interface RootfsConfig {
  readonly path: string;
  /**
   * Attached first, over their own paths: idmapped mounts of these host directories, made by
   * the parent (it alone may) and received on {@link IDMAP_FD}, in this order.
   */
  readonly idmapped?: readonly IdmappedPath[] | undefined;
  /** Mounted onto `path` first, in the new mount namespace only (a copy-on-write root). */
  readonly rootMount?: RootMount | undefined;
  /** The caller's mounts inside the root, in order, after /proc, /dev and /sys. */
  readonly mounts: readonly MountOperation[];
  /** Device nodes made in /dev (which is then mounted without nodev, as runc's is). */
  readonly devices?: readonly DeviceNode[] | undefined;
  /** The root mount made read-only (alone, not the mounts on it) just before the pivot. */
  readonly readonly?: boolean | undefined;
  /**
   * On the thread start path: every mount (not /proc alone) made once the command's process
   * exists, so they appear in /proc/self/mountinfo in the order of the plan, /proc first, as
   * an OCI runtime's config.json lists them (runtime-tools checks the order). Costs the start
   * the time of those mounts.
   */
  readonly inOrder?: boolean | undefined;
  /**
   * The propagation of every mount of the new root once pivoted (MS_SHARED, MS_SLAVE,
   * MS_PRIVATE or MS_UNBINDABLE, with MS_REC): an OCI config's rootfsPropagation. The
   * namespace's mounts were made private first, so none of them shares with the host's.
   */
  readonly propagation?: number | undefined;
}

/** The fd numbers of the stage's extra descriptors. @internal */
export const SYNC_FD = 3;
/** The command's real stderr; fd 2 of the stage is the diagnostics pipe. @internal */
export const STDERR_FD = 4;
/** With `rootfs.idmapped`: the socket the parent sends the idmapped mounts on (SCM_RIGHTS). @internal */
export const IDMAP_FD = 5;

/** The PATH a container gets when its environment names none (runc's and Docker's default). */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
