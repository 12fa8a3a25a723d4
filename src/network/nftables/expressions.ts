/**
 * The nf_tables expressions ctrkit's NAT rules are made of, encoded as the kernel's netlink
 * attributes: what `nft` compiles `ip saddr 10.88.0.0/24 oifname != "br" masquerade` into.
 * nf_tables attributes carry integers in network byte order; register contents (ct status,
 * fib results) are in host order, as the kernel stores them.
 * @internal
 */
import { bytes, nested, str, type Attr } from '../netlink/attributes.js';
import { ipv4Bytes, maskOf, parseSubnet, parseIpv4 } from '../ipv4.js';
import * as N from './constants.js';

const be32 = (type: number, n: number): Attr => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n | 0, 0);
  return { type, value: b };
};
const data = (type: number, value: Buffer): Attr => nested(type, [bytes(N.NFTA_DATA_VALUE, value)]);
const expr = (name: string, attrs: Attr[]): Attr => nested(N.NFTA_LIST_ELEM, [str(N.NFTA_EXPR_NAME, name), nested(N.NFTA_EXPR_DATA, attrs)]);
const le32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
};

function payload(base: number, offset: number, len: number): Attr {
  return expr('payload', [
    be32(N.NFTA_PAYLOAD_DREG, N.NFT_REG_1),
    be32(N.NFTA_PAYLOAD_BASE, base),
    be32(N.NFTA_PAYLOAD_OFFSET, offset),
    be32(N.NFTA_PAYLOAD_LEN, len),
  ]);
}
function cmp(op: number, value: Buffer): Attr {
  return expr('cmp', [be32(N.NFTA_CMP_SREG, N.NFT_REG_1), be32(N.NFTA_CMP_OP, op), data(N.NFTA_CMP_DATA, value)]);
}
function bitwise(mask: Buffer): Attr {
  return expr('bitwise', [
    be32(N.NFTA_BITWISE_SREG, N.NFT_REG_1),
    be32(N.NFTA_BITWISE_DREG, N.NFT_REG_1),
    be32(N.NFTA_BITWISE_LEN, mask.length),
    data(N.NFTA_BITWISE_MASK, mask),
    data(N.NFTA_BITWISE_XOR, Buffer.alloc(mask.length)),
  ]);
}

/** A condition of a rule. @internal */
export type Match =
  | { readonly saddr: string } // CIDR
  | { readonly daddr: string } // address or CIDR
  | { readonly oifname: string; readonly not?: boolean }
  | { readonly iifname: string }
  | { readonly fibDaddrLocal: true }
  | { readonly l4proto: 'tcp' | 'udp'; readonly dport: number }
  | { readonly ctStatusDnat: true };

/** What a rule does. @internal */
export type Action = { readonly masquerade: true } | { readonly dnat: { readonly address: string; readonly port: number } } | { readonly drop: true };

/** `ip saddr|daddr ADDRESS[/PREFIX]`: the address field at `offset` of the IPv4 header. */
function addressMatch(offset: number, cidr: string): Attr[] {
  const s = parseSubnet(cidr.includes('/') ? cidr : `${formatSubnetAddress(cidr)}/32`);
  const load = payload(N.NFT_PAYLOAD_NETWORK_HEADER, offset, 4);
  if (s.prefix === 32) return [load, cmp(N.NFT_CMP_EQ, ipv4Bytes(s.network))];
  return [load, bitwise(ipv4Bytes(maskOf(s.prefix))), cmp(N.NFT_CMP_EQ, ipv4Bytes(s.network))];
}

const formatSubnetAddress = (address: string) => {
  parseIpv4(address); // refuses what is not an address
  return address;
};

/** `iifname|oifname [!=] NAME`. */
function interfaceMatch(key: number, name: string, not: boolean): Attr[] {
  const b = Buffer.alloc(16); // IFNAMSIZ, NUL-padded: the register holds the whole name
  b.write(name, 'latin1');
  return [expr('meta', [be32(N.NFTA_META_DREG, N.NFT_REG_1), be32(N.NFTA_META_KEY, key)]), cmp(not ? N.NFT_CMP_NEQ : N.NFT_CMP_EQ, b)];
}

function encodeMatch(m: Match): Attr[] {
  if ('saddr' in m) return addressMatch(12, m.saddr);
  if ('daddr' in m) return addressMatch(16, m.daddr);
  if ('oifname' in m) return interfaceMatch(N.NFT_META_OIFNAME, m.oifname, m.not ?? false);
  if ('iifname' in m) return interfaceMatch(N.NFT_META_IIFNAME, m.iifname, false);
  if ('fibDaddrLocal' in m) {
    return [
      expr('fib', [be32(N.NFTA_FIB_DREG, N.NFT_REG_1), be32(N.NFTA_FIB_RESULT, N.NFT_FIB_RESULT_ADDRTYPE), be32(N.NFTA_FIB_FLAGS, N.NFTA_FIB_F_DADDR)]),
      cmp(N.NFT_CMP_EQ, le32(N.RTN_LOCAL)),
    ];
  }
  if ('l4proto' in m) {
    const port = Buffer.alloc(2);
    port.writeUInt16BE(m.dport, 0);
    return [
      expr('meta', [be32(N.NFTA_META_DREG, N.NFT_REG_1), be32(N.NFTA_META_KEY, N.NFT_META_L4PROTO)]),
      cmp(N.NFT_CMP_EQ, Buffer.from([m.l4proto === 'tcp' ? 6 : 17])),
      payload(N.NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2),
      cmp(N.NFT_CMP_EQ, port),
    ];
  }
  return [
    expr('ct', [be32(N.NFTA_CT_DREG, N.NFT_REG_1), be32(N.NFTA_CT_KEY, N.NFT_CT_STATUS)]),
    bitwise(le32(N.IPS_DST_NAT)),
    cmp(N.NFT_CMP_NEQ, Buffer.alloc(4)),
  ];
}

function encodeAction(a: Action): Attr[] {
  if ('masquerade' in a) return [expr('masq', [])];
  if ('drop' in a) {
    return [
      expr('immediate', [
        be32(N.NFTA_IMMEDIATE_DREG, N.NFT_REG_VERDICT),
        nested(N.NFTA_IMMEDIATE_DATA, [nested(N.NFTA_DATA_VERDICT, [be32(N.NFTA_VERDICT_CODE, N.NF_DROP)])]),
      ]),
    ];
  }
  const port = Buffer.alloc(2);
  port.writeUInt16BE(a.dnat.port, 0);
  return [
    expr('immediate', [be32(N.NFTA_IMMEDIATE_DREG, N.NFT_REG_1), data(N.NFTA_IMMEDIATE_DATA, ipv4Bytes(parseIpv4(a.dnat.address)))]),
    expr('immediate', [be32(N.NFTA_IMMEDIATE_DREG, N.NFT_REG_2), data(N.NFTA_IMMEDIATE_DATA, port)]),
    expr('nat', [
      be32(N.NFTA_NAT_TYPE, N.NFT_NAT_DNAT),
      be32(N.NFTA_NAT_FAMILY, N.NFPROTO_IPV4),
      be32(N.NFTA_NAT_REG_ADDR_MIN, N.NFT_REG_1),
      be32(N.NFTA_NAT_REG_PROTO_MIN, N.NFT_REG_2),
    ]),
  ];
}

/** The NFTA_RULE_EXPRESSIONS list of a rule. @internal */
export function ruleExpressions(matches: readonly Match[], action: Action): Attr {
  return nested(N.NFTA_RULE_EXPRESSIONS, [...matches.flatMap(encodeMatch), ...encodeAction(action)]);
}

/** A comment as libnftnl stores it in NFTA_RULE_USERDATA (so `nft list` shows it too). @internal */
export function commentUserdata(comment: string): Attr {
  const text = Buffer.from(`${comment}\0`, 'utf8');
  return bytes(N.NFTA_RULE_USERDATA, Buffer.concat([Buffer.from([N.NFTNL_UDATA_RULE_COMMENT, text.length]), text]));
}

/** The comment of a rule's user data, if it has one. @internal */
export function commentOf(userdata: Buffer | undefined): string | undefined {
  let off = 0;
  while (userdata && off + 2 <= userdata.length) {
    const type = userdata[off]!;
    const len = userdata[off + 1]!;
    if (type === N.NFTNL_UDATA_RULE_COMMENT)
      return userdata
        .subarray(off + 2, off + 2 + len)
        .toString('utf8')
        .replace(/\0.*$/s, '');
    off += 2 + len;
  }
  return undefined;
}
