//! The cluster's DNS data: Services and their ready endpoints, indexed by
//! `(namespace, name)` and by IP for reverse lookups. Built from the reflector
//! caches after every change; no IO.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label tying an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A port of a Service or an EndpointSlice.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortEntry {
    /// The port name, lowercase (may be empty).
    pub name: String,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    pub port: u16,
}

/// One ready endpoint address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EndpointEntry {
    pub ip: IpAddr,
    /// Its DNS label: the endpoint's `hostname`, else the IP with `.`/`:` as `-`.
    pub host: String,
    pub ports: Vec<PortEntry>,
}

/// How a Service name resolves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceKind {
    /// ClusterIP, NodePort, LoadBalancer: the cluster IPs.
    ClusterIp(Vec<IpAddr>),
    /// `clusterIP: None`: the ready endpoint addresses.
    Headless,
    /// A CNAME to `spec.externalName` (lowercase, no trailing dot).
    ExternalName(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    pub kind: ServiceKind,
    pub ports: Vec<PortEntry>,
    pub endpoints: Vec<EndpointEntry>,
}

/// What a reverse (PTR) lookup of an IP finds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReverseEntry {
    pub namespace: String,
    pub service: String,
    /// For endpoint addresses: the endpoint's host label.
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ClusterIndex {
    services: HashMap<(String, String), ServiceEntry>,
    namespaces: HashSet<String>,
    reverse: HashMap<IpAddr, BTreeSet<ReverseEntry>>,
    cluster_ips: HashSet<IpAddr>,
}

/// The DNS label of an endpoint: its hostname, else its IP with separators dashed.
pub fn endpoint_host(ip: IpAddr, hostname: Option<&str>) -> String {
    match hostname.map(str::trim).filter(|h| !h.is_empty()) {
        Some(hostname) => hostname.to_ascii_lowercase(),
        None => ip.to_string().replace(['.', ':'], "-"),
    }
}

fn protocol(p: Option<&str>) -> String {
    p.unwrap_or("TCP").to_ascii_lowercase()
}

fn port_number(p: i32) -> Option<u16> {
    u16::try_from(p).ok().filter(|p| *p != 0)
}

fn service_entry(svc: &Service) -> Option<ServiceEntry> {
    let spec = svc.spec.as_ref()?;
    let ports = spec
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            Some(PortEntry {
                name: p.name.clone().unwrap_or_default().to_ascii_lowercase(),
                protocol: protocol(p.protocol.as_deref()),
                port: port_number(p.port)?,
            })
        })
        .collect();
    let kind = if spec.type_.as_deref() == Some("ExternalName") {
        let target = spec.external_name.as_deref()?.trim().trim_end_matches('.');
        if target.is_empty() {
            return None;
        }
        ServiceKind::ExternalName(target.to_ascii_lowercase())
    } else {
        let mut ips: Vec<String> = spec.cluster_ips.clone().unwrap_or_default();
        if ips.is_empty() {
            ips.extend(spec.cluster_ip.clone());
        }
        if ips.iter().any(|ip| ip == "None") {
            ServiceKind::Headless
        } else {
            let ips: Vec<IpAddr> = ips.iter().filter_map(|ip| ip.parse().ok()).collect();
            if ips.is_empty() {
                // Not yet allocated: nothing to answer with.
                return None;
            }
            ServiceKind::ClusterIp(ips)
        }
    };
    Some(ServiceEntry {
        kind,
        ports,
        endpoints: Vec::new(),
    })
}

fn slice_endpoints(slice: &EndpointSlice, publish_not_ready: bool) -> Vec<EndpointEntry> {
    if slice.address_type == "FQDN" {
        return Vec::new();
    }
    let ports: Vec<PortEntry> = slice
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            Some(PortEntry {
                name: p.name.clone().unwrap_or_default().to_ascii_lowercase(),
                protocol: protocol(p.protocol.as_deref()),
                port: port_number(p.port?)?,
            })
        })
        .collect();
    let mut out = Vec::new();
    for endpoint in &slice.endpoints {
        // Upstream treats an unset `ready` as ready.
        let ready = endpoint
            .conditions
            .as_ref()
            .and_then(|c| c.ready)
            .unwrap_or(true);
        if !ready && !publish_not_ready {
            continue;
        }
        for address in &endpoint.addresses {
            let Ok(ip) = address.parse::<IpAddr>() else {
                continue;
            };
            out.push(EndpointEntry {
                ip,
                host: endpoint_host(ip, endpoint.hostname.as_deref()),
                ports: ports.clone(),
            });
        }
    }
    out
}

impl ClusterIndex {
    /// Builds the index from the current Services and EndpointSlices.
    pub fn build<'a>(
        services: impl IntoIterator<Item = &'a Service>,
        slices: impl IntoIterator<Item = &'a EndpointSlice>,
    ) -> Self {
        let mut index = Self::default();
        let mut publish_not_ready = HashSet::new();
        for svc in services {
            let (Some(ns), Some(name)) = (&svc.metadata.namespace, &svc.metadata.name) else {
                continue;
            };
            let Some(entry) = service_entry(svc) else {
                continue;
            };
            if svc
                .spec
                .as_ref()
                .and_then(|s| s.publish_not_ready_addresses)
                .unwrap_or(false)
            {
                publish_not_ready.insert((ns.clone(), name.clone()));
            }
            index.namespaces.insert(ns.clone());
            index.services.insert((ns.clone(), name.clone()), entry);
        }
        for slice in slices {
            let Some(ns) = &slice.metadata.namespace else {
                continue;
            };
            let Some(svc_name) = slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
            else {
                continue;
            };
            let key = (ns.clone(), svc_name.clone());
            let publish = publish_not_ready.contains(&key);
            if let Some(entry) = index.services.get_mut(&key) {
                entry.endpoints.extend(slice_endpoints(slice, publish));
            }
        }
        for ((ns, name), entry) in &mut index.services {
            entry.endpoints.sort();
            entry.endpoints.dedup();
            if let ServiceKind::ClusterIp(ips) = &entry.kind {
                for ip in ips {
                    index.cluster_ips.insert(*ip);
                    index.reverse.entry(*ip).or_default().insert(ReverseEntry {
                        namespace: ns.clone(),
                        service: name.clone(),
                        endpoint: None,
                    });
                }
            }
            // As CoreDNS: endpoint addresses of every Service get PTRs to their
            // endpoint names; a ClusterIP's own PTR points at the Service.
            for endpoint in &entry.endpoints {
                index
                    .reverse
                    .entry(endpoint.ip)
                    .or_default()
                    .insert(ReverseEntry {
                        namespace: ns.clone(),
                        service: name.clone(),
                        endpoint: Some(endpoint.host.clone()),
                    });
            }
        }
        index
    }

    pub fn service(&self, namespace: &str, name: &str) -> Option<&ServiceEntry> {
        self.services
            .get(&(namespace.to_string(), name.to_string()))
    }

    /// Whether any Service lives in `namespace` (we do not watch Namespaces).
    pub fn has_namespace(&self, namespace: &str) -> bool {
        self.namespaces.contains(namespace)
    }

    pub fn reverse(&self, ip: IpAddr) -> Option<&BTreeSet<ReverseEntry>> {
        self.reverse.get(&ip)
    }

    /// Whether `ip` is some Service's cluster IP (forwarding there could loop back to us).
    pub fn is_cluster_ip(&self, ip: IpAddr) -> bool {
        self.cluster_ips.contains(&ip)
    }

    pub fn len(&self) -> usize {
        self.services.len()
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub fn service(v: serde_json::Value) -> Service {
        serde_json::from_value(v).unwrap()
    }

    pub fn slice(v: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(v).unwrap()
    }

    /// A small cluster: a ClusterIP service with named ports, a headless one with
    /// a hostname endpoint, an unready endpoint and an unnamed endpoint, an
    /// ExternalName, and a service still without an IP.
    pub fn sample() -> ClusterIndex {
        let services = [
            service(json!({"metadata": {"name": "web", "namespace": "default"},
                "spec": {"clusterIP": "10.254.0.20", "clusterIPs": ["10.254.0.20"],
                    "ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                              {"name": "dns", "port": 53, "protocol": "UDP"},
                              {"port": 9000}]}})),
            service(json!({"metadata": {"name": "db", "namespace": "prod"},
                "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}})),
            service(json!({"metadata": {"name": "empty", "namespace": "prod"},
                "spec": {"clusterIP": "None"}})),
            service(json!({"metadata": {"name": "ext", "namespace": "default"},
                "spec": {"type": "ExternalName", "externalName": "Example.COM."}})),
            service(
                json!({"metadata": {"name": "pending", "namespace": "default"},
                "spec": {}}),
            ),
        ];
        let slices = [
            slice(json!({"metadata": {"name": "db-abc", "namespace": "prod",
                "labels": {"kubernetes.io/service-name": "db"}},
            "addressType": "IPv4",
            "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.1.0.5"], "hostname": "db-0", "conditions": {"ready": true}},
                {"addresses": ["10.1.0.6"]},
                {"addresses": ["10.1.0.7"], "conditions": {"ready": false}}
            ]})),
            // A second slice repeating an address is deduplicated.
            slice(json!({"metadata": {"name": "db-def", "namespace": "prod",
                    "labels": {"kubernetes.io/service-name": "db"}},
                "addressType": "IPv4",
                "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
                "endpoints": [{"addresses": ["10.1.0.6"]}]})),
            slice(json!({"metadata": {"name": "web-x", "namespace": "default",
                    "labels": {"kubernetes.io/service-name": "web"}},
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                "endpoints": [{"addresses": ["10.1.1.9"]}]})),
            slice(
                json!({"metadata": {"name": "orphan", "namespace": "default"},
                "addressType": "IPv4", "endpoints": [{"addresses": ["10.9.9.9"]}]}),
            ),
        ];
        ClusterIndex::build(&services, &slices)
    }

    #[test]
    fn builds_services_endpoints_and_reverse() {
        let index = sample();
        assert_eq!(index.len(), 4, "the service without an IP is skipped");
        let web = index.service("default", "web").unwrap();
        assert_eq!(
            web.kind,
            ServiceKind::ClusterIp(vec!["10.254.0.20".parse().unwrap()])
        );
        assert_eq!(web.ports.len(), 3);
        assert_eq!(web.ports[1].protocol, "udp");
        assert_eq!(web.ports[2].protocol, "tcp");
        let db = index.service("prod", "db").unwrap();
        assert_eq!(db.kind, ServiceKind::Headless);
        let hosts: Vec<&str> = db.endpoints.iter().map(|e| e.host.as_str()).collect();
        assert_eq!(hosts, ["db-0", "10-1-0-6"]);
        assert_eq!(
            index.service("default", "ext").unwrap().kind,
            ServiceKind::ExternalName("example.com".into())
        );
        assert!(index.has_namespace("prod"));
        assert!(!index.has_namespace("kube-system"));
        assert!(index.is_cluster_ip("10.254.0.20".parse().unwrap()));
        assert!(!index.is_cluster_ip("10.1.0.5".parse().unwrap()));
        let rev = index.reverse("10.1.0.5".parse().unwrap()).unwrap();
        assert_eq!(rev.iter().next().unwrap().endpoint.as_deref(), Some("db-0"));
        assert!(
            index.reverse("10.1.0.7".parse().unwrap()).is_none(),
            "unready"
        );
    }

    #[test]
    fn publish_not_ready_addresses_includes_unready() {
        let services = [service(json!({"metadata": {"name": "s", "namespace": "n"},
            "spec": {"clusterIP": "None", "publishNotReadyAddresses": true}}))];
        let slices = [slice(json!({"metadata": {"name": "s-1", "namespace": "n",
                "labels": {"kubernetes.io/service-name": "s"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.1.0.7"], "conditions": {"ready": false}}]}))];
        let index = ClusterIndex::build(&services, &slices);
        assert_eq!(index.service("n", "s").unwrap().endpoints.len(), 1);
    }

    #[test]
    fn endpoint_host_labels() {
        assert_eq!(endpoint_host("10.1.2.3".parse().unwrap(), None), "10-1-2-3");
        assert_eq!(
            endpoint_host("fd00::1".parse().unwrap(), Some("")),
            "fd00--1"
        );
        assert_eq!(
            endpoint_host("10.1.2.3".parse().unwrap(), Some("Web-0")),
            "web-0"
        );
    }
}
