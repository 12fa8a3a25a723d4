import type { BindMount, Capability, IdMapping, NamespaceType, SeccompProfile, SpawnHook, StdioOption } from '../namespaces/index.js';
import type { Bridge, BridgeOptions, CniNetwork, PortSpec } from '../network/index.js';
import type { RunningContainer } from './running.js';
import type { ImageStore, PullOptions } from '../oci/index.js';
import type { ResourceLimits } from './limits.js';
import type { CgroupStats } from '../cgroups/index.js';
import type { ContainerLayer } from './writable-root.js';

/** Options of {@link Container.run} and {@link Container.start}. */
export interface RunOptions extends ResourceLimits {
  /**
   * The directory to use as the container's `/`. It is never written to by ctrkit; the
   * command may write to it.
   * @defaultValue ctrkit's default rootfs (busybox, or the host's own sh/ls/ps/cat), built once and cached
   */
  readonly rootfs?: string;
  /**
   * Give the container a copy-on-write root: an overlay over `rootfs` with a throwaway upper
   * (or a copy where overlay cannot work), so the rootfs on disk never changes and any number
   * of containers share it. `false` runs directly in `rootfs`, writes included.
   * @defaultValue true
   */
  readonly overlay?: boolean;
  /** Keep the container's writable layer when it ends (`result.layer` says where), to inspect or commit it. */
  readonly keepLayer?: boolean;
  /** Where writable layers live. @defaultValue `/var/lib/ctrkit/containers` for root, `~/.local/share/ctrkit/containers` otherwise */
  readonly stateDir?: string;
  /**
   * An image to run (`busybox`, `127.0.0.1:5000/app:1.0`), pulled into `store` when missing;
   * its layers become the container's read-only lowers, its config the defaults of the process.
   */
  readonly image?: string;
  /** The image store. @defaultValue `defaultImageStoreDir()` from `ctrkit/oci` */
  readonly store?: ImageStore | string;
  /** When to pull `image`: when missing, every time, or never. @defaultValue `'missing'` */
  readonly pull?: 'missing' | 'always' | 'never';
  /** Registry options for the pull: credentials, `insecure`, `platform`, `onProgress` ... */
  readonly pullOptions?: Omit<PullOptions, 'signal'>;
  /** Replaces the image's Entrypoint. */
  readonly entrypoint?: readonly string[];
  /** An OCI runtime bundle to run (`config.json` + rootfs, as runc takes). */
  readonly bundle?: string;
  /** The user the command runs as: `uid[:gid]`, or a name from an image's /etc/passwd. @defaultValue the image's, else root */
  readonly user?: string | { readonly uid: number; readonly gid: number };
  /**
   * The program and its arguments; a name without `/` is looked up in the container's PATH.
   * Required unless an image or bundle says what to run.
   */
  readonly command?: readonly string[];
  /** Hostname inside. @defaultValue `'container'` */
  readonly hostname?: string;
  /** Environment variables, added to `PATH`, `HOSTNAME` and `HOME` (which they may override). */
  readonly env?: Readonly<Record<string, string>>;
  /** Working directory inside the container. @defaultValue `/` */
  readonly cwd?: string;
  /** The namespaces to create. @defaultValue `['pid', 'mnt', 'uts', 'ipc', 'net', 'cgroup']`, plus `user` when not root */
  readonly namespaces?: readonly NamespaceType[];
  /** uid map of a user namespace (implies `user`): root inside can be an unprivileged uid outside. */
  readonly uidMap?: readonly IdMapping[];
  /** gid map of a user namespace (implies `user`). */
  readonly gidMap?: readonly IdMapping[];
  /**
   * stdin, stdout, stderr. `'pipe'` captures stdout/stderr into the result (and, for
   * {@link Container.start}, exposes the streams); `'inherit'` passes the caller's.
   * @defaultValue `['ignore', 'pipe', 'pipe']`, or a stdin pipe when `input` is given
   */
  readonly stdio?: StdioOption | readonly [StdioOption, StdioOption, StdioOption];
  /** Written to the command's stdin, which is then closed. */
  readonly input?: string | Uint8Array;
  /** Capabilities kept. @defaultValue `DEFAULT_CAPABILITIES` from `ctrkit/namespaces` (Docker's set) */
  readonly capabilities?: readonly Capability[] | 'all';
  /** All capabilities, no seccomp filter, no masked or read-only paths, no no_new_privs. @defaultValue false */
  readonly privileged?: boolean;
  /** The seccomp filter. @defaultValue `'default'` (ctrkit's deny-list) unless `privileged` */
  readonly seccomp?: SeccompProfile;
  /** Set no_new_privs. @defaultValue true unless `privileged` */
  readonly noNewPrivileges?: boolean;
  /** Paths hidden from the container. @defaultValue {@link DEFAULT_MASKED_PATHS} */
  readonly maskedPaths?: readonly string[];
  /** Paths made read-only. @defaultValue {@link DEFAULT_READONLY_PATHS} */
  readonly readonlyPaths?: readonly string[];
  /**
   * Networking. `none`: a network namespace with only `lo`; `host`: the caller's network;
   * `bridge`: a veth on a bridge (`bridge` option; default `ctk0`, 10.88.0.0/16) with an
   * address, a default route, NAT and `ports`; `cni`: the `cni` network; `{ container }`:
   * another running container's network namespace.
   * @defaultValue `'none'`
   */
  readonly network?: 'none' | 'host' | 'bridge' | 'cni' | { readonly container: RunningContainer | number };
  /** Published ports for `bridge` and `cni`: `'8080:80'`, `'127.0.0.1:8080:80/tcp'`, `'53:53/udp'`. */
  readonly ports?: readonly PortSpec[];
  /** The bridge for `network: 'bridge'`: a {@link Bridge} or the options to create (or adopt) one. */
  readonly bridge?: Bridge | Omit<BridgeOptions, 'signal'>;
  /** The network for `network: 'cni'`. */
  readonly cni?: CniNetwork;
  /** Host files or directories bound into the container (`-v /src:/dst:ro`). */
  readonly binds?: readonly BindMount[];
  /** Host device nodes to make available in the container's /dev (`--device /dev/loop3`). */
  readonly devices?: readonly string[];
  /** Runs with the container's host PID before its command starts (after it joined its cgroup). */
  readonly onNamespaces?: SpawnHook;
  /** Kill the container (SIGKILL) after this many milliseconds; the result says `timedOut`. */
  readonly timeout?: number;
  /** Most bytes of stdout and of stderr kept in the result. @defaultValue 64 MiB */
  readonly maxBuffer?: number;
  /** Cancels setup, or kills the running container. */
  readonly signal?: AbortSignal;
}

/** What {@link Container.run} resolves to. A non-zero exit is a result, not an error. */
export interface RunResult {
  /** The exit code, or null when a signal ended the container. */
  readonly exitCode: number | null;
  /** The signal that ended it, e.g. `SIGKILL`. */
  readonly signal: NodeJS.Signals | null;
  /** Captured stdout ('' when not piped). */
  readonly stdout: string;
  /** Captured stderr ('' when not piped). */
  readonly stderr: string;
  /** True when the kernel's OOM killer ended the container (needs a memory limit). */
  readonly oomKilled: boolean;
  /** The container's resource use at the end (memory peak, CPU time, IO), when it had limits. */
  readonly stats: CgroupStats | undefined;
  /** Where the container's writes were kept (with `keepLayer`). */
  readonly layer: ContainerLayer | undefined;
  /** The container's IPv4 address, with `bridge` or `cni` networking. */
  readonly address: string | undefined;
  /** True when `timeout` expired and the container was killed. */
  readonly timedOut: boolean;
  /** True when stdout or stderr was longer than `maxBuffer` and was cut. */
  readonly truncated: boolean;
  /** The command that ran. */
  readonly command: readonly string[];
  /** The container's init PID on the host while it ran. */
  readonly pid: number;
  /** Wall time from the call to the exit, in milliseconds. */
  readonly durationMs: number;
}
