//! The per-service rules and map elements of the nftables table, typed: rendered
//! as nft syntax for `nft -f` ([`std::fmt::Display`]) and encoded as nf_tables
//! expressions for partial syncs over netlink ([`crate::nft_netlink`]).

use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::state::Protocol;

/// The chain every masquerade decision jumps to.
pub const MARK_FOR_MASQUERADE: &str = "mark-for-masquerade";

/// The data maps `slot → endpoint address . port` that [`Rule::DnatMap`] picks
/// from: `endpoints-0` … `endpoints-63`. Each balancing chain owns a range of
/// slot keys (unique across all maps) in the map [`endpoint_shard`] picks for the
/// range's first key. Not one map: the kernel checks every new element against
/// each rule bound to its map, so with one map a full sync at 10 000 services
/// spent seconds on 20 000 elements × 12 000 rules.
pub const ENDPOINT_MAPS: u32 = 64;

/// The endpoint map (index below [`ENDPOINT_MAPS`]) of the range starting at
/// `offset`: Fibonacci hashing spreads consecutive ranges over all maps.
pub fn endpoint_shard(offset: u32) -> u32 {
    offset.wrapping_mul(0x9E37_79B9) >> (32 - ENDPOINT_MAPS.trailing_zeros())
}

/// The name of endpoint map `shard`.
pub fn endpoint_map(shard: u32) -> String {
    format!("endpoints-{shard}")
}

/// The shared set of `<endpoint ip> . <endpoint ip>` pairs: DNATed traffic from an
/// endpoint to itself (hairpin) is masqueraded.
pub const HAIRPIN_SET: &str = "hairpin";

/// One rule of a per-service chain (service, external or endpoint chain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// `ip saddr <ip> jump mark-for-masquerade`: hairpin traffic of an endpoint
    /// reaching itself through its service.
    SourceMasq { ip: Ipv4Addr },
    /// `update @<set> { ip saddr }`: remember the client for session affinity.
    AffinityUpdate { set: String },
    /// `meta l4proto <proto> dnat to <ip>:<port>`.
    Dnat {
        protocol: Protocol,
        ip: Ipv4Addr,
        port: u16,
    },
    /// `ip daddr <ip> <proto> dport <port> [ip saddr != <cidr>] jump mark-for-masquerade`.
    ServiceMasq {
        ip: Ipv4Addr,
        protocol: Protocol,
        port: u16,
        except: Option<Ipv4Net>,
    },
    /// `ip saddr @<set> goto <chain>`: a client seen recently sticks to its endpoint.
    AffinityGoto { set: String, chain: String },
    /// `numgen random mod <modulus> == 0 goto <chain>`: one step of the random
    /// cascade over endpoints (rule i of n has modulus n - i).
    Pick { modulus: u32, chain: String },
    /// `goto <chain>`.
    Goto { chain: String },
    /// `jump mark-for-masquerade`.
    MarkMasq,
    /// `meta l4proto <proto> dnat ip to numgen random mod <modulus> offset <offset>
    /// map @endpoints`: a uniformly random endpoint among the `modulus` slots from
    /// `offset` on in the shared endpoint map, so replacing an endpoint changes
    /// only map elements (no rule, no verdict: no table-wide validation in the kernel).
    DnatMap {
        protocol: Protocol,
        offset: u32,
        modulus: u32,
    },
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::SourceMasq { ip } => write!(f, "ip saddr {ip} jump {MARK_FOR_MASQUERADE}"),
            Rule::AffinityUpdate { set } => write!(f, "update @{set} {{ ip saddr }}"),
            Rule::Dnat { protocol, ip, port } => {
                write!(f, "meta l4proto {protocol} dnat to {ip}:{port}")
            }
            Rule::ServiceMasq {
                ip,
                protocol,
                port,
                except,
            } => {
                write!(f, "ip daddr {ip} {protocol} dport {port} ")?;
                if let Some(cidr) = except {
                    write!(f, "ip saddr != {cidr} ")?;
                }
                write!(f, "jump {MARK_FOR_MASQUERADE}")
            }
            Rule::AffinityGoto { set, chain } => write!(f, "ip saddr @{set} goto {chain}"),
            Rule::Pick { modulus, chain } => {
                write!(f, "numgen random mod {modulus} == 0 goto {chain}")
            }
            Rule::Goto { chain } => write!(f, "goto {chain}"),
            Rule::MarkMasq => write!(f, "jump {MARK_FOR_MASQUERADE}"),
            Rule::DnatMap {
                protocol,
                offset,
                modulus,
            } => write!(
                f,
                "meta l4proto {protocol} dnat ip to numgen random mod {modulus} offset {offset} map @{}",
                endpoint_map(endpoint_shard(*offset))
            ),
        }
    }
}

/// The rules choosing one of `chains` uniformly at random without an anonymous
/// set per service (whose allocation is quadratic in the kernel): rule i of n is
/// `numgen random mod (n - i) == 0 goto chain_i`, the last one unconditional.
pub fn random_cascade(chains: &[String]) -> Vec<Rule> {
    let n = chains.len();
    chains
        .iter()
        .enumerate()
        .map(|(i, chain)| {
            if i + 1 == n {
                Rule::Goto {
                    chain: chain.clone(),
                }
            } else {
                Rule::Pick {
                    modulus: u32::try_from(n - i).unwrap_or(u32::MAX),
                    chain: chain.clone(),
                }
            }
        })
        .collect()
}

/// One element of the dispatch verdict maps: `<ip> . <proto> . <port> : goto <chain>`
/// (`service-ips`, `no-endpoint-services`) or `<proto> . <port> : goto <chain>`
/// (`service-nodeports`, `no-endpoint-nodeports`, where `ip` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapElement {
    pub map: &'static str,
    pub ip: Option<Ipv4Addr>,
    pub protocol: Protocol,
    pub port: u16,
    /// The chain the verdict goes to.
    pub chain: String,
}

impl MapElement {
    /// The key in nft syntax.
    pub fn key(&self) -> String {
        match self.ip {
            Some(ip) => format!("{ip} . {} . {}", self.protocol, self.port),
            None => format!("{} . {}", self.protocol, self.port),
        }
    }

    /// The key as the kernel stores it: each concatenated field padded to 4 bytes.
    pub fn key_bytes(&self) -> Vec<u8> {
        let mut key = Vec::with_capacity(12);
        if let Some(ip) = self.ip {
            key.extend_from_slice(&ip.octets());
        }
        key.extend_from_slice(&[self.protocol.number(), 0, 0, 0]);
        key.extend_from_slice(&self.port.to_be_bytes());
        key.extend_from_slice(&[0, 0]);
        key
    }
}

/// One element of an endpoint map: slot `key` DNATs to `ip:port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Slot {
    /// The endpoint map holding it ([`endpoint_shard`] of its range's offset).
    pub shard: u32,
    pub key: u32,
    pub ip: Ipv4Addr,
    pub port: u16,
}

impl Slot {
    /// The endpoint map's name.
    pub fn map(&self) -> String {
        endpoint_map(self.shard)
    }

    /// The key as the kernel stores it: numgen writes a host-order u32.
    pub fn key_bytes(&self) -> [u8; 4] {
        self.key.to_ne_bytes()
    }

    /// The value: the address, then the port padded to 4 bytes.
    pub fn value_bytes(&self) -> [u8; 8] {
        let [a, b, c, d] = self.ip.octets();
        let [p, q] = self.port.to_be_bytes();
        [a, b, c, d, p, q, 0, 0]
    }
}

/// The key of `<ip> . <ip>` in the hairpin set.
pub fn hairpin_key(ip: Ipv4Addr) -> [u8; 8] {
    let [a, b, c, d] = ip.octets();
    [a, b, c, d, a, b, c, d]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cascade_is_uniform_without_vmap() {
        let chains: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let text: Vec<String> = random_cascade(&chains)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            text,
            vec![
                "numgen random mod 3 == 0 goto a",
                "numgen random mod 2 == 0 goto b",
                "goto c"
            ]
        );
        assert_eq!(
            random_cascade(&chains[..1]),
            vec![Rule::Goto { chain: "a".into() }]
        );
        assert!(random_cascade(&[]).is_empty());
    }

    #[test]
    fn element_keys_render_and_pad() {
        let e = MapElement {
            map: "service-ips",
            ip: Some(Ipv4Addr::new(10, 254, 0, 1)),
            protocol: Protocol::Udp,
            port: 53,
            chain: "x".into(),
        };
        assert_eq!(e.key(), "10.254.0.1 . udp . 53");
        assert_eq!(e.key_bytes(), vec![10, 254, 0, 1, 17, 0, 0, 0, 0, 53, 0, 0]);
        let np = MapElement {
            ip: None,
            port: 30080,
            ..e
        };
        assert_eq!(np.key(), "udp . 30080");
        assert_eq!(np.key_bytes(), vec![17, 0, 0, 0, 0x75, 0x80, 0, 0]);
    }

    #[test]
    fn slot_and_hairpin_bytes() {
        let slot = Slot {
            shard: 3,
            key: 100,
            ip: Ipv4Addr::new(10, 1, 0, 1),
            port: 8080,
        };
        assert_eq!(slot.key_bytes(), 100u32.to_ne_bytes());
        assert_eq!(slot.value_bytes(), [10, 1, 0, 1, 0x1f, 0x90, 0, 0]);
        assert_eq!(
            hairpin_key(Ipv4Addr::new(10, 1, 0, 1)),
            [10, 1, 0, 1, 10, 1, 0, 1]
        );
        let rule = Rule::DnatMap {
            protocol: Protocol::Udp,
            offset: 4,
            modulus: 2,
        };
        assert_eq!(
            rule.to_string(),
            format!(
                "meta l4proto udp dnat ip to numgen random mod 2 offset 4 map @endpoints-{}",
                endpoint_shard(4)
            )
        );
        // Consecutive ranges land in different maps, all below ENDPOINT_MAPS.
        let shards: std::collections::BTreeSet<u32> =
            (0..64).map(|i| endpoint_shard(2 * i)).collect();
        assert!(shards.len() > 32, "{shards:?}");
        assert!(shards.iter().all(|s| *s < ENDPOINT_MAPS));
        assert_eq!(endpoint_shard(0), 0);
    }
}
