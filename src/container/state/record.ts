import type { SeccompOption } from '../../namespaces/index.js';
import type { ProcessIdentity } from '../../sys/liveness.js';
import type { HealthState } from '../health.js';

/**
 * The lifecycle states of a container, as `ctrkit ps` and `inspect()` show them.
 * - `creating`: its resources are being made; its init does not run yet;
 * - `running`: its init exists (it may be `paused`: frozen in its cgroup);
 * - `exited`: it ended and what it held was released; its record and log stay until removed;
 * - `dead`: its owner vanished without recording the end (prune releases it).
 */
export type ContainerStatus = 'creating' | 'running' | 'paused' | 'exited' | 'dead';

/** The network a container got, as recorded for other processes and for release. @internal */
export interface NetworkRecord {
  readonly mode: 'bridge' | 'cni' | 'pasta';
  /** Pasta mode: the pasta process (PID and start time), ended on release. */
  readonly pasta?: { readonly pid: number; readonly start: number } | undefined;
  readonly address: string | undefined;
  /** Bridge mode: what the release needs to undo the attachment. */
  readonly bridge?:
    | {
        readonly name: string;
        readonly subnet: string;
        readonly gateway: string;
        /** The host namespace the bridge lives in: a path under /run/netns, or undefined for the owner's own. */
        readonly netns: string | undefined;
        readonly stateDir: string;
        readonly hostIfname: string;
        readonly leaseOwner: { readonly pid: number; readonly startTime: number };
        /** Made from options (the default `ctk0` included): removed with its last container. */
        readonly removeWhenUnused?: boolean | undefined;
      }
    | undefined;
  /** A named network the container is a member of (`Network`): what leaving it needs. */
  readonly named?: { readonly name: string; readonly stateDir: string } | undefined;
  /** Published ports as mapped (the host port the kernel chose included). */
  readonly ports: readonly {
    readonly hostIp?: string | undefined;
    readonly hostPort: number;
    readonly containerPort: number;
    readonly protocol: 'tcp' | 'udp';
  }[];
}

/**
 * What a container's state directory holds in `state.json`: everything another process
 * needs to find, signal, exec into, log, stop and release it. Written atomically (rename)
 * by the container's owner only.
 * @internal
 */
export interface ContainerRecord {
  readonly version: 1;
  readonly id: string;
  readonly name: string | undefined;
  /** ISO time of creation. */
  readonly created: string;
  /** The process that owns it: its creator, or, for a detached container, the owner helper that runs it. */
  readonly owner: ProcessIdentity;
  /** Survives its creator. */
  readonly detached: boolean;
  /** Remove the record and log as soon as it exited (`--rm`). */
  readonly autoRemove: boolean;
  readonly status: 'creating' | 'running' | 'exited';
  /** The init as the host sees it, once it exists. */
  readonly init: ProcessIdentity | undefined;
  readonly startedAt: string | undefined;
  readonly finishedAt: string | undefined;
  readonly exitCode: number | null | undefined;
  readonly signal: string | null | undefined;
  readonly oomKilled: boolean | undefined;
  readonly command: readonly string[];
  readonly image: string | undefined;
  readonly hostname: string;
  /** The signal `stop()` sends first. */
  readonly stopSignal: string;
  /** What `exec` inherits from the container's process. */
  readonly process: {
    readonly env: Readonly<Record<string, string>>;
    readonly cwd: string;
    readonly user: { readonly uid: number; readonly gid: number; readonly groups?: readonly number[] | undefined } | undefined;
    readonly capabilities: readonly string[] | 'all';
    readonly noNewPrivileges: boolean;
    readonly seccomp: SeccompOption;
    readonly tty: boolean;
  };
  /** The resources it holds, released in reverse order; each may be missing if creation stopped early. */
  readonly resources: {
    readonly cgroup: { readonly version: 1 | 2; readonly path: string } | undefined;
    readonly layerDir: string | undefined;
    readonly keepLayer: boolean;
    readonly etcDir: string | undefined;
    readonly network: NetworkRecord | undefined;
    /** `userns: 'auto'`: the host ids root inside maps to (`size` of them), freed on release. */
    readonly userns?: { readonly uid: number; readonly gid: number; readonly size: number } | undefined;
  };
  /** The health check's state, when the container has one. */
  readonly health?: HealthState | undefined;
  /** The json-lines log (with rotated siblings `.1`, `.2` ...), when output is logged. */
  readonly log: { readonly path: string; readonly maxSize: number; readonly maxFiles: number } | undefined;
}
