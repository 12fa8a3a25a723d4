import type { Readable, Writable } from 'node:stream';
import { logger } from '../log.js';
import type { CgroupStats, Cgroup } from '../cgroups/index.js';
import { CtrkitError } from '../errors.js';
import {
  DEFAULT_PATH, nsenter, type Capability, type ExitStatus, type NamespacedProcess, type NamespaceRef, type NamespaceType,
  type SeccompProfile, type StdioOption,
} from '../namespaces/index.js';
import type { ContainerLayer, WritableRoot } from './writable-root.js';
import type { EtcFiles } from './etc-files.js';
import type { NetworkAttachment } from '../network/index.js';

const log = logger('ctrkit:container');

/** How a container ended. */
export interface ContainerExit extends ExitStatus {
  /** True when the kernel's OOM killer killed a process of the container. */
  readonly oomKilled: boolean;
  /** The cgroup's last statistics, read just before it was removed (containers with limits). */
  readonly stats: CgroupStats | undefined;
  /** The kept writable layer (with `keepLayer`). */
  readonly layer: ContainerLayer | undefined;
}

/** What a started container owns, released when it ends. @internal */
export interface ContainerParts {
  readonly command: readonly string[];
  readonly cgroup: Cgroup | undefined;
  readonly root: WritableRoot | undefined;
  readonly etc: EtcFiles | undefined;
  readonly network: NetworkAttachment | undefined;
}

/** What an exec'd program gets of the container's security settings. @internal */
export interface SecurityProfile {
  readonly capabilities: readonly Capability[] | 'all';
  readonly noNewPrivileges: boolean;
  readonly seccomp: SeccompProfile;
}

/** Options of {@link RunningContainer.exec}. */
export interface ExecOptions {
  /** The program and its arguments, looked up in the container's PATH. */
  readonly command: readonly string[];
  /** Environment. @defaultValue a standard PATH and HOME=/root */
  readonly env?: Readonly<Record<string, string>>;
  /** Working directory inside the container. @defaultValue `/` */
  readonly cwd?: string;
  /** stdin, stdout, stderr. @defaultValue `'pipe'` */
  readonly stdio?: StdioOption | readonly [StdioOption, StdioOption, StdioOption];
  /** Cancels setup, or kills the program once it runs. */
  readonly signal?: AbortSignal;
}

/**
 * A started container: its init process, its streams, and the cgroup that holds it when it
 * has limits. `exited` settles once the container has ended and its cgroup is gone.
 */
export class RunningContainer implements AsyncDisposable {
  /** The init process. */
  readonly process: NamespacedProcess;
  /** The cgroup enforcing the container's limits, when it has any. */
  readonly cgroup: Cgroup | undefined;
  /** Settles when the container has exited and been cleaned up. Never rejects. */
  readonly exited: Promise<ContainerExit>;

  private readonly profile: SecurityProfile;

  /** The command the container runs (after an image's entrypoint and cmd were applied). */
  readonly command: readonly string[];
  /** The container's network attachment (address, gateway, ports), when it has one. */
  readonly network: NetworkAttachment | undefined;

  /** @internal */
  constructor(process: NamespacedProcess, parts: ContainerParts, keepLayer: boolean, profile: SecurityProfile) {
    const { cgroup, root, etc, network } = parts;
    this.command = parts.command;
    this.process = process;
    this.profile = profile;
    this.cgroup = cgroup;
    this.network = network;
    this.exited = process.exited.then(async (status) => {
      // Reverse order of creation: the network first (its address goes back to the pool).
      await network?.detach().catch((e: unknown) => log('detaching the network of %d failed: %s', process.pid, (e as Error).message));
      await etc?.dispose().catch((e: unknown) => log('removing the /etc files of %d failed: %s', process.pid, (e as Error).message));
      // The overlay was mounted in the container's own mount namespace, gone with its last
      // process: only the directories are left to delete.
      await root?.dispose().catch((e: unknown) => log('removing the writable layer of %d failed: %s', process.pid, (e as Error).message));
      let stats: CgroupStats | undefined;
      if (cgroup) {
        try {
          stats = await cgroup.stats();
          await cgroup.remove();
        } catch (e) {
          log('cleaning up the cgroup of %d failed: %s', process.pid, (e as Error).message);
        }
      }
      return { ...status, oomKilled: (stats?.memory?.oomKills ?? 0) > 0, stats, layer: keepLayer ? root?.layer : undefined };
    });
  }

  /** The init's PID on the host. */
  get pid(): number {
    return this.process.pid;
  }

  /** The namespaces of the container. */
  get namespaces(): Readonly<Partial<Record<NamespaceType, NamespaceRef>>> {
    return this.process.namespaces;
  }

  /** stdin, when piped. */
  get stdin(): Writable | null {
    return this.process.stdin;
  }

  /** stdout, when piped. */
  get stdout(): Readable | null {
    return this.process.stdout;
  }

  /** stderr, when piped. */
  get stderr(): Readable | null {
    return this.process.stderr;
  }

  /** Resource usage right now (memory, CPU, IO, pids), when the container has a cgroup. */
  async stats(): Promise<CgroupStats | undefined> {
    return this.cgroup?.stats();
  }

  /**
   * Runs another program inside the running container (`docker exec`): its namespaces, its
   * root, its cgroup, and the same security profile as the container's command.
   */
  async exec(options: ExecOptions): Promise<NamespacedProcess> {
    const cgroup = this.cgroup;
    return nsenter({
      target: this.pid,
      command: options.command,
      env: options.env ?? { PATH: DEFAULT_PATH, HOME: '/root' },
      cwd: options.cwd ?? '/',
      stdio: options.stdio ?? 'pipe',
      capabilities: this.profile.capabilities,
      noNewPrivileges: this.profile.noNewPrivileges,
      seccomp: this.profile.seccomp,
      onNamespaces: cgroup ? ({ pid }) => cgroup.addProcess(pid) : undefined,
      signal: options.signal,
    });
  }

  /** Freezes every process of the container (needs a cgroup: a container with limits). */
  async pause(): Promise<void> {
    if (!this.cgroup) throw new CtrkitError('ERR_NO_CGROUP', 'pause needs the container to have a cgroup: give it a resource limit');
    await this.cgroup.freeze();
  }

  /** Thaws a paused container. */
  async resume(): Promise<void> {
    if (!this.cgroup) throw new CtrkitError('ERR_NO_CGROUP', 'resume needs the container to have a cgroup: give it a resource limit');
    await this.cgroup.thaw();
  }

  /** Signals the init (see {@link NamespacedProcess.kill}). */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    return this.process.kill(signal);
  }

  /** Same as awaiting {@link RunningContainer.exited}. */
  wait(): Promise<ContainerExit> {
    return this.exited;
  }

  /** Kills the container and waits until it and its cgroup are gone. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.process.kill('SIGKILL');
    await this.exited;
  }
}
