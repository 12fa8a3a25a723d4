/**
 * Everything a container needs to run an image on overlay lowers, in one call: what
 * `Container.run({ image })` and `ctrkit run IMAGE` build on.
 */
import { imageConfig, resolveCommand } from '../image-config.js';
import type { Image } from '../store/image.js';
import type { ImageStore } from '../store/image-store.js';
import { resolveUser } from './user.js';

/** What the caller overrides of the image's config (like `docker run`'s flags). */
export interface ImageRunOverrides {
  /** Replaces the image's Cmd. */
  readonly command?: readonly string[] | undefined;
  /** Replaces the image's Entrypoint (and drops its Cmd). */
  readonly entrypoint?: readonly string[] | undefined;
  /** Added to, and overriding, the image's Env. */
  readonly env?: Readonly<Record<string, string>> | undefined;
  /** Replaces the image's WorkingDir. */
  readonly cwd?: string | undefined;
  /** Replaces the image's User (`uid[:gid]`, or names from the image's /etc/passwd and /etc/group). */
  readonly user?: string | undefined;
  /** Cancels unpacking. */
  readonly signal?: AbortSignal | undefined;
}

/** An image ready to run: its overlay lowers and the process to start in them. */
export interface ImageRun {
  /** The image. */
  readonly image: Image;
  /** The unpacked layers, absolute paths, **topmost first** (overlay `lowerdir` order). Read-only: shared. */
  readonly lowers: readonly string[];
  /** argv: entrypoint + cmd after the overrides. Empty when neither names a command. */
  readonly command: readonly string[];
  /** The environment: the image's Env, then the overrides. */
  readonly env: Readonly<Record<string, string>>;
  /** The working directory (absolute). */
  readonly cwd: string;
  /** Numeric user and group, resolved in the image's own /etc/passwd and /etc/group. */
  readonly uid: number;
  /** Primary group id. */
  readonly gid: number;
  /** The image's ExposedPorts (`80/tcp`). */
  readonly exposedPorts: readonly string[];
}

/**
 * Prepares `image` to run: unpacks its layers once (cached by diffID) and resolves the
 * command, environment, working directory and user with Docker's rules.
 */
export async function prepareImageRun(store: ImageStore, image: Image, overrides: ImageRunOverrides = {}): Promise<ImageRun> {
  const lowers = await store.lowers(image, { signal: overrides.signal });
  const defaults = imageConfig(image);
  const { uid, gid } = await resolveUser(lowers, overrides.user ?? defaults.user);
  return {
    image,
    lowers,
    command: resolveCommand(defaults, overrides),
    env: { ...defaults.env, ...overrides.env },
    cwd: overrides.cwd ?? defaults.workingDir,
    uid,
    gid,
    exposedPorts: defaults.exposedPorts,
  };
}
