import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidOptionError } from '../errors.js';
import { logger } from '../log.js';
import { identify, isAlive, type ProcessIdentity } from '../sys/liveness.js';
import { Bridge } from './bridge.js';
import { NetworkError } from './errors.js';
import { parseSubnet, subnetsOverlap } from './ipv4.js';
import { addMember, liveMembers, membersDir, removeMember, type MemberRecord } from './network-members.js';
import { NetworkNamespace } from './netns.js';
import { Rtnetlink } from './rtnetlink.js';
import { networkStateDir, withFileLock } from './state-lock.js';

const log = logger('ctrkit:network');

/** Options of {@link Network.create}. */
export interface NetworkOptions {
  /** A unique name (per state directory), like `docker network create NAME`. @defaultValue `ctk-net-` and 8 random hex digits */
  readonly name?: string;
  /**
   * Members reach each other only: no masquerade, no default route (a packet to anywhere
   * else fails at once with "network unreachable"), no published ports.
   * @defaultValue false
   */
  readonly internal?: boolean;
  /** The IPv4 subnet. @defaultValue the first `10.89.N.0/24` that no other network and no route uses */
  readonly subnet?: string;
  /**
   * Keep the network after its creator ended and its last member left, until
   * {@link Network.remove}. By default it goes with the last of them.
   * @defaultValue false
   */
  readonly persistent?: boolean;
  /** The namespace that plays "the host". @defaultValue the one Node's main thread is in */
  readonly netns?: NetworkNamespace;
  /** Where network state lives. @defaultValue `$CTRKIT_STATE_ROOT/network`, else `/run/ctrkit/network` */
  readonly stateDir?: string;
  /** Cancels the setup; whatever it made is removed. */
  readonly signal?: AbortSignal;
}

/** Options of {@link Network.open} and {@link Network.list}. */
export interface NetworkLookupOptions {
  /** Where network state lives. @defaultValue as for {@link Network.create} */
  readonly stateDir?: string;
}

/** A container on a {@link Network}, as {@link Network.members} lists it. */
export interface NetworkMember {
  /** The container id. */
  readonly id: string;
  /** Its address on the network. */
  readonly address: string;
  /** Names it answers to there: its hostname, its container name and its aliases. */
  readonly names: readonly string[];
}

/** What a network's record file holds. @internal */
interface NetworkFile {
  readonly version: 1;
  readonly name: string;
  readonly bridge: string;
  readonly subnet: string;
  readonly gateway: string;
  readonly internal: boolean;
  readonly persistent: boolean;
  /** A path under /run/netns, or undefined for "the namespace the opener is in". */
  readonly netns: string | undefined;
  readonly owner: ProcessIdentity;
  readonly created: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const fileOf = (stateDir: string, name: string) => join(stateDir, 'networks', `${name}.json`);
const lockOf = (stateDir: string) => join(stateDir, 'networks.lock');

function readFileRecord(stateDir: string, name: string): NetworkFile | undefined {
  try {
    return JSON.parse(readFileSync(fileOf(stateDir, name), 'utf8')) as NetworkFile;
  } catch {
    return undefined;
  }
}

/** The first free 10.89.N.0/24: not another network's, not overlapping a route of `netns`. */
function freeSubnet(stateDir: string, netns: NetworkNamespace): string {
  const taken = existsSync(join(stateDir, 'networks'))
    ? readdirSync(join(stateDir, 'networks'))
        .filter((f) => f.endsWith('.json'))
        .map((f) => readFileRecord(stateDir, f.slice(0, -5))?.subnet)
    : [];
  using rt = Rtnetlink.open({ netns });
  const routes = rt
    .routes()
    .filter((r) => r.destination !== 'default')
    .map((r) => parseSubnet(r.destination));
  for (let n = 0; n < 256; n++) {
    const cidr = `10.89.${n}.0/24`;
    const s = parseSubnet(cidr);
    if (!taken.includes(cidr) && !routes.some((r) => subnetsOverlap(r, s))) return cidr;
  }
  throw new NetworkError('ERR_NETWORK_SUBNET_EXHAUSTED', 'no free 10.89.N.0/24 subnet left: give one with `subnet`');
}

/**
 * A named network of containers, like `docker network create`: a bridge of its own with a
 * subnet, on which members reach each other by name. Containers join with
 * `Container.start({ network: net, aliases: ['db'] })`; each member's `/etc/hosts` lists
 * every member (hostname, container name, aliases) and is kept up to date as containers join
 * and leave. Any process finds it again by name ({@link Network.open}).
 *
 * A network belongs to the process that created it, like a container: it goes away once that
 * process ended and its last member left (or with {@link Network.remove}), and with it its
 * bridge, its NAT rules, and — when ctrkit turned it on — `ip_forward`. `persistent: true`
 * keeps it until removed.
 *
 * @example
 * ```ts
 * const net = await Network.create({ name: 'app' });
 * const db = await Container.start({ network: net, aliases: ['db'], command: ['httpd', '-f', '-p', '80'] });
 * await Container.run({ network: net, command: ['wget', '-q', '-O-', 'http://db/'] });
 * ```
 */
export class Network implements AsyncDisposable {
  /** The network's name. */
  readonly name: string;
  /** Its bridge. */
  readonly bridge: Bridge;
  /** True when members reach only each other. */
  readonly internal: boolean;
  /** True when it outlives its creator and its members. */
  readonly persistent: boolean;
  /** Where its state lives. */
  readonly stateDir: string;
  private removed = false;

  private constructor(name: string, bridge: Bridge, internal: boolean, persistent: boolean, stateDir: string) {
    this.name = name;
    this.bridge = bridge;
    this.internal = internal;
    this.persistent = persistent;
    this.stateDir = stateDir;
  }

  /** Its subnet, e.g. `10.89.0.0/24`. */
  get subnet(): string {
    return this.bridge.subnet.cidr;
  }

  /** Its gateway: the bridge's address. */
  get gateway(): string {
    return this.bridge.gateway;
  }

  /**
   * Creates a network: claims its name and a subnet, creates its bridge. Refuses a name in
   * use ({@link NetworkError} `ERR_NETWORK_NAME_IN_USE`); a network whose creator is gone
   * and that has no member left is taken over.
   */
  static async create(options: NetworkOptions = {}): Promise<Network> {
    const name = options.name ?? `ctk-net-${randomBytes(4).toString('hex')}`;
    if (!NAME.test(name)) throw new InvalidOptionError('name', `"${name}" is not a network name (letters, digits, _ . -, at most 64)`);
    if (options.subnet !== undefined) parseSubnet(options.subnet);
    const stateDir = options.stateDir ?? networkStateDir();
    const netns = options.netns ?? NetworkNamespace.current();
    const owner = identify(process.pid)!;
    const internal = options.internal ?? false;
    const persistent = options.persistent ?? false;
    let stale: NetworkFile | undefined;
    const record = await withFileLock(
      lockOf(stateDir),
      () => {
        const existing = readFileRecord(stateDir, name);
        if (existing) {
          if (existing.persistent || isAlive(existing.owner) || liveMembers(stateDir, name).length > 0) {
            throw new NetworkError('ERR_NETWORK_NAME_IN_USE', `network "${name}" already exists (bridge ${existing.bridge})`);
          }
          stale = existing;
          rmSync(fileOf(stateDir, name), { force: true });
        }
        const subnet = options.subnet ?? freeSubnet(stateDir, netns);
        const r: NetworkFile = {
          version: 1,
          name,
          bridge: `ctkn${randomBytes(4).toString('hex')}`,
          subnet,
          gateway: '',
          internal,
          persistent,
          netns: netns.path.startsWith('/run/netns/') ? netns.path : undefined,
          owner,
          created: new Date().toISOString(),
        };
        mkdirSync(join(stateDir, 'networks'), { recursive: true, mode: 0o700 });
        writeFileSync(fileOf(stateDir, name), JSON.stringify(r));
        return r;
      },
      options.signal,
    );
    if (stale) await removeBridgeOf(stale, stateDir).catch((e: unknown) => log('removing the abandoned network %s: %s', name, (e as Error).message));
    let bridge: Bridge;
    try {
      bridge = await Bridge.create({ name: record.bridge, subnet: record.subnet, netns, stateDir, masquerade: !internal, signal: options.signal });
    } catch (e) {
      rmSync(fileOf(stateDir, name), { force: true });
      throw e;
    }
    writeFileSync(fileOf(stateDir, name), JSON.stringify({ ...record, gateway: bridge.gateway }));
    if (!persistent) await watchFromOwnerHelper(stateDir, name);
    log('network %s: bridge %s, %s', name, bridge.name, bridge.subnet.cidr);
    return new Network(name, bridge, internal, persistent, stateDir);
  }

  /** A network by name, from any process (`ERR_NETWORK_NOT_FOUND` when there is none). */
  static async open(name: string, options: NetworkLookupOptions = {}): Promise<Network> {
    const stateDir = options.stateDir ?? networkStateDir();
    const r = readFileRecord(stateDir, name);
    if (!r) throw new NetworkError('ERR_NETWORK_NOT_FOUND', `no network "${name}" under ${stateDir}`);
    const netns = r.netns === undefined ? NetworkNamespace.current() : NetworkNamespace.open(r.netns);
    // Adopts the existing bridge (same name and address); its NAT rules are already there.
    const bridge = await Bridge.create({ name: r.bridge, subnet: r.subnet, gateway: r.gateway || undefined, netns, stateDir, masquerade: !r.internal });
    return new Network(r.name, bridge, r.internal, r.persistent, stateDir);
  }

  /** The names of the networks under a state directory. */
  static list(options: NetworkLookupOptions = {}): string[] {
    const dir = join(options.stateDir ?? networkStateDir(), 'networks');
    return existsSync(dir)
      ? readdirSync(dir)
          .filter((f) => f.endsWith('.json'))
          .map((f) => f.slice(0, -5))
          .sort()
      : [];
  }

  /** The containers on the network now. */
  async members(): Promise<NetworkMember[]> {
    const list = await withFileLock(lockOf(this.stateDir), () => liveMembers(this.stateDir, this.name));
    return list.map((m) => ({ id: m.id, address: m.address, names: [...new Set([m.hostname, ...(m.name ? [m.name] : []), ...m.aliases])] }));
  }

  /**
   * The name servers for members' resolv.conf: the host's (without loopback ones) that the
   * bridge's namespace has a route to. When it has none, the container's own loopback, where
   * nothing answers on port 53: the kernel's port-unreachable error (never rate-limited on
   * loopback, unlike one from the gateway) ends each lookup at once, where an unroutable
   * server would make every unknown name wait out the resolver's 5 s timeout.
   * @internal
   */
  nameServers(): string[] {
    let text = '';
    try {
      text = readFileSync('/etc/resolv.conf', 'utf8');
    } catch {
      // no resolv.conf: no servers of the host's
    }
    const servers = [...text.matchAll(/^\s*nameserver\s+(\d+\.\d+\.\d+\.\d+)\s*$/gm)].map((m) => m[1]!).filter((s) => !s.startsWith('127.'));
    using rt = Rtnetlink.open({ netns: this.bridge.netns });
    const routes = rt.routes();
    const routable = servers.filter((s) =>
      routes.some((r) => r.destination === 'default' || subnetsOverlap(parseSubnet(r.destination), parseSubnet(`${s}/32`))),
    );
    return routable.length > 0 ? routable : ['127.0.0.1'];
  }

  /** Records a container that joined, and updates every member's hosts file. @internal */
  async join(member: MemberRecord): Promise<void> {
    await withFileLock(lockOf(this.stateDir), () => {
      if (!existsSync(fileOf(this.stateDir, this.name))) throw new NetworkError('ERR_NETWORK_NOT_FOUND', `network "${this.name}" was removed`);
      addMember(this.stateDir, this.name, member);
    });
  }

  /**
   * Removes the network: its bridge, NAT rules and state. Refuses while containers are on it
   * (`ERR_NETWORK_IN_USE`) unless `force` (they then lose their network).
   */
  async remove(options: { readonly force?: boolean; readonly signal?: AbortSignal } = {}): Promise<void> {
    if (this.removed) return;
    await withFileLock(
      lockOf(this.stateDir),
      () => {
        const members = liveMembers(this.stateDir, this.name);
        if (members.length > 0 && !options.force) {
          throw new NetworkError('ERR_NETWORK_IN_USE', `network "${this.name}" has ${members.length} member(s): remove them first, or use { force: true }`);
        }
        forget(this.stateDir, this.name);
      },
      options.signal,
    );
    this.removed = true;
    await this.bridge.remove(options);
    log('removed network %s', this.name);
  }

  /** Same as {@link Network.remove} (without `force`). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove();
  }
}

function forget(stateDir: string, name: string): void {
  rmSync(fileOf(stateDir, name), { force: true });
  rmSync(membersDir(stateDir, name), { recursive: true, force: true });
}

async function removeBridgeOf(r: NetworkFile, stateDir: string): Promise<void> {
  const netns = r.netns === undefined ? NetworkNamespace.current() : NetworkNamespace.open(r.netns);
  using rt = Rtnetlink.open({ netns });
  if (!rt.link(r.bridge)) {
    const { removeBridgeNat } = await import('./nat.js');
    await removeBridgeNat(netns, r.bridge, stateDir);
    return;
  }
  // Adopted without masquerade so that nothing is added on the way to removing it all.
  const bridge = await Bridge.create({ name: r.bridge, subnet: r.subnet, gateway: r.gateway || undefined, netns, stateDir, masquerade: false });
  await bridge.remove();
}

/** Tells this process's owner helper to remove the network once we ended and it is empty. */
async function watchFromOwnerHelper(stateDir: string, name: string): Promise<void> {
  // The owner helper is the one process that outlives its owner (see docs/container.md); a
  // network belongs to its creator the way a container does.
  const { isHelper, ownerHelper } = await import('../owner/client.js');
  if (!isHelper()) await ownerHelper().watchNetwork(stateDir, name);
}

/**
 * A member left: drops it, rewrites the others' hosts files, and removes the network when it
 * is now empty, not persistent, and its creator is gone (`ownerGone`, or no longer alive).
 * @internal
 */
export async function leaveNetwork(stateDir: string, name: string, id: string | undefined, ownerGone = false): Promise<void> {
  const doomed = await withFileLock(lockOf(stateDir), () => {
    const r = readFileRecord(stateDir, name);
    const empty = id === undefined ? liveMembers(stateDir, name).length === 0 : removeMember(stateDir, name, id);
    if (!r || r.persistent || !empty || (!ownerGone && isAlive(r.owner))) return undefined;
    forget(stateDir, name);
    return r;
  });
  if (doomed) {
    await removeBridgeOf(doomed, stateDir);
    log('network %s went with its last member', name);
  }
}
