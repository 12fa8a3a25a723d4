import { CtrkitError } from '../errors.js';

/**
 * The btrfs storage driver could not work: the directory is not on btrfs
 * (`ERR_BTRFS_NOT_BTRFS`), or the kernel refused a subvolume operation (`ERR_BTRFS_SUBVOLUME`;
 * `cause` is the `SysError` with its errno).
 */
export class BtrfsError extends CtrkitError {
  /** The path concerned. */
  readonly path: string;

  /** @internal */
  constructor(code: 'ERR_BTRFS_NOT_BTRFS' | 'ERR_BTRFS_SUBVOLUME', message: string, path: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.path = path;
  }
}
