//! The vxlan and host-gw backends: what to install for every remote lease, over
//! the [`Netlink`] seam.
//!
//! vxlan (as upstream's `backend/vxlan`): device `flannel.<VNI>` on the external
//! interface, MTU = external MTU - 50, address `<own subnet>.0/32`; per remote
//! lease a permanent ARP entry (subnet address -> VtepMAC), an fdb entry (VtepMAC
//! -> PublicIP) and `<subnet> via <subnet address> dev flannel.<VNI> onlink`.
//! host-gw: `<subnet> via <PublicIP> dev <ext iface>`.

pub mod netlink;

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::config::BackendConfig;
use crate::lease::{Lease, LeaseAttrs, LeaseEvent, VxlanLeaseData};
use netlink::{format_mac, parse_mac, ExtIface, LinkRef, Netlink, NetlinkError, Route, VxlanSpec};

/// Bytes of vxlan encapsulation: upstream subtracts 50 from the external MTU.
pub const VXLAN_OVERHEAD: u32 = 50;

/// What was installed for one remote lease, so it can be removed exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Installed {
    Vxlan {
        route: Route,
        mac: [u8; 6],
        public_ip: Ipv4Addr,
    },
    HostGw {
        route: Route,
    },
}

impl Installed {
    fn route(&self) -> &Route {
        match self {
            Installed::Vxlan { route, .. } | Installed::HostGw { route } => route,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Vxlan { vni: u32, dev: LinkRef },
    HostGw,
}

pub struct Backend<N> {
    nl: N,
    kind: Kind,
    ext: ExtIface,
    public_ip: Ipv4Addr,
    own_subnet: Option<Ipv4Net>,
    installed: HashMap<Ipv4Net, Installed>,
}

impl<N: Netlink> Backend<N> {
    /// Prepares the backend: for vxlan this creates (or reuses) the device, so
    /// its MAC can go into the lease.
    pub async fn new(
        nl: N,
        config: &BackendConfig,
        ext: ExtIface,
        public_ip: Ipv4Addr,
    ) -> Result<Self, NetlinkError> {
        let kind = match config {
            BackendConfig::Vxlan { vni, port } => {
                let spec = VxlanSpec {
                    name: format!("flannel.{vni}"),
                    vni: *vni,
                    port: *port,
                    local: ext.addr,
                    underlay_index: ext.index,
                    mtu: ext.mtu.saturating_sub(VXLAN_OVERHEAD),
                };
                let dev = nl.ensure_vxlan(&spec).await?;
                Kind::Vxlan { vni: *vni, dev }
            }
            BackendConfig::HostGw => Kind::HostGw,
        };
        Ok(Self {
            nl,
            kind,
            ext,
            public_ip,
            own_subnet: None,
            installed: HashMap::new(),
        })
    }

    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Vxlan { .. } => "vxlan",
            Kind::HostGw => "host-gw",
        }
    }

    /// The MTU pods should use.
    pub fn mtu(&self) -> u32 {
        match self.kind {
            Kind::Vxlan { .. } => self.ext.mtu.saturating_sub(VXLAN_OVERHEAD),
            Kind::HostGw => self.ext.mtu,
        }
    }

    /// This node's lease value.
    pub fn lease_attrs(&self) -> LeaseAttrs {
        let backend_data = match self.kind {
            Kind::Vxlan { vni, dev } => serde_json::to_value(VxlanLeaseData {
                vni,
                vtep_mac: format_mac(&dev.mac),
            })
            .ok(),
            Kind::HostGw => None,
        };
        LeaseAttrs {
            public_ip: self.public_ip,
            backend_type: self.type_name().to_string(),
            backend_data,
        }
    }

    /// Called once the node's own lease is known.
    pub async fn configure(&mut self, own: Ipv4Net) -> Result<(), NetlinkError> {
        self.own_subnet = Some(own);
        if let Kind::Vxlan { dev, .. } = self.kind {
            let addr = Ipv4Net::new(own.network(), 32).unwrap_or(own);
            self.nl.ensure_address_up(dev.index, addr).await?;
        }
        Ok(())
    }

    /// The subnets that currently have routes installed.
    pub fn installed_subnets(&self) -> Vec<Ipv4Net> {
        let mut v: Vec<_> = self.installed.keys().copied().collect();
        v.sort();
        v
    }

    fn desired(&self, lease: &Lease) -> Option<Installed> {
        if lease.attrs.backend_type != self.type_name() {
            tracing::warn!(subnet = %lease.subnet, backend = %lease.attrs.backend_type, "ignoring lease of another backend type");
            return None;
        }
        match self.kind {
            Kind::Vxlan { dev, .. } => {
                let data: VxlanLeaseData = match lease
                    .attrs
                    .backend_data
                    .clone()
                    .map(serde_json::from_value)
                {
                    Some(Ok(d)) => d,
                    _ => {
                        tracing::warn!(subnet = %lease.subnet, "ignoring vxlan lease without valid BackendData");
                        return None;
                    }
                };
                let Some(mac) = parse_mac(&data.vtep_mac) else {
                    tracing::warn!(subnet = %lease.subnet, mac = %data.vtep_mac, "ignoring vxlan lease with a bad VtepMAC");
                    return None;
                };
                let route = Route {
                    dst: lease.subnet,
                    gateway: lease.subnet.network(),
                    link: dev.index,
                    onlink: true,
                };
                Some(Installed::Vxlan {
                    route,
                    mac,
                    public_ip: lease.attrs.public_ip,
                })
            }
            Kind::HostGw => Some(Installed::HostGw {
                route: Route {
                    dst: lease.subnet,
                    gateway: lease.attrs.public_ip,
                    link: self.ext.index,
                    onlink: false,
                },
            }),
        }
    }

    async fn install(&self, what: &Installed) -> Result<(), NetlinkError> {
        match what {
            Installed::Vxlan {
                route,
                mac,
                public_ip,
            } => {
                // Order as upstream: ARP, then fdb, then the route that uses them.
                self.nl.set_neigh(route.link, route.gateway, *mac).await?;
                self.nl.set_fdb(route.link, *mac, *public_ip).await?;
                self.nl.replace_route(route).await
            }
            Installed::HostGw { route } => self.nl.replace_route(route).await,
        }
    }

    async fn uninstall(&self, what: &Installed) -> Result<(), NetlinkError> {
        self.nl.del_route(what.route()).await?;
        if let Installed::Vxlan {
            route,
            mac,
            public_ip,
        } = what
        {
            self.nl.del_fdb(route.link, *mac, *public_ip).await?;
            self.nl.del_neigh(route.link, route.gateway).await?;
        }
        Ok(())
    }

    /// Applies one watch event.
    pub async fn handle(&mut self, event: &LeaseEvent) -> Result<(), NetlinkError> {
        match event {
            LeaseEvent::Added(lease) => {
                if Some(lease.subnet) == self.own_subnet {
                    return Ok(());
                }
                let Some(want) = self.desired(lease) else {
                    return Ok(());
                };
                if let Some(old) = self.installed.get(&lease.subnet) {
                    if *old == want {
                        // Renewal of an unchanged lease: re-apply (cheap, heals drift).
                        return self.install(&want).await;
                    }
                    let old = old.clone();
                    self.uninstall(&old).await?;
                }
                tracing::info!(subnet = %lease.subnet, public_ip = %lease.attrs.public_ip, "adding route to remote subnet");
                self.install(&want).await?;
                self.installed.insert(lease.subnet, want);
                Ok(())
            }
            LeaseEvent::Removed(subnet) => {
                if let Some(old) = self.installed.remove(subnet) {
                    tracing::info!(%subnet, "removing route to remote subnet");
                    self.uninstall(&old).await?;
                }
                Ok(())
            }
        }
    }

    /// A fresh list (start, or after a compacted watch): drop what is gone, add the rest.
    pub async fn snapshot(&mut self, leases: &[Lease]) -> Result<(), NetlinkError> {
        let gone: Vec<Ipv4Net> = self
            .installed
            .keys()
            .filter(|s| !leases.iter().any(|l| l.subnet == **s))
            .copied()
            .collect();
        for subnet in gone {
            self.handle(&LeaseEvent::Removed(subnet)).await?;
        }
        for lease in leases {
            self.handle(&LeaseEvent::Added(lease.clone())).await?;
        }
        Ok(())
    }

    /// Periodic re-check: re-installs everything (routes removed by hand come back).
    pub async fn resync(&self) -> Result<(), NetlinkError> {
        for what in self.installed.values() {
            self.install(what).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod fake {
    use super::netlink::*;
    use ipnet::Ipv4Net;
    use std::net::Ipv4Addr;
    use std::sync::{Arc, Mutex};

    /// Records every call as a line of text.
    #[derive(Clone, Default)]
    pub struct FakeNetlink {
        pub calls: Arc<Mutex<Vec<String>>>,
    }

    impl FakeNetlink {
        pub fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.calls.lock().unwrap_or_else(|p| p.into_inner()))
        }
        fn push(&self, s: String) {
            self.calls.lock().unwrap_or_else(|p| p.into_inner()).push(s);
        }
    }

    fn r(route: &Route) -> String {
        format!(
            "{} via {} dev {}{}",
            route.dst,
            route.gateway,
            route.link,
            if route.onlink { " onlink" } else { "" }
        )
    }

    impl Netlink for FakeNetlink {
        async fn ensure_vxlan(&self, spec: &VxlanSpec) -> Result<LinkRef> {
            self.push(format!(
                "vxlan {} id {} dstport {} local {} dev {} mtu {}",
                spec.name, spec.vni, spec.port, spec.local, spec.underlay_index, spec.mtu
            ));
            Ok(LinkRef {
                index: 100,
                mac: [2, 0, 0, 0, 0, 1],
            })
        }
        async fn ensure_address_up(&self, link: u32, addr: Ipv4Net) -> Result<()> {
            self.push(format!("addr {addr} dev {link} up"));
            Ok(())
        }
        async fn set_neigh(&self, link: u32, ip: Ipv4Addr, mac: [u8; 6]) -> Result<()> {
            self.push(format!("neigh {ip} lladdr {} dev {link}", format_mac(&mac)));
            Ok(())
        }
        async fn del_neigh(&self, link: u32, ip: Ipv4Addr) -> Result<()> {
            self.push(format!("del neigh {ip} dev {link}"));
            Ok(())
        }
        async fn set_fdb(&self, link: u32, mac: [u8; 6], dst: Ipv4Addr) -> Result<()> {
            self.push(format!("fdb {} dev {link} dst {dst}", format_mac(&mac)));
            Ok(())
        }
        async fn del_fdb(&self, link: u32, mac: [u8; 6], dst: Ipv4Addr) -> Result<()> {
            self.push(format!("del fdb {} dev {link} dst {dst}", format_mac(&mac)));
            Ok(())
        }
        async fn replace_route(&self, route: &Route) -> Result<()> {
            self.push(format!("route {}", r(route)));
            Ok(())
        }
        async fn del_route(&self, route: &Route) -> Result<()> {
            self.push(format!("del route {}", r(route)));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeNetlink;
    use super::*;

    fn ext() -> ExtIface {
        ExtIface {
            name: "eth0".into(),
            index: 7,
            mtu: 1500,
            addr: Ipv4Addr::new(192, 168, 213, 1),
        }
    }

    fn vxlan_lease(subnet: &str, ip: [u8; 4], mac: &str) -> Lease {
        Lease {
            subnet: subnet.parse().expect("net"),
            attrs: LeaseAttrs {
                public_ip: Ipv4Addr::from(ip),
                backend_type: "vxlan".into(),
                backend_data: Some(serde_json::json!({"VNI": 1, "VtepMAC": mac})),
            },
            etcd_lease: 5,
        }
    }

    #[tokio::test]
    async fn vxlan_installs_and_removes_per_lease_state() {
        let nl = FakeNetlink::default();
        let config = BackendConfig::Vxlan { vni: 1, port: 8472 };
        let mut be = Backend::new(nl.clone(), &config, ext(), Ipv4Addr::new(192, 168, 213, 1))
            .await
            .expect("new");
        assert_eq!(
            nl.take(),
            ["vxlan flannel.1 id 1 dstport 8472 local 192.168.213.1 dev 7 mtu 1450"]
        );
        assert_eq!(be.mtu(), 1450);
        assert_eq!(
            serde_json::to_string(&be.lease_attrs()).expect("json"),
            r#"{"PublicIP":"192.168.213.1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:01"}}"#
        );
        be.configure("10.1.5.0/24".parse().expect("net"))
            .await
            .expect("configure");
        assert_eq!(nl.take(), ["addr 10.1.5.0/32 dev 100 up"]);

        // Our own lease is skipped.
        be.handle(&LeaseEvent::Added(vxlan_lease(
            "10.1.5.0/24",
            [192, 168, 213, 1],
            "02:00:00:00:00:01",
        )))
        .await
        .expect("own");
        assert!(nl.take().is_empty());

        let remote = vxlan_lease("10.1.9.0/24", [192, 168, 213, 2], "0a:00:00:00:00:02");
        be.handle(&LeaseEvent::Added(remote.clone()))
            .await
            .expect("add");
        assert_eq!(
            nl.take(),
            [
                "neigh 10.1.9.0 lladdr 0a:00:00:00:00:02 dev 100",
                "fdb 0a:00:00:00:00:02 dev 100 dst 192.168.213.2",
                "route 10.1.9.0/24 via 10.1.9.0 dev 100 onlink",
            ]
        );
        // The remote restarted with a new MAC: old entries go, new ones come.
        let moved = vxlan_lease("10.1.9.0/24", [192, 168, 213, 2], "0a:00:00:00:00:03");
        be.handle(&LeaseEvent::Added(moved)).await.expect("change");
        let calls = nl.take();
        assert_eq!(
            calls[0],
            "del route 10.1.9.0/24 via 10.1.9.0 dev 100 onlink"
        );
        assert_eq!(
            calls[1],
            "del fdb 0a:00:00:00:00:02 dev 100 dst 192.168.213.2"
        );
        assert_eq!(calls[2], "del neigh 10.1.9.0 dev 100");
        assert_eq!(calls[3], "neigh 10.1.9.0 lladdr 0a:00:00:00:00:03 dev 100");

        be.handle(&LeaseEvent::Removed("10.1.9.0/24".parse().expect("net")))
            .await
            .expect("remove");
        assert_eq!(
            nl.take(),
            [
                "del route 10.1.9.0/24 via 10.1.9.0 dev 100 onlink",
                "del fdb 0a:00:00:00:00:03 dev 100 dst 192.168.213.2",
                "del neigh 10.1.9.0 dev 100",
            ]
        );
        assert!(be.installed_subnets().is_empty());
        // Removing an unknown subnet does nothing.
        be.handle(&LeaseEvent::Removed("10.1.77.0/24".parse().expect("net")))
            .await
            .expect("remove");
        assert!(nl.take().is_empty());
    }

    #[tokio::test]
    async fn leases_of_other_backends_or_bad_data_are_ignored() {
        let nl = FakeNetlink::default();
        let mut be = Backend::new(
            nl.clone(),
            &BackendConfig::Vxlan { vni: 1, port: 8472 },
            ext(),
            ext().addr,
        )
        .await
        .expect("new");
        nl.take();
        let mut hostgw = vxlan_lease("10.1.9.0/24", [192, 168, 213, 2], "0a:00:00:00:00:02");
        hostgw.attrs.backend_type = "host-gw".into();
        be.handle(&LeaseEvent::Added(hostgw))
            .await
            .expect("ignored");
        let bad_mac = vxlan_lease("10.1.10.0/24", [192, 168, 213, 3], "nope");
        be.handle(&LeaseEvent::Added(bad_mac))
            .await
            .expect("ignored");
        assert!(nl.take().is_empty());
        assert!(be.installed_subnets().is_empty());
    }

    #[tokio::test]
    async fn host_gw_routes_via_public_ip_and_snapshot_prunes() {
        let nl = FakeNetlink::default();
        let mut be = Backend::new(nl.clone(), &BackendConfig::HostGw, ext(), ext().addr)
            .await
            .expect("new");
        assert!(nl.take().is_empty(), "host-gw creates no device");
        assert_eq!(be.mtu(), 1500);
        assert_eq!(
            serde_json::to_string(&be.lease_attrs()).expect("json"),
            r#"{"PublicIP":"192.168.213.1","BackendType":"host-gw"}"#
        );
        be.configure("10.1.5.0/24".parse().expect("net"))
            .await
            .expect("configure");
        let lease = |s: &str, ip: [u8; 4]| Lease {
            subnet: s.parse().expect("net"),
            attrs: LeaseAttrs {
                public_ip: Ipv4Addr::from(ip),
                backend_type: "host-gw".into(),
                backend_data: None,
            },
            etcd_lease: 1,
        };
        be.snapshot(&[
            lease("10.1.9.0/24", [192, 168, 213, 2]),
            lease("10.1.12.0/24", [192, 168, 213, 3]),
        ])
        .await
        .expect("snapshot");
        let mut calls = nl.take();
        calls.sort();
        assert_eq!(
            calls,
            [
                "route 10.1.12.0/24 via 192.168.213.3 dev 7",
                "route 10.1.9.0/24 via 192.168.213.2 dev 7"
            ]
        );
        // The next snapshot lacks 10.1.12.0/24 (deleted while the watch was down).
        be.snapshot(&[lease("10.1.9.0/24", [192, 168, 213, 2])])
            .await
            .expect("snapshot");
        assert_eq!(
            nl.take(),
            [
                "del route 10.1.12.0/24 via 192.168.213.3 dev 7",
                "route 10.1.9.0/24 via 192.168.213.2 dev 7"
            ]
        );
        be.resync().await.expect("resync");
        assert_eq!(nl.take(), ["route 10.1.9.0/24 via 192.168.213.2 dev 7"]);
    }
}
