/**
 * Registry credentials: given in code, or read from Docker's `~/.docker/config.json`
 * (`auths` entries: `auth` = base64 of `user:password`, or `username`/`password`,
 * or an `identitytoken` used as a refresh token for the token service).
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { logger } from '../../log.js';

const log = logger('ctrkit:oci');

/** A user name and password (or a personal access token in place of the password). */
export interface Credentials {
  /** The user name. */
  readonly username: string;
  /** The password or access token. */
  readonly password: string;
}

interface DockerAuthEntry {
  auth?: string;
  username?: string;
  password?: string;
}

/** The keys Docker's config may file a registry under: `host`, `https://host`, and Hub's legacy URL. */
function keysFor(registry: string): string[] {
  const keys = [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`];
  if (registry === 'docker.io') keys.push('https://index.docker.io/v1/', 'index.docker.io', 'registry-1.docker.io');
  return keys;
}

/**
 * The credentials Docker's config file holds for `registry`, or undefined.
 * @param registry - the registry host with port, as in an image reference
 * @param configPath - the file to read; defaults to `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`
 */
export async function dockerConfigCredentials(registry: string, configPath?: string): Promise<Credentials | undefined> {
  const path = configPath ?? join(process.env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json');
  let auths: Record<string, DockerAuthEntry>;
  try {
    auths = (JSON.parse(await readFile(path, 'utf8')) as { auths?: Record<string, DockerAuthEntry> }).auths ?? {};
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') log('docker config %s unreadable: %s', path, (e as Error).message);
    return undefined;
  }
  for (const key of keysFor(registry)) {
    const entry = auths[key];
    if (!entry) continue;
    if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password };
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
  }
  return undefined;
}
