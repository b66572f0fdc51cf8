//! The OS side of the backends: links, addresses, neighbours, fdb entries and
//! routes. [`Netlink`] is the seam; [`RtNetlink`] talks to the kernel through
//! `rtnetlink`, and the unit tests use a recording fake.

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{InfoData, InfoVxlan, LinkAttribute, LinkInfo, LinkMessage};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::{RouteAttribute, RouteMessage, RouteType};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{Handle, LinkUnspec, LinkVxlan, RouteMessageBuilder};

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("opening a netlink socket: {0}")]
    Connect(#[source] std::io::Error),
    #[error("{what}: {source}")]
    Request {
        what: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("interface {0:?} not found")]
    NoSuchInterface(String),
    #[error("no interface has address {0}")]
    NoInterfaceWithAddress(Ipv4Addr),
    #[error("interface {0:?} has no IPv4 address")]
    NoIpv4Address(String),
    #[error("no default route found; use --iface to choose the interface")]
    NoDefaultRoute,
}

pub type Result<T, E = NetlinkError> = std::result::Result<T, E>;

/// An interface with its first IPv4 address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtIface {
    pub name: String,
    pub index: u32,
    pub mtu: u32,
    pub addr: Ipv4Addr,
}

/// The vxlan device flanneld wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanSpec {
    pub name: String,
    pub vni: u32,
    pub port: u16,
    /// The local VTEP address and the underlay device.
    pub local: Ipv4Addr,
    pub underlay_index: u32,
    pub mtu: u32,
}

/// A device that exists: its index and MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkRef {
    pub index: u32,
    pub mac: [u8; 6],
}

/// `<dst> via <gateway> dev <link> [onlink]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route {
    pub dst: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub link: u32,
    pub onlink: bool,
}

/// Kernel operations the backends need. Only ever used with generics from one task,
/// hence plain `async fn`.
#[allow(async_fn_in_trait)]
pub trait Netlink {
    /// Creates the vxlan device, or reuses one that already matches `spec`.
    async fn ensure_vxlan(&self, spec: &VxlanSpec) -> Result<LinkRef>;
    /// Makes `addr` the only IPv4 address of the link and sets it up.
    async fn ensure_address_up(&self, link: u32, addr: Ipv4Net) -> Result<()>;
    /// Permanent ARP entry `ip lladdr mac dev link`.
    async fn set_neigh(&self, link: u32, ip: Ipv4Addr, mac: [u8; 6]) -> Result<()>;
    async fn del_neigh(&self, link: u32, ip: Ipv4Addr) -> Result<()>;
    /// `bridge fdb replace mac dev link dst ip self permanent`.
    async fn set_fdb(&self, link: u32, mac: [u8; 6], dst: Ipv4Addr) -> Result<()>;
    async fn del_fdb(&self, link: u32, mac: [u8; 6], dst: Ipv4Addr) -> Result<()>;
    async fn replace_route(&self, route: &Route) -> Result<()>;
    /// Deleting a route that is not there is not an error.
    async fn del_route(&self, route: &Route) -> Result<()>;
}

/// The real thing.
#[derive(Clone)]
pub struct RtNetlink {
    handle: Handle,
}

fn req(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetlinkError {
    let what = what.into();
    move |source| NetlinkError::Request { what, source }
}

/// ENOENT / ESRCH / ENODEV: the object is already gone.
fn is_not_found(err: &rtnetlink::Error) -> bool {
    matches!(err, rtnetlink::Error::NetlinkError(m) if matches!(m.raw_code().abs(), 2 | 3 | 19))
}

fn link_mac(link: &LinkMessage) -> [u8; 6] {
    link.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Address(mac) if mac.len() == 6 => {
                let mut out = [0u8; 6];
                out.copy_from_slice(mac);
                Some(out)
            }
            _ => None,
        })
        .unwrap_or_default()
}

fn link_name(link: &LinkMessage) -> String {
    link.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

fn link_mtu(link: &LinkMessage) -> u32 {
    link.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Mtu(m) => Some(*m),
            _ => None,
        })
        .unwrap_or(1500)
}

fn vxlan_info(link: &LinkMessage) -> Option<&Vec<InfoVxlan>> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Data(InfoData::Vxlan(v)) => Some(v),
            _ => None,
        }),
        _ => None,
    })
}

/// Whether an existing device can be reused for `spec` (same VNI, port, local
/// address and underlay), as upstream's `ensureLink` checks.
fn vxlan_matches(info: &[InfoVxlan], spec: &VxlanSpec) -> bool {
    let mut vni = None;
    let mut port = None;
    let mut local = None;
    let mut underlay = None;
    for i in info {
        match i {
            InfoVxlan::Id(v) => vni = Some(*v),
            InfoVxlan::Port(p) => port = Some(*p),
            InfoVxlan::Local(l) => local = Some(*l),
            InfoVxlan::Link(l) => underlay = Some(*l),
            _ => {}
        }
    }
    vni == Some(spec.vni)
        && port == Some(spec.port)
        && local == Some(spec.local)
        && underlay.is_none_or(|u| u == spec.underlay_index)
}

impl RtNetlink {
    /// Opens a netlink socket in the current network namespace.
    pub fn connect() -> Result<Self> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Connect)?;
        tokio::spawn(conn);
        Ok(Self { handle })
    }

    async fn link_by_name(&self, name: &str) -> Result<Option<LinkMessage>> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match links.try_next().await {
            Ok(link) => Ok(link),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(req(format!("looking up link {name}"))(e)),
        }
    }

    async fn all_links(&self) -> Result<Vec<LinkMessage>> {
        self.handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(req("listing links"))
    }

    async fn ipv4_addrs(&self, index: u32) -> Result<Vec<(Ipv4Addr, u8)>> {
        let msgs: Vec<_> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(req("listing addresses"))?;
        let mut out = Vec::new();
        for m in msgs {
            if m.header.index != index {
                continue;
            }
            let local = m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(IpAddr::V4(ip)) => Some(*ip),
                _ => None,
            });
            let addr = local.or_else(|| {
                m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(IpAddr::V4(ip)) => Some(*ip),
                    _ => None,
                })
            });
            if let Some(ip) = addr {
                out.push((ip, m.header.prefix_len));
            }
        }
        Ok(out)
    }

    fn ext_iface(link: &LinkMessage, addr: Ipv4Addr) -> ExtIface {
        ExtIface {
            name: link_name(link),
            index: link.header.index,
            mtu: link_mtu(link),
            addr,
        }
    }

    /// Finds `--iface`: an interface name or one of its IPv4 addresses.
    pub async fn find_iface(&self, spec: &str) -> Result<ExtIface> {
        if let Ok(ip) = spec.parse::<Ipv4Addr>() {
            for link in self.all_links().await? {
                if self
                    .ipv4_addrs(link.header.index)
                    .await?
                    .iter()
                    .any(|(a, _)| *a == ip)
                {
                    return Ok(Self::ext_iface(&link, ip));
                }
            }
            return Err(NetlinkError::NoInterfaceWithAddress(ip));
        }
        let link = self
            .link_by_name(spec)
            .await?
            .ok_or_else(|| NetlinkError::NoSuchInterface(spec.to_string()))?;
        let addr = self
            .ipv4_addrs(link.header.index)
            .await?
            .first()
            .map(|(a, _)| *a)
            .ok_or_else(|| NetlinkError::NoIpv4Address(spec.to_string()))?;
        Ok(Self::ext_iface(&link, addr))
    }

    /// The interface of the IPv4 default route, as upstream picks without `--iface`.
    pub async fn default_iface(&self) -> Result<ExtIface> {
        let routes: Vec<RouteMessage> = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute()
            .try_collect()
            .await
            .map_err(req("listing routes"))?;
        let oif = routes
            .iter()
            .filter(|r| r.header.destination_prefix_length == 0)
            .find_map(|r| {
                r.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Oif(i) => Some(*i),
                    _ => None,
                })
            })
            .ok_or(NetlinkError::NoDefaultRoute)?;
        let link = self
            .all_links()
            .await?
            .into_iter()
            .find(|l| l.header.index == oif)
            .ok_or_else(|| NetlinkError::NoSuchInterface(format!("index {oif}")))?;
        let name = link_name(&link);
        let addr = self
            .ipv4_addrs(oif)
            .await?
            .first()
            .map(|(a, _)| *a)
            .ok_or(NetlinkError::NoIpv4Address(name))?;
        Ok(Self::ext_iface(&link, addr))
    }

    fn route_message(route: &Route) -> RouteMessage {
        let mut b = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(route.dst.network(), route.dst.prefix_len())
            .gateway(route.gateway)
            .output_interface(route.link)
            .kind(RouteType::Unicast);
        if route.onlink {
            b = b.onlink();
        }
        b.build()
    }

    fn neigh_message(link: u32, family: AddressFamily) -> NeighbourMessage {
        let mut m = NeighbourMessage::default();
        m.header.family = family;
        m.header.ifindex = link;
        m
    }
}

impl Netlink for RtNetlink {
    async fn ensure_vxlan(&self, spec: &VxlanSpec) -> Result<LinkRef> {
        if let Some(existing) = self.link_by_name(&spec.name).await? {
            if vxlan_info(&existing).is_some_and(|i| vxlan_matches(i, spec)) {
                let index = existing.header.index;
                // The MTU follows the underlay's; keep it current.
                let set = LinkUnspec::new_with_index(index).mtu(spec.mtu).up().build();
                self.handle
                    .link()
                    .set(set)
                    .execute()
                    .await
                    .map_err(req(format!("setting up {}", spec.name)))?;
                return Ok(LinkRef {
                    index,
                    mac: link_mac(&existing),
                });
            }
            tracing::warn!(device = %spec.name, "existing device is incompatible; recreating it");
            self.handle
                .link()
                .del(existing.header.index)
                .execute()
                .await
                .map_err(req(format!("deleting {}", spec.name)))?;
        }
        let msg = LinkVxlan::new(&spec.name, spec.vni)
            .dev(spec.underlay_index)
            .local(spec.local)
            .port(spec.port)
            .learning(false)
            .mtu(spec.mtu)
            .build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(req(format!("creating {}", spec.name)))?;
        let link = self
            .link_by_name(&spec.name)
            .await?
            .ok_or_else(|| NetlinkError::NoSuchInterface(spec.name.clone()))?;
        Ok(LinkRef {
            index: link.header.index,
            mac: link_mac(&link),
        })
    }

    async fn ensure_address_up(&self, link: u32, addr: Ipv4Net) -> Result<()> {
        let existing = self.ipv4_addrs(link).await?;
        let mut present = false;
        for (ip, len) in existing {
            if ip == addr.addr() && len == addr.prefix_len() {
                present = true;
                continue;
            }
            // Upstream removes stale addresses (e.g. from an older lease).
            let msgs: Vec<_> = self
                .handle
                .address()
                .get()
                .set_link_index_filter(link)
                .set_address_filter(IpAddr::V4(ip))
                .execute()
                .try_collect()
                .await
                .map_err(req("listing addresses"))?;
            for m in msgs {
                self.handle
                    .address()
                    .del(m)
                    .execute()
                    .await
                    .map_err(req(format!("deleting address {ip}")))?;
            }
        }
        if !present {
            self.handle
                .address()
                .add(link, IpAddr::V4(addr.addr()), addr.prefix_len())
                .replace()
                .execute()
                .await
                .map_err(req(format!("adding address {addr}")))?;
        }
        let up = LinkUnspec::new_with_index(link).up().build();
        self.handle
            .link()
            .set(up)
            .execute()
            .await
            .map_err(req("setting link up"))
    }

    async fn set_neigh(&self, link: u32, ip: Ipv4Addr, mac: [u8; 6]) -> Result<()> {
        self.handle
            .neighbours()
            .add(link, IpAddr::V4(ip))
            .link_local_address(&mac)
            .state(NeighbourState::Permanent)
            .kind(RouteType::Unicast)
            .replace()
            .execute()
            .await
            .map_err(req(format!("setting neighbour {ip}")))
    }

    async fn del_neigh(&self, link: u32, ip: Ipv4Addr) -> Result<()> {
        let mut m = Self::neigh_message(link, AddressFamily::Inet);
        m.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)));
        match self.handle.neighbours().del(m).execute().await {
            Err(e) if !is_not_found(&e) => Err(req(format!("deleting neighbour {ip}"))(e)),
            _ => Ok(()),
        }
    }

    async fn set_fdb(&self, link: u32, mac: [u8; 6], dst: Ipv4Addr) -> Result<()> {
        self.handle
            .neighbours()
            .add_bridge(link, &mac)
            .destination(IpAddr::V4(dst))
            .flags(NeighbourFlags::Own)
            .state(NeighbourState::Permanent)
            .replace()
            .execute()
            .await
            .map_err(req(format!("setting fdb entry for {dst}")))
    }

    async fn del_fdb(&self, link: u32, mac: [u8; 6], dst: Ipv4Addr) -> Result<()> {
        let mut m = Self::neigh_message(link, AddressFamily::Bridge);
        m.header.flags = NeighbourFlags::Own;
        m.attributes
            .push(NeighbourAttribute::LinkLocalAddress(mac.to_vec()));
        m.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(dst)));
        match self.handle.neighbours().del(m).execute().await {
            Err(e) if !is_not_found(&e) => Err(req(format!("deleting fdb entry for {dst}"))(e)),
            _ => Ok(()),
        }
    }

    async fn replace_route(&self, route: &Route) -> Result<()> {
        self.handle
            .route()
            .add(Self::route_message(route))
            .replace()
            .execute()
            .await
            .map_err(req(format!(
                "adding route {} via {}",
                route.dst, route.gateway
            )))
    }

    async fn del_route(&self, route: &Route) -> Result<()> {
        match self
            .handle
            .route()
            .del(Self::route_message(route))
            .execute()
            .await
        {
            Err(e) if !is_not_found(&e) => Err(req(format!("deleting route {}", route.dst))(e)),
            _ => Ok(()),
        }
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for byte in &mut out {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trip() {
        let mac = [0xaa, 0x0b, 0xcc, 0x00, 0xee, 0xff];
        assert_eq!(format_mac(&mac), "aa:0b:cc:00:ee:ff");
        assert_eq!(parse_mac("aa:0b:cc:00:ee:ff"), Some(mac));
        assert_eq!(parse_mac("aa:0b:cc:00:ee"), None);
        assert_eq!(parse_mac("aa:0b:cc:00:ee:ff:00"), None);
        assert_eq!(parse_mac("zz:0b:cc:00:ee:ff"), None);
    }

    #[test]
    fn vxlan_reuse_requires_same_parameters() {
        let spec = VxlanSpec {
            name: "flannel.1".into(),
            vni: 1,
            port: 8472,
            local: Ipv4Addr::new(192, 168, 213, 1),
            underlay_index: 7,
            mtu: 1450,
        };
        let good = vec![
            InfoVxlan::Id(1),
            InfoVxlan::Port(8472),
            InfoVxlan::Local(Ipv4Addr::new(192, 168, 213, 1)),
            InfoVxlan::Link(7),
        ];
        assert!(vxlan_matches(&good, &spec));
        let mut other_port = good.clone();
        other_port[1] = InfoVxlan::Port(4789);
        assert!(!vxlan_matches(&other_port, &spec));
        let mut other_local = good.clone();
        other_local[2] = InfoVxlan::Local(Ipv4Addr::new(192, 168, 213, 9));
        assert!(!vxlan_matches(&other_local, &spec));
        assert!(!vxlan_matches(&good[1..], &spec));
    }
}
