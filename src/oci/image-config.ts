/** An image config's execution defaults, in the shape `Container.run` takes them. */
import type { ImageConfigDocument } from './manifest.js';
import type { Image } from './store/image.js';

/** What an image says to run, and how (Docker's `Entrypoint`, `Cmd`, `Env` ...). */
export interface RunDefaults {
  /** `Entrypoint`; empty when unset. */
  readonly entrypoint: readonly string[];
  /** `Cmd`; empty when unset. */
  readonly cmd: readonly string[];
  /** `Env` as a map (`PATH` ...); a later duplicate wins, as in the kernel's execve. */
  readonly env: Readonly<Record<string, string>>;
  /** `WorkingDir`; `/` when unset. */
  readonly workingDir: string;
  /** `User` as written (`1000`, `1000:1000`, `nobody`, `app:staff`); empty when unset (root). */
  readonly user: string;
  /** `ExposedPorts` keys: `80/tcp`, `53/udp`. */
  readonly exposedPorts: readonly string[];
  /** `Labels`. */
  readonly labels: Readonly<Record<string, string>>;
  /** `StopSignal`, when set. */
  readonly stopSignal: string | undefined;
}

/** The execution defaults of an image (or of its config document). */
export function imageConfig(image: Image | ImageConfigDocument): RunDefaults {
  const doc = 'config' in image && 'rootfs' in image ? image : (image as Image).config;
  const c = doc.config ?? {};
  const env: Record<string, string> = {};
  for (const kv of c.Env ?? []) {
    const eq = kv.indexOf('=');
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return {
    entrypoint: [...(c.Entrypoint ?? [])],
    cmd: [...(c.Cmd ?? [])],
    env,
    workingDir: c.WorkingDir || '/',
    user: c.User ?? '',
    exposedPorts: Object.keys(c.ExposedPorts ?? {}),
    labels: { ...(c.Labels ?? {}) },
    stopSignal: c.StopSignal,
  };
}

/** What a caller may override when running an image. */
export interface CommandOverrides {
  /** Replaces the image's `Entrypoint` (and drops its `Cmd`, as `docker run --entrypoint` does). */
  readonly entrypoint?: readonly string[] | undefined;
  /** Replaces the image's `Cmd` (the arguments after the image in `docker run IMAGE ...`). */
  readonly command?: readonly string[] | undefined;
}

/**
 * The argv to run, with Docker's rules: `entrypoint + command` where either may come from
 * the image; an overridden entrypoint drops the image's Cmd.
 * @returns the argv; empty when neither the image nor the caller names a command
 */
export function resolveCommand(defaults: RunDefaults, overrides: CommandOverrides = {}): string[] {
  const entrypoint = overrides.entrypoint ?? defaults.entrypoint;
  const cmd = overrides.command ?? (overrides.entrypoint ? [] : defaults.cmd);
  return [...entrypoint, ...cmd];
}
