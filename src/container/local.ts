/**
 * The owner's side of a container it started in this process: the init process, the
 * resources made for it, its log drain, and the ordered release when it ends.
 * @internal
 */
import { Duplex, type Readable } from 'node:stream';
import type { Cgroup, CgroupStats } from '../cgroups/index.js';
import { logger } from '../log.js';
import type { ExitStatus, NamespacedProcess } from '../namespaces/index.js';
import type { NetworkAttachment } from '../network/index.js';
import type { EtcFiles } from './etc-files.js';
import type { LogWriter } from './logs/index.js';
import type { ContainerRecord } from './state/record.js';
import type { StateStore } from './state/store.js';
import type { ContainerLayer, WritableRoot } from './writable-root.js';
import type { UsernsAllocation } from './userns.js';

const log = logger('ctrkit:container');

/** How a container ended. */
export interface ContainerExit extends ExitStatus {
  /** True when the kernel's OOM killer killed a process of the container. */
  readonly oomKilled: boolean;
  /** The cgroup's last statistics, read just before it was removed (containers with a cgroup in this process). */
  readonly stats: CgroupStats | undefined;
  /** The kept writable layer (with `keepLayer`). */
  readonly layer: ContainerLayer | undefined;
}

/** What a started container holds, released in reverse order when it ends. @internal */
export interface ContainerParts {
  cgroup: Cgroup | undefined;
  root: WritableRoot | undefined;
  etc: EtcFiles | undefined;
  network: NetworkAttachment | undefined;
  /** Membership of a named network: leaving updates the other members' hosts files. */
  membership: { leave(): Promise<void> } | undefined;
  log: LogWriter | undefined;
  /** `userns: 'auto'`: the id range, freed last (once no process of the container is left). */
  userns?: UsernsAllocation | undefined;
}

/** Releases what exists of `parts` after a failed start, in reverse order of creation. @internal */
export async function undoParts(parts: ContainerParts): Promise<void> {
  const undo = async (what: string, p: Promise<unknown> | undefined) => {
    await p?.catch((e: unknown) => log('undoing %s after a failed start: %s', what, (e as Error).message));
  };
  parts.log?.close();
  await undo('the network', parts.network?.detach());
  await undo('the network membership', parts.membership?.leave());
  await undo('the cgroup', parts.cgroup?.remove());
  await undo('the /etc files', parts.etc?.dispose());
  await undo('the writable layer', parts.root?.dispose());
  await undo('the user namespace range', parts.userns?.release());
}

/** What a terminal's reader may fall behind by before its oldest output is dropped (a scroll-back). */
const TTY_BACKLOG = 1024 * 1024;

/**
 * The container's terminal as its handle offers it, while the log drains the real one: what
 * the command prints is kept (up to {@link TTY_BACKLOG}) until someone reads it, so a caller
 * that attaches after `start()` resolved still sees the first prompt; keystrokes go straight
 * to the terminal.
 */
function terminalView(master: Duplex): Duplex {
  return new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      master.write(chunk, callback);
    },
    final(callback) {
      master.end(callback);
    },
  });
}

/** Pipes stdout and stderr into the log (and a copy of a terminal into its view); resolves once both ended. */
function drain(writer: LogWriter, stdout: Readable | null, stderr: Readable | null, view: Duplex | undefined): Promise<void> {
  const one = (s: Readable | null, stream: 'stdout' | 'stderr') =>
    new Promise<void>((resolve) => {
      if (!s) return resolve();
      s.on('data', (chunk: Buffer) => {
        writer.write(stream, chunk);
        if (view && view.readableLength < TTY_BACKLOG) view.push(chunk);
      });
      const done = () => {
        view?.push(null);
        resolve();
      };
      s.once('end', done);
      s.once('close', done);
      s.once('error', done);
    });
  return Promise.all([one(stdout, 'stdout'), one(stderr, 'stderr')]).then(() => undefined);
}

/** A container this process started and owns. @internal */
export class LocalContainer {
  readonly process: NamespacedProcess;
  readonly parts: ContainerParts;
  /** The terminal (with `tty`): a view fed by the log drain, or the master itself when nothing is logged. */
  readonly tty: Duplex | null;
  /** Settles once the container ended and its resources were released (its record says so). */
  readonly exited: Promise<ContainerExit>;
  /** False for a container removed as soon as it ended (Container.run): its record goes, the exit is not written into it first. */
  recordExit = true;

  constructor(
    process: NamespacedProcess,
    parts: ContainerParts,
    store: StateStore,
    record: () => ContainerRecord,
    setRecord: (r: ContainerRecord) => void,
    logged: { stdout: Readable | null; stderr: Readable | null },
  ) {
    this.process = process;
    this.parts = parts;
    this.tty = process.tty && parts.log ? terminalView(process.tty) : process.tty;
    const drained = parts.log ? drain(parts.log, logged.stdout, logged.stderr, this.tty ?? undefined) : Promise.resolve();
    this.exited = process.exited.then(async (status) => {
      const exit = await this.release(status, drained, record().resources.keepLayer);
      const r = record();
      const done: ContainerRecord = {
        ...r,
        status: 'exited',
        finishedAt: new Date().toISOString(),
        exitCode: exit.exitCode,
        signal: exit.signal,
        oomKilled: exit.oomKilled,
      };
      setRecord(done);
      if (this.recordExit) await store.write(done).catch((e: unknown) => log('recording the exit of %s: %s', r.id, (e as Error).message));
      return exit;
    });
  }

  private async release(status: ExitStatus, drained: Promise<void>, keepLayer: boolean): Promise<ContainerExit> {
    const { cgroup, root, etc, network } = this.parts;
    const step = async (what: string, f: () => Promise<unknown> | undefined) => {
      try {
        await f();
      } catch (e) {
        log('releasing %s of %d failed: %s', what, this.process.pid, (e as Error).message);
      }
    };
    // First end every process: without a PID namespace of its own, a container's init can
    // exit and leave others running, and those may still write to the layer.
    if (cgroup && !this.process.namespaces.pid) await step('the processes', () => cgroup.kill());
    // Whatever the processes wrote before they ended goes into the log, then it is closed.
    await Promise.race([drained, new Promise((r) => setTimeout(r, 1000).unref())]);
    this.parts.log?.close();
    await step('the network', () => network?.detach());
    await step('the network membership', () => this.parts.membership?.leave());
    let stats: CgroupStats | undefined;
    // No process is left: the /etc files, the layer and the cgroup are independent now, and
    // go side by side. (The overlay was mounted in the container's own mount namespace, gone
    // with its last process: only the directories are left to delete.)
    await Promise.all([
      step('the /etc files', () => etc?.dispose()),
      // Out of the way at once, deleted in the background: the caller's result does not wait for the disk.
      step('the writable layer', () => root?.dispose(true, !this.recordExit)),
      cgroup &&
        step('the cgroup', async () => {
          stats = await cgroup.stats();
          await cgroup.remove();
        }),
    ]);
    // Last: the init is gone (and with it its PID namespace), so no process holds these ids.
    await step('the user namespace range', () => this.parts.userns?.release());
    return { ...status, oomKilled: (stats?.memory?.oomKills ?? 0) > 0, stats, layer: keepLayer ? root?.layer : undefined };
  }
}
