import { InvalidOptionError } from '../errors.js';
import { checkRootfs } from '../namespaces/unshare.js';
import type { ImageStore } from '../oci/index.js';
import type { HealthcheckOptions, RunOptions } from './options.js';
import { defaultRootfs } from './rootfs/default-rootfs.js';

/** What a container starts from: its read-only layers and the defaults of its process. @internal */
export interface RootSource {
  /** Read-only layers, topmost first. */
  readonly lower: readonly string[];
  readonly command: readonly string[] | undefined;
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string | undefined;
  readonly user: { readonly uid: number; readonly gid: number; readonly groups?: readonly number[] } | undefined;
  readonly hostname: string | undefined;
  /** The image's `StopSignal`, when it names one. */
  readonly stopSignal?: string | undefined;
  /** The image's `HEALTHCHECK`, when it has one. */
  readonly healthcheck?: HealthcheckOptions | undefined;
}

/** Docker's image HEALTHCHECK (nanoseconds) as options (milliseconds); `NONE` or nothing is undefined. */
function imageHealthcheck(
  h:
    | { readonly Test?: readonly string[]; readonly Interval?: number; readonly Timeout?: number; readonly StartPeriod?: number; readonly Retries?: number }
    | undefined,
): HealthcheckOptions | undefined {
  if (!h?.Test?.length || h.Test[0] === 'NONE') return undefined;
  const ms = (ns: number | undefined) => (ns ? Math.round(ns / 1e6) : undefined);
  return { test: h.Test, interval: ms(h.Interval), timeout: ms(h.Timeout), startPeriod: ms(h.StartPeriod), retries: h.Retries || undefined };
}

function numericUser(user: RunOptions['user']): { uid: number; gid: number } | undefined {
  if (user === undefined || typeof user === 'object') return user;
  const m = /^(\d+)(?::(\d+))?$/.exec(user);
  if (!m) throw new InvalidOptionError('user', `"${user}" names a user; names are resolved in an image's /etc/passwd only (give uid[:gid] here)`);
  return { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) };
}

/**
 * Resolves where a container's root comes from: an image (pulled when missing, its layers
 * unpacked once and shared), an OCI runtime bundle, a rootfs directory, or the built-in one;
 * with the process defaults each of them carries.
 * @internal
 */
export async function resolveRootSource(options: RunOptions): Promise<RootSource> {
  const given = [options.image, options.bundle, options.rootfs].filter((v) => v !== undefined).length;
  if (given > 1) throw new InvalidOptionError('rootfs', 'give one of image, bundle and rootfs');
  if (options.image !== undefined) {
    // Loaded only for images: the registry client is the heaviest part of the package.
    const { defaultImageStoreDir, ImageStore: Store, prepareImageRun } = await import('../oci/index.js');
    if (options.overlay === false) throw new InvalidOptionError('overlay', 'an image is shared read-only layers: it needs the copy-on-write root');
    const store: ImageStore = typeof options.store === 'object' ? options.store : await Store.open(options.store ?? defaultImageStoreDir());
    const pull = { ...options.pullOptions, signal: options.signal };
    const image =
      options.pull === 'always'
        ? await store.pull(options.image, pull)
        : options.pull === 'never'
          ? await store.get(options.image, pull)
          : await store.ensure(options.image, pull);
    const run = await prepareImageRun(store, image, {
      command: options.command,
      entrypoint: options.entrypoint,
      env: options.env,
      cwd: options.cwd,
      user: typeof options.user === 'object' ? `${options.user.uid}:${options.user.gid}` : options.user,
      signal: options.signal,
    });
    return {
      lower: run.lowers,
      command: run.command,
      env: run.env,
      cwd: run.cwd,
      user: { uid: run.uid, gid: run.gid },
      hostname: undefined,
      stopSignal: run.image.config.config?.StopSignal,
      healthcheck: imageHealthcheck(run.image.config.config?.Healthcheck),
    };
  }
  if (options.bundle !== undefined) {
    const { readBundle } = await import('../oci/index.js');
    const b = await readBundle(options.bundle);
    return {
      lower: [b.rootfs],
      command: options.command ?? b.args,
      env: { ...b.env, ...options.env },
      cwd: options.cwd ?? b.cwd,
      user: numericUser(options.user) ?? { uid: b.user.uid, gid: b.user.gid, groups: [b.user.gid, ...b.user.additionalGids] },
      hostname: b.hostname,
    };
  }
  const rootfs = options.rootfs === undefined ? await defaultRootfs({ signal: options.signal }) : await checkRootfs(options.rootfs);
  return { lower: [rootfs], command: options.command, env: options.env ?? {}, cwd: options.cwd, user: numericUser(options.user), hostname: undefined };
}
