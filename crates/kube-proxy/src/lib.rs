//! kube-proxy: watches Services, EndpointSlices and Nodes and programs the node's
//! packet filter (nftables by default, iptables as fallback) so Service ClusterIPs,
//! NodePorts and externalIPs reach ready endpoints.
//!
//! Rule generation is pure (`state` → ruleset text, in [`nft`] and [`iptables`]);
//! applying it goes through the [`backend::ProxyBackend`] trait.

pub mod backend;
pub mod hash;
pub mod iptables;
pub mod nft;
pub mod nft_netlink;
pub mod nft_partial;
pub mod nft_rule;
pub mod options;
pub mod server;
pub mod state;
