import { statSync } from 'node:fs';
import { stat, writeFile, unlink, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CtrkitError } from '../errors.js';
import { MNT_DETACH, MS_BIND } from '../sys/constants.js';
import { mount, umount2 } from '../sys/libc.js';
import { SysError } from '../sys/sys-error.js';
import { namespaceInfo, type NamespaceType } from './types.js';

/**
 * One namespace, identified the way the kernel identifies it: by the inode number of its
 * `/proc/PID/ns/TYPE` file (and the nsfs device). Two processes share a namespace exactly
 * when these are equal.
 */
export class NamespaceRef {
  /** The namespace type. */
  readonly type: NamespaceType;
  /** The nsfs inode number, as `ls -i /proc/PID/ns/TYPE` or `lsns` show it. */
  readonly inode: number;
  /** A path that names it (while the process lives, or while a bind mount keeps it). */
  readonly path: string;

  /** @internal */
  constructor(type: NamespaceType, inode: number, path: string) {
    this.type = type;
    this.inode = inode;
    this.path = path;
  }

  /**
   * The namespace of `type` that a process lives in.
   * @param pid - a PID, or `'self'` for the calling process
   */
  static ofProcess(pid: number | 'self', type: NamespaceType): NamespaceRef {
    namespaceInfo(type);
    const path = `/proc/${pid}/ns/${type}`;
    try {
      return new NamespaceRef(type, statSync(path).ino, path);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new SysError('stat', err.errno ? -err.errno : 2, path, 'is the process still alive?');
    }
  }

  /** The calling process's own namespace of `type`: "the host's", seen from ctrkit. */
  static host(type: NamespaceType): NamespaceRef {
    return NamespaceRef.ofProcess('self', type);
  }

  /** Opens a namespace by path (`/proc/PID/ns/net`, `/run/netns/NAME`, a persisted file). */
  static async open(path: string, type: NamespaceType): Promise<NamespaceRef> {
    namespaceInfo(type);
    const st = await stat(path);
    return new NamespaceRef(type, st.ino, path);
  }

  /** True when both refer to the same namespace. */
  sameAs(other: NamespaceRef): boolean {
    return this.type === other.type && this.inode === other.inode;
  }

  /** `net:[4026531840]`, as `readlink /proc/PID/ns/net` prints it. */
  toString(): string {
    return `${this.type}:[${this.inode}]`;
  }

  /**
   * Keeps the namespace alive after its last process exits, by bind-mounting its nsfs file
   * onto `path` (what `ip netns add` does under /run/netns). Dispose the result, or call
   * `release()`, to let it go.
   */
  async persist(path: string): Promise<PersistedNamespace> {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, '', { flag: 'wx' }).catch((e: NodeJS.ErrnoException) => {
      throw new NamespaceError(`cannot persist ${this} at ${path}: ${e.code === 'EEXIST' ? 'the path already exists' : e.message}`, e);
    });
    try {
      mount(this.path, path, null, MS_BIND, null, 'does the source namespace still exist?');
    } catch (e) {
      await unlink(path).catch(() => undefined);
      throw e;
    }
    return new PersistedNamespace(this.type, this.inode, path);
  }
}

/** A namespace held open by a bind mount. Disposing it unmounts and removes the file. */
export class PersistedNamespace extends NamespaceRef implements AsyncDisposable {
  private released = false;

  /** Unmounts the bind mount and removes the file; the namespace dies with its last user. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    try {
      umount2(this.path, MNT_DETACH);
    } catch (e) {
      if (!(e instanceof SysError) || (e.code !== 'EINVAL' && e.code !== 'ENOENT')) throw e;
    }
    await unlink(this.path).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
  }

  /** Same as {@link PersistedNamespace.release}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

/** A namespace operation failed for a reason other than a system call. */
export class NamespaceError extends CtrkitError {
  /** Always `ERR_NAMESPACE`. */
  declare readonly code: 'ERR_NAMESPACE';
  /** @internal */
  constructor(message: string, cause?: unknown) {
    super('ERR_NAMESPACE', message, { cause });
  }
}
