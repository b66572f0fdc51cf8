//! Partial nftables transactions sent to nf_tables over netlink directly.
//!
//! `nft -f` first dumps every chain and set of the table into its cache (120–220 ms
//! at 10 000 services even for a one-line transaction). A partial sync needs no
//! cache: it names chains, sets and maps, so its [`Op`]s are encoded here as one
//! nfnetlink batch (begin, messages, end) applied atomically by the kernel, with the
//! same expressions `nft` would generate for the rules of [`crate::nft_rule`].

use std::fs::File;
use std::os::fd::AsFd;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

use crate::nft::TABLE;
use crate::nft_partial::Op;
use crate::nft_rule::{
    endpoint_map, endpoint_shard, hairpin_key, MapElement, Rule, HAIRPIN_SET, MARK_FOR_MASQUERADE,
};

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("netlink socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("entering network namespace {netns}: {source}")]
    Netns {
        netns: String,
        source: std::io::Error,
    },
    #[error("nf_tables rejected the transaction: {operation}: {source}")]
    Rejected {
        operation: String,
        source: std::io::Error,
    },
    #[error("malformed netlink reply")]
    Malformed,
}

// nfnetlink / nf_tables constants (linux/netfilter/nfnetlink.h, nf_tables.h).
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_DELCHAIN: u16 = 5;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_DELRULE: u16 = 8;
const NFT_MSG_NEWSET: u16 = 9;
const NFT_MSG_DELSET: u16 = 11;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFT_MSG_GETGEN: u16 = 16;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLMSG_ERROR: u16 = 2;
const NLA_F_NESTED: u16 = 0x8000;
const NFPROTO_IPV4: u8 = 2;

const NFTA_LIST_ELEM: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFTA_SET_KEY_TYPE: u16 = 4;
const NFTA_SET_KEY_LEN: u16 = 5;
const NFTA_SET_ID: u16 = 10;
const NFTA_SET_TIMEOUT: u16 = 11;
const NFT_SET_TIMEOUT: u32 = 0x10;
const NFT_SET_EVAL: u32 = 0x20;
/// nft's `ipv4_addr` datatype.
const TYPE_IPADDR: u32 = 7;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;
const NFT_JUMP: i32 = -3;
const NFT_GOTO: i32 = -4;

const NFT_REG_VERDICT: u32 = 0;
const NFT_REG_1: u32 = 1;
const NFT_REG_2: u32 = 2;

const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFT_META_L4PROTO: u32 = 16;
const NFTA_BITWISE_SREG: u16 = 1;
const NFTA_BITWISE_DREG: u16 = 2;
const NFTA_BITWISE_LEN: u16 = 3;
const NFTA_BITWISE_MASK: u16 = 4;
const NFTA_BITWISE_XOR: u16 = 5;
const NFTA_NAT_TYPE: u16 = 1;
const NFTA_NAT_FAMILY: u16 = 2;
const NFTA_NAT_REG_ADDR_MIN: u16 = 3;
const NFTA_NAT_REG_PROTO_MIN: u16 = 5;
const NFT_NAT_DNAT: u32 = 1;
const NFTA_NG_DREG: u16 = 1;
const NFTA_NG_MODULUS: u16 = 2;
const NFTA_NG_TYPE: u16 = 3;
const NFTA_NG_OFFSET: u16 = 4;
const NFT_NG_RANDOM: u32 = 1;
const NFTA_LOOKUP_SET: u16 = 1;
const NFTA_LOOKUP_SREG: u16 = 2;
const NFTA_LOOKUP_DREG: u16 = 3;
/// The second 32-bit word of NFT_REG_1 (where a concatenation's second field lands).
const NFT_REG32_01: u32 = 9;
const NFTA_DYNSET_SET_NAME: u16 = 1;
const NFTA_DYNSET_OP: u16 = 3;
const NFTA_DYNSET_SREG_KEY: u16 = 4;
const NFT_DYNSET_OP_UPDATE: u32 = 1;

/// Offsets in the IPv4 header.
const IP_SADDR: u32 = 12;
const IP_DADDR: u32 = 16;
/// Offset of the destination port in the TCP/UDP/SCTP header.
const TH_DPORT: u32 = 2;

/// A growing netlink buffer of messages and attributes.
#[derive(Default)]
struct Buf {
    data: Vec<u8>,
}

impl Buf {
    fn pad(&mut self) {
        while !self.data.len().is_multiple_of(4) {
            self.data.push(0);
        }
    }

    fn attr(&mut self, kind: u16, value: &[u8]) {
        let len = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
        self.data.extend_from_slice(&len.to_ne_bytes());
        self.data.extend_from_slice(&kind.to_ne_bytes());
        self.data.extend_from_slice(value);
        self.pad();
    }

    fn str(&mut self, kind: u16, value: &str) {
        let mut bytes = Vec::with_capacity(value.len() + 1);
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(0);
        self.attr(kind, &bytes);
    }

    fn u32(&mut self, kind: u16, value: u32) {
        self.attr(kind, &value.to_be_bytes());
    }

    fn nested(&mut self, kind: u16, fill: impl FnOnce(&mut Buf)) {
        let start = self.data.len();
        self.data.extend_from_slice(&[0; 4]);
        fill(self);
        let len = u16::try_from(self.data.len() - start).unwrap_or(u16::MAX);
        self.data[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self.data[start + 2..start + 4].copy_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
    }

    /// One netlink message with an nfgenmsg header; `fill` adds the attributes.
    fn message(
        &mut self,
        kind: u16,
        flags: u16,
        seq: u32,
        family: u8,
        res_id: u16,
        fill: impl FnOnce(&mut Buf),
    ) {
        let start = self.data.len();
        self.data.extend_from_slice(&[0; 4]); // length, patched below
        self.data.extend_from_slice(&kind.to_ne_bytes());
        self.data.extend_from_slice(&flags.to_ne_bytes());
        self.data.extend_from_slice(&seq.to_ne_bytes());
        self.data.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
        self.data.push(family);
        self.data.push(0); // NFNETLINK_V0
        self.data.extend_from_slice(&res_id.to_be_bytes());
        fill(self);
        self.pad();
        let len = u32::try_from(self.data.len() - start).unwrap_or(u32::MAX);
        self.data[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    fn expr(&mut self, name: &str, fill: impl FnOnce(&mut Buf)) {
        self.nested(NFTA_LIST_ELEM, |b| {
            b.str(NFTA_EXPR_NAME, name);
            b.nested(NFTA_EXPR_DATA, fill);
        });
    }

    fn payload(&mut self, base: u32, offset: u32, len: u32) {
        self.expr("payload", |b| {
            b.u32(NFTA_PAYLOAD_DREG, NFT_REG_1);
            b.u32(NFTA_PAYLOAD_BASE, base);
            b.u32(NFTA_PAYLOAD_OFFSET, offset);
            b.u32(NFTA_PAYLOAD_LEN, len);
        });
    }

    fn cmp(&mut self, op: u32, value: &[u8]) {
        self.expr("cmp", |b| {
            b.u32(NFTA_CMP_SREG, NFT_REG_1);
            b.u32(NFTA_CMP_OP, op);
            b.nested(NFTA_CMP_DATA, |b| b.attr(NFTA_DATA_VALUE, value));
        });
    }

    fn l4proto(&mut self, protocol: u8) {
        self.expr("meta", |b| {
            b.u32(NFTA_META_DREG, NFT_REG_1);
            b.u32(NFTA_META_KEY, NFT_META_L4PROTO);
        });
        self.cmp(NFT_CMP_EQ, &[protocol]);
    }

    fn verdict_data(&mut self, code: i32, chain: &str) {
        self.nested(NFTA_DATA_VERDICT, |b| {
            b.attr(NFTA_VERDICT_CODE, &code.to_be_bytes());
            b.str(NFTA_VERDICT_CHAIN, chain);
        });
    }

    fn verdict(&mut self, code: i32, chain: &str) {
        self.expr("immediate", |b| {
            b.u32(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
            b.nested(NFTA_IMMEDIATE_DATA, |b| b.verdict_data(code, chain));
        });
    }

    fn immediate_value(&mut self, reg: u32, value: &[u8]) {
        self.expr("immediate", |b| {
            b.u32(NFTA_IMMEDIATE_DREG, reg);
            b.nested(NFTA_IMMEDIATE_DATA, |b| b.attr(NFTA_DATA_VALUE, value));
        });
    }

    /// The expressions `nft` generates for `rule`.
    fn rule(&mut self, rule: &Rule) {
        match rule {
            Rule::SourceMasq { ip } => {
                self.payload(NFT_PAYLOAD_NETWORK_HEADER, IP_SADDR, 4);
                self.cmp(NFT_CMP_EQ, &ip.octets());
                self.verdict(NFT_JUMP, MARK_FOR_MASQUERADE);
            }
            Rule::AffinityUpdate { set } => {
                self.payload(NFT_PAYLOAD_NETWORK_HEADER, IP_SADDR, 4);
                self.expr("dynset", |b| {
                    b.str(NFTA_DYNSET_SET_NAME, set);
                    b.u32(NFTA_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
                    b.u32(NFTA_DYNSET_SREG_KEY, NFT_REG_1);
                });
            }
            Rule::Dnat { protocol, ip, port } => {
                self.l4proto(protocol.number());
                self.immediate_value(NFT_REG_1, &ip.octets());
                self.immediate_value(NFT_REG_2, &port.to_be_bytes());
                self.expr("nat", |b| {
                    b.u32(NFTA_NAT_TYPE, NFT_NAT_DNAT);
                    b.u32(NFTA_NAT_FAMILY, u32::from(NFPROTO_IPV4));
                    b.u32(NFTA_NAT_REG_ADDR_MIN, NFT_REG_1);
                    b.u32(NFTA_NAT_REG_PROTO_MIN, NFT_REG_2);
                });
            }
            Rule::ServiceMasq {
                ip,
                protocol,
                port,
                except,
            } => {
                self.payload(NFT_PAYLOAD_NETWORK_HEADER, IP_DADDR, 4);
                self.cmp(NFT_CMP_EQ, &ip.octets());
                self.l4proto(protocol.number());
                self.payload(NFT_PAYLOAD_TRANSPORT_HEADER, TH_DPORT, 2);
                self.cmp(NFT_CMP_EQ, &port.to_be_bytes());
                if let Some(cidr) = except {
                    self.payload(NFT_PAYLOAD_NETWORK_HEADER, IP_SADDR, 4);
                    self.expr("bitwise", |b| {
                        b.u32(NFTA_BITWISE_SREG, NFT_REG_1);
                        b.u32(NFTA_BITWISE_DREG, NFT_REG_1);
                        b.u32(NFTA_BITWISE_LEN, 4);
                        b.nested(NFTA_BITWISE_MASK, |b| {
                            b.attr(NFTA_DATA_VALUE, &cidr.netmask().octets());
                        });
                        b.nested(NFTA_BITWISE_XOR, |b| b.attr(NFTA_DATA_VALUE, &[0; 4]));
                    });
                    self.cmp(NFT_CMP_NEQ, &cidr.network().octets());
                }
                self.verdict(NFT_JUMP, MARK_FOR_MASQUERADE);
            }
            Rule::AffinityGoto { set, chain } => {
                self.payload(NFT_PAYLOAD_NETWORK_HEADER, IP_SADDR, 4);
                self.expr("lookup", |b| {
                    b.str(NFTA_LOOKUP_SET, set);
                    b.u32(NFTA_LOOKUP_SREG, NFT_REG_1);
                });
                self.verdict(NFT_GOTO, chain);
            }
            Rule::Pick { modulus, chain } => {
                self.expr("numgen", |b| {
                    b.u32(NFTA_NG_DREG, NFT_REG_1);
                    b.u32(NFTA_NG_MODULUS, *modulus);
                    b.u32(NFTA_NG_TYPE, NFT_NG_RANDOM);
                });
                // numgen writes a host-order u32.
                self.cmp(NFT_CMP_EQ, &0u32.to_ne_bytes());
                self.verdict(NFT_GOTO, chain);
            }
            Rule::Goto { chain } => self.verdict(NFT_GOTO, chain),
            Rule::MarkMasq => self.verdict(NFT_JUMP, MARK_FOR_MASQUERADE),
            Rule::DnatMap {
                protocol,
                offset,
                modulus,
            } => {
                self.l4proto(protocol.number());
                self.expr("numgen", |b| {
                    b.u32(NFTA_NG_DREG, NFT_REG_1);
                    b.u32(NFTA_NG_MODULUS, *modulus);
                    b.u32(NFTA_NG_TYPE, NFT_NG_RANDOM);
                    b.u32(NFTA_NG_OFFSET, *offset);
                });
                // The map's value `address . port` fills reg 1 and the word after it.
                self.expr("lookup", |b| {
                    b.str(NFTA_LOOKUP_SET, &endpoint_map(endpoint_shard(*offset)));
                    b.u32(NFTA_LOOKUP_SREG, NFT_REG_1);
                    b.u32(NFTA_LOOKUP_DREG, NFT_REG_1);
                });
                self.expr("nat", |b| {
                    b.u32(NFTA_NAT_TYPE, NFT_NAT_DNAT);
                    b.u32(NFTA_NAT_FAMILY, u32::from(NFPROTO_IPV4));
                    b.u32(NFTA_NAT_REG_ADDR_MIN, NFT_REG_1);
                    b.u32(NFTA_NAT_REG_PROTO_MIN, NFT_REG32_01);
                });
            }
        }
    }

    /// One element of `set` (key, optional value data) in a SETELEM message.
    fn data_element(&mut self, set: &str, key: &[u8], data: Option<&[u8]>) {
        self.str(NFTA_SET_ELEM_LIST_TABLE, TABLE);
        self.str(NFTA_SET_ELEM_LIST_SET, set);
        self.nested(NFTA_SET_ELEM_LIST_ELEMENTS, |b| {
            b.nested(NFTA_LIST_ELEM, |b| {
                b.nested(NFTA_SET_ELEM_KEY, |b| b.attr(NFTA_DATA_VALUE, key));
                if let Some(data) = data {
                    b.nested(NFTA_SET_ELEM_DATA, |b| b.attr(NFTA_DATA_VALUE, data));
                }
            });
        });
    }

    fn element(&mut self, e: &MapElement, with_data: bool) {
        self.str(NFTA_SET_ELEM_LIST_TABLE, TABLE);
        self.str(NFTA_SET_ELEM_LIST_SET, e.map);
        self.nested(NFTA_SET_ELEM_LIST_ELEMENTS, |b| {
            b.nested(NFTA_LIST_ELEM, |b| {
                b.nested(NFTA_SET_ELEM_KEY, |b| {
                    b.attr(NFTA_DATA_VALUE, &e.key_bytes())
                });
                if with_data {
                    b.nested(NFTA_SET_ELEM_DATA, |b| b.verdict_data(NFT_GOTO, &e.chain));
                }
            });
        });
    }
}

fn nft_type(msg: u16) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | msg
}

/// The batch for `ops` (sequence numbers `first_seq..`), ready to send.
fn encode(ops: &[Op], first_seq: u32) -> Vec<u8> {
    let mut b = Buf::default();
    let mut seq = first_seq;
    b.message(
        NFNL_MSG_BATCH_BEGIN,
        NLM_F_REQUEST,
        seq,
        0,
        NFNL_SUBSYS_NFTABLES,
        |_| {},
    );
    let mut set_id = 0u32;
    for op in ops {
        seq += 1;
        let table = |b: &mut Buf, attr: u16| b.str(attr, TABLE);
        let create = NLM_F_REQUEST | NLM_F_CREATE;
        match op {
            Op::AddSet(name, timeout) => {
                set_id += 1;
                b.message(
                    nft_type(NFT_MSG_NEWSET),
                    create,
                    seq,
                    NFPROTO_IPV4,
                    0,
                    |b| {
                        table(b, NFTA_SET_TABLE);
                        b.str(NFTA_SET_NAME, name);
                        b.u32(NFTA_SET_FLAGS, NFT_SET_TIMEOUT | NFT_SET_EVAL);
                        b.u32(NFTA_SET_KEY_TYPE, TYPE_IPADDR);
                        b.u32(NFTA_SET_KEY_LEN, 4);
                        b.u32(NFTA_SET_ID, set_id);
                        b.attr(
                            NFTA_SET_TIMEOUT,
                            &(u64::from(*timeout) * 1000).to_be_bytes(),
                        );
                    },
                );
            }
            Op::AddChain(name) => {
                b.message(
                    nft_type(NFT_MSG_NEWCHAIN),
                    create,
                    seq,
                    NFPROTO_IPV4,
                    0,
                    |b| {
                        table(b, NFTA_CHAIN_TABLE);
                        b.str(NFTA_CHAIN_NAME, name);
                    },
                );
            }
            Op::FlushChain(name) => {
                b.message(
                    nft_type(NFT_MSG_DELRULE),
                    NLM_F_REQUEST,
                    seq,
                    NFPROTO_IPV4,
                    0,
                    |b| {
                        table(b, NFTA_RULE_TABLE);
                        b.str(NFTA_RULE_CHAIN, name);
                    },
                );
            }
            Op::AddRule(chain, rule) => {
                let flags = create | NLM_F_APPEND;
                b.message(
                    nft_type(NFT_MSG_NEWRULE),
                    flags,
                    seq,
                    NFPROTO_IPV4,
                    0,
                    |b| {
                        table(b, NFTA_RULE_TABLE);
                        b.str(NFTA_RULE_CHAIN, chain);
                        b.nested(NFTA_RULE_EXPRESSIONS, |b| b.rule(rule));
                    },
                );
            }
            Op::DeleteElement(e) => {
                let kind = nft_type(NFT_MSG_DELSETELEM);
                b.message(kind, NLM_F_REQUEST, seq, NFPROTO_IPV4, 0, |b| {
                    b.element(e, false)
                });
            }
            Op::AddElement(e) => {
                let kind = nft_type(NFT_MSG_NEWSETELEM);
                b.message(kind, create, seq, NFPROTO_IPV4, 0, |b| b.element(e, true));
            }
            Op::DeleteChain(name) => {
                b.message(
                    nft_type(NFT_MSG_DELCHAIN),
                    NLM_F_REQUEST,
                    seq,
                    NFPROTO_IPV4,
                    0,
                    |b| {
                        table(b, NFTA_CHAIN_TABLE);
                        b.str(NFTA_CHAIN_NAME, name);
                    },
                );
            }
            Op::AddSlot(slot) => {
                let kind = nft_type(NFT_MSG_NEWSETELEM);
                b.message(kind, create, seq, NFPROTO_IPV4, 0, |b| {
                    b.data_element(&slot.map(), &slot.key_bytes(), Some(&slot.value_bytes()))
                });
            }
            Op::DeleteSlot(slot) => {
                let kind = nft_type(NFT_MSG_DELSETELEM);
                b.message(kind, NLM_F_REQUEST, seq, NFPROTO_IPV4, 0, |b| {
                    b.data_element(&slot.map(), &slot.key_bytes(), None)
                });
            }
            Op::AddHairpin(ip) => {
                let kind = nft_type(NFT_MSG_NEWSETELEM);
                b.message(kind, create, seq, NFPROTO_IPV4, 0, |b| {
                    b.data_element(HAIRPIN_SET, &hairpin_key(*ip), None)
                });
            }
            Op::DeleteHairpin(ip) => {
                let kind = nft_type(NFT_MSG_DELSETELEM);
                b.message(kind, NLM_F_REQUEST, seq, NFPROTO_IPV4, 0, |b| {
                    b.data_element(HAIRPIN_SET, &hairpin_key(*ip), None)
                });
            }
            Op::DeleteSet(name) => {
                b.message(
                    nft_type(NFT_MSG_DELSET),
                    NLM_F_REQUEST,
                    seq,
                    NFPROTO_IPV4,
                    0,
                    |b| {
                        table(b, NFTA_SET_TABLE);
                        b.str(NFTA_SET_NAME, name);
                    },
                );
            }
        }
    }
    seq += 1;
    b.message(
        NFNL_MSG_BATCH_END,
        NLM_F_REQUEST,
        seq,
        0,
        NFNL_SUBSYS_NFTABLES,
        |_| {},
    );
    b.data
}

/// A netlink socket to nf_tables, in the network namespace it was opened in.
pub struct NfTables {
    socket: Socket,
    seq: u32,
}

impl NfTables {
    /// Opens the socket in `netns` (a name under /run/netns), or in our own.
    pub fn open(netns: Option<&str>) -> Result<Self, NetlinkError> {
        fn connect() -> std::io::Result<Socket> {
            let mut socket = Socket::new(NETLINK_NETFILTER)?;
            socket.bind_auto()?;
            socket.connect(&SocketAddr::new(0, 0))?;
            // Errors carry only the failing message's header, not its payload.
            socket.set_cap_ack(true)?;
            socket.set_ext_ack(true)?;
            Ok(socket)
        }
        let socket = match netns {
            None => connect()?,
            Some(name) => {
                let path = format!("/run/netns/{name}");
                let entered = |source| NetlinkError::Netns {
                    netns: name.to_string(),
                    source,
                };
                let ns = File::open(&path).map_err(entered)?;
                // setns affects only the calling thread: do it on a throwaway one;
                // the socket stays bound to that namespace.
                std::thread::scope(|scope| {
                    scope
                        .spawn(|| {
                            rustix::thread::move_into_link_name_space(
                                ns.as_fd(),
                                Some(rustix::thread::LinkNameSpaceType::Network),
                            )
                            .map_err(|e| entered(e.into()))?;
                            connect().map_err(NetlinkError::Io)
                        })
                        .join()
                        .unwrap_or_else(|_| {
                            Err(NetlinkError::Io(std::io::Error::other(
                                "netns thread panicked",
                            )))
                        })
                })?
            }
        };
        Ok(Self { socket, seq: 1 })
    }

    /// Applies `ops` as one atomic transaction.
    pub fn apply(&mut self, ops: &[Op]) -> Result<(), NetlinkError> {
        let first = self.seq;
        let batch = encode(ops, first);
        let count = u32::try_from(ops.len()).unwrap_or(u32::MAX);
        // begin, ops, end, then a GETGEN whose ack marks the end of the replies:
        // the kernel handles a batch synchronously in send, so every error of the
        // batch is queued before that ack.
        let probe_seq = first.wrapping_add(count).wrapping_add(2);
        self.seq = probe_seq.wrapping_add(1);
        let mut probe = Buf::default();
        probe.message(
            nft_type(NFT_MSG_GETGEN),
            NLM_F_REQUEST | NLM_F_ACK,
            probe_seq,
            0,
            0,
            |_| {},
        );
        self.socket.send(&batch, 0)?;
        self.socket.send(&probe.data, 0)?;
        let mut first_error: Option<NetlinkError> = None;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = self.socket.recv(&mut &mut buf[..], 0)?;
            let mut rest = &buf[..n.min(buf.len())];
            while rest.len() >= 16 {
                let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                let kind = u16::from_ne_bytes([rest[4], rest[5]]);
                let seq = u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]);
                if len < 16 || len > rest.len() {
                    return Err(NetlinkError::Malformed);
                }
                if kind == NLMSG_ERROR && len >= 20 {
                    let code = i32::from_ne_bytes([rest[16], rest[17], rest[18], rest[19]]);
                    if seq == probe_seq {
                        return first_error.map_or(Ok(()), Err);
                    }
                    if code != 0 && first_error.is_none() {
                        let index = seq.wrapping_sub(first).wrapping_sub(1) as usize;
                        let operation = ops
                            .get(index)
                            .map(ToString::to_string)
                            .unwrap_or_else(|| format!("message {seq}"));
                        first_error = Some(NetlinkError::Rejected {
                            operation,
                            source: std::io::Error::from_raw_os_error(-code),
                        });
                    }
                }
                rest = &rest[len.next_multiple_of(4).min(rest.len())..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_framing_and_attribute_layout() {
        let ops = vec![Op::AddChain("c".into()), Op::FlushChain("c".into())];
        let batch = encode(&ops, 7);
        // Four messages: begin, NEWCHAIN, DELRULE, end, with consecutive sequences.
        let mut seqs = Vec::new();
        let mut kinds = Vec::new();
        let mut rest = &batch[..];
        while !rest.is_empty() {
            let len = u32::from_ne_bytes(rest[0..4].try_into().unwrap()) as usize;
            kinds.push(u16::from_ne_bytes(rest[4..6].try_into().unwrap()));
            seqs.push(u32::from_ne_bytes(rest[8..12].try_into().unwrap()));
            assert_eq!(len % 4, 0);
            rest = &rest[len..];
        }
        assert_eq!(kinds, vec![0x10, 0x0a03, 0x0a08, 0x11]);
        assert_eq!(seqs, vec![7, 8, 9, 10]);
        // The NEWCHAIN message: header, nfgenmsg (ipv4), table and chain names.
        let newchain = &batch[20..];
        assert_eq!(&newchain[4..6], &nft_type(NFT_MSG_NEWCHAIN).to_ne_bytes());
        assert_eq!(newchain[16], NFPROTO_IPV4);
        assert_eq!(&newchain[20..22], &15u16.to_ne_bytes()); // 4 + "kube-proxy\0", unpadded
                                                             // Then the chain name at the next 4-byte boundary: length 6 ("c\0"), type.
        assert_eq!(&newchain[36..38], &6u16.to_ne_bytes());
        assert_eq!(&newchain[38..40], &NFTA_CHAIN_NAME.to_ne_bytes());
        assert_eq!(&newchain[40..42], b"c\0");
        assert_eq!(&newchain[24..34], b"kube-proxy");
    }

    #[test]
    fn element_key_and_verdict_nesting() {
        let mut b = Buf::default();
        b.element(
            &MapElement {
                map: "service-nodeports",
                ip: None,
                protocol: crate::state::Protocol::Tcp,
                port: 30080,
                chain: "x".into(),
            },
            true,
        );
        let hex = b.data;
        // The key's data value is the 8 padded bytes of "tcp . 30080".
        let key = [6u8, 0, 0, 0, 0x75, 0x80, 0, 0];
        assert!(hex.windows(8).any(|w| w == key));
        // The verdict code is NFT_GOTO in network order.
        assert!(hex.windows(4).any(|w| w == (-4i32).to_be_bytes()));
    }
}
