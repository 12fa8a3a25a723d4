/* nf_tables netlink ABI numbers (linux/netfilter/nf_tables.h, nfnetlink.h). @internal */

export const NETLINK_NETFILTER = 12;
export const NFNL_SUBSYS_NFTABLES = 10;
export const NFNL_MSG_BATCH_BEGIN = 0x10;
export const NFNL_MSG_BATCH_END = 0x11;
export const NFPROTO_IPV4 = 2;

const msg = (n: number) => (NFNL_SUBSYS_NFTABLES << 8) | n;
export const NFT_MSG_NEWTABLE = msg(0);
export const NFT_MSG_GETTABLE = msg(1);
export const NFT_MSG_DELTABLE = msg(2);
export const NFT_MSG_NEWCHAIN = msg(3);
export const NFT_MSG_NEWRULE = msg(6);
export const NFT_MSG_GETRULE = msg(7);
export const NFT_MSG_DELRULE = msg(8);

export const NFTA_TABLE_NAME = 1;
export const NFTA_CHAIN_TABLE = 1;
export const NFTA_CHAIN_NAME = 3;
export const NFTA_CHAIN_HOOK = 4;
export const NFTA_CHAIN_POLICY = 5;
export const NFTA_CHAIN_TYPE = 7;
export const NFTA_HOOK_HOOKNUM = 1;
export const NFTA_HOOK_PRIORITY = 2;
export const NFTA_RULE_TABLE = 1;
export const NFTA_RULE_CHAIN = 2;
export const NFTA_RULE_HANDLE = 3;
export const NFTA_RULE_EXPRESSIONS = 4;
export const NFTA_RULE_USERDATA = 7;
export const NFTA_LIST_ELEM = 1;
export const NFTA_EXPR_NAME = 1;
export const NFTA_EXPR_DATA = 2;
export const NFTA_DATA_VALUE = 1;
export const NFTA_DATA_VERDICT = 2;
export const NFTA_VERDICT_CODE = 1;
export const NF_DROP = 0;
export const NFT_REG_VERDICT = 0;

export const NF_INET_PRE_ROUTING = 0;
export const NF_INET_LOCAL_OUT = 3;
export const NF_INET_POST_ROUTING = 4;
export const NF_ACCEPT = 1;

export const NFT_REG_1 = 1;
export const NFT_REG_2 = 2;

export const NFTA_PAYLOAD_DREG = 1;
export const NFTA_PAYLOAD_BASE = 2;
export const NFTA_PAYLOAD_OFFSET = 3;
export const NFTA_PAYLOAD_LEN = 4;
export const NFT_PAYLOAD_NETWORK_HEADER = 1;
export const NFT_PAYLOAD_TRANSPORT_HEADER = 2;

export const NFTA_CMP_SREG = 1;
export const NFTA_CMP_OP = 2;
export const NFTA_CMP_DATA = 3;
export const NFT_CMP_EQ = 0;
export const NFT_CMP_NEQ = 1;

export const NFTA_BITWISE_SREG = 1;
export const NFTA_BITWISE_DREG = 2;
export const NFTA_BITWISE_LEN = 3;
export const NFTA_BITWISE_MASK = 4;
export const NFTA_BITWISE_XOR = 5;

export const NFTA_META_DREG = 1;
export const NFTA_META_KEY = 2;
export const NFT_META_IIFNAME = 6;
export const NFT_META_OIFNAME = 7;
export const NFT_META_L4PROTO = 16;

export const NFTA_CT_DREG = 1;
export const NFTA_CT_KEY = 2;
export const NFT_CT_STATUS = 2;
export const IPS_DST_NAT = 1 << 5;

export const NFTA_FIB_DREG = 1;
export const NFTA_FIB_RESULT = 2;
export const NFTA_FIB_FLAGS = 3;
export const NFT_FIB_RESULT_ADDRTYPE = 3;
export const NFTA_FIB_F_DADDR = 1 << 1;
export const RTN_LOCAL = 2;

export const NFTA_IMMEDIATE_DREG = 1;
export const NFTA_IMMEDIATE_DATA = 2;

export const NFTA_NAT_TYPE = 1;
export const NFTA_NAT_FAMILY = 2;
export const NFTA_NAT_REG_ADDR_MIN = 3;
export const NFTA_NAT_REG_PROTO_MIN = 5;
export const NFT_NAT_DNAT = 1;

/** libnftnl's rule user data: TLVs of (u8 type, u8 length, value); type 0 is the comment. */
export const NFTNL_UDATA_RULE_COMMENT = 0;
