//! The proxy's view of the cluster: one [`ServicePort`] per (Service, port) with
//! its chosen endpoints, built from Services, EndpointSlices and Nodes.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// Label on an EndpointSlice naming its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Default sessionAffinity ClientIP timeout (upstream: 3 hours).
pub const DEFAULT_AFFINITY_TIMEOUT: u32 = 10800;

/// L4 protocols handled by the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn parse(s: Option<&str>) -> Option<Protocol> {
        match s.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    /// Lower-case name, as nft and iptables write it.
    pub fn lower(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.lower())
    }
}

/// One backend address of a service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
    /// The endpoint runs on this node (for externalTrafficPolicy/internalTrafficPolicy Local).
    pub local: bool,
}

/// One port of one Service, with its endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub namespace: String,
    pub name: String,
    /// `spec.ports[].name` (may be empty for single-port services).
    pub port_name: String,
    pub protocol: Protocol,
    pub cluster_ip: Option<Ipv4Addr>,
    pub port: u16,
    pub node_port: Option<u16>,
    pub external_ips: Vec<Ipv4Addr>,
    /// sessionAffinity ClientIP timeout in seconds, when enabled.
    pub affinity_timeout: Option<u32>,
    pub external_policy_local: bool,
    pub internal_policy_local: bool,
    /// Sorted, deduplicated.
    pub endpoints: Vec<Endpoint>,
}

impl ServicePort {
    /// `ns/name/proto/portname`, as upstream's nftables chain names use it.
    pub fn id(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.namespace, self.name, self.protocol, self.port_name
        )
    }

    /// `ns/name:portname`, upstream's ServicePortName string.
    pub fn port_name_string(&self) -> String {
        format!("{}/{}:{}", self.namespace, self.name, self.port_name)
    }

    /// Endpoints used for traffic from inside the cluster.
    pub fn cluster_endpoints(&self) -> Vec<Endpoint> {
        if self.internal_policy_local {
            self.endpoints.iter().copied().filter(|e| e.local).collect()
        } else {
            self.endpoints.clone()
        }
    }

    /// Endpoints used for NodePort / externalIP traffic.
    pub fn external_endpoints(&self) -> Vec<Endpoint> {
        if self.external_policy_local {
            self.endpoints.iter().copied().filter(|e| e.local).collect()
        } else {
            self.endpoints.clone()
        }
    }
}

/// Everything a sync needs, sorted by service id for stable output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyState {
    pub services: Vec<ServicePort>,
}

/// Builds the state from the API objects. `node_name` is this node (endpoints
/// whose `nodeName` matches are local).
pub fn build_state(services: &[Service], slices: &[EndpointSlice], node_name: &str) -> ProxyState {
    // (ns, service) -> slices
    let mut by_service: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in slices {
        if slice.address_type != "IPv4" {
            continue;
        }
        let Some(service) = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
        else {
            continue;
        };
        let namespace = slice.metadata.namespace.clone().unwrap_or_default();
        by_service
            .entry((namespace, service.clone()))
            .or_default()
            .push(slice);
    }

    let mut out = Vec::new();
    for service in services {
        let Some(spec) = &service.spec else { continue };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let namespace = service.metadata.namespace.clone().unwrap_or_default();
        let name = service.metadata.name.clone().unwrap_or_default();
        let cluster_ip = spec
            .cluster_ip
            .as_deref()
            .filter(|ip| *ip != "None" && !ip.is_empty())
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok());
        let external_ips: Vec<Ipv4Addr> = spec
            .external_ips
            .iter()
            .flatten()
            .filter_map(|ip| ip.parse().ok())
            .collect();
        if cluster_ip.is_none() {
            // Headless services have no proxy rules.
            continue;
        }
        let affinity_timeout = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .and_then(|t| u32::try_from(t).ok())
                .unwrap_or(DEFAULT_AFFINITY_TIMEOUT)
        });
        let slices = by_service
            .get(&(namespace.clone(), name.clone()))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for port in spec.ports.iter().flatten() {
            let Some(protocol) = Protocol::parse(port.protocol.as_deref()) else {
                continue;
            };
            let Ok(port_number) = u16::try_from(port.port) else {
                continue;
            };
            let port_name = port.name.clone().unwrap_or_default();
            let node_port = port
                .node_port
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0);
            out.push(ServicePort {
                namespace: namespace.clone(),
                name: name.clone(),
                endpoints: select_endpoints(slices, &port_name, protocol, node_name),
                port_name,
                protocol,
                cluster_ip,
                port: port_number,
                node_port,
                external_ips: external_ips.clone(),
                affinity_timeout,
                external_policy_local: spec.external_traffic_policy.as_deref() == Some("Local"),
                internal_policy_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
            });
        }
    }
    out.sort_by_key(|s| (s.id(), s.port));
    ProxyState { services: out }
}

/// Endpoints of one service port: the ready ones, or if there are none the
/// serving+terminating ones (upstream's ProxyTerminatingEndpoints behaviour).
pub fn select_endpoints(
    slices: &[&EndpointSlice],
    port_name: &str,
    protocol: Protocol,
    node_name: &str,
) -> Vec<Endpoint> {
    let mut ready = Vec::new();
    let mut terminating = Vec::new();
    for slice in slices {
        let Some(port) = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or("") == port_name
                && Protocol::parse(p.protocol.as_deref()) == Some(protocol)
        }) else {
            continue;
        };
        let Some(port_number) = port.port.and_then(|p| u16::try_from(p).ok()) else {
            continue;
        };
        for endpoint in &slice.endpoints {
            let conditions = endpoint.conditions.as_ref();
            let is_ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let is_serving = conditions.and_then(|c| c.serving).unwrap_or(is_ready);
            let is_terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
            let local = endpoint.node_name.as_deref() == Some(node_name);
            for address in &endpoint.addresses {
                let Ok(ip) = address.parse::<Ipv4Addr>() else {
                    continue;
                };
                let ep = Endpoint {
                    ip,
                    port: port_number,
                    local,
                };
                if is_ready && !is_terminating {
                    ready.push(ep);
                } else if is_serving && is_terminating {
                    terminating.push(ep);
                }
            }
        }
    }
    let mut chosen = if ready.is_empty() { terminating } else { ready };
    chosen.sort();
    chosen.dedup();
    chosen
}

/// The node's addresses (InternalIP first, then ExternalIP) for `--nodeport-addresses=primary`.
pub fn node_ips(node: &Node) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    for kind in ["InternalIP", "ExternalIP"] {
        for address in node
            .status
            .iter()
            .flat_map(|s| s.addresses.iter().flatten())
        {
            if address.type_ == kind {
                if let Ok(ip) = address.address.parse() {
                    out.push(ip);
                }
            }
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ServicePort as K8sServicePort, ServiceSpec};
    use k8s_openapi::api::discovery::v1::{
        Endpoint as K8sEndpoint, EndpointConditions, EndpointPort,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    pub fn service(ns: &str, name: &str, ip: &str, ports: &[(&str, &str, i32)]) -> Service {
        Service {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some(ip.into()),
                ports: Some(
                    ports
                        .iter()
                        .map(|(n, proto, p)| K8sServicePort {
                            name: Some((*n).into()),
                            protocol: Some((*proto).into()),
                            port: *p,
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// (address, ready, serving, terminating)
    pub fn slice(
        ns: &str,
        svc: &str,
        port: (&str, &str, i32),
        eps: &[(&str, bool, bool, bool)],
    ) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(format!("{svc}-abc")),
                labels: Some([(SERVICE_NAME_LABEL.to_string(), svc.to_string())].into()),
                ..Default::default()
            },
            address_type: "IPv4".into(),
            endpoints: eps
                .iter()
                .map(|(a, r, s, t)| K8sEndpoint {
                    addresses: vec![(*a).into()],
                    conditions: Some(EndpointConditions {
                        ready: Some(*r),
                        serving: Some(*s),
                        terminating: Some(*t),
                    }),
                    node_name: Some("node1".into()),
                    ..Default::default()
                })
                .collect(),
            ports: Some(vec![EndpointPort {
                name: Some(port.0.into()),
                protocol: Some(port.1.into()),
                port: Some(port.2),
                ..Default::default()
            }]),
        }
    }

    #[test]
    fn ready_endpoints_preferred_over_terminating() {
        let svcs = [service("ns", "web", "10.254.0.10", &[("http", "TCP", 80)])];
        let slices = [slice(
            "ns",
            "web",
            ("http", "TCP", 8080),
            &[
                ("10.1.0.5", true, true, false),
                ("10.1.0.6", false, true, true),
                ("10.1.0.7", false, false, false),
            ],
        )];
        let state = build_state(&svcs, &slices, "node1");
        assert_eq!(state.services.len(), 1);
        let sp = &state.services[0];
        assert_eq!(sp.id(), "ns/web/tcp/http");
        assert_eq!(
            sp.endpoints,
            vec![Endpoint {
                ip: "10.1.0.5".parse().unwrap(),
                port: 8080,
                local: true
            }]
        );
    }

    #[test]
    fn serving_terminating_used_when_none_ready() {
        let svcs = [service("ns", "web", "10.254.0.10", &[("http", "TCP", 80)])];
        let slices = [slice(
            "ns",
            "web",
            ("http", "TCP", 8080),
            &[
                ("10.1.0.6", false, true, true),
                ("10.1.0.7", false, false, true),
            ],
        )];
        let state = build_state(&svcs, &slices, "other");
        let ips: Vec<String> = state.services[0]
            .endpoints
            .iter()
            .map(|e| e.ip.to_string())
            .collect();
        assert_eq!(ips, vec!["10.1.0.6"]);
        assert!(!state.services[0].endpoints[0].local);
    }

    #[test]
    fn headless_and_mismatched_ports_skipped() {
        let svcs = [
            service("ns", "headless", "None", &[("http", "TCP", 80)]),
            service("ns", "web", "10.254.0.10", &[("http", "UDP", 80)]),
        ];
        let slices = [slice(
            "ns",
            "web",
            ("http", "TCP", 8080),
            &[("10.1.0.5", true, true, false)],
        )];
        let state = build_state(&svcs, &slices, "node1");
        assert_eq!(state.services.len(), 1);
        assert!(
            state.services[0].endpoints.is_empty(),
            "a TCP slice port must not serve a UDP service port"
        );
    }
}
