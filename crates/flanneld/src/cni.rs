//! The CNI conflist containerd uses on this node: bridge `cni0` + host-local on
//! the node's flannel subnet, and portmap. Routes to other nodes' subnets come
//! from the backend; pods get the bridge as their default gateway (as upstream's
//! flannel CNI plugin delegates to bridge with `isDefaultGateway`), so Service
//! addresses, which only the node's proxy rules translate, are sent to the node.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::json;

use crate::lease::first_host;

/// The conflist's `name`.
pub const NETWORK_NAME: &str = "cbr0";
/// The bridge device pods are attached to.
pub const BRIDGE_NAME: &str = "cni0";

/// The conflist JSON for a node that holds `subnet` of `network`.
/// `ipam_data_dir` is host-local's allocation directory (one per node when
/// several nodes share a filesystem).
pub fn conflist(
    network: &Ipv4Net,
    subnet: &Ipv4Net,
    mtu: u32,
    ipam_data_dir: &str,
) -> serde_json::Value {
    let gateway: Ipv4Addr = first_host(subnet);
    json!({
        "cniVersion": "0.4.0",
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE_NAME,
                "isGateway": true,
                "isDefaultGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "mtu": mtu,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{ "subnet": subnet.to_string(), "gateway": gateway.to_string() }]],
                    "routes": [{ "dst": network.to_string() }],
                    "dataDir": ipam_data_dir
                }
            },
            {
                "type": "portmap",
                "capabilities": { "portMappings": true }
            }
        ]
    })
}

/// Pretty JSON text with a trailing newline.
pub fn render(network: &Ipv4Net, subnet: &Ipv4Net, mtu: u32, ipam_data_dir: &str) -> String {
    let mut s = serde_json::to_string_pretty(&conflist(network, subnet, mtu, ipam_data_dir))
        .unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflist_uses_the_node_subnet_and_mtu() {
        let text = render(
            &"10.1.0.0/16".parse().expect("net"),
            &"10.1.94.0/24".parse().expect("net"),
            1450,
            "/var/lib/node1/cni",
        );
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["cniVersion"], "0.4.0");
        let bridge = &v["plugins"][0];
        assert_eq!(bridge["type"], "bridge");
        assert_eq!(bridge["bridge"], "cni0");
        assert_eq!(bridge["isGateway"], true);
        assert_eq!(bridge["isDefaultGateway"], true);
        assert_eq!(bridge["ipam"]["dataDir"], "/var/lib/node1/cni");
        assert_eq!(bridge["ipMasq"], false);
        assert_eq!(bridge["mtu"], 1450);
        assert_eq!(bridge["ipam"]["type"], "host-local");
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], "10.1.94.0/24");
        assert_eq!(bridge["ipam"]["ranges"][0][0]["gateway"], "10.1.94.1");
        assert_eq!(bridge["ipam"]["routes"], json!([{"dst": "10.1.0.0/16"}]));
        assert_eq!(v["plugins"][1]["type"], "portmap");
        assert_eq!(v["plugins"][1]["capabilities"]["portMappings"], true);
        assert!(text.ends_with("}\n"));
    }
}
