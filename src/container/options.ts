import type { BindMount, Capability, IdMapping, NamespaceType, SeccompOption, SpawnHook, StdioOption } from '../namespaces/index.js';
import type { Bridge, BridgeOptions, CniNetwork, Network, PastaOptions, PortSpec } from '../network/index.js';
import type { WaitStrategy } from './wait/strategy.js';
import type { RunningContainer } from './running.js';
import type { ImageStore, PullOptions } from '../oci/index.js';
import type { ResourceLimits } from './limits.js';
import type { CgroupStats } from '../cgroups/index.js';
import type { ContainerLayer } from './writable-root.js';
import type { LogLine } from './logs/index.js';

/**
 * A health check, like Docker's `HEALTHCHECK` / `--health-*`: `test` runs inside the container
 * (as `exec` does) and exit 0 means healthy. The status (`starting`, `healthy`, `unhealthy`)
 * shows in `inspect()` and `ctrkit ps`; `Wait.forHealthCheck()` waits for `healthy`.
 */
export interface HealthcheckOptions {
  /** `['CMD', prog, ...args]`, `['CMD-SHELL', 'script']`, or a string (run by `sh -c`). */
  readonly test: readonly string[] | string;
  /** Milliseconds between checks (the first runs right away). @defaultValue 30 000 */
  readonly interval?: number | undefined;
  /** A check that takes longer fails. @defaultValue 30 000 */
  readonly timeout?: number | undefined;
  /** Failures in a row that make the container `unhealthy`. @defaultValue 3 */
  readonly retries?: number | undefined;
  /** Failures during the first this many milliseconds do not count. @defaultValue 0 */
  readonly startPeriod?: number | undefined;
}

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
   * The storage driver of the copy-on-write root: `overlay`, `copy` (a full copy), or `btrfs`
   * (a snapshot of a base subvolume; `stateDir` must be on btrfs).
   * @defaultValue chosen for `stateDir`'s filesystem: btrfs there, else overlay where it works, else copy
   */
  readonly storageDriver?: 'overlay' | 'copy' | 'btrfs';
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
   * `'auto'` (as root): a user namespace whose root is an unused range of 65536 host ids, like
   * Podman's `--userns=auto`, taken from what /etc/subuid and /etc/subgid delegate to the user
   * `ctrkit` (a missing line is an error that names one to add) and freed when the container
   * is released. Its root filesystem is shown to it through idmapped mounts, so image files
   * owned by root are root's inside, and nothing is chowned. Root inside is an unprivileged
   * uid outside: it cannot write a host file others may not write. See docs/security.md.
   * @defaultValue no user namespace as root (root inside is root outside, confined); a rootless caller always gets one
   */
  readonly userns?: 'auto';
  /**
   * stdin, stdout, stderr. By default {@link Container.start} drains stdout and stderr into
   * the container's log (never blocking the container; read it with `logs()` or `onLog`),
   * and {@link Container.run} captures them into its result. `'pipe'` gives the raw streams
   * instead (then reading them is the caller's job: an unread pipe stalls the container once
   * full); `'inherit'` passes the caller's own.
   * @defaultValue `['ignore', log, log]` for start, `['ignore', 'pipe', 'pipe']` for run; stdin is a pipe when `input` is given
   */
  readonly stdio?: StdioOption | readonly [StdioOption, StdioOption, StdioOption];
  /**
   * Give the command a pseudo-terminal of the container's own (`docker run -t`): its stdin,
   * stdout and stderr, and its controlling terminal. The handle's `tty` is the other end
   * (write keystrokes, read the screen; `resize()` for the window size); what the command
   * prints is also logged as stdout. `stdio` does not apply then.
   * @defaultValue false
   */
  readonly tty?: boolean;
  /** The terminal's first window size, with `tty`. @defaultValue 80×24 */
  readonly ttySize?: { readonly cols: number; readonly rows: number };
  /** Written to the command's stdin, which is then closed (stdin must be a pipe: the default when `input` is given). */
  readonly input?: string | Uint8Array;
  /** Capabilities kept. @defaultValue `DEFAULT_CAPABILITIES` from `ctrkit/namespaces` (Docker's set) */
  readonly capabilities?: readonly Capability[] | 'all';
  /** All capabilities, no seccomp filter, no masked or read-only paths, no no_new_privs. @defaultValue false */
  readonly privileged?: boolean;
  /**
   * The seccomp filter: `'default'` (an allow-list at least as strict as Docker's default
   * profile), `'unconfined'`, or an OCI runtime-spec `linux.seccomp` object (Docker's profile
   * JSON is one). @defaultValue `'default'` unless `privileged`
   */
  readonly seccomp?: SeccompOption;
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
   * another running container's network namespace; a {@link Network}: a named network,
   * whose members reach each other by hostname, container name and `aliases`; `pasta`
   * (rootless callers): an `eth0` with the host's address and route through pasta (Debian's
   * `passt` package), outbound traffic and `ports` carried by the caller's own sockets (see
   * the `pasta` option). `bridge`, `cni` and named networks need root.
   * @defaultValue `'none'`
   */
  readonly network?: 'none' | 'host' | 'bridge' | 'cni' | 'pasta' | { readonly container: RunningContainer | number } | Network;
  /** Options of `network: 'pasta'`: address, gateway, reaching the host's loopback, more pasta arguments. */
  readonly pasta?: PastaOptions;
  /** More names the container answers to on its {@link Network} (`--network-alias`). */
  readonly aliases?: readonly string[];
  /** More /etc/hosts entries, `'name:ip'` (`--add-host`). */
  readonly extraHosts?: readonly string[];
  /**
   * Published ports for `bridge`, `pasta` and `cni`: `'8080:80'`, `'127.0.0.1:8080:80/tcp'`, `'53:53/udp'`.
   * Without a host port (`'80'`, `'0:80'`, `'127.0.0.1::80'`; bridge and pasta) the kernel picks a
   * free one, held for the container's lifetime: `mappedPort(80)` tells which. With `pasta`,
   * a port without a host address is published on 127.0.0.1 only.
   */
  readonly ports?: readonly PortSpec[];
  /** The bridge for `network: 'bridge'`: a {@link Bridge} or the options to create (or adopt) one. */
  readonly bridge?: Bridge | Omit<BridgeOptions, 'signal'>;
  /** The network for `network: 'cni'`. */
  readonly cni?: CniNetwork;
  /** Host files or directories bound into the container (`-v /src:/dst:ro`). */
  readonly binds?: readonly BindMount[];
  /** Host device nodes to make available in the container's /dev (`--device /dev/loop3`). */
  readonly devices?: readonly string[];
  /** Runs with the container's host PID before its command starts (its cgroup exists; on cgroup v1 the init joins it right after). */
  readonly onNamespaces?: SpawnHook;
  /**
   * A unique name: `Container.get(name)` finds the container from any process, and a second
   * container cannot take it while the first one's record exists.
   */
  readonly name?: string;
  /**
   * Let the container outlive this process. By default a container belongs to the process
   * that created it: however that process ends (SIGKILL included), the container is killed
   * and everything it held is released. A detached container is run by this process's owner
   * helper instead; find it again with `Container.list()` / `Container.get()`, end it with
   * `stop()` and `remove()`. Its output goes to its log. Options that are code or live
   * objects (`onNamespaces`, `onLog`, `signal` after the start, a `cni` network, `input`) cannot be
   * handed over and are refused.
   * @defaultValue false
   */
  readonly detach?: boolean;
  /** Remove the container's record and log as soon as it exited (`docker run --rm`); detached containers. @defaultValue false */
  readonly autoRemove?: boolean;
  /**
   * Run a real init as PID 1 (`docker run --init`): it reaps orphaned processes and passes
   * signals on to the command. `true` uses the static tini of Debian's `tini` package
   * (`/usr/bin/tini-static`), bound read-only at `/dev/init`; a string names another static init binary.
   * @defaultValue false
   */
  readonly init?: boolean | string;
  /** The signal `stop()` sends before SIGKILL. @defaultValue the image's `StopSignal`, else `'SIGTERM'` */
  readonly stopSignal?: NodeJS.Signals;
  /** Where container records and logs live. @defaultValue `/run/ctrkit` as root, `$XDG_RUNTIME_DIR/ctrkit` otherwise */
  readonly stateRoot?: string;
  /** Called with every line the container writes to stdout or stderr (when they are logged, the default of `start`). */
  readonly onLog?: (line: LogLine) => void;
  /** Bounds of the container's log: bytes per file and files kept (the current one included). @defaultValue `{ maxSize: 8 MiB, maxFiles: 2 }` */
  readonly log?: { readonly maxSize?: number; readonly maxFiles?: number };
  /** Kill the container (SIGKILL) after this many milliseconds; the result says `timedOut`. */
  readonly timeout?: number;
  /** Most bytes of stdout and of stderr kept in the result. @defaultValue 64 MiB */
  readonly maxBuffer?: number;
  /**
   * What {@link Container.start} waits for before it resolves (`Wait.forLogMessage(/ready/)`,
   * `Wait.forHttp('/', 80)` ...). If the container exits first, or `startupTimeout` passes,
   * it is removed and `start()` rejects with a {@link StartupError} carrying its last log lines.
   * @defaultValue `Wait.forListeningPorts()` when ports are published, else nothing
   */
  readonly waitFor?: WaitStrategy;
  /** Milliseconds {@link Container.start} waits for `waitFor`. @defaultValue 60 000 */
  readonly startupTimeout?: number;
  /** A health check; the default is the image's `HEALTHCHECK`. */
  readonly healthcheck?: HealthcheckOptions;
  /** Cancels setup, or kills the running container. */
  readonly signal?: AbortSignal;
  /**
   * How the container's process is started: `auto` on two long-lived threads of this process
   * wherever they can (as root with cgroup v1, without a user namespace, a terminal or a
   * non-root user): no process of ctrkit's per container, several times faster; `stage`
   * always through util-linux unshare(1) and ctrkit's init stage. The isolation is the same.
   * `DEBUG=ctrkit:spawn` shows which one ran and why; `CTRKIT_START_PATH=stage` forces the stage.
   * @defaultValue `'auto'`
   */
  readonly startPath?: 'auto' | 'stage';
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
  /** The container's resource use at the end (memory peak, CPU time, IO), read from its cgroup. */
  readonly stats: CgroupStats | undefined;
  /** Where the container's writes were kept (with `keepLayer`). */
  readonly layer: ContainerLayer | undefined;
  /** The container's IPv4 address, with `bridge`, `cni` or `pasta` networking. */
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
