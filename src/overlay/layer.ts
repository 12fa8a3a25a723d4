import type { Change } from './changes.js';
import type { CommittedLayer } from './commit.js';
import type { StorageDriver } from './diff.js';

/** Options of a layer handle's `diff()`. */
export interface LayerDiffOptions {
  /** Cancels the walk. */
  readonly signal?: AbortSignal;
}

/** Options of a layer handle's `commit()`. */
export interface LayerCommitOptions {
  /** The file to write the compressed layer to. */
  readonly output: string;
  /** gzip level, 0-9. @defaultValue 6 */
  readonly compressionLevel?: number;
  /** Cancels the commit; the partial file is removed. */
  readonly signal?: AbortSignal;
}

/**
 * What both storage drivers give a container: a root directory over read-only lowers,
 * whose changes can be listed and committed. {@link OverlayMount} and {@link CopyLayer}
 * implement it, so a caller can pick the driver with {@link chooseDriver} and not care after.
 */
export interface WritableLayer extends AsyncDisposable {
  /** The driver that made it. */
  readonly driver: StorageDriver;
  /** The directory the container uses as its root. */
  readonly target: string;
  /** Where its changes are kept (overlay: the upper dir; copy: the copy itself); undefined when read-only. */
  readonly upper: string | undefined;
  /** The read-only layers below, topmost first. */
  readonly lower: readonly string[];
  /** The changes made so far. */
  diff(options?: LayerDiffOptions): Promise<Change[]>;
  /** Writes the changes as a gzip-compressed OCI layer. */
  commit(options: LayerCommitOptions): Promise<CommittedLayer>;
}
