/**
 * The messages between the main thread and the two threads of the thread start path (see
 * ./README in threads.ts): the builder, which makes a container's namespaces and mounts for
 * itself, and a spawner, which starts the command inside them. Plain data: they cross a
 * thread boundary by structured clone.
 * @internal
 */
import type { InitStep, WireError } from '../protocol.js';
import type { StageConfig } from '../init/config.js';

/** The namespace fds of a prepared container (fds of this process, close-on-exec). */
export type PreparedFds = Partial<Record<'mnt' | 'uts' | 'ipc' | 'net' | 'cgroup', number>>;

/**
 * To the builder: a build ahead of time (see Container.prewarm). The cgroup namespace is made
 * by the builder itself, rooted at the container's cgroup (it joins it, unshares, then moves to
 * the park); the namespaces are kept as fds and the builder goes home.
 */
export interface PrebuildRequest {
  readonly t: 'prebuild';
  readonly config: StageConfig;
  readonly parkTasks: readonly string[];
}

/** To a spawner: join the cgroups and make the PID (and cgroup) namespace for children. */
export interface EnterRequest {
  readonly t: 'enter';
  readonly cgroupTasks: readonly string[];
  /** The park's tasks files: where the thread waits between containers. */
  readonly parkTasks: readonly string[];
  readonly cgroupns: boolean;
  /** A prepared container: its cgroup namespace (an fd), entered instead of a new one. */
  readonly cgroupnsFd?: number | undefined;
  /** PID and cgroup namespaces entered from these paths instead of made new (an OCI config's). */
  readonly joinPaths?: Readonly<Partial<Record<'pid' | 'cgroup', string>>> | undefined;
  /** An exec into a running container: this PID's cgroup and PID namespaces are entered instead of new ones. */
  readonly joinOf?: number | undefined;
}

/** To a spawner: enter the builder's namespaces and start the command (blocks until it execs). */
export interface SpawnThreadRequest {
  readonly t: 'spawn';
  readonly builderTid: number;
  /** The namespaces the builder made (entered from it), e.g. mnt, uts, ipc, net. */
  readonly namespaces: readonly ('mnt' | 'uts' | 'ipc' | 'net')[];
  /** A prepared container: the namespaces as fds of this process, entered instead of the builder's. */
  readonly nsFds?: PreparedFds | undefined;
  readonly path: string;
  readonly argv: readonly string[];
  readonly env: readonly string[];
  readonly cwd: string;
  /** The fds (in this process) that become the command's 0, 1 and 2. */
  readonly stdio: readonly [number, number, number];
  /** A pty slave's path inside the container, opened as 0, 1 and 2 (and controlling terminal) last. */
  readonly terminal?: string | undefined;
  /**
   * The barrier: the command opens the first FIFO (it exists), then blocks opening the second.
   * None for an exec into a running container, which has nothing to wait for.
   */
  readonly fifos?: readonly [string, string] | undefined;
}

/**
 * To the builder, a whole start in one request: build the root (or, for a prepared container,
 * find the command in it), hand the command's path to the spawner through `handoff`, then
 * wait for the command's process at the barrier and finish the root around it. Replies with
 * its PID.
 */
export interface BuilderStartRequest {
  readonly t: 'start';
  readonly config: StageConfig;
  readonly spawnerTid: number;
  readonly fifo: string;
  readonly handoff: SharedArrayBuffer;
  /** A prepared container: its mount namespace (an fd of this process). */
  readonly mntFd?: number | undefined;
  /** The spawner's children before its spawn (ours is the one that is new at the barrier). */
  readonly earlier: readonly number[];
  /** Directory trees to delete once the reply is sent (see ./deferred-delete.ts). */
  readonly trash?: readonly string[] | undefined;
  /** The caller still prepares (SpawnRequest.gate): the plan's mounts wait for the handoff's ready cell. */
  readonly gated?: boolean | undefined;
  /**
   * The barrier's second FIFO, when the caller has nothing to do before the command runs
   * (SpawnRequest.alongside): opened by the builder once the root is finished, which lets the
   * command go; the fd is in the reply, for the caller to close once the command execs.
   */
  readonly release?: string | undefined;
}

/** To the builder: delete these directory trees, then reply. */
export interface DeleteRequest {
  readonly t: 'delete';
  readonly trash: readonly string[];
}

/**
 * To a spawner, a whole start in one request: enter (as {@link EnterRequest}), say so through
 * `handoff`, wait there for the builder's root and the command's path, then spawn (as
 * {@link SpawnThreadRequest}). Replies once the command execs, with its PID.
 */
export interface SpawnerStartRequest {
  readonly t: 'start';
  /** The caller still prepares (SpawnRequest.gate): nothing is entered before the handoff's ready cell. */
  readonly gated?: boolean | undefined;
  readonly enter: Omit<EnterRequest, 't'>;
  readonly spawn: Omit<SpawnThreadRequest, 't' | 'path'>;
  readonly handoff: SharedArrayBuffer;
}

/** To either thread: return to the host's namespaces (and the spawner to its park): a start given up before `spawn`. */
export interface HomeRequest {
  readonly t: 'home';
  /** For the builder: directory trees to delete first (the threads are about to end). */
  readonly trash?: readonly string[] | undefined;
}

/** What the builder thread is asked. */
export type BuilderRequest = BuilderStartRequest | PrebuildRequest | DeleteRequest | HomeRequest;

/** What a spawner thread is asked (an exec into a running container: enter, then spawn). */
export type SpawnerRequest = SpawnerStartRequest | EnterRequest | SpawnThreadRequest | HomeRequest;

export type ThreadRequest = BuilderRequest | SpawnerRequest;

/** A thread's answer to one request. */
export type ThreadReply =
  | {
      readonly ok: true;
      readonly path?: string;
      readonly pid?: number;
      readonly fds?: PreparedFds;
      /** The builder let the process go (BuilderStartRequest.release): its writer on FIFO 2, and the process's namespace inodes by type. */
      readonly released?: number;
      readonly namespaces?: Readonly<Record<string, number>>;
    }
  | { readonly ok: false; readonly step: InitStep; readonly error: WireError; readonly pid?: number | undefined };

/** What a spawner thread is made with: the container profile it serves, once and for all. */
export interface SpawnerProfile {
  /** Capabilities the commands keep (numbers): the thread's bounding set is narrowed to them. */
  readonly capabilities: readonly number[];
  readonly noNewPrivileges: boolean;
  /** The filter (base64 classic BPF) with the thread's key in front, or undefined. */
  readonly seccomp?: string | undefined;
  /** An OCI profile's SECCOMP_FILTER_FLAG_* bits (TSYNC is never used on a thread). */
  readonly seccompFlags?: number | undefined;
  /** Supplementary groups of the commands, set on the thread alone. */
  readonly groups?: readonly number[] | undefined;
  /** The commands' user and group (0 or absent: root), set on the thread alone. */
  readonly uid?: number | undefined;
  /** The commands' umask (the thread's own: it has a file system context of its own). */
  readonly umask?: number | undefined;
  /** With a uid that is not root: the capabilities (numbers) its commands keep, as their ambient set. */
  readonly ambient?: readonly number[] | undefined;
  readonly gid?: number | undefined;
}

/** `workerData` of a spawner thread. */
export interface SpawnerData {
  readonly profile: SpawnerProfile;
  /** The key of withNamespaceKey(), as two decimal strings (bigints do not clone everywhere). */
  readonly key: readonly [string, string];
}
