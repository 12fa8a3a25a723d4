/**
 * The messages between the main thread and the two threads of the thread start path (see
 * ./README in threads.ts): the builder, which makes a container's namespaces and mounts for
 * itself, and a spawner, which starts the command inside them. Plain data: they cross a
 * thread boundary by structured clone.
 * @internal
 */
import type { InitStep, WireError } from '../protocol.js';
import type { StageConfig } from '../init/config.js';

/** To the builder: make the namespaces and the root of one container (all but /proc). */
export interface BuildRequest {
  readonly t: 'build';
  readonly config: StageConfig;
  /** The spawner thread whose new cgroup namespace the cgroupfs mounts belong to. */
  readonly spawnerTid: number;
}

/** To the builder: wait for the command's process at the barrier, then finish the root around it. */
export interface ArriveRequest {
  readonly t: 'arrive';
  readonly config: StageConfig;
  readonly fifo: string;
  readonly spawnerTid: number;
}

/** To a spawner: join the cgroups and make the PID (and cgroup) namespace for children. */
export interface EnterRequest {
  readonly t: 'enter';
  readonly cgroupTasks: readonly string[];
  /** The park's tasks files: where the thread waits between containers. */
  readonly parkTasks: readonly string[];
  readonly cgroupns: boolean;
}

/** To a spawner: enter the builder's namespaces and start the command (blocks until it execs). */
export interface SpawnThreadRequest {
  readonly t: 'spawn';
  readonly builderTid: number;
  /** The namespaces the builder made (entered from it), e.g. mnt, uts, ipc, net. */
  readonly namespaces: readonly ('mnt' | 'uts' | 'ipc' | 'net')[];
  readonly path: string;
  readonly argv: readonly string[];
  readonly env: readonly string[];
  readonly cwd: string;
  /** The fds (in this process) that become the command's 0, 1 and 2. */
  readonly stdio: readonly [number, number, number];
  /** The barrier: the command opens the first FIFO (it exists), then blocks opening the second. */
  readonly fifos: readonly [string, string];
}

/** To either thread: return to the host's namespaces (and the spawner to its park): a start given up before `spawn`. */
export interface HomeRequest {
  readonly t: 'home';
}

export type ThreadRequest = BuildRequest | ArriveRequest | EnterRequest | SpawnThreadRequest | HomeRequest;

/** A thread's answer to one request. */
export type ThreadReply =
  | { readonly ok: true; readonly path?: string; readonly pid?: number }
  | { readonly ok: false; readonly step: InitStep; readonly error: WireError; readonly pid?: number | undefined };

/** What a spawner thread is made with: the container profile it serves, once and for all. */
export interface SpawnerProfile {
  /** Capabilities the commands keep (numbers): the thread's bounding set is narrowed to them. */
  readonly capabilities: readonly number[];
  readonly noNewPrivileges: boolean;
  /** The filter (base64 classic BPF) with the thread's key in front, or undefined. */
  readonly seccomp?: string | undefined;
  /** Supplementary groups of the commands (root's), set on the thread alone. */
  readonly groups?: readonly number[] | undefined;
}

/** `workerData` of a spawner thread. */
export interface SpawnerData {
  readonly profile: SpawnerProfile;
  /** The key of withNamespaceKey(), as two decimal strings (bigints do not clone everywhere). */
  readonly key: readonly [string, string];
}
