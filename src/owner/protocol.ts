/**
 * Messages between a process that owns containers and its owner helper, over the IPC
 * channel Node sets up for a forked child. The channel itself is the ownership signal: it
 * closes when the owner ends, however it ends (SIGKILL included), and the helper then ends
 * and releases every container the owner held.
 * @internal
 */
import type { ProcessIdentity } from '../sys/liveness.js';

/** A container start the helper performs, so that the container survives its creator. */
export interface DetachedStart {
  /** The options of `Container.start`, reduced to plain data (see detachable.ts). */
  readonly options: Record<string, unknown>;
  /** Drop the record as soon as the container exited (`--rm`). */
  readonly autoRemove: boolean;
}

/** Owner → helper. */
export type ToHelper =
  | { readonly t: 'watch'; readonly req: number; readonly root: string; readonly stateDir?: string | undefined }
  /** A named network the owner created: removed once the owner ended and it is empty. */
  | { readonly t: 'watch-network'; readonly req: number; readonly stateDir: string; readonly name: string }
  | { readonly t: 'start'; readonly req: number; readonly start: DetachedStart };

/** Helper → owner. */
export type FromHelper =
  | { readonly t: 'ready'; readonly helper: ProcessIdentity }
  | { readonly t: 'started'; readonly req: number; readonly id: string; readonly root: string }
  | { readonly t: 'watching'; readonly req: number }
  | {
      readonly t: 'failed';
      readonly req: number;
      readonly error: { readonly name: string; readonly code?: string | undefined; readonly message: string; readonly option?: string | undefined };
    };
