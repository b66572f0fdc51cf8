//! The per-service rules and map elements of the nftables table, typed: rendered
//! as nft syntax for `nft -f` ([`std::fmt::Display`]) and encoded as nf_tables
//! expressions for partial syncs over netlink ([`crate::nft_netlink`]).

use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::state::Protocol;

/// The chain every masquerade decision jumps to.
pub const MARK_FOR_MASQUERADE: &str = "mark-for-masquerade";

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
}
