/**
 * `ctrkit/overlay`: overlay filesystems — the chapter's 5.3.
 *
 * - {@link Overlay.mount}: lowerdir / upperdir / workdir / merged as a handle that unmounts;
 *   many lowers through fsconfig `lowerdir+`; read-only overlays; `userxattr` in a user namespace.
 * - {@link mountOverlaySync}: the same, synchronous, for an init stage.
 * - Whiteouts and opaque directories ({@link createWhiteout}, {@link markOpaque},
 *   {@link listWhiteouts} ...) and their OCI tar form ({@link parseOciWhiteout},
 *   {@link convertWhiteoutsToOci}, {@link convertWhiteoutsFromOci}).
 * - {@link diff} of a writable layer (`docker diff`) and {@link commit} to an OCI layer (`docker commit`).
 * - The copy driver ({@link CopyLayer}) and {@link chooseDriver}, for where overlay cannot be the upper.
 *
 * Guide: docs/overlay.md.
 * @packageDocumentation
 */
export { overlaySupported } from './supported.js';
export { overlayMountParams, type OverlayMountParams } from './mount-params.js';
export { Overlay, OverlayMount, type OverlayMountOptions } from './overlay.js';
export { mountOverlaySync, unmountOverlaySync, type MountedOverlay, type UnmountOptions } from './mount-sync.js';
export { MAX_LOWER_LAYERS, type OverlaySpec, type OverlayMountApi } from './spec.js';
export { inUserNamespace } from './userns.js';
export { OverlayError, LayerError, type OverlayErrorCode, type OverlayErrorDetails, type LayerErrorCode } from './errors.js';
export {
  createWhiteout,
  isWhiteout,
  isWhiteoutStats,
  markOpaque,
  isOpaque,
  listWhiteouts,
  type MarkerOptions,
  type WhiteoutEntry,
} from './whiteouts.js';
export {
  OCI_WHITEOUT_PREFIX,
  OCI_OPAQUE_WHITEOUT,
  ociWhiteoutName,
  ociOpaqueName,
  parseOciWhiteout,
  convertWhiteoutsToOci,
  convertWhiteoutsFromOci,
  type OciWhiteout,
  type WhiteoutConversionOptions,
} from './oci-whiteouts.js';
export { diff, type DiffOptions, type StorageDriver } from './diff.js';
export { formatChanges, type Change, type ChangeKind } from './changes.js';
export type { EntryType } from './tree.js';
export { commit, OCI_LAYER_MEDIA_TYPE, type CommitOptions, type CommittedLayer } from './commit.js';
export { CopyLayer, type CopyLayerOptions } from './copy-layer.js';
export { BtrfsLayer, removeBtrfsBases, type BtrfsLayerOptions } from './btrfs-layer.js';
export { BtrfsError } from './btrfs-error.js';
export { chooseDriver, type ChooseDriverOptions, type DriverChoice } from './driver.js';
export { LayerDirs, type LayerDirsOptions } from './layer-dirs.js';
export type { WritableLayer, LayerDiffOptions, LayerCommitOptions } from './layer.js';
