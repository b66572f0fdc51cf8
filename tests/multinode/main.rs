//! The classic master + two minions cluster (scripts/netns-cluster.sh), each host
//! in its own network namespace with real etcd, containerd, flanneld, kubelet
//! and kube-proxy, driven by the upstream kubectl. Needs root and the workspace
//! binaries in target/debug (scripts/test.sh builds them first).
//!
//! Both tests run the same scenario list (scenarios.rs) on one cluster each;
//! they differ only in the flannel backend, the proxy mode and etcd transport.

mod cluster;
mod scenarios;

use scenarios::{Backend, Plan, ProxyMode};

#[test]
fn vxlan_with_nftables_proxy() {
    scenarios::run(&Plan {
        backend: Backend::Vxlan,
        proxy_mode: ProxyMode::Nftables,
        etcd_tls: false,
    });
}

/// host-gw routing, the iptables proxy, and etcd served only over TLS with client
/// certs: the apiserver and every flanneld connect with --etcd-cafile/certfile/keyfile.
#[test]
fn host_gw_with_iptables_proxy_and_etcd_tls() {
    scenarios::run(&Plan {
        backend: Backend::HostGw,
        proxy_mode: ProxyMode::Iptables,
        etcd_tls: true,
    });
}
