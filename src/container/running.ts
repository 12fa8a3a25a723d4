import type { Readable, Writable } from 'node:stream';
import { logger } from '../log.js';
import type { CgroupStats, Cgroup } from '../cgroups/index.js';
import type { ExitStatus, NamespacedProcess, NamespaceRef, NamespaceType } from '../namespaces/index.js';
import type { ContainerLayer, WritableRoot } from './writable-root.js';

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

  /** @internal */
  constructor(process: NamespacedProcess, cgroup: Cgroup | undefined, root: WritableRoot | undefined, keepLayer: boolean) {
    this.process = process;
    this.cgroup = cgroup;
    this.exited = process.exited.then(async (status) => {
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
