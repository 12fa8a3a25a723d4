import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidOptionError } from '../errors.js';
import { logger } from '../log.js';
import { NetworkError } from './errors.js';
import { formatIpv4, inSubnet, parseIpv4, parseSubnet, type Ipv4Subnet } from './ipv4.js';
import { networkStateDir, withFileLock } from './state-lock.js';

const log = logger('ctrkit:network');

/** The process a lease belongs to: the lease is free again once that process is gone. */
export interface LeaseOwner {
  /** Host PID (a container's init). */
  readonly pid: number;
  /** Its start time in clock ticks since boot (/proc/PID/stat field 22): tells a reused PID apart. */
  readonly startTime: number;
}

/** One leased address. */
export interface Lease {
  /** `10.88.0.2`. */
  readonly address: string;
  /** The subnet's prefix length. */
  readonly prefix: number;
  /** `10.88.0.2/24`. */
  readonly cidr: string;
  /** Who holds it. */
  readonly owner: LeaseOwner;
  /** A caller-chosen id (a container id), to release by. */
  readonly id: string;
}

/** Options of {@link Ipam.open}. */
export interface IpamOptions {
  /** The network's name: names the state and lock files. */
  readonly name: string;
  /** The subnet, e.g. `10.88.0.0/24`. */
  readonly subnet: string;
  /** An address never handed out (the bridge's). @defaultValue the subnet's first address */
  readonly gateway?: string;
  /** State directory. @defaultValue `/run/ctrkit/network` */
  readonly stateDir?: string;
}

/** Options of {@link Ipam.allocate}. */
export interface AllocateOptions {
  /** The process the address is for. Its death frees the address. */
  readonly pid: number;
  /** An id to release by. @defaultValue `pid-<pid>` */
  readonly id?: string;
  /** A specific address instead of the next free one. */
  readonly address?: string;
  /** Cancels waiting for the lock. */
  readonly signal?: AbortSignal;
}

interface StateFile {
  subnet: string;
  gateway: string;
  /** The last address handed out: the next search starts after it, so a freed address is not reused at once. */
  last: number;
  leases: Record<string, { id: string; pid: number; startTime: number }>;
}

/**
 * IPv4 address management for one subnet, shared by every process on the machine: state in
 * a JSON file, every read-modify-write under an flock. An address comes back when its owner
 * process has exited (checked by PID and start time), so a container that ended, or whose
 * parent crashed before releasing it, never keeps its address.
 */
export class Ipam {
  /** The subnet. */
  readonly subnet: Ipv4Subnet;
  /** The reserved gateway address. */
  readonly gateway: string;
  /** The JSON state file. */
  readonly stateFile: string;
  private readonly lockFile: string;
  private readonly gatewayNumber: number;

  private constructor(options: IpamOptions) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(options.name)) throw new InvalidOptionError('name', `"${options.name}" cannot name a state file`);
    this.subnet = parseSubnet(options.subnet);
    if (this.subnet.prefix > 30) throw new InvalidOptionError('subnet', `${this.subnet.cidr} has no room for a gateway and a container`);
    this.gatewayNumber = options.gateway ? parseIpv4(options.gateway, 'gateway') : this.subnet.network + 1;
    if (!inSubnet(this.gatewayNumber, this.subnet)) throw new InvalidOptionError('gateway', `${options.gateway} is not in ${this.subnet.cidr}`);
    this.gateway = formatIpv4(this.gatewayNumber);
    const dir = join(options.stateDir ?? networkStateDir(), 'ipam');
    this.stateFile = join(dir, `${options.name}.json`);
    this.lockFile = join(dir, `${options.name}.lock`);
  }

  /** An allocator for one subnet (nothing is written until the first allocation). */
  static open(options: IpamOptions): Ipam {
    return new Ipam(options);
  }

  /** Leases the next free address (or `options.address`) to `options.pid`. */
  async allocate(options: AllocateOptions): Promise<Lease> {
    const owner = ownerOf(options.pid);
    const id = options.id ?? `pid-${options.pid}`;
    return withFileLock(
      this.lockFile,
      () => {
        const state = this.read();
        this.dropDead(state);
        let ip: number;
        if (options.address !== undefined) {
          ip = parseIpv4(options.address, 'address');
          if (!this.usable(ip)) throw new InvalidOptionError('address', `${options.address} is not a usable host address of ${this.subnet.cidr}`);
          if (state.leases[formatIpv4(ip)]) throw new NetworkError('ERR_NETWORK_ADDRESS_IN_USE', `${options.address} is already leased in ${this.subnet.cidr}`);
        } else {
          ip = this.nextFree(state);
        }
        state.leases[formatIpv4(ip)] = { id, pid: owner.pid, startTime: owner.startTime };
        state.last = ip;
        this.write(state);
        log('ipam %s: leased %s to pid %d', this.subnet.cidr, formatIpv4(ip), owner.pid);
        return this.lease(formatIpv4(ip), id, owner);
      },
      options.signal,
    );
  }

  /** Releases an address (by address or by id). Releasing an unknown one is a no-op. */
  async release(addressOrId: string, options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    await withFileLock(
      this.lockFile,
      () => {
        const state = this.read();
        for (const [addr, l] of Object.entries(state.leases)) {
          if (addr === addressOrId || l.id === addressOrId) delete state.leases[addr];
        }
        this.dropDead(state);
        this.write(state);
      },
      options.signal,
    );
  }

  /** The live leases (dead owners' leases are dropped on the way). */
  async leases(options: { readonly signal?: AbortSignal } = {}): Promise<Lease[]> {
    return withFileLock(
      this.lockFile,
      () => {
        const state = this.read();
        if (this.dropDead(state)) this.write(state);
        return Object.entries(state.leases).map(([addr, l]) => this.lease(addr, l.id, { pid: l.pid, startTime: l.startTime }));
      },
      options.signal,
    );
  }

  /** Removes the state and lock files (for a network that is being removed). */
  async destroy(): Promise<void> {
    await withFileLock(this.lockFile, () => rmSync(this.stateFile, { force: true }));
    rmSync(this.lockFile, { force: true });
  }

  private lease(address: string, id: string, owner: LeaseOwner): Lease {
    return { address, prefix: this.subnet.prefix, cidr: `${address}/${this.subnet.prefix}`, owner, id };
  }

  private usable(ip: number): boolean {
    const broadcast = this.subnet.network + 2 ** (32 - this.subnet.prefix) - 1;
    return inSubnet(ip, this.subnet) && ip !== this.subnet.network && ip !== broadcast && ip !== this.gatewayNumber;
  }

  private nextFree(state: StateFile): number {
    const size = 2 ** (32 - this.subnet.prefix);
    const start = state.last && inSubnet(state.last, this.subnet) ? state.last - this.subnet.network : 0;
    for (let i = 1; i <= size; i++) {
      const ip = this.subnet.network + ((start + i) % size);
      if (this.usable(ip) && !state.leases[formatIpv4(ip)]) return ip;
    }
    throw new NetworkError('ERR_NETWORK_SUBNET_EXHAUSTED', `no free address left in ${this.subnet.cidr} (${Object.keys(state.leases).length} leased)`);
  }

  /** Drops leases whose owner is gone; returns true when it dropped any. */
  private dropDead(state: StateFile): boolean {
    let dropped = false;
    for (const [addr, l] of Object.entries(state.leases)) {
      if (!ownerAlive(l)) {
        delete state.leases[addr];
        dropped = true;
        log('ipam %s: reclaimed %s from dead pid %d', this.subnet.cidr, addr, l.pid);
      }
    }
    return dropped;
  }

  private read(): StateFile {
    if (!existsSync(this.stateFile)) return { subnet: this.subnet.cidr, gateway: this.gateway, last: 0, leases: {} };
    let state: StateFile;
    try {
      state = JSON.parse(readFileSync(this.stateFile, 'utf8')) as StateFile;
    } catch (e) {
      throw new NetworkError('ERR_NETWORK_STATE', `unreadable IPAM state ${this.stateFile}: ${(e as Error).message}`, { cause: e });
    }
    if (state.subnet !== this.subnet.cidr) {
      // State of an earlier network of the same name whose containers are all gone (a crash
      // before it was removed) is history, not a conflict.
      if (Object.values(state.leases).every((l) => !ownerAlive(l))) return { subnet: this.subnet.cidr, gateway: this.gateway, last: 0, leases: {} };
      throw new NetworkError('ERR_NETWORK_STATE', `${this.stateFile} belongs to subnet ${state.subnet}, which still has leases; not ${this.subnet.cidr}`);
    }
    return state;
  }

  private write(state: StateFile): void {
    // No lease left: no file left (the round-robin position is not worth a file).
    if (Object.keys(state.leases).length === 0) {
      rmSync(this.stateFile, { force: true });
      return;
    }
    // Write-then-rename: a crash mid-write never leaves a torn file for the next process.
    const tmp = `${this.stateFile}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(state));
    renameSync(tmp, this.stateFile);
  }
}

/** The owner record of a live process; throws when it is already gone. @internal */
export function ownerOf(pid: number): LeaseOwner {
  const startTime = startTimeOf(pid);
  if (startTime === undefined) throw new NetworkError('ERR_NETWORK_CONTAINER_GONE', `process ${pid} does not exist`);
  return { pid, startTime };
}

/** True while the process that owns a lease still runs (same PID, same start time). @internal */
export function ownerAlive(owner: LeaseOwner): boolean {
  return startTimeOf(owner.pid) === owner.startTime;
}

function startTimeOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined; // a zombie's netns is gone already
    return Number(fields[19]);
  } catch {
    return undefined;
  }
}
