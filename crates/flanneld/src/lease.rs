//! Subnet leases: the etcd key format, the JSON value, and choosing a free subnet.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::config::NetworkConfig;

/// Upstream caps the candidate list before choosing one at random.
const MAX_CANDIDATES: usize = 100;

/// The lease value, field names as upstream's `lease.LeaseAttrs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseAttrs {
    #[serde(rename = "PublicIP")]
    pub public_ip: Ipv4Addr,
    #[serde(
        rename = "BackendType",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub backend_type: String,
    #[serde(
        rename = "BackendData",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub backend_data: Option<serde_json::Value>,
}

/// vxlan's `BackendData`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VxlanLeaseData {
    #[serde(rename = "VNI")]
    pub vni: u32,
    #[serde(rename = "VtepMAC")]
    pub vtep_mac: String,
}

/// A lease as seen in etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub subnet: Ipv4Net,
    pub attrs: LeaseAttrs,
    /// The etcd lease the key is attached to (0 = none, a reservation).
    pub etcd_lease: i64,
}

/// What the subnet watch reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseEvent {
    Added(Lease),
    Removed(Ipv4Net),
}

/// `10.1.94.0/24` -> `10.1.94.0-24`.
pub fn subnet_key(subnet: &Ipv4Net) -> String {
    format!("{}-{}", subnet.network(), subnet.prefix_len())
}

/// The inverse of [`subnet_key`] on the last path segment of a key; `None` for
/// anything else (upstream ignores such keys).
pub fn parse_subnet_key(key: &str) -> Option<Ipv4Net> {
    let last = key.rsplit('/').next()?;
    // Dual-stack keys look like `10.1.94.0-24&fc00::-64`; we only use the IPv4 half.
    let v4 = last.split('&').next()?;
    let (ip, len) = v4.split_once('-')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let net = Ipv4Net::new(ip, len).ok()?;
    (net.network() == ip).then_some(net)
}

/// The first host address of a subnet (`FLANNEL_SUBNET`'s address, the bridge's IP).
pub fn first_host(subnet: &Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()).wrapping_add(1))
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AllocateError {
    #[error("out of subnets")]
    OutOfSubnets,
}

/// The free subnets from `SubnetMin` upward (at most 100, as upstream), skipping
/// any that overlap an existing lease.
pub fn free_subnets(config: &NetworkConfig, leases: &[Lease]) -> Vec<Ipv4Net> {
    let size = 1u64 << (32 - u32::from(config.subnet_len));
    let mut out = Vec::new();
    let mut ip = u64::from(u32::from(config.subnet_min));
    let max = u64::from(u32::from(config.subnet_max));
    while ip <= max && out.len() < MAX_CANDIDATES {
        // ip <= subnet_max, which is a u32, so this cannot truncate.
        let addr = Ipv4Addr::from(ip as u32);
        if let Ok(candidate) = Ipv4Net::new(addr, config.subnet_len) {
            let overlaps = leases.iter().any(|l| {
                l.subnet.contains(&candidate.network()) || candidate.contains(&l.subnet.network())
            });
            if !overlaps {
                out.push(candidate);
            }
        }
        ip += size;
    }
    out
}

/// Picks a random free subnet (upstream's `allocateSubnet`).
pub fn allocate_subnet(config: &NetworkConfig, leases: &[Lease]) -> Result<Ipv4Net, AllocateError> {
    let free = free_subnets(config, leases);
    if free.is_empty() {
        return Err(AllocateError::OutOfSubnets);
    }
    let i = rand::rng().random_range(0..free.len());
    Ok(free[i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_network_config;

    fn net(s: &str) -> Ipv4Net {
        s.parse().expect("net")
    }

    fn lease(subnet: &str) -> Lease {
        Lease {
            subnet: net(subnet),
            attrs: LeaseAttrs {
                public_ip: Ipv4Addr::new(192, 168, 213, 1),
                backend_type: "vxlan".into(),
                backend_data: None,
            },
            etcd_lease: 0,
        }
    }

    #[test]
    fn keys_round_trip() {
        assert_eq!(subnet_key(&net("10.1.94.0/24")), "10.1.94.0-24");
        assert_eq!(
            parse_subnet_key("/coreos.com/network/subnets/10.1.94.0-24"),
            Some(net("10.1.94.0/24"))
        );
        assert_eq!(
            parse_subnet_key("/x/subnets/10.1.94.0-24&fc00::-64"),
            Some(net("10.1.94.0/24"))
        );
        assert_eq!(
            parse_subnet_key("/x/subnets/10.1.94.1-24"),
            None,
            "not a network address"
        );
        assert_eq!(parse_subnet_key("/x/subnets/garbage"), None);
        assert_eq!(parse_subnet_key("/x/subnets/10.1.94.0-33"), None);
    }

    #[test]
    fn attrs_json_matches_upstream() {
        let attrs = LeaseAttrs {
            public_ip: Ipv4Addr::new(192, 168, 213, 2),
            backend_type: "vxlan".into(),
            backend_data: Some(
                serde_json::to_value(VxlanLeaseData {
                    vni: 1,
                    vtep_mac: "aa:bb:cc:dd:ee:ff".into(),
                })
                .expect("json"),
            ),
        };
        assert_eq!(
            serde_json::to_string(&attrs).expect("json"),
            r#"{"PublicIP":"192.168.213.2","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}}"#
        );
        let hostgw = LeaseAttrs {
            public_ip: Ipv4Addr::new(1, 2, 3, 4),
            backend_type: "host-gw".into(),
            backend_data: None,
        };
        assert_eq!(
            serde_json::to_string(&hostgw).expect("json"),
            r#"{"PublicIP":"1.2.3.4","BackendType":"host-gw"}"#
        );
        let parsed: LeaseAttrs = serde_json::from_str(r#"{"PublicIP":"1.2.3.4"}"#).expect("parse");
        assert_eq!(parsed.backend_type, "");
    }

    #[test]
    fn first_host_is_dot_one() {
        assert_eq!(
            first_host(&net("10.1.94.0/24")),
            Ipv4Addr::new(10, 1, 94, 1)
        );
    }

    #[test]
    fn free_subnets_skip_taken_and_first() {
        let config = parse_network_config(r#"{"Network":"10.1.0.0/22"}"#).expect("config");
        // /22 with /24 subnets: 10.1.0.0 is skipped (SubnetMin), three remain.
        assert_eq!(
            free_subnets(&config, &[]),
            vec![net("10.1.1.0/24"), net("10.1.2.0/24"), net("10.1.3.0/24")]
        );
        let taken = [lease("10.1.2.0/24")];
        assert_eq!(
            free_subnets(&config, &taken),
            vec![net("10.1.1.0/24"), net("10.1.3.0/24")]
        );
        for _ in 0..20 {
            let got = allocate_subnet(&config, &taken).expect("allocate");
            assert!(
                got == net("10.1.1.0/24") || got == net("10.1.3.0/24"),
                "{got}"
            );
        }
        let all = [
            lease("10.1.1.0/24"),
            lease("10.1.2.0/24"),
            lease("10.1.3.0/24"),
        ];
        assert_eq!(
            allocate_subnet(&config, &all),
            Err(AllocateError::OutOfSubnets)
        );
        // A bigger lease (e.g. from an older config) blocks what it overlaps.
        assert_eq!(
            free_subnets(&config, &[lease("10.1.2.0/23")]),
            vec![net("10.1.1.0/24")]
        );
    }

    #[test]
    fn candidates_are_capped_and_random() {
        let config = parse_network_config(r#"{"Network":"10.0.0.0/8"}"#).expect("config");
        let free = free_subnets(&config, &[]);
        assert_eq!(free.len(), 100);
        assert_eq!(free[0], net("10.0.1.0/24"));
        let picks: std::collections::HashSet<_> = (0..50)
            .map(|_| allocate_subnet(&config, &[]).expect("alloc"))
            .collect();
        assert!(picks.len() > 1, "allocation is not random");
    }
}
