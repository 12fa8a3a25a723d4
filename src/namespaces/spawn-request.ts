// What a spawn is asked to do: the request both start paths take (./spawn.ts, ./fast/), and
// the public types it is made of.
import type { IdMapping } from './idmap.js';
import type { StageConfig } from './init/config.js';
import type { TtySize } from './pty.js';
import type { NamespaceType } from './types.js';
import type { PreparedFds } from './fast/protocol.js';

/**
 * A container's namespaces and root built ahead of time on the thread start path (see
 * prebuildOnThreads in ./fast/threads.ts): fds of this process until closed.
 * @internal
 */
export interface PreparedNamespaces {
  readonly fds: PreparedFds;
  /** Closes the fds (a started container's processes keep the namespaces); idempotent. */
  close(): void;
}

/** Where one of the command's standard streams goes. */
export type StdioOption = 'pipe' | 'inherit' | 'ignore' | number;

/** What the spawn hook is told. */
export interface SpawnHookContext {
  /** The container's init as the caller's /proc sees it; its namespaces exist, its command has not started. */
  readonly pid: number;
  /** Aborted when the caller's signal aborts. */
  readonly signal: AbortSignal;
}

/**
 * Runs after the namespaces exist and before the command starts: the place to put the
 * PID into a cgroup or move a network interface into its namespace. If it throws, the
 * process is killed and the error is rethrown to the caller.
 */
export type SpawnHook = (ctx: SpawnHookContext) => void | Promise<void>;

/** A fully checked spawn request. @internal */
export interface SpawnRequest {
  readonly config: StageConfig;
  readonly uidMap?: readonly IdMapping[] | undefined;
  readonly gidMap?: readonly IdMapping[] | undefined;
  readonly timeOffsets?: { readonly monotonic?: number | undefined; readonly boottime?: number | undefined } | undefined;
  readonly stdio: readonly [StdioOption, StdioOption, StdioOption];
  /** With `config.tty`: the terminal's initial size (else the kernel's 0x0). */
  readonly ttySize?: TtySize | undefined;
  readonly hook?: SpawnHook | undefined;
  /**
   * Runs when `hook` would, but need not hold the command back: bookkeeping (the caller's
   * records). Without a `hook`, the thread path lets the command go at once and runs this
   * meanwhile; the start resolves once both are done. A failure ends the start as the hook's does.
   */
  readonly alongside?: SpawnHook | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Enter the namespaces of an existing process with nsenter(1) instead of creating new ones. */
  readonly join?: { readonly target: number; readonly namespaces: readonly NamespaceType[] } | undefined;
  /** `stage`: never the thread start path (see ./fast/threads.ts). @defaultValue `'auto'` */
  readonly startPath?: 'auto' | 'stage' | undefined;
  /** Start in these prepared namespaces (thread path only; closed once the start is over). */
  readonly prepared?: PreparedNamespaces | undefined;
  /**
   * What the command's process must wait for, made by the caller while the namespaces and
   * the root are built: the files the mounts bind, the cgroup it joins, its record. The
   * process exists only once this resolved; a rejection ends the start with its error.
   */
  readonly gate?: Promise<void> | undefined;
}
