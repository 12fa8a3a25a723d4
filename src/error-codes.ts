/**
 * Every `code` a ctrkit error can carry, as one union, so a caller can `switch` on
 * `(e as CtrkitError).code` and have the compiler check that every case is known. Each
 * module keeps its own union too ({@link OverlayErrorCode}, {@link NetworkErrorCode} ...).
 *
 * This file only gathers types: it imports every module's errors as types, and nothing imports
 * it but the root entry point, so it adds no import cycle.
 */
import type { CgroupErrorCode } from './cgroups/errors.js';
import type { ContainerErrorCode, CopyError } from './container/errors.js';
import type { RootfsBuildError } from './container/rootfs/default-rootfs.js';
import type { StartupErrorCode } from './container/wait/errors.js';
import type { AbortError, InvalidOptionError } from './errors.js';
import type { NamespacesErrorCode } from './namespaces/errors.js';
import type { CniErrorCode, NetlinkError, NetworkErrorCode } from './network/errors.js';
import type { BundleError, DigestMismatchError, ImageStoreErrorCode, ManifestErrorCode, RegistryErrorCode, UnsafeLayerError } from './oci/errors.js';
import type { ImageReferenceError } from './oci/reference.js';
import type { LayerErrorCode, OverlayErrorCode } from './overlay/errors.js';
import type { ErrnoCode } from './sys/sys-error.js';

/** The codes of `BtrfsError` (ctrkit/overlay): not on btrfs, or a subvolume operation refused. */
export type BtrfsErrorCode = 'ERR_BTRFS_NOT_BTRFS' | 'ERR_BTRFS_SUBVOLUME';

/** The codes of `MonitorError` (ctrkit/monitor): the port is taken, or prom-client is missing. */
export type MonitorErrorCode = 'ERR_MONITOR_LISTEN' | 'ERR_MONITOR_DEPENDENCY';

/**
 * Every `code` of every error ctrkit throws. `SysError`'s are errno names ({@link ErrnoCode},
 * as for Node's own system errors); all others start with `ERR_` (and `ABORT_ERR`, Node's own
 * name for a cancelled operation).
 *
 * @example
 * ```ts
 * import { CtrkitError, type CtrkitErrorCode } from 'ctrkit';
 * try { ... } catch (e) {
 *   if (!(e instanceof CtrkitError)) throw e;
 *   const code = e.code as CtrkitErrorCode;
 *   switch (code) { case 'ERR_NO_SUCH_CONTAINER': ...; case 'ERR_CGROUP_VALUE': ...; }
 * }
 * ```
 */
export type CtrkitErrorCode =
  | InvalidOptionError['code']
  | AbortError['code']
  | ErrnoCode
  | NamespacesErrorCode
  | CgroupErrorCode
  | OverlayErrorCode
  | LayerErrorCode
  | BtrfsErrorCode
  | NetlinkError['code']
  | NetworkErrorCode
  | CniErrorCode
  | ImageReferenceError['code']
  | RegistryErrorCode
  | ManifestErrorCode
  | ImageStoreErrorCode
  | DigestMismatchError['code']
  | UnsafeLayerError['code']
  | BundleError['code']
  | ContainerErrorCode
  | CopyError['code']
  | StartupErrorCode
  | RootfsBuildError['code']
  // Building the default rootfs: a library a host binary needs is missing, or an ELF file
  // is unreadable (errors of internal classes, usually seen as a RootfsBuildError's cause).
  | 'ERR_LIBRARY_NOT_FOUND'
  | 'ERR_ELF_FORMAT'
  | MonitorErrorCode;
