/**
 * A mount plan: what a caller of `unshare()` wants mounted inside the new root, as data the
 * init stage executes in order, every target resolved inside the root. `Container` computes
 * one (its copy-on-write root, cgroupfs, masked and read-only paths, binds, devices, /etc
 * files); `unshare()` itself only creates namespaces, like unshare(1), and never needs to know
 * what an overlay or a cgroup is.
 */

/** One of the container's cgroup hierarchies, mounted read-only under /sys/fs/cgroup. */
export interface CgroupHierarchy {
  /** The directory below /sys/fs/cgroup ('' for a pure v2 host, where it is /sys/fs/cgroup itself). */
  readonly dir: string;
  readonly fstype: 'cgroup' | 'cgroup2';
  /** Mount options (v1: the controllers, or `none,name=X`). */
  readonly options: string;
}

/** A mount inside the new root, executed after /proc, /dev and /sys, before pivot_root. */
export type MountOperation =
  /** A host file or directory bound in (created as a file or directory when missing); `readonly` recursively. */
  | {
      readonly op: 'bind';
      readonly source: string;
      readonly target: string;
      readonly readonly?: boolean;
      /** Skipped, instead of failing, when its mount point cannot be made (a read-only rootfs). */
      readonly optional?: boolean;
    }
  /** Hidden: /dev/null over a file, an empty read-only tmpfs over a directory; a missing path is skipped. */
  | { readonly op: 'mask'; readonly target: string }
  /** Made read-only, recursively; a missing path is skipped. */
  | { readonly op: 'readonly'; readonly target: string }
  /** The cgroup hierarchies under /sys/fs/cgroup, read-only (seen from the new cgroup namespace). */
  | { readonly op: 'cgroupfs'; readonly hierarchies: readonly CgroupHierarchy[] }
  /**
   * Any mount(2), as an OCI runtime's config.json lists them: a file system (`fstype`,
   * `source`, `data`) or, with MS_BIND in `flags`, a host path bound in (its mount point made
   * like the source, a file or a directory); the other flags of a bind (MS_RDONLY, MS_NOSUID
   * ...) are applied by a remount after it. `propagation` (MS_PRIVATE, MS_SLAVE, MS_SHARED,
   * MS_UNBINDABLE, with MS_REC) is set last.
   */
  | {
      readonly op: 'mount';
      readonly source: string;
      readonly target: string;
      readonly fstype: string;
      readonly flags: number;
      readonly data?: string | undefined;
      readonly propagation?: number | undefined;
    };

/** A device node made in the container's /dev (an OCI config's `linux.devices`). */
export interface DeviceNode {
  /** Absolute path inside the container, below /dev. */
  readonly path: string;
  readonly type: 'c' | 'b' | 'p' | 'u';
  readonly major: number;
  readonly minor: number;
  /** Permission bits. @defaultValue 0o666 */
  readonly mode?: number | undefined;
  readonly uid?: number | undefined;
  readonly gid?: number | undefined;
}

/**
 * A file system mounted onto the root directory before anything else, in the new mount
 * namespace only (a copy-on-write root: nothing on the host to unmount, nothing left if the
 * container dies). Given as the new mount API's parameters, so the stage needs to know
 * nothing of the file system.
 */
export interface RootMount {
  readonly fstype: string;
  readonly source: string;
  /** fsconfig(2) parameters in order: `[key, value]`, or `[key]` for a flag. */
  readonly params: readonly (readonly [string] | readonly [string, string])[];
  /** The same as a mount(2) option string, used when the kernel refuses a parameter (overlay's `lowerdir+` before Linux 6.8). */
  readonly fallbackData?: string | undefined;
}

/**
 * A host directory shown to a new user namespace through an idmapped mount of itself
 * (`mount_setattr(MOUNT_ATTR_IDMAP)` with the namespace's uid/gid maps), attached over its own
 * path in the new mount namespace only: a file owned by uid N on disk shows as N inside,
 * whatever the maps, and what root inside creates there is owned by uid 0 on disk.
 */
export interface IdmappedPath {
  /** The host directory (absolute): a layer of a copy-on-write root, its writable layer, or the rootfs. */
  readonly path: string;
  /** Read-only as well (a shared lower layer). @defaultValue false */
  readonly readonly?: boolean;
}

/** A host path bound into a container (`-v SRC:DST[:ro]`), as `Container` takes it. */
export interface BindMount {
  /** The host file or directory. */
  readonly source: string;
  /** Where it appears inside the container (absolute; created when missing). */
  readonly target: string;
  /** Read-only inside (recursively). @defaultValue false */
  readonly readonly?: boolean;
  /** Skip it, instead of failing, when its mount point cannot be created in the rootfs. @defaultValue false */
  readonly optional?: boolean;
}
