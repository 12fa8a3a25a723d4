/**
 * nftables over netlink (nfnetlink, NETLINK_NETFILTER): the few operations ctrkit's NAT needs,
 * applied as one kernel transaction per call (a batch: all of it or none), like `nft -f`.
 * @internal
 */
import { decodeAttrs, encodeAttrs, nested, readStr, str, type Attr } from '../netlink/attributes.js';
import { NLM_F_CREATE } from '../netlink/constants.js';
import { NetlinkSocket, type BatchMessage } from '../netlink/socket.js';
import { NetlinkError } from '../errors.js';
import type { NetworkNamespace } from '../netns.js';
import * as N from './constants.js';
import { commentOf, commentUserdata, ruleExpressions, type Action, type Match } from './expressions.js';

const NLM_F_APPEND = 0x800;

/** A base chain of ctrkit's table: NAT chains, and a filter chain for what must be dropped. @internal */
export interface NatChain {
  readonly name: string;
  readonly hook: 'prerouting' | 'output' | 'postrouting';
  readonly priority: number;
  /** @defaultValue `'nat'` */
  readonly type?: 'nat' | 'filter';
}

/** One change of a batch. @internal */
export type NftOperation =
  | { readonly op: 'addNatTable'; readonly table: string; readonly chains: readonly NatChain[] }
  | {
      readonly op: 'addRule';
      readonly table: string;
      readonly chain: string;
      readonly matches: readonly Match[];
      readonly action: Action;
      readonly comment: string;
    }
  | { readonly op: 'deleteRule'; readonly table: string; readonly chain: string; readonly handle: number }
  | { readonly op: 'deleteTable'; readonly table: string };

/** A rule as listed: its chain, handle and comment. @internal */
export interface NftRule {
  readonly chain: string;
  readonly handle: number;
  readonly comment: string | undefined;
}

const HOOKS = { prerouting: N.NF_INET_PRE_ROUTING, output: N.NF_INET_LOCAL_OUT, postrouting: N.NF_INET_POST_ROUTING } as const;

function nfgenmsg(resId = 0): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt8(N.NFPROTO_IPV4, 0);
  b.writeUInt16BE(resId, 2);
  return b;
}

const body = (attrs: Attr[]) => Buffer.concat([nfgenmsg(), encodeAttrs(attrs)]);
const be32 = (type: number, n: number): Attr => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n | 0, 0);
  return { type, value: b };
};
const be64 = (type: number, n: number): Attr => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n), 0);
  return { type, value: b };
};

/** An nftables client bound to one network namespace. @internal */
export class Nftables implements Disposable {
  private readonly socket: NetlinkSocket;

  private constructor(socket: NetlinkSocket) {
    this.socket = socket;
  }

  /** Opens a client in `netns` (the socket stays bound to it). */
  static open(netns: NetworkNamespace): Nftables {
    return new Nftables(netns.runSync(() => new NetlinkSocket(N.NETLINK_NETFILTER)));
  }

  /** The rules of an `ip` table, or undefined when the table does not exist. */
  rules(table: string): NftRule[] | undefined {
    try {
      this.socket.request(N.NFT_MSG_GETTABLE, 0, body([str(N.NFTA_TABLE_NAME, table)]), `nft get table ip ${table}`);
    } catch (e) {
      if (e instanceof NetlinkError && e.errnoName === 'ENOENT') return undefined;
      throw e;
    }
    return this.socket
      .dump(N.NFT_MSG_GETRULE, body([str(N.NFTA_RULE_TABLE, table)]), `nft list table ip ${table}`)
      .filter((m) => m.type === N.NFT_MSG_NEWRULE)
      .map((m) => decodeAttrs(m.payload.subarray(4)))
      .filter((a) => readStr(a.get(N.NFTA_RULE_TABLE)) === table)
      .map((a) => ({
        chain: readStr(a.get(N.NFTA_RULE_CHAIN)) ?? '',
        handle: Number(a.get(N.NFTA_RULE_HANDLE)?.readBigUInt64BE(0) ?? 0n),
        comment: commentOf(a.get(N.NFTA_RULE_USERDATA)),
      }));
  }

  /** Applies the operations as one transaction; throws {@link NetlinkError} naming the first refused one. */
  apply(operations: readonly NftOperation[]): void {
    if (operations.length === 0) return;
    const messages: BatchMessage[] = [{ type: N.NFNL_MSG_BATCH_BEGIN, flags: 0, body: nfgenmsg(N.NFNL_SUBSYS_NFTABLES), framing: true }];
    for (const o of operations) messages.push(...encode(o));
    messages.push({ type: N.NFNL_MSG_BATCH_END, flags: 0, body: nfgenmsg(N.NFNL_SUBSYS_NFTABLES), framing: true });
    this.socket.batch(messages, 'nft transaction');
  }

  /** Closes the socket. */
  close(): void {
    this.socket.close();
  }

  /** Same as {@link Nftables.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

function encode(o: NftOperation): BatchMessage[] {
  switch (o.op) {
    case 'addNatTable':
      // NLM_F_CREATE without NLM_F_EXCL: "add", which leaves an existing table or chain alone.
      return [
        { type: N.NFT_MSG_NEWTABLE, flags: NLM_F_CREATE, body: body([str(N.NFTA_TABLE_NAME, o.table)]), operation: `nft add table ip ${o.table}` },
        ...o.chains.map((c) => ({
          type: N.NFT_MSG_NEWCHAIN,
          flags: NLM_F_CREATE,
          body: body([
            str(N.NFTA_CHAIN_TABLE, o.table),
            str(N.NFTA_CHAIN_NAME, c.name),
            nested(N.NFTA_CHAIN_HOOK, [be32(N.NFTA_HOOK_HOOKNUM, HOOKS[c.hook]), be32(N.NFTA_HOOK_PRIORITY, c.priority)]),
            be32(N.NFTA_CHAIN_POLICY, N.NF_ACCEPT),
            str(N.NFTA_CHAIN_TYPE, c.type ?? 'nat'),
          ]),
          operation: `nft add chain ip ${o.table} ${c.name} (${c.type ?? 'nat'}, ${c.hook}, priority ${c.priority})`,
        })),
      ];
    case 'addRule':
      return [
        {
          type: N.NFT_MSG_NEWRULE,
          flags: NLM_F_CREATE | NLM_F_APPEND,
          body: body([str(N.NFTA_RULE_TABLE, o.table), str(N.NFTA_RULE_CHAIN, o.chain), ruleExpressions(o.matches, o.action), commentUserdata(o.comment)]),
          operation: `nft add rule ip ${o.table} ${o.chain} (${o.comment})`,
        },
      ];
    case 'deleteRule':
      return [
        {
          type: N.NFT_MSG_DELRULE,
          flags: 0,
          body: body([str(N.NFTA_RULE_TABLE, o.table), str(N.NFTA_RULE_CHAIN, o.chain), be64(N.NFTA_RULE_HANDLE, o.handle)]),
          operation: `nft delete rule ip ${o.table} ${o.chain} handle ${o.handle}`,
        },
      ];
    case 'deleteTable':
      return [{ type: N.NFT_MSG_DELTABLE, flags: 0, body: body([str(N.NFTA_TABLE_NAME, o.table)]), operation: `nft delete table ip ${o.table}` }];
  }
}
