/**
 * The owner side of container ownership: one helper process per owning process, started
 * with the first container. Node cannot be told when a process is SIGKILLed, but its child
 * can: the IPC channel to a forked helper reaches end-of-file when the owner ends for any
 * reason, and the helper then kills and releases the owner's containers. The same helper
 * runs the owner's detached containers (they must outlive it), so there is never more
 * than one helper per owner, and none per container.
 * @internal
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CtrkitError, InvalidOptionError } from '../errors.js';
import { logger } from '../log.js';
import { identify } from '../sys/liveness.js';
import { OwnerHelperError } from './errors.js';
import type { DetachedStart, FromHelper, ToHelper } from './protocol.js';

const log = logger('ctrkit:owner');
// The helper's entry runs containers, so it lives with them; this client is all other blocks see.
const MAIN = fileURLToPath(new URL('../container/owner/helper-main.js', import.meta.url));

interface Pending {
  resolve(v: { id: string; root: string }): void;
  reject(e: Error): void;
}

class HelperClient {
  private readonly child: ChildProcess;
  private readonly watched = new Map<string, Promise<void>>();
  private readonly pending = new Map<number, Pending>();
  private next = 0;
  private dead: Error | undefined;

  constructor() {
    if (!existsSync(MAIN)) throw new OwnerHelperError(`the owner helper ${MAIN} is missing: build the package`);
    // Its own session (detached): a terminal's ^C or hang-up must not end it before it
    // cleaned up after us. No stdio of ours: it may outlive us, and must not hold our pipes.
    const me = identify(process.pid);
    if (!me) throw new OwnerHelperError('cannot read our own start time from /proc');
    this.child = fork(MAIN, [`${me.pid}:${me.start}`], {
      detached: true,
      stdio: ['ignore', 'ignore', process.env.DEBUG ? 'inherit' : 'ignore', 'ipc'],
      execArgv: [],
      serialization: 'json',
    });
    this.child.on('message', (m: FromHelper) => this.onMessage(m));
    this.child.on('error', (e) => this.fail(e));
    this.child.on('exit', (code, signal) => this.fail(new OwnerHelperError(`the owner helper ended (${signal ?? `code ${code}`})`)));
    this.idle();
  }

  /** Our own exit must not wait for the helper: only pending requests keep us alive. */
  private idle(): void {
    if (this.pending.size > 0) return;
    this.child.unref();
    (this.child.channel as { unref?: () => void } | undefined)?.unref?.();
  }

  private busy(): void {
    this.child.ref();
    (this.child.channel as { ref?: () => void } | undefined)?.ref?.();
  }

  private onMessage(m: FromHelper): void {
    if (m.t === 'ready') {
      log('owner helper %d is up', m.helper.pid);
      return;
    }
    const p = this.pending.get(m.req);
    if (!p) return;
    this.pending.delete(m.req);
    this.idle();
    if (m.t === 'started') p.resolve({ id: m.id, root: m.root });
    else if (m.t === 'watching') p.resolve({ id: '', root: '' });
    else if (m.error.code === 'ERR_INVALID_OPTION' && m.error.option !== undefined) {
      p.reject(new InvalidOptionError(m.error.option, m.error.message.replace(`${m.error.option}: `, '')));
    } // The helper's own error, as a CtrkitError of the same code and name.
    else p.reject(Object.assign(new CtrkitError(m.error.code ?? 'ERR_OWNER_HELPER', m.error.message), { name: m.error.name }));
  }

  private fail(e: Error): void {
    this.dead ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private send(m: ToHelper): void {
    if (this.dead) throw this.dead;
    this.child.send(m);
  }

  /**
   * Asks the helper to release our containers under `root` when we end (and to delete what
   * we left in the trash of `stateDir`: see ../container/layer-trash.ts). Resolves once the
   * helper has it: from then on, whatever we start there is reclaimed if we die.
   */
  watch(root: string, stateDir?: string): Promise<void> {
    const key = `${root}\0${stateDir ?? ''}`;
    let acked = this.watched.get(key);
    if (!acked) {
      acked = this.request((req) => ({ t: 'watch', req, root, stateDir })).then(() => undefined);
      this.watched.set(key, acked);
      acked.catch(() => this.watched.delete(key));
    }
    return acked;
  }

  /** Sends a request the helper answers by its number; resolves with the answer. */
  private request(make: (req: number) => ToHelper): Promise<{ id: string; root: string }> {
    const req = ++this.next;
    return new Promise((resolve, reject) => {
      this.pending.set(req, { resolve, reject });
      this.busy();
      try {
        this.send(make(req));
      } catch (e) {
        this.pending.delete(req);
        this.idle();
        reject(e as Error);
      }
    });
  }

  /**
   * Asks the helper to remove a network we created once we ended and its last member left.
   * Resolves once the request reached the socket: a creator that exits right afterwards
   * would otherwise drop it with its unflushed IPC buffer.
   */
  watchNetwork(stateDir: string, name: string): Promise<void> {
    const req = ++this.next;
    return new Promise<void>((resolve, reject) => {
      // Acknowledged by the helper: a message still in the socket when we exit may be read
      // after the helper already saw us go.
      this.pending.set(req, { resolve: () => resolve(), reject });
      this.busy();
      try {
        this.send({ t: 'watch-network', req, stateDir, name });
      } catch (e) {
        this.pending.delete(req);
        this.idle();
        reject(e as Error);
      }
    });
  }

  /** Starts a container that the helper runs and that outlives us. */
  start(start: DetachedStart): Promise<{ id: string; root: string }> {
    const req = ++this.next;
    return new Promise((resolve, reject) => {
      this.pending.set(req, { resolve, reject });
      this.busy();
      try {
        this.send({ t: 'start', req, start });
      } catch (e) {
        this.pending.delete(req);
        this.idle();
        reject(e as Error);
      }
    });
  }

  /** True once the helper is gone: a new one must be started. */
  get failed(): boolean {
    return this.dead !== undefined;
  }
}

let client: HelperClient | undefined;
let role: 'owner' | 'helper' = 'owner';

/** Marks this process as an owner helper: it owns its detached containers itself. @internal */
export function becomeHelper(): void {
  role = 'helper';
}

/** True inside the owner helper. @internal */
export function isHelper(): boolean {
  return role === 'helper';
}

/** This process's helper, started on first use (replaced if it died). @internal */
export function ownerHelper(): HelperClient {
  if (role === 'helper') throw new OwnerHelperError('the owner helper has no helper of its own');
  if (!client || client.failed) client = new HelperClient();
  return client;
}
