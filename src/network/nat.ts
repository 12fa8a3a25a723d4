/**
 * NAT for bridges and published ports, in nftables (over netlink, see ./nftables), in a
 * table of ctrkit's own (`ip ctk`) inside the host network namespace in use. Every rule
 * carries a comment naming what it belongs to (`ctk:br:NAME`, `ctk:port:...`), so adding is
 * idempotent and removing deletes exactly those rules by handle; the table goes once it is
 * empty. Each change is one kernel transaction.
 * @internal
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NetworkError } from './errors.js';
import { Nftables, type NatChain, type NftOperation, type NftRule } from './nftables/client.js';
import type { NetworkNamespace } from './netns.js';
import type { PortMapping } from './ports.js';
import { ownerAlive, type LeaseOwner } from './ipam.js';
import { withFileLock } from './state-lock.js';
import { writeNetSysctl } from './sysctl.js';
import { enableForwarding, restoreForwarding } from './forwarding.js';

/** The nftables table ctrkit owns (family ip). */
export const NFT_TABLE = 'ctk';

/**
 * A filter chain at raw priority (-300): before conntrack undoes NAT on replies, so a
 * legitimate reply to a DNATed 127.0.0.1 connection still carries the bridge's address there,
 * and only packets a container addressed to 127.0.0.0/8 itself are seen with it.
 */
const GUARD: NatChain = { name: 'guard', hook: 'prerouting', priority: -300, type: 'filter' };

/** dstnat is -100 and srcnat 100, as `nft` names them. */
const CHAINS: readonly NatChain[] = [
  { name: 'prerouting', hook: 'prerouting', priority: -100 },
  { name: 'output', hook: 'output', priority: -100 },
  { name: 'postrouting', hook: 'postrouting', priority: 100 },
  GUARD,
];
const ADD_TABLE: NftOperation = { op: 'addNatTable', table: NFT_TABLE, chains: CHAINS };

const bridgeTag = (bridge: string) => `ctk:br:${bridge}`;
/** `ctk:port:BRIDGE:PROTO:HOSTIP|*:PORT:PID.STARTTIME`: the owner lets a crashed parent's rules be reclaimed. */
const portTag = (bridge: string, m: PortMapping, owner: LeaseOwner) =>
  `ctk:port:${bridge}:${m.protocol}:${m.hostIp ?? '*'}:${m.hostPort}:${owner.pid}.${owner.startTime}`;

interface PortTag {
  bridge: string;
  protocol: string;
  hostPort: number;
  owner: LeaseOwner;
}

function parsePortTag(comment: string | undefined): PortTag | undefined {
  const f = comment?.split(':');
  if (f?.length !== 7 || f[0] !== 'ctk' || f[1] !== 'port') return undefined;
  const [pid, startTime] = f[6]!.split('.').map(Number);
  return { bridge: f[2]!, protocol: f[3]!, hostPort: Number(f[5]), owner: { pid: pid!, startTime: startTime! } };
}

/** Masquerade for a bridge's subnet going out, localhost-to-bridge and hairpin traffic. */
export async function addBridgeNat(netns: NetworkNamespace, bridge: string, subnet: string, stateDir: string, signal?: AbortSignal): Promise<void> {
  const tag = bridgeTag(bridge);
  await locked(netns, stateDir, signal, (nft) => {
    const listed = nft.rules(NFT_TABLE);
    if (listed?.some((r) => r.comment === tag)) return;
    // Forwarding is only needed once a bridge NATs; it is per namespace, and only this one changes.
    enableForwarding(netns, stateDir);
    nft.apply([
      ...(listed ? [] : [ADD_TABLE]),
      {
        op: 'addRule',
        table: NFT_TABLE,
        chain: 'postrouting',
        matches: [{ saddr: subnet }, { oifname: bridge, not: true }],
        action: { masquerade: true },
        comment: tag,
      },
      ...publishingRules(bridge, subnet),
    ]);
  });
}

/**
 * What published ports on a bridge need besides their DNAT: `127.0.0.1:PORT` leaves through
 * the bridge with a loopback source, which the container could not answer, and a container
 * reaching its own published port would get the answer from itself: both are masqueraded
 * to the bridge's address.
 */
function publishingRules(bridge: string, subnet: string): NftOperation[] {
  const tag = bridgeTag(bridge);
  return [
    // route_localnet=1 on the bridge (for 127.0.0.1:PORT) would also let a container reach the
    // host's loopback-only services by addressing 127.0.0.1 to the gateway (CVE-2020-8558's
    // class): such packets are dropped, as kube-proxy does. A table made by an older ctrkit
    // lacks the chain: adding it again is a no-op otherwise.
    { op: 'addNatTable', table: NFT_TABLE, chains: [GUARD] },
    { op: 'addRule', table: NFT_TABLE, chain: 'guard', matches: [{ iifname: bridge }, { daddr: '127.0.0.0/8' }], action: { drop: true }, comment: tag },
    {
      op: 'addRule',
      table: NFT_TABLE,
      chain: 'postrouting',
      matches: [{ oifname: bridge }, { saddr: '127.0.0.0/8' }],
      action: { masquerade: true },
      comment: tag,
    },
    {
      op: 'addRule',
      table: NFT_TABLE,
      chain: 'postrouting',
      matches: [{ oifname: bridge }, { saddr: subnet }, { ctStatusDnat: true }],
      action: { masquerade: true },
      comment: tag,
    },
  ];
}

/** Removes a bridge's NAT rules and every port it still publishes (no-op when there are none). */
export async function removeBridgeNat(netns: NetworkNamespace, bridge: string, stateDir: string, signal?: AbortSignal): Promise<void> {
  await locked(netns, stateDir, signal, (nft) => {
    if (deleteTagged(nft, (c) => c === bridgeTag(bridge) || parsePortTag(c)?.bridge === bridge)) restoreForwarding(netns, stateDir);
  });
}

/**
 * Publishes ports of a container at `address` on `bridge`. Refuses (and adds nothing) when
 * any host port is already mapped by ctrkit or listened on in `netns` — except the ports in
 * `held` (`tcp:PORT`), which the caller itself holds open for this mapping (random ports).
 */
export async function addPortMappings(
  netns: NetworkNamespace,
  bridge: string,
  subnet: string,
  address: string,
  mappings: readonly PortMapping[],
  owner: LeaseOwner,
  stateDir: string,
  signal?: AbortSignal,
  held: ReadonlySet<string> = new Set(),
): Promise<void> {
  if (mappings.length === 0) return;
  const seen = new Set<string>();
  for (const m of mappings) {
    const key = `${m.protocol}:${m.hostPort}`;
    if (seen.has(key)) throw new NetworkError('ERR_NETWORK_PORT_IN_USE', `host port ${m.hostPort}/${m.protocol} is mapped twice in the same request`);
    seen.add(key);
  }
  await locked(netns, stateDir, signal, (nft) => {
    const listed = nft.rules(NFT_TABLE);
    const rules = listed ?? [];
    // Rules of owners that died without unpublishing (a crashed parent) are stale: they are
    // deleted in the same transaction that adds the new ones.
    const stale = rules.filter((r) => {
      const t = parsePortTag(r.comment);
      return t !== undefined && !ownerAlive(t.owner);
    });
    const existing = rules.filter((r) => !stale.includes(r));
    const listening = netns.runSync(() => ({ tcp: listeningPorts('tcp'), udp: listeningPorts('udp') }));
    for (const m of mappings) {
      const clash = existing.find((r) => {
        const t = parsePortTag(r.comment);
        return t?.protocol === m.protocol && t.hostPort === m.hostPort;
      });
      if (clash) throw new NetworkError('ERR_NETWORK_PORT_IN_USE', `host port ${m.hostPort}/${m.protocol} is already published (${clash.comment})`);
      if (listening[m.protocol].has(m.hostPort) && !held.has(`${m.protocol}:${m.hostPort}`))
        throw new NetworkError('ERR_NETWORK_PORT_IN_USE', `host port ${m.hostPort}/${m.protocol} is in use by a listening socket`);
    }
    enableForwarding(netns, stateDir);
    // 127.0.0.1:PORT is DNATed to the bridge only when the bridge accepts loopback sources.
    writeNetSysctl(netns, `ipv4/conf/${bridge}/route_localnet`, '1');
    // Re-adding existing base chains costs the kernel a hook update: only for a new table.
    const ops: NftOperation[] = [...(listed ? [] : [ADD_TABLE]), ...stale.map(deleteRule)];
    // A bridge without masquerade has no rules yet; the ports still need these.
    if (!existing.some((r) => r.comment === bridgeTag(bridge))) ops.push(...publishingRules(bridge, subnet));
    for (const m of mappings) {
      const matches = [m.hostIp ? { daddr: m.hostIp } : { fibDaddrLocal: true as const }, { l4proto: m.protocol, dport: m.hostPort }];
      const rule = { matches, action: { dnat: { address, port: m.containerPort } }, comment: portTag(bridge, m, owner) };
      ops.push({ op: 'addRule', table: NFT_TABLE, chain: 'prerouting', ...rule }, { op: 'addRule', table: NFT_TABLE, chain: 'output', ...rule });
    }
    nft.apply(ops);
  });
}

/** Unpublishes ports (no-op for those not published). */
export async function removePortMappings(
  netns: NetworkNamespace,
  bridge: string,
  mappings: readonly PortMapping[],
  owner: LeaseOwner,
  stateDir: string,
  signal?: AbortSignal,
): Promise<void> {
  if (mappings.length === 0) return;
  const tags = new Set(mappings.map((m) => portTag(bridge, m, owner)));
  await locked(netns, stateDir, signal, (nft) => {
    if (deleteTagged(nft, (c) => tags.has(c))) restoreForwarding(netns, stateDir);
  });
}

const deleteRule = (r: NftRule): NftOperation => ({ op: 'deleteRule', table: NFT_TABLE, chain: r.chain, handle: r.handle });

/** Deletes the rules whose comment matches, and the table when nothing of ctrkit's is left in it; true when the table went. */
function deleteTagged(nft: Nftables, match: (comment: string) => boolean): boolean {
  const rules = nft.rules(NFT_TABLE);
  if (!rules) return false;
  const doomed = rules.filter((r) => r.comment !== undefined && match(r.comment));
  if (doomed.length === rules.length) {
    nft.apply([{ op: 'deleteTable', table: NFT_TABLE }]);
    return true;
  }
  nft.apply(doomed.map(deleteRule));
  return false;
}

/**
 * Serializes changes to the table across processes (check-then-add must not interleave) and
 * hands `fn` an nftables client in `netns`. `fn` is synchronous: the flock is held only
 * while it runs, and never across an await.
 */
function locked<T>(netns: NetworkNamespace, stateDir: string, signal: AbortSignal | undefined, fn: (nft: Nftables) => T): Promise<T> {
  // One lock file for every namespace: files per namespace would pile up, and removing a
  // lock file that someone may be waiting on breaks the lock.
  return withFileLock(
    join(stateDir, 'nat.lock'),
    () => {
      using nft = Nftables.open(netns);
      return fn(nft);
    },
    signal,
  );
}

/** Ports with a listening TCP socket, or bound UDP socket, in the calling thread's namespace. */
function listeningPorts(proto: 'tcp' | 'udp'): Set<number> {
  const out = new Set<number>();
  for (const file of [proto, `${proto}6`]) {
    let text = '';
    try {
      text = readFileSync(`/proc/thread-self/net/${file}`, 'utf8');
    } catch {
      continue; // no IPv6
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4) continue;
      // TCP state 0A is LISTEN; a UDP socket bound to a port (state 07) receives on it.
      if ((proto === 'tcp' && f[3] === '0A') || (proto === 'udp' && f[3] === '07')) out.add(parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return out;
}
