/**
 * OCI runtime bundles: a directory with `config.json` and a rootfs, the input of
 * `runc run --bundle DIR`. {@link createBundle} writes one from an image;
 * {@link readBundle} reads any (runc's, umoci's, ctrkit's) into the options a container needs.
 */
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { BundleError } from '../errors.js';
import { imageConfig, resolveCommand } from '../image-config.js';
import type { Image } from '../store/image.js';
import type { ImageStore } from '../store/image-store.js';
import { runtimeSpec } from './spec.js';
import { resolveUser } from './user.js';

/** Options of {@link createBundle}: what `docker run` would take. */
export interface BundleOptions {
  /** Replaces the image's Cmd. */
  readonly command?: readonly string[] | undefined;
  /** Replaces the image's Entrypoint. */
  readonly entrypoint?: readonly string[] | undefined;
  /** Added to (and overriding) the image's Env. */
  readonly env?: Readonly<Record<string, string>> | undefined;
  /** Replaces the image's WorkingDir. */
  readonly cwd?: string | undefined;
  /** Replaces the image's User (`uid[:gid]` or names from the image's /etc/passwd). */
  readonly user?: string | undefined;
  /** @defaultValue 'container' */
  readonly hostname?: string | undefined;
  /** A read-only root. @defaultValue false */
  readonly readonly?: boolean | undefined;
  /** `linux.cgroupsPath` (runc on a hybrid host needs a path you own). */
  readonly cgroupsPath?: string | undefined;
  /** A network namespace of its own (only `lo`). @defaultValue true */
  readonly network?: boolean | undefined;
  /** Cancels unpacking. */
  readonly signal?: AbortSignal | undefined;
}

/** A bundle, read: what a container runs and in what. */
export interface Bundle {
  /** The bundle directory (absolute). */
  readonly dir: string;
  /** The root filesystem (absolute). */
  readonly rootfs: string;
  /** `root.readonly`. */
  readonly readonly: boolean;
  /** `process.args`. */
  readonly args: readonly string[];
  /** `process.env` as a map. */
  readonly env: Readonly<Record<string, string>>;
  /** `process.cwd`. */
  readonly cwd: string;
  /** `hostname`, when set. */
  readonly hostname: string | undefined;
  /** `process.user`. */
  readonly user: { readonly uid: number; readonly gid: number; readonly additionalGids: readonly number[] };
  /** `process.terminal`. */
  readonly terminal: boolean;
  /** The namespace types of `linux.namespaces` (`pid`, `network` ...). */
  readonly namespaces: readonly string[];
  /** The whole parsed `config.json`, for what the fields above leave out. */
  readonly spec: Readonly<Record<string, unknown>>;
}

/**
 * Writes a runtime bundle for `image` into `dir` (created; must be empty): the image
 * unpacked flat into `dir/rootfs`, and a `config.json` with the image's entrypoint, cmd,
 * env, working dir and user, overridden by `options`.
 * @returns the bundle, as {@link readBundle} would read it
 */
export async function createBundle(store: ImageStore, image: Image, dir: string, options: BundleOptions = {}): Promise<Bundle> {
  const abs = resolve(dir);
  await mkdir(abs, { recursive: true });
  if ((await readdir(abs)).length > 0) throw new BundleError(abs, 'the directory is not empty');
  const rootfs = join(abs, 'rootfs');
  await mkdir(rootfs, { mode: 0o755 });
  await store.unpack(image, rootfs, { signal: options.signal });
  const defaults = imageConfig(image);
  const args = resolveCommand(defaults, options);
  if (args.length === 0) throw new BundleError(abs, `image ${image.name} names no command and none was given`);
  const user = await resolveUser(rootfs, options.user ?? defaults.user);
  const spec = runtimeSpec({
    args,
    env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...defaults.env, ...options.env },
    cwd: options.cwd ?? defaults.workingDir,
    uid: user.uid,
    gid: user.gid,
    hostname: options.hostname ?? 'container',
    readonly: options.readonly ?? false,
    cgroupsPath: options.cgroupsPath,
    network: options.network ?? true,
  });
  await writeFile(join(abs, 'config.json'), `${JSON.stringify(spec, null, 2)}\n`);
  return readBundle(abs);
}

/**
 * Reads a bundle's `config.json` (runc's, umoci's, ctrkit's): the rootfs and what to run.
 * @throws {@link BundleError} `ERR_BUNDLE_INVALID` naming what is missing or malformed
 */
export async function readBundle(dir: string): Promise<Bundle> {
  const abs = resolve(dir);
  let spec: Record<string, unknown>;
  try {
    spec = JSON.parse(await readFile(join(abs, 'config.json'), 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new BundleError(abs, `config.json unreadable: ${(e as Error).message}`, e);
  }
  if (typeof spec.ociVersion !== 'string') throw new BundleError(abs, 'config.json has no ociVersion');
  const proc = spec.process as
    | { args?: unknown; env?: unknown; cwd?: unknown; user?: { uid?: unknown; gid?: unknown; additionalGids?: unknown }; terminal?: unknown }
    | undefined;
  if (!proc || !Array.isArray(proc.args) || proc.args.length === 0 || !proc.args.every((a) => typeof a === 'string')) {
    throw new BundleError(abs, 'process.args must be a non-empty array of strings');
  }
  if (typeof proc.cwd !== 'string' || !proc.cwd.startsWith('/')) throw new BundleError(abs, 'process.cwd must be an absolute path');
  const root = spec.root as { path?: unknown; readonly?: unknown } | undefined;
  if (!root || typeof root.path !== 'string' || root.path === '') throw new BundleError(abs, 'root.path is missing');
  const env: Record<string, string> = {};
  for (const kv of Array.isArray(proc.env) ? proc.env : []) {
    if (typeof kv !== 'string') throw new BundleError(abs, 'process.env must hold strings');
    const eq = kv.indexOf('=');
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const uid = proc.user?.uid ?? 0;
  const gid = proc.user?.gid ?? 0;
  if (typeof uid !== 'number' || typeof gid !== 'number') throw new BundleError(abs, 'process.user uid and gid must be numbers');
  const extra = Array.isArray(proc.user?.additionalGids) ? (proc.user!.additionalGids as unknown[]).filter((g): g is number => typeof g === 'number') : [];
  const namespaces = ((spec.linux as { namespaces?: { type?: unknown }[] } | undefined)?.namespaces ?? []).map((n) => String(n.type));
  return {
    dir: abs,
    rootfs: isAbsolute(root.path) ? root.path : join(abs, root.path),
    readonly: root.readonly === true,
    args: proc.args as string[],
    env,
    cwd: proc.cwd,
    hostname: typeof spec.hostname === 'string' ? spec.hostname : undefined,
    user: { uid, gid, additionalGids: extra },
    terminal: proc.terminal === true,
    namespaces,
    spec,
  };
}
