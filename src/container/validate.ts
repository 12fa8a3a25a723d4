import { accessSync, existsSync, constants as fsConstants, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { BindMount } from '../namespaces/index.js';
import { constants } from 'node:os';
import { InvalidOptionError } from '../errors.js';
import { validateIdMap } from '../namespaces/idmap.js';
import { containerCgroup } from './limits.js';
import type { RunOptions } from './options.js';
import type { Network } from '../network/index.js';
import { isIP } from 'node:net';
import { checkContainerName } from './state/ids.js';

/** Where Debian's `tini` package puts its static build (the container may have no libc). */
export const DEFAULT_INIT = '/usr/bin/tini-static';

/** The init binary to bind in, or undefined without `init`. @internal */
export function initBinary(init: RunOptions['init']): string | undefined {
  if (init === undefined || init === false) return undefined;
  const path = init === true ? DEFAULT_INIT : init;
  try {
    if (!statSync(path).isFile()) throw new Error('not a file');
    accessSync(path, fsConstants.X_OK);
  } catch {
    throw new InvalidOptionError(
      'init',
      init === true
        ? `${DEFAULT_INIT} is missing: install Debian's tini package (it ships the static tini-static), or give the path of a static init`
        : `${path} is not an executable file`,
    );
  }
  return path;
}

/** A bind's target must be an absolute path below `/`, its source must exist. */
function checkBind(b: BindMount, i: number): void {
  if (!isAbsolute(b.target) || b.target === '/') throw new InvalidOptionError(`binds[${i}].target`, `must be an absolute path below /, got "${b.target}"`);
  if (!existsSync(resolve(b.source))) throw new InvalidOptionError(`binds[${i}].source`, `${resolve(b.source)} does not exist`);
}

/** The network mode named by the `network` option. @internal */
export function networkMode(options: RunOptions): 'none' | 'host' | 'bridge' | 'cni' | 'container' | 'pasta' {
  const n = options.network ?? 'none';
  // A Network is a bridge of its own; told apart structurally, so this module stays light.
  return typeof n === 'object' ? ('container' in n ? 'container' : 'bridge') : n;
}

/**
 * What the network mode needs of the caller: bridge, cni and named networks make links and
 * nftables rules in the host's namespace (root); pasta joins a user namespace the caller owns
 * (pasta 2023 drops its privileges before it opens the namespaces, so it cannot serve root).
 */
async function checkNetworkPrivileges(options: RunOptions, mode: ReturnType<typeof networkMode>, named: Network | undefined): Promise<void> {
  const root = process.getuid?.() === 0;
  if (!root && (mode === 'bridge' || mode === 'cni')) {
    const { NetworkError } = await import('../network/errors.js');
    const what = named ? `network "${named.name}" (a named network is a bridge)` : `network "${mode}"`;
    throw new NetworkError(
      'ERR_NETWORK_NEEDS_ROOT',
      `${what} needs root: it makes a bridge, veths and nftables rules in the host's network namespace. A rootless container gets networking with network: 'pasta' (install the passt package: apt-get install passt), or none or host`,
    );
  }
  if (mode === 'pasta') {
    if (root) throw new InvalidOptionError('network', "'pasta' is for rootless callers (pasta joins the caller's own user namespace); as root use 'bridge'");
    const { validatePastaOptions } = await import('../network/pasta.js');
    validatePastaOptions(options.pasta);
  } else if (options.pasta !== undefined) throw new InvalidOptionError('pasta', `applies to network: 'pasta', not "${mode}"`);
}

/** The named network of the `network` option, when it is one. @internal */
export function namedNetwork(options: RunOptions): Network | undefined {
  const n = options.network;
  return typeof n === 'object' && !('container' in n) ? n : undefined;
}

/** `extraHosts` (`'name:ip'`) as name → address. @internal */
export function parseExtraHosts(extra: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of extra ?? []) {
    const i = e.indexOf(':');
    const name = e.slice(0, i);
    const ip = e.slice(i + 1);
    if (i < 1 || !/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/.test(name) || !(isIP(ip) > 0)) {
      throw new InvalidOptionError('extraHosts', `"${e}" is not name:ip`);
    }
    out[name] = ip;
  }
  return out;
}

/**
 * Checks every option that can be checked without touching anything, so a bad one is refused
 * before an image is pulled, a directory is made, or a cgroup exists. Returns what checking
 * built, so the start does not build it again: the container's cgroup handle (not created)
 * and the init binary.
 * @internal
 */
export async function validateOptions(options: RunOptions, cgroupPath = 'ctk-validate'): Promise<Validated> {
  if (options.name !== undefined) checkContainerName(options.name);
  if (options.uidMap) validateIdMap(options.uidMap, 'uid');
  if (options.gidMap) validateIdMap(options.gidMap, 'gid');
  if (options.userns !== undefined) {
    if (options.userns !== 'auto') throw new InvalidOptionError('userns', `unknown mode "${String(options.userns)}" (only 'auto')`);
    if (process.getuid?.() !== 0)
      throw new InvalidOptionError('userns', "'auto' needs root: a rootless container always has a user namespace, whose root is the caller");
    if (options.uidMap || options.gidMap) throw new InvalidOptionError('userns', "'auto' picks the maps itself: leave out uidMap and gidMap");
  }
  const mode = networkMode(options);
  if (!['none', 'host', 'bridge', 'cni', 'container', 'pasta'].includes(mode)) {
    throw new InvalidOptionError('network', `unknown mode "${String(mode)}" (none, host, bridge, cni, pasta, or { container })`);
  }
  const named = namedNetwork(options);
  await checkNetworkPrivileges(options, mode, named);
  if (options.aliases?.length && !named) throw new InvalidOptionError('aliases', 'aliases need a named network: network: await Network.create(...)');
  for (const a of options.aliases ?? []) {
    if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$/.test(a)) throw new InvalidOptionError('aliases', `"${a}" is not a valid host name`);
  }
  parseExtraHosts(options.extraHosts);
  if (options.startupTimeout !== undefined && !(options.startupTimeout > 0))
    throw new InvalidOptionError('startupTimeout', 'must be a positive number of milliseconds');
  if (options.healthcheck) {
    const { validateHealthcheck } = await import('./health.js');
    validateHealthcheck(options.healthcheck);
  }
  if (options.ports?.length) {
    if (named?.internal) throw new InvalidOptionError('ports', `network "${named.name}" is internal: it publishes no ports`);
    if (mode !== 'bridge' && mode !== 'cni' && mode !== 'pasta')
      throw new InvalidOptionError('ports', `ports need bridge or cni networking (or pasta, rootless), not "${mode}"`);
    const { parsePortMapping } = await import('../network/ports.js');
    options.ports.forEach(parsePortMapping);
  }
  if (mode === 'cni' && !options.cni) throw new InvalidOptionError('cni', 'network "cni" needs a CniNetwork');
  (options.binds ?? []).forEach(checkBind);
  for (const [i, d] of (options.devices ?? []).entries()) {
    const st = (() => {
      try {
        return statSync(d);
      } catch {
        return undefined;
      }
    })();
    if (!st || !(st.isBlockDevice() || st.isCharacterDevice())) throw new InvalidOptionError(`devices[${i}]`, `${d} is not a device node on this host`);
  }
  const cgroup = containerCgroup(cgroupPath, options); // the setters refuse bad values; nothing is created
  const init = initBinary(options.init);
  if (options.stopSignal !== undefined && constants.signals[options.stopSignal] === undefined) {
    throw new InvalidOptionError('stopSignal', `unknown signal "${String(options.stopSignal)}"`);
  }
  if (options.timeout !== undefined && !(options.timeout >= 0)) throw new InvalidOptionError('timeout', 'must be a number of milliseconds');
  if (options.storageDriver !== undefined && !['overlay', 'copy', 'btrfs'].includes(options.storageDriver)) {
    throw new InvalidOptionError('storageDriver', `unknown driver "${String(options.storageDriver)}" (overlay, copy or btrfs)`);
  }
  const s = options.stdio;
  const stdin = s === undefined ? undefined : typeof s === 'object' ? s[0] : s;
  if (options.input !== undefined && stdin !== undefined && stdin !== 'pipe') {
    throw new InvalidOptionError('input', `needs stdin to be a pipe, but stdio gives it "${String(stdin)}"`);
  }
  for (const k of ['maxSize', 'maxFiles'] as const) {
    const v = options.log?.[k];
    if (v !== undefined && !(Number.isInteger(v) && v > 0)) throw new InvalidOptionError(`log.${k}`, 'must be a positive integer');
  }
  if (options.tty && (options.stdio !== undefined || options.input !== undefined)) {
    throw new InvalidOptionError('tty', "the terminal is the command's stdin, stdout and stderr: leave out stdio and input");
  }
  if (options.autoRemove && !options.detach)
    throw new InvalidOptionError('autoRemove', 'applies to detached containers (an owned one is removed with its handle)');
  return { cgroup, init };
}

/** What {@link validateOptions} built on the way. @internal */
export interface Validated {
  readonly cgroup: ReturnType<typeof containerCgroup>;
  readonly init: string | undefined;
}

/** The signal a stop sends first, by number. @internal */
export function signalNumber(option: string, signal: NodeJS.Signals | number): number {
  const n = typeof signal === 'number' ? signal : constants.signals[signal];
  if (n === undefined || !Number.isInteger(n) || n <= 0 || n > 64) throw new InvalidOptionError(option, `unknown signal "${String(signal)}"`);
  return n;
}
