//! The network configuration stored at `<prefix>/config`, parsed and checked the
//! way upstream's `subnet.ParseConfig` + `CheckNetworkConfig` do.
//!
//! Go's `encoding/json` matches struct fields case-insensitively, so
//! `{"network": "10.1.0.0/16", "backend": {"type": "VXLAN"}}` is accepted; we do
//! the same by folding keys before matching.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::{Map, Value};

/// Default vxlan VNI and UDP port, as upstream's vxlan backend.
pub const DEFAULT_VNI: u32 = 1;
pub const DEFAULT_VXLAN_PORT: u16 = 8472;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0}")]
    Json(String),
    #[error("error decoding Backend property of config: {0}")]
    Backend(String),
    #[error("please define a correct Network parameter in the flannel config")]
    NoNetwork,
    #[error("SubnetLen must be less than /31")]
    SubnetLenTooLong,
    #[error("network must be able to accommodate at least four subnets")]
    TooFewSubnets,
    #[error("network is too small. Minimum useful network prefix is /28")]
    NetworkTooSmall,
    #[error("SubnetMin is not in the range of the Network")]
    SubnetMinOutside,
    #[error("SubnetMax is not in the range of the Network")]
    SubnetMaxOutside,
    #[error("SubnetMin is not on a SubnetLen boundary: {0}")]
    SubnetMinUnaligned(Ipv4Addr),
    #[error("SubnetMax is not on a SubnetLen boundary: {0}")]
    SubnetMaxUnaligned(Ipv4Addr),
    #[error("the udp backend is not supported by this flanneld; use \"vxlan\" or \"host-gw\" in Backend.Type")]
    UdpUnsupported,
    #[error("unsupported backend type {0:?}; supported: vxlan, host-gw")]
    UnknownBackend(String),
    #[error("invalid vxlan VNI {0}: must be 0..16777215")]
    BadVni(u64),
}

/// The backend section, with upstream's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendConfig {
    Vxlan { vni: u32, port: u16 },
    HostGw,
}

impl BackendConfig {
    /// The `BackendType` string written into leases.
    pub fn type_name(&self) -> &'static str {
        match self {
            BackendConfig::Vxlan { .. } => "vxlan",
            BackendConfig::HostGw => "host-gw",
        }
    }
}

/// A checked network config: every default applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    pub network: Ipv4Net,
    pub subnet_len: u8,
    pub subnet_min: Ipv4Addr,
    pub subnet_max: Ipv4Addr,
    pub backend: BackendConfig,
    /// `EnableNFTables`: masquerade with nftables instead of iptables.
    pub enable_nftables: bool,
}

impl NetworkConfig {
    /// Every subnet this config may hand out starts in `subnet_min..=subnet_max`
    /// and has `subnet_len` bits (upstream's `isSubnetConfigCompat`).
    pub fn is_compatible(&self, subnet: &Ipv4Net) -> bool {
        subnet.prefix_len() == self.subnet_len
            && subnet.network() >= self.subnet_min
            && subnet.network() <= self.subnet_max
    }
}

/// Looks a key up case-insensitively, as Go's `encoding/json` matches fields.
fn get_ci<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn as_str<'a>(v: &'a Value, field: &str) -> Result<&'a str, ConfigError> {
    v.as_str().ok_or_else(|| {
        ConfigError::Json(format!(
            "json: cannot unmarshal {} into Go struct field Config.{field}",
            json_kind(v)
        ))
    })
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn parse_ip_field(obj: &Map<String, Value>, field: &str) -> Result<Option<Ipv4Addr>, ConfigError> {
    match get_ci(obj, field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let s = as_str(v, field)?;
            s.parse::<Ipv4Addr>()
                .map(Some)
                .map_err(|_| ConfigError::Json(format!("invalid IP address {s:?} in {field}")))
        }
    }
}

fn parse_uint_field(obj: &Map<String, Value>, field: &str) -> Result<Option<u64>, ConfigError> {
    match get_ci(obj, field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            ConfigError::Json(format!(
                "json: cannot unmarshal {} into Go struct field Config.{field} of type uint",
                json_kind(v)
            ))
        }),
    }
}

/// Parses and checks the config text from etcd.
pub fn parse_network_config(text: &str) -> Result<NetworkConfig, ConfigError> {
    let value: Value = serde_json::from_str(text).map_err(|e| ConfigError::Json(e.to_string()))?;
    let Value::Object(obj) = value else {
        return Err(ConfigError::Json(format!(
            "json: cannot unmarshal {} into Go value of type subnet.Config",
            json_kind(&value)
        )));
    };

    let network = match get_ci(&obj, "Network") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let s = as_str(v, "Network")?;
            let net: Ipv4Net = s
                .parse()
                .map_err(|_| ConfigError::Json(format!("invalid CIDR address: {s}")))?;
            Some(net.trunc())
        }
    };
    let network = match network {
        Some(n) if !(n.network().is_unspecified() && n.prefix_len() == 0) => n,
        _ => return Err(ConfigError::NoNetwork),
    };

    let subnet_len_field = parse_uint_field(&obj, "SubnetLen")?.unwrap_or(0);
    let prefix = u64::from(network.prefix_len());
    let subnet_len: u8 = if subnet_len_field > 0 {
        if subnet_len_field > 30 {
            return Err(ConfigError::SubnetLenTooLong);
        }
        if subnet_len_field < prefix + 2 {
            return Err(ConfigError::TooFewSubnets);
        }
        subnet_len_field as u8
    } else if prefix > 28 {
        return Err(ConfigError::NetworkTooSmall);
    } else if prefix <= 22 {
        24
    } else {
        (prefix + 2) as u8
    };

    let subnet_size: u32 = 1u32 << (32 - u32::from(subnet_len));
    let net_start = u32::from(network.network());
    // The address right after the network (Go's IP4Net.Next().IP), wrapping like Go.
    let net_next = net_start.wrapping_add(host_count(network.prefix_len()));

    let subnet_min = match parse_ip_field(&obj, "SubnetMin")? {
        None => Ipv4Addr::from(net_start.wrapping_add(subnet_size)),
        Some(ip) if ip.is_unspecified() => Ipv4Addr::from(net_start.wrapping_add(subnet_size)),
        Some(ip) if !network.contains(&ip) => return Err(ConfigError::SubnetMinOutside),
        Some(ip) => ip,
    };
    let subnet_max = match parse_ip_field(&obj, "SubnetMax")? {
        None => Ipv4Addr::from(net_next.wrapping_sub(subnet_size)),
        Some(ip) if ip.is_unspecified() => Ipv4Addr::from(net_next.wrapping_sub(subnet_size)),
        Some(ip) if !network.contains(&ip) => return Err(ConfigError::SubnetMaxOutside),
        Some(ip) => ip,
    };
    let mask = u32::MAX << (32 - u32::from(subnet_len));
    if u32::from(subnet_min) & mask != u32::from(subnet_min) {
        return Err(ConfigError::SubnetMinUnaligned(subnet_min));
    }
    if u32::from(subnet_max) & mask != u32::from(subnet_max) {
        return Err(ConfigError::SubnetMaxUnaligned(subnet_max));
    }

    let enable_nftables = matches!(get_ci(&obj, "EnableNFTables"), Some(Value::Bool(true)));
    let backend = parse_backend(get_ci(&obj, "Backend"))?;
    Ok(NetworkConfig {
        network,
        subnet_len,
        subnet_min,
        subnet_max,
        backend,
        enable_nftables,
    })
}

fn host_count(prefix_len: u8) -> u32 {
    if prefix_len == 0 {
        0 // 2^32 wraps to 0, as Go's uint32 arithmetic does
    } else {
        1u32 << (32 - u32::from(prefix_len))
    }
}

fn parse_backend(backend: Option<&Value>) -> Result<BackendConfig, ConfigError> {
    let obj = match backend {
        // Upstream defaults a missing Backend to "udp", which we do not implement;
        // the classic `{"Network":"10.1.0.0/16"}` config must still work, so a
        // missing Backend means vxlan here (logged by the caller).
        None | Some(Value::Null) => {
            return Ok(BackendConfig::Vxlan {
                vni: DEFAULT_VNI,
                port: DEFAULT_VXLAN_PORT,
            })
        }
        Some(Value::Object(obj)) => obj,
        Some(other) => {
            return Err(ConfigError::Backend(format!(
                "json: cannot unmarshal {} into Go value of type struct {{ Type string }}",
                json_kind(other)
            )))
        }
    };
    let type_name = match get_ci(obj, "Type") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(ConfigError::Backend(format!(
                "json: cannot unmarshal {} into Go struct field .Type of type string",
                json_kind(other)
            )))
        }
    };
    match type_name.to_ascii_lowercase().as_str() {
        "vxlan" => {
            let vni = match get_ci(obj, "VNI") {
                None | Some(Value::Null) => u64::from(DEFAULT_VNI),
                Some(v) => v.as_u64().ok_or_else(|| {
                    ConfigError::Backend(format!("VNI must be a number, got {v}"))
                })?,
            };
            // Upstream: VNI 0 means "use the default".
            let vni = if vni == 0 {
                u64::from(DEFAULT_VNI)
            } else {
                vni
            };
            if vni > 0x00ff_ffff {
                return Err(ConfigError::BadVni(vni));
            }
            let port = match get_ci(obj, "Port") {
                None | Some(Value::Null) => DEFAULT_VXLAN_PORT,
                Some(v) => match v.as_u64() {
                    Some(0) => DEFAULT_VXLAN_PORT,
                    Some(p) if p <= u64::from(u16::MAX) => p as u16,
                    _ => {
                        return Err(ConfigError::Backend(format!(
                            "Port must be a number 1-65535, got {v}"
                        )))
                    }
                },
            };
            Ok(BackendConfig::Vxlan {
                vni: vni as u32,
                port,
            })
        }
        "host-gw" => Ok(BackendConfig::HostGw),
        "udp" => Err(ConfigError::UdpUnsupported),
        _ => Err(ConfigError::UnknownBackend(type_name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("ip")
    }

    #[test]
    fn classic_config_gets_defaults() {
        let c = parse_network_config(r#"{"Network":"10.1.0.0/16"}"#).expect("parse");
        assert_eq!(c.network.to_string(), "10.1.0.0/16");
        assert_eq!(c.subnet_len, 24);
        assert_eq!(c.subnet_min, ip("10.1.1.0"));
        assert_eq!(c.subnet_max, ip("10.1.255.0"));
        assert_eq!(c.backend, BackendConfig::Vxlan { vni: 1, port: 8472 });
        assert!(!c.enable_nftables);
    }

    #[test]
    fn keys_are_case_insensitive() {
        let c = parse_network_config(
            r#"{"network":"10.2.0.0/16","subnetlen":26,"BACKEND":{"type":"host-gw"},"enableNFTables":true}"#,
        )
        .expect("parse");
        assert_eq!(c.network.to_string(), "10.2.0.0/16");
        assert_eq!(c.subnet_len, 26);
        assert_eq!(c.subnet_min, ip("10.2.0.64"));
        assert_eq!(c.subnet_max, ip("10.2.255.192"));
        assert_eq!(c.backend, BackendConfig::HostGw);
        assert!(c.enable_nftables);
    }

    #[test]
    fn vxlan_options() {
        let c = parse_network_config(
            r#"{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan","VNI":42,"Port":4789}}"#,
        )
        .expect("parse");
        assert_eq!(
            c.backend,
            BackendConfig::Vxlan {
                vni: 42,
                port: 4789
            }
        );
        let c =
            parse_network_config(r#"{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan","VNI":0}}"#)
                .expect("parse");
        assert_eq!(c.backend, BackendConfig::Vxlan { vni: 1, port: 8472 });
        assert_eq!(
            parse_network_config(
                r#"{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan","VNI":16777216}}"#
            ),
            Err(ConfigError::BadVni(16_777_216))
        );
    }

    #[test]
    fn small_networks_split_in_four() {
        let c = parse_network_config(r#"{"Network":"10.3.0.0/24"}"#).expect("parse");
        assert_eq!(c.subnet_len, 26);
        assert_eq!(c.subnet_min, ip("10.3.0.64"));
        assert_eq!(c.subnet_max, ip("10.3.0.192"));
        let c = parse_network_config(r#"{"Network":"10.3.0.0/22"}"#).expect("parse");
        assert_eq!(c.subnet_len, 24);
        assert_eq!(
            parse_network_config(r#"{"Network":"10.3.0.0/29"}"#),
            Err(ConfigError::NetworkTooSmall)
        );
    }

    #[test]
    fn checks_match_upstream() {
        use ConfigError::*;
        let cases = [
            (r#"{}"#, NoNetwork),
            (r#"{"Network":"0.0.0.0/0"}"#, NoNetwork),
            (
                r#"{"Network":"10.1.0.0/16","SubnetLen":31}"#,
                SubnetLenTooLong,
            ),
            (r#"{"Network":"10.1.0.0/16","SubnetLen":17}"#, TooFewSubnets),
            (
                r#"{"Network":"10.1.0.0/16","SubnetMin":"10.2.0.0"}"#,
                SubnetMinOutside,
            ),
            (
                r#"{"Network":"10.1.0.0/16","SubnetMax":"10.2.0.0"}"#,
                SubnetMaxOutside,
            ),
            (
                r#"{"Network":"10.1.0.0/16","SubnetMin":"10.1.0.5"}"#,
                SubnetMinUnaligned(ip("10.1.0.5")),
            ),
            (
                r#"{"Network":"10.1.0.0/16","SubnetMax":"10.1.3.7"}"#,
                SubnetMaxUnaligned(ip("10.1.3.7")),
            ),
            (
                r#"{"Network":"10.1.0.0/16","Backend":{"Type":"udp"}}"#,
                UdpUnsupported,
            ),
            (
                r#"{"Network":"10.1.0.0/16","Backend":{"Type":"ipip"}}"#,
                UnknownBackend("ipip".into()),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse_network_config(text), Err(want), "{text}");
        }
        assert_eq!(
            parse_network_config(r#"{"Network":"10.1.0.0/16"}"#).map(|_| ()),
            Ok(()),
        );
        assert!(matches!(parse_network_config("not json"), Err(Json(_))));
        assert!(matches!(
            parse_network_config(r#"{"Network":"10.1.0.0/33"}"#),
            Err(Json(_))
        ));
        assert!(matches!(
            parse_network_config(r#"{"Network":16}"#),
            Err(Json(_))
        ));
        assert!(UdpUnsupported
            .to_string()
            .contains("udp backend is not supported"));
    }

    #[test]
    fn explicit_range_and_compatibility() {
        let c = parse_network_config(
            r#"{"Network":"10.1.0.0/16","SubnetLen":24,"SubnetMin":"10.1.10.0","SubnetMax":"10.1.20.0"}"#,
        )
        .expect("parse");
        assert_eq!(
            (c.subnet_min, c.subnet_max),
            (ip("10.1.10.0"), ip("10.1.20.0"))
        );
        assert!(c.is_compatible(&"10.1.10.0/24".parse().expect("net")));
        assert!(c.is_compatible(&"10.1.20.0/24".parse().expect("net")));
        assert!(!c.is_compatible(&"10.1.21.0/24".parse().expect("net")));
        assert!(!c.is_compatible(&"10.1.9.0/24".parse().expect("net")));
        assert!(!c.is_compatible(&"10.1.12.0/25".parse().expect("net")));
    }
}
