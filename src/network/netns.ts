import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { closeSync, mkdirSync, openSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidOptionError } from '../errors.js';
import { logger } from '../log.js';
import { CLONE_NEWNET, MNT_DETACH, MS_BIND } from '../sys/constants.js';
import { mount, setns, umount2, unshare } from '../sys/libc.js';
import { SysError } from '../sys/sys-error.js';
import { NetworkError } from './errors.js';
import { setLinkUpByName } from './netlink/link.js';
import { NetlinkSocket } from './netlink/socket.js';

const log = logger('ctrkit:network');

/** Where `ip netns` keeps named network namespaces. */
export const NETNS_RUN_DIR = '/run/netns';

/** Options of {@link NetworkNamespace.create}. */
export interface CreateNetnsOptions {
  /** Directory of the bind mount that keeps it alive. @defaultValue `/run/netns` (so `ip netns` sees it) */
  readonly dir?: string;
  /** Bring `lo` up, as every container runtime does (`ip netns add` leaves it down). @defaultValue true */
  readonly loopbackUp?: boolean;
}

/** What {@link NetworkNamespace.exec} returns. */
export interface NetnsExecResult {
  /** Exit code, or null when a signal ended it. */
  readonly exitCode: number | null;
  /** The signal that ended it, if one did. */
  readonly signal: NodeJS.Signals | null;
  /** Everything it wrote to stdout. */
  readonly stdout: string;
  /** Everything it wrote to stderr. */
  readonly stderr: string;
}

/** Options of {@link NetworkNamespace.exec}. */
export interface NetnsExecOptions {
  /** Written to the program's stdin. */
  readonly input?: string;
  /** Kills the program (SIGKILL) when aborted. */
  readonly signal?: AbortSignal;
  /** Kills the program after this many milliseconds. */
  readonly timeoutMs?: number;
  /** Environment of the program. @defaultValue this process's */
  readonly env?: NodeJS.ProcessEnv;
  /** Working directory of the program. @defaultValue this process's */
  readonly cwd?: string;
}

const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * A network namespace: a named one (like `ip netns add NAME`), one a process lives in, or one
 * at any nsfs path. Code and programs can run inside it; netlink clients made for it stay
 * bound to it.
 *
 * Node's main thread is switched into the namespace with setns(2) only for the duration of a
 * *synchronous* call ({@link NetworkNamespace.runSync}) and switched back before it returns,
 * so no `await` ever runs in the wrong namespace; libuv's thread pool never moves.
 *
 * @example
 * ```ts
 * await using ns = await NetworkNamespace.create('ctk-demo');
 * const r = await ns.exec(['ip', '-o', 'link']);   // only lo
 * ```
 */
export class NetworkNamespace implements AsyncDisposable {
  /** A path that names it: `/run/netns/NAME`, `/proc/PID/ns/net`, ... */
  readonly path: string;
  /** The name, for a named namespace. */
  readonly name: string | undefined;
  /** The nsfs inode: two handles name the same namespace exactly when these are equal. */
  readonly inode: number;
  private readonly owned: boolean;
  private deleted = false;

  private constructor(path: string, name: string | undefined, owned: boolean) {
    this.path = path;
    this.name = name;
    this.owned = owned;
    try {
      this.inode = statSync(path).ino;
    } catch (e) {
      throw new NetworkError('ERR_NETWORK_NAMESPACE', `no network namespace at ${path}: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * Creates a named network namespace kept alive by a bind mount at `DIR/NAME` (what
   * `ip netns add` does). Disposing the handle deletes it.
   * @param name - the name, e.g. `ctk-host-1234`
   */
  static async create(name: string, options: CreateNetnsOptions = {}): Promise<NetworkNamespace> {
    if (!NAME_RE.test(name) || name === '.' || name === '..') throw new InvalidOptionError('name', `"${name}" is not a valid namespace name`);
    const dir = options.dir ?? NETNS_RUN_DIR;
    const path = join(dir, name);
    mkdirSync(dir, { recursive: true });
    try {
      writeFileSync(path, '', { flag: 'wx', mode: 0o444 });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new NetworkError(
        'ERR_NETWORK_NAMESPACE',
        `cannot create network namespace ${name}: ${code === 'EEXIST' ? `${path} already exists` : (e as Error).message}`,
        { cause: e },
      );
    }
    try {
      // unshare(CLONE_NEWNET) moves only the calling thread; it is moved back before any await.
      withSavedNetns(() => {
        unshare(CLONE_NEWNET);
        mount('/proc/thread-self/ns/net', path, null, MS_BIND);
      });
    } catch (e) {
      try {
        unlinkSync(path);
      } catch {
        /* nothing to clean */
      }
      throw e;
    }
    const ns = new NetworkNamespace(path, name, true);
    log('created netns %s', path);
    if (options.loopbackUp ?? true) {
      try {
        // A bare request rather than Rtnetlink: rtnetlink.ts imports this module.
        const socket = ns.runSync(() => new NetlinkSocket());
        try {
          setLinkUpByName(socket, 'lo');
        } finally {
          socket.close();
        }
      } catch (e) {
        await ns.delete();
        throw e;
      }
    }
    return ns;
  }

  /**
   * Opens an existing network namespace (not owned: disposing the handle leaves it alone).
   * @param target - an nsfs path (`/run/netns/NAME`, `/proc/PID/ns/net`), a bare name from
   * /run/netns, or a PID
   */
  static open(target: string | number): NetworkNamespace {
    if (typeof target === 'number') {
      if (!Number.isInteger(target) || target <= 0) throw new InvalidOptionError('target', `must be a PID, got ${target}`);
      return new NetworkNamespace(`/proc/${target}/ns/net`, undefined, false);
    }
    if (!target.includes('/')) return new NetworkNamespace(join(NETNS_RUN_DIR, target), target, false);
    return new NetworkNamespace(target, undefined, false);
  }

  /** The network namespace Node's main thread is in right now (normally the host's). */
  static current(): NetworkNamespace {
    // The main thread's own entry: /proc/self/ns/net would be the same file, named less plainly.
    return new NetworkNamespace(`/proc/${process.pid}/task/${process.pid}/ns/net`, undefined, false);
  }

  /**
   * Runs `fn` with Node's main thread inside this namespace and returns its result. `fn`
   * must be synchronous: sockets it creates, programs it spawns (`child_process.spawn`
   * forks on the calling thread) and /proc/sys/net files it writes belong to this namespace.
   */
  runSync<T>(fn: () => T): T {
    const target = this.openFd();
    try {
      return withSavedNetns(() => {
        setns(target, CLONE_NEWNET, this.path);
        const r = fn();
        if (r instanceof Promise) throw new TypeError('NetworkNamespace.runSync: fn must be synchronous');
        return r;
      });
    } finally {
      closeSync(target);
    }
  }

  /** `child_process.spawn` with the child started inside this namespace. */
  spawn(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    return this.runSync(() => spawn(command, args, options));
  }

  /** Runs a program inside this namespace to completion and collects its output. */
  exec(command: readonly string[], options: NetnsExecOptions = {}): Promise<NetnsExecResult> {
    const [file, ...args] = command;
    if (!file) throw new InvalidOptionError('command', 'must not be empty');
    const child = this.spawn(file, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      signal: options.signal,
      timeout: options.timeoutMs,
      killSignal: 'SIGKILL',
      env: options.env,
      cwd: options.cwd,
    });
    return new Promise((resolve, reject) => {
      let stdout = '';
      let stderr = '';
      child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.on('error', (e) => {
        if ((e as NodeJS.ErrnoException).code === 'ABORT_ERR') return; // 'close' follows with the signal
        reject(e);
      });
      child.on('close', (exitCode, signal) => resolve({ exitCode, signal, stdout, stderr }));
      child.stdin!.on('error', () => undefined).end(options.input ?? '');
    });
  }

  /** True when both handles name the same namespace. */
  sameAs(other: NetworkNamespace): boolean {
    return this.inode === other.inode;
  }

  /**
   * Deletes a named namespace (like `ip netns delete`): unmounts and removes its file. The
   * namespace itself ends with its last process or open handle; its veths go with it.
   */
  async delete(): Promise<void> {
    if (this.deleted) return;
    this.deleted = true;
    try {
      umount2(this.path, MNT_DETACH);
    } catch (e) {
      if (!(e instanceof SysError) || (e.code !== 'EINVAL' && e.code !== 'ENOENT')) throw e;
    }
    try {
      unlinkSync(this.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    log('deleted netns %s', this.path);
  }

  /** Deletes the namespace if this handle created it; otherwise does nothing. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.owned) await this.delete();
  }

  /** @internal */
  openFd(): number {
    try {
      return openSync(this.path, 'r');
    } catch (e) {
      throw new NetworkError(
        'ERR_NETWORK_NAMESPACE',
        `cannot open network namespace ${this.path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        { cause: e },
      );
    }
  }
}

/**
 * Runs `fn` and puts the calling thread back into the network namespace it started in,
 * whatever `fn` did. Failing to get back would leave Node in the wrong namespace, which is
 * worse than crashing, so that failure is rethrown as is.
 */
function withSavedNetns<T>(fn: () => T): T {
  const saved = openSync('/proc/thread-self/ns/net', 'r');
  try {
    return fn();
  } finally {
    try {
      setns(saved, CLONE_NEWNET, 'the saved namespace');
    } finally {
      closeSync(saved);
    }
  }
}
