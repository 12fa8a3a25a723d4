import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { logger } from '../../log.js';
import { CniError } from '../errors.js';
import { NetworkNamespace } from '../netns.js';
import type { PortMapping } from '../ports.js';
import { networkStateDir } from '../state-lock.js';
import { execPlugin, findPlugin, type CniInvocation } from './exec-plugin.js';
import type { CniConfigList, CniPluginConfig, CniResult, CniVersionInfo } from './types.js';

const log = logger('ctrkit:network');

/** Where Debian's and upstream's CNI plugins live. */
export const DEFAULT_CNI_BIN_DIRS: readonly string[] = Object.freeze(['/usr/lib/cni', '/opt/cni/bin']);

/** Options of {@link CniNetwork.load}. */
export interface CniNetworkOptions {
  /** Plugin directories, searched in order. @defaultValue `/usr/lib/cni`, `/opt/cni/bin` */
  readonly binDirs?: readonly string[];
  /** Where ADD results are cached for DEL and CHECK. @defaultValue `/run/ctrkit/network/cni` */
  readonly cacheDir?: string;
  /** The host namespace the plugins run in. @defaultValue the one Node's main thread is in */
  readonly netns?: NetworkNamespace;
}

/** Options of {@link CniNetwork.add}. */
export interface CniAddOptions {
  /** The container id (CNI_CONTAINERID). */
  readonly containerId: string;
  /** Path of the container's netns (CNI_NETNS), e.g. `/proc/PID/ns/net`. */
  readonly netns: string;
  /** Interface name inside (CNI_IFNAME). @defaultValue `eth0` */
  readonly ifname?: string;
  /** Extra CNI_ARGS. */
  readonly args?: Readonly<Record<string, string>>;
  /** Published ports, passed as the `portMappings` capability. */
  readonly ports?: readonly PortMapping[];
  /** Cancels; a failed or cancelled ADD is undone with DEL. */
  readonly signal?: AbortSignal;
}

interface CacheEntry {
  containerId: string;
  netns: string;
  ifname: string;
  args: Record<string, string>;
  runtimeConfig: Record<string, unknown>;
  result: CniResult;
}

/**
 * A CNI network configuration list and a runtime for it (CNI spec 1.0): ADD runs the
 * plugins in order, each given the previous one's result as `prevResult`; DEL runs them in
 * reverse with the cached ADD result; CHECK re-verifies; VERSION asks a plugin what it speaks.
 *
 * @example
 * ```ts
 * const net = await CniNetwork.load({ cniVersion: '1.0.0', name: 'ctk-cni', plugins: [
 *   { type: 'bridge', bridge: 'ctkcni0', isGateway: true, ipMasq: true, ipam: { type: 'host-local', subnet: '10.22.0.0/24' } },
 *   { type: 'portmap', capabilities: { portMappings: true } },
 * ] });
 * await using att = await net.add({ containerId: 'c1', netns: `/proc/${pid}/ns/net`, ports: [parsePortMapping('8080:80')] });
 * ```
 */
export class CniNetwork {
  /** The configuration list. */
  readonly config: CniConfigList;
  /** Plugin directories. */
  readonly binDirs: readonly string[];
  /** Result cache directory. */
  readonly cacheDir: string;
  /** The namespace plugins run in. */
  readonly netns: NetworkNamespace;

  private constructor(config: CniConfigList, options: CniNetworkOptions) {
    this.config = config;
    this.binDirs = options.binDirs ?? DEFAULT_CNI_BIN_DIRS;
    this.cacheDir = options.cacheDir ?? join(networkStateDir(), 'cni');
    this.netns = options.netns ?? NetworkNamespace.current();
  }

  /** Loads a configuration list from an object or a `.conflist` file, checks it, and finds every plugin. */
  static async load(config: CniConfigList | string, options: CniNetworkOptions = {}): Promise<CniNetwork> {
    let list: CniConfigList;
    if (typeof config === 'string') {
      try {
        list = JSON.parse(await readFile(config, 'utf8')) as CniConfigList;
      } catch (e) {
        throw new CniError('ERR_NETWORK_CNI_CONFIG', `cannot read the CNI configuration ${config}: ${(e as Error).message}`, { cause: e });
      }
    } else {
      list = config;
    }
    if (typeof list.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(list.name))
      throw new CniError('ERR_NETWORK_CNI_CONFIG', 'the network needs a name of letters, digits, _ . -');
    if (typeof list.cniVersion !== 'string') throw new CniError('ERR_NETWORK_CNI_CONFIG', `network ${list.name}: cniVersion is missing`);
    if (!Array.isArray(list.plugins) || list.plugins.length === 0)
      throw new CniError('ERR_NETWORK_CNI_CONFIG', `network ${list.name}: plugins must be a non-empty list`);
    const net = new CniNetwork(list, options);
    for (const p of list.plugins) await findPlugin(p.type, net.binDirs);
    return net;
  }

  /** ADD: connects a container; a failure runs DEL for the whole list and throws {@link CniError}. */
  async add(options: CniAddOptions): Promise<CniAttachment> {
    const ifname = options.ifname ?? 'eth0';
    const runtimeConfig: Record<string, unknown> = {};
    if (options.ports?.length) {
      runtimeConfig.portMappings = options.ports.map((m) => ({
        hostPort: m.hostPort,
        containerPort: m.containerPort,
        protocol: m.protocol,
        ...(m.hostIp ? { hostIP: m.hostIp } : {}),
      }));
    }
    const entry: CacheEntry = {
      containerId: options.containerId,
      netns: options.netns,
      ifname,
      args: { ...options.args },
      runtimeConfig,
      result: { cniVersion: this.config.cniVersion },
    };
    let prev: CniResult | undefined;
    try {
      for (const plugin of this.config.plugins) {
        prev = (await this.invoke(plugin, 'ADD', entry, prev, options.signal)) as unknown as CniResult;
      }
    } catch (e) {
      await this.runDel(entry, prev).catch((err: unknown) => log('DEL after a failed ADD: %s', (err as Error).message));
      throw e;
    }
    entry.result = prev!;
    await mkdir(join(this.cacheDir, 'results'), { recursive: true });
    await writeFile(this.cachePath(options.containerId, ifname), JSON.stringify(entry));
    log('CNI ADD %s %s: %o', this.config.name, options.containerId, entry.result.ips);
    return new CniAttachment(this, options.containerId, ifname, entry.result);
  }

  /** CHECK: asks every plugin to verify the container's networking, against the cached result. */
  async check(containerId: string, ifname = 'eth0', signal?: AbortSignal): Promise<void> {
    const entry = await this.cached(containerId, ifname);
    if (!entry) throw new CniError('ERR_NETWORK_CNI_CONFIG', `no cached ADD result for ${containerId}/${ifname} in network ${this.config.name}`);
    if (this.config.disableCheck) return;
    for (const plugin of this.config.plugins) await this.invoke(plugin, 'CHECK', entry, entry.result, signal);
  }

  /** DEL: disconnects a container (plugins in reverse, with the cached result); a no-op when nothing is cached. */
  async del(containerId: string, ifname = 'eth0', signal?: AbortSignal): Promise<void> {
    const entry = await this.cached(containerId, ifname);
    if (!entry) return;
    await this.runDel(entry, entry.result, signal);
    await rm(this.cachePath(containerId, ifname), { force: true });
  }

  /** VERSION of one plugin of the list (or any plugin by type). */
  async version(type: string, signal?: AbortSignal): Promise<CniVersionInfo> {
    const path = await findPlugin(type, this.binDirs);
    return (await execPlugin(
      this.netns,
      path,
      type,
      { command: 'VERSION' },
      this.binDirs,
      { cniVersion: this.config.cniVersion },
      signal,
    )) as unknown as CniVersionInfo;
  }

  private async runDel(entry: CacheEntry, prev: CniResult | undefined, signal?: AbortSignal): Promise<void> {
    let first: unknown;
    for (const plugin of [...this.config.plugins].reverse()) {
      // Every plugin gets its DEL even when one fails: each must release what it holds.
      await this.invoke(plugin, 'DEL', entry, prev, signal).catch((e: unknown) => (first ??= e));
    }
    if (first) throw first;
  }

  private async invoke(plugin: CniPluginConfig, command: CniInvocation['command'], entry: CacheEntry, prev: CniResult | undefined, signal?: AbortSignal) {
    const path = await findPlugin(plugin.type, this.binDirs);
    const conf: Record<string, unknown> = { ...plugin, cniVersion: this.config.cniVersion, name: this.config.name };
    delete conf.capabilities;
    if (prev && (command !== 'ADD' || prev.interfaces || prev.ips)) conf.prevResult = prev;
    const rc: Record<string, unknown> = {};
    for (const [cap, on] of Object.entries(plugin.capabilities ?? {})) if (on && entry.runtimeConfig[cap] !== undefined) rc[cap] = entry.runtimeConfig[cap];
    if (Object.keys(rc).length) conf.runtimeConfig = rc;
    const out = await execPlugin(
      this.netns,
      path,
      plugin.type,
      { command, containerId: entry.containerId, netns: entry.netns, ifname: entry.ifname, args: entry.args },
      this.binDirs,
      conf,
      signal,
    );
    return command === 'ADD' ? out : prev;
  }

  private cachePath(containerId: string, ifname: string): string {
    return join(this.cacheDir, 'results', `${this.config.name}-${containerId}-${ifname}`.replace(/[^A-Za-z0-9_.-]/g, '_'));
  }

  private async cached(containerId: string, ifname: string): Promise<CacheEntry | undefined> {
    try {
      return JSON.parse(await readFile(this.cachePath(containerId, ifname), 'utf8')) as CacheEntry;
    } catch {
      return undefined;
    }
  }
}

/** A container's membership of a CNI network; disposing it runs DEL. */
export class CniAttachment implements AsyncDisposable {
  /** The final ADD result. */
  readonly result: CniResult;
  /** The container id. */
  readonly containerId: string;
  /** The interface inside. */
  readonly ifname: string;
  private readonly network: CniNetwork;
  private deleted = false;

  /** @internal */
  constructor(network: CniNetwork, containerId: string, ifname: string, result: CniResult) {
    this.network = network;
    this.containerId = containerId;
    this.ifname = ifname;
    this.result = result;
  }

  /** The first IPv4 address of the result, e.g. `10.22.0.2`. */
  get address(): string | undefined {
    return this.result.ips?.[0]?.address.split('/')[0];
  }

  /** Its prefix length. */
  get prefix(): number | undefined {
    const p = this.result.ips?.[0]?.address.split('/')[1];
    return p === undefined ? undefined : Number(p);
  }

  /** Its gateway. */
  get gateway(): string | undefined {
    return this.result.ips?.[0]?.gateway;
  }

  /** CHECK. */
  check(signal?: AbortSignal): Promise<void> {
    return this.network.check(this.containerId, this.ifname, signal);
  }

  /** DEL (once). */
  async delete(signal?: AbortSignal): Promise<void> {
    if (this.deleted) return;
    this.deleted = true;
    await this.network.del(this.containerId, this.ifname, signal);
  }

  /** Same as {@link CniAttachment.delete}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.delete();
  }
}
