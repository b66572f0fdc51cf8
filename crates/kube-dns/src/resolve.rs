//! Name → answer for the cluster zone, as CoreDNS's `kubernetes` plugin answers
//! (the Kubernetes DNS-Based Service Discovery specification):
//!
//! - `<svc>.<ns>.svc.<domain>`: A/AAAA of the cluster IPs, or of the ready
//!   endpoints for headless Services (NXDOMAIN when a headless Service has none);
//!   CNAME for ExternalName; SRV for every port.
//! - `<endpoint>.<svc>.<ns>.svc.<domain>`: the endpoint whose hostname (or dashed
//!   IP) is `<endpoint>`.
//! - `_<port>._<proto>.<svc>.<ns>.svc.<domain>`: SRV for the named port, targets
//!   in the additional section.
//! - `<a-b-c-d>.<ns>.pod.<domain>`: A a.b.c.d (`pods insecure`).
//! - PTR in `in-addr.arpa`/`ip6.arpa` for cluster IPs and endpoint addresses;
//!   unknown addresses fall through to the upstreams.
//! - `dns-version.<domain>` TXT: the schema version of the specification, `1.1.0`.
//! - Unknown names in the zone: NXDOMAIN; known names without data of the asked
//!   type: NOERROR with no answers. Both carry the zone SOA in the authority section.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::ProtoError;

use crate::index::{ClusterIndex, EndpointEntry, PortEntry, ServiceEntry, ServiceKind};

/// The Kubernetes DNS-Based Service Discovery schema version we implement.
pub const SCHEMA_VERSION: &str = "1.1.0";

/// The authoritative zone: the cluster domain and its settings.
#[derive(Debug, Clone)]
pub struct Zone {
    /// Lowercase, without the trailing dot.
    domain: String,
    domain_labels: usize,
    ttl: u32,
    soa: Record,
    ns: Name,
}

/// The outcome of a lookup.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// Not an authoritative name: send it to the upstreams.
    Forward,
    Answer(Answer),
}

/// An authoritative answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub rcode: ResponseCode,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
    /// An ExternalName target outside the zone whose addresses the caller should
    /// resolve upstream and append (CoreDNS does the same).
    pub chase: Option<Name>,
}

impl Answer {
    fn records(answers: Vec<Record>, additionals: Vec<Record>) -> Self {
        Self {
            rcode: ResponseCode::NoError,
            answers,
            authorities: Vec::new(),
            additionals,
            chase: None,
        }
    }
}

impl Zone {
    /// `domain` lowercase without trailing dot (see `Options::domain`); `serial`
    /// for the SOA (CoreDNS uses a timestamp).
    pub fn new(domain: &str, ttl: u32, serial: u32) -> Result<Self, ProtoError> {
        let origin = fqdn(domain)?;
        let ns = fqdn(&format!("ns.dns.{domain}"))?;
        let soa = Record::from_rdata(
            origin,
            ttl,
            RData::SOA(SOA::new(
                ns.clone(),
                fqdn(&format!("hostmaster.{domain}"))?,
                serial,
                7200,
                1800,
                86400,
                ttl,
            )),
        );
        Ok(Self {
            domain: domain.to_string(),
            domain_labels: domain.split('.').count(),
            ttl,
            soa,
            ns,
        })
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Whether `qname` is answered from the cluster caches (the cluster domain or
    /// a reverse name); callers answer SERVFAIL for these until the caches synced.
    pub fn is_authoritative(&self, qname: &Name) -> bool {
        let labels = lower_labels(qname);
        self.relative(&labels).is_some() || is_reverse(&labels)
    }

    /// The labels before the domain, or `None` when `labels` is outside it.
    fn relative<'a>(&self, labels: &'a [String]) -> Option<&'a [String]> {
        let n = labels.len().checked_sub(self.domain_labels)?;
        let suffix = labels[n..].join(".");
        (suffix == self.domain).then_some(&labels[..n])
    }

    fn name_in_zone(&self, prefix: &str) -> Result<Name, ProtoError> {
        fqdn(&format!("{prefix}.{}", self.domain))
    }

    fn service_fqdn(&self, ns: &str, svc: &str) -> Result<Name, ProtoError> {
        self.name_in_zone(&format!("{svc}.{ns}.svc"))
    }

    fn negative(&self, rcode: ResponseCode) -> Answer {
        Answer {
            rcode,
            answers: Vec::new(),
            authorities: vec![self.soa.clone()],
            additionals: Vec::new(),
            chase: None,
        }
    }

    fn nxdomain(&self) -> Lookup {
        Lookup::Answer(self.negative(ResponseCode::NXDomain))
    }

    fn nodata(&self) -> Lookup {
        Lookup::Answer(self.negative(ResponseCode::NoError))
    }

    /// Answers, or NODATA with the SOA when there are none.
    fn answer_or_nodata(&self, answers: Vec<Record>, additionals: Vec<Record>) -> Lookup {
        if answers.is_empty() {
            self.nodata()
        } else {
            Lookup::Answer(Answer::records(answers, additionals))
        }
    }

    fn record(&self, name: &Name, rdata: RData) -> Record {
        Record::from_rdata(name.clone(), self.ttl, rdata)
    }

    /// A/AAAA records of `ips` matching `qtype`.
    fn address_records(
        &self,
        name: &Name,
        qtype: RecordType,
        ips: impl IntoIterator<Item = IpAddr>,
    ) -> Vec<Record> {
        ips.into_iter()
            .filter_map(|ip| match (qtype, ip) {
                (RecordType::A, IpAddr::V4(v4)) => Some(self.record(name, RData::A(A(v4)))),
                (RecordType::AAAA, IpAddr::V6(v6)) => {
                    Some(self.record(name, RData::AAAA(AAAA(v6))))
                }
                _ => None,
            })
            .collect()
    }

    /// A or AAAA of `ip`, whichever fits.
    fn any_address_record(&self, name: &Name, ip: IpAddr) -> Record {
        match ip {
            IpAddr::V4(v4) => self.record(name, RData::A(A(v4))),
            IpAddr::V6(v6) => self.record(name, RData::AAAA(AAAA(v6))),
        }
    }
}

fn fqdn(s: &str) -> Result<Name, ProtoError> {
    Name::from_ascii(format!("{}.", s.trim_end_matches('.')))
}

fn lower_labels(name: &Name) -> Vec<String> {
    name.iter()
        .map(|label| String::from_utf8_lossy(label).to_ascii_lowercase())
        .collect()
}

fn is_reverse(labels: &[String]) -> bool {
    matches!(labels, [.., a, b] if (a == "in-addr" || a == "ip6") && b == "arpa")
}

fn strip_underscore(label: &str) -> Option<&str> {
    label.strip_prefix('_')
}

/// `1-2-3-4` → 1.2.3.4, `fd00--1` → fd00::1.
fn parse_dashed_ip(label: &str) -> Option<IpAddr> {
    if label.matches('-').count() == 3 {
        if let Ok(v4) = label.replace('-', ".").parse::<Ipv4Addr>() {
            return Some(IpAddr::V4(v4));
        }
    }
    label
        .replace('-', ":")
        .parse::<Ipv6Addr>()
        .ok()
        .map(IpAddr::V6)
}

/// The answer for `qname`/`qtype` from `index`.
pub fn lookup(
    index: &ClusterIndex,
    zone: &Zone,
    qname: &Name,
    qtype: RecordType,
) -> Result<Lookup, ProtoError> {
    let labels = lower_labels(qname);
    if is_reverse(&labels) {
        return reverse_lookup(index, zone, qname, qtype);
    }
    let Some(relative) = zone.relative(&labels) else {
        return Ok(Lookup::Forward);
    };
    // Walk from the zone apex down: the last relative label is the nearest.
    let mut rel: Vec<&str> = relative.iter().map(String::as_str).collect();
    rel.reverse();
    Ok(match rel.as_slice() {
        [] => match qtype {
            RecordType::SOA => Lookup::Answer(Answer::records(vec![zone.soa.clone()], Vec::new())),
            RecordType::NS => Lookup::Answer(Answer::records(
                vec![zone.record(qname, RData::NS(NS(zone.ns.clone())))],
                Vec::new(),
            )),
            _ => zone.nodata(),
        },
        ["dns-version"] => match qtype {
            RecordType::TXT => Lookup::Answer(Answer::records(
                vec![zone.record(qname, RData::TXT(TXT::new(vec![SCHEMA_VERSION.into()])))],
                Vec::new(),
            )),
            _ => zone.nodata(),
        },
        ["svc"] | ["pod"] | ["pod", _] => zone.nodata(),
        ["svc", ns] => {
            if index.has_namespace(ns) {
                zone.nodata()
            } else {
                zone.nxdomain()
            }
        }
        ["svc", ns, svc] => match index.service(ns, svc) {
            Some(entry) => service_lookup(index, zone, qname, qtype, ns, svc, entry)?,
            None => zone.nxdomain(),
        },
        ["svc", ns, svc, endpoint] => match index.service(ns, svc) {
            Some(entry) => {
                let ips: Vec<IpAddr> = entry
                    .endpoints
                    .iter()
                    .filter(|e| e.host == *endpoint)
                    .map(|e| e.ip)
                    .collect();
                if ips.is_empty() {
                    zone.nxdomain()
                } else {
                    zone.answer_or_nodata(zone.address_records(qname, qtype, ips), Vec::new())
                }
            }
            None => zone.nxdomain(),
        },
        ["svc", ns, svc, proto, port] => {
            match (
                index.service(ns, svc),
                strip_underscore(proto),
                strip_underscore(port),
            ) {
                (Some(entry), Some(proto), Some(port)) => {
                    port_lookup(index, zone, qname, qtype, ns, svc, entry, port, proto)?
                }
                _ => zone.nxdomain(),
            }
        }
        ["pod", _ns, ip] => match parse_dashed_ip(ip) {
            Some(ip) => zone.answer_or_nodata(zone.address_records(qname, qtype, [ip]), Vec::new()),
            None => zone.nxdomain(),
        },
        _ => zone.nxdomain(),
    })
}

fn service_lookup(
    index: &ClusterIndex,
    zone: &Zone,
    qname: &Name,
    qtype: RecordType,
    ns: &str,
    svc: &str,
    entry: &ServiceEntry,
) -> Result<Lookup, ProtoError> {
    match &entry.kind {
        ServiceKind::ExternalName(target) => external_name(index, zone, qname, qtype, target),
        ServiceKind::ClusterIp(ips) => match qtype {
            RecordType::SRV => {
                let ports: Vec<&PortEntry> = entry.ports.iter().collect();
                srv_cluster_ip(zone, qname, ns, svc, ips, &ports)
            }
            _ => Ok(zone.answer_or_nodata(
                zone.address_records(qname, qtype, ips.iter().copied()),
                Vec::new(),
            )),
        },
        ServiceKind::Headless => {
            if entry.endpoints.is_empty() {
                return Ok(zone.nxdomain());
            }
            match qtype {
                RecordType::SRV => srv_headless(zone, qname, ns, svc, &entry.endpoints, None),
                _ => Ok(zone.answer_or_nodata(
                    zone.address_records(qname, qtype, entry.endpoints.iter().map(|e| e.ip)),
                    Vec::new(),
                )),
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn port_lookup(
    index: &ClusterIndex,
    zone: &Zone,
    qname: &Name,
    qtype: RecordType,
    ns: &str,
    svc: &str,
    entry: &ServiceEntry,
    port: &str,
    proto: &str,
) -> Result<Lookup, ProtoError> {
    let matches = |p: &PortEntry| !p.name.is_empty() && p.name == port && p.protocol == proto;
    match &entry.kind {
        ServiceKind::ExternalName(target) => external_name(index, zone, qname, qtype, target),
        ServiceKind::ClusterIp(ips) => {
            let ports: Vec<&PortEntry> = entry.ports.iter().filter(|p| matches(p)).collect();
            if ports.is_empty() {
                return Ok(zone.nxdomain());
            }
            match qtype {
                RecordType::SRV => srv_cluster_ip(zone, qname, ns, svc, ips, &ports),
                _ => Ok(zone.answer_or_nodata(
                    zone.address_records(qname, qtype, ips.iter().copied()),
                    Vec::new(),
                )),
            }
        }
        ServiceKind::Headless => {
            let endpoints: Vec<&EndpointEntry> = entry
                .endpoints
                .iter()
                .filter(|e| e.ports.iter().any(matches))
                .collect();
            if endpoints.is_empty() {
                return Ok(zone.nxdomain());
            }
            match qtype {
                RecordType::SRV => {
                    srv_headless(zone, qname, ns, svc, &entry.endpoints, Some(&matches))
                }
                _ => Ok(zone.answer_or_nodata(
                    zone.address_records(qname, qtype, endpoints.iter().map(|e| e.ip)),
                    Vec::new(),
                )),
            }
        }
    }
}

/// SRV weight as CoreDNS computes it: 100 split evenly over the records.
fn srv_weight(count: usize) -> u16 {
    u16::try_from(100 / count.max(1)).unwrap_or(0).max(1)
}

fn srv_cluster_ip(
    zone: &Zone,
    qname: &Name,
    ns: &str,
    svc: &str,
    ips: &[IpAddr],
    ports: &[&PortEntry],
) -> Result<Lookup, ProtoError> {
    let target = zone.service_fqdn(ns, svc)?;
    let weight = srv_weight(ports.len());
    let answers = ports
        .iter()
        .map(|p| {
            zone.record(
                qname,
                RData::SRV(SRV::new(0, weight, p.port, target.clone())),
            )
        })
        .collect();
    let additionals = ips
        .iter()
        .map(|ip| zone.any_address_record(&target, *ip))
        .collect();
    Ok(zone.answer_or_nodata(answers, additionals))
}

fn srv_headless(
    zone: &Zone,
    qname: &Name,
    ns: &str,
    svc: &str,
    endpoints: &[EndpointEntry],
    port_filter: Option<&dyn Fn(&PortEntry) -> bool>,
) -> Result<Lookup, ProtoError> {
    let mut targets = Vec::new();
    for endpoint in endpoints {
        for port in endpoint
            .ports
            .iter()
            .filter(|p| port_filter.is_none_or(|f| f(p)))
        {
            targets.push((endpoint, port.port));
        }
    }
    let weight = srv_weight(targets.len());
    let mut answers = Vec::new();
    let mut additionals = Vec::new();
    for (endpoint, port) in targets {
        let target = zone.name_in_zone(&format!("{}.{svc}.{ns}.svc", endpoint.host))?;
        answers.push(zone.record(qname, RData::SRV(SRV::new(0, weight, port, target.clone()))));
        let address = zone.any_address_record(&target, endpoint.ip);
        if !additionals.contains(&address) {
            additionals.push(address);
        }
    }
    Ok(zone.answer_or_nodata(answers, additionals))
}

fn external_name(
    index: &ClusterIndex,
    zone: &Zone,
    qname: &Name,
    qtype: RecordType,
    target: &str,
) -> Result<Lookup, ProtoError> {
    let target_name = fqdn(target)?;
    let mut answer = Answer::records(
        vec![zone.record(qname, RData::CNAME(CNAME(target_name.clone())))],
        Vec::new(),
    );
    if matches!(qtype, RecordType::A | RecordType::AAAA) {
        if zone.relative(&lower_labels(&target_name)).is_some() {
            // One level of chasing inside the zone (an ExternalName pointing at
            // another ExternalName is left to the client).
            let inner = index_lookup_no_chase(index, zone, &target_name, qtype)?;
            if let Lookup::Answer(inner) = inner {
                answer.answers.extend(
                    inner
                        .answers
                        .into_iter()
                        .filter(|r| r.record_type() == qtype),
                );
            }
        } else {
            answer.chase = Some(target_name);
        }
    }
    Ok(Lookup::Answer(answer))
}

fn index_lookup_no_chase(
    index: &ClusterIndex,
    zone: &Zone,
    qname: &Name,
    qtype: RecordType,
) -> Result<Lookup, ProtoError> {
    let labels = lower_labels(qname);
    let Some(relative) = zone.relative(&labels) else {
        return Ok(Lookup::Forward);
    };
    if let [svc, ns, kind] = relative {
        if kind == "svc" {
            if let Some(entry) = index.service(ns, svc) {
                if !matches!(entry.kind, ServiceKind::ExternalName(_)) {
                    return service_lookup(index, zone, qname, qtype, ns, svc, entry);
                }
            }
        }
    }
    Ok(zone.nxdomain())
}

fn reverse_lookup(
    index: &ClusterIndex,
    zone: &Zone,
    qname: &Name,
    qtype: RecordType,
) -> Result<Lookup, ProtoError> {
    if qtype != RecordType::PTR {
        return Ok(Lookup::Forward);
    }
    let mut fq = qname.clone();
    fq.set_fqdn(true);
    let Ok(net) = fq.parse_arpa_name() else {
        return Ok(Lookup::Forward);
    };
    let full = match net.addr() {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    if net.prefix_len() != full {
        return Ok(Lookup::Forward);
    }
    let Some(entries) = index.reverse(net.addr()) else {
        return Ok(Lookup::Forward);
    };
    let mut answers = Vec::new();
    for entry in entries {
        let target = match &entry.endpoint {
            Some(host) => {
                zone.name_in_zone(&format!("{host}.{}.{}.svc", entry.service, entry.namespace))?
            }
            None => zone.service_fqdn(&entry.namespace, &entry.service)?,
        };
        answers.push(zone.record(qname, RData::PTR(PTR(target))));
    }
    Ok(Lookup::Answer(Answer::records(answers, Vec::new())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::tests::sample;

    fn zone() -> Zone {
        Zone::new("cluster.local", 5, 1).unwrap()
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn answer(qname: &str, qtype: RecordType) -> Answer {
        match lookup(&sample(), &zone(), &name(qname), qtype).unwrap() {
            Lookup::Answer(a) => a,
            Lookup::Forward => panic!("{qname} {qtype} was forwarded"),
        }
    }

    fn rdatas(records: &[Record]) -> Vec<String> {
        records.iter().map(|r| r.data.to_string()).collect()
    }

    fn assert_nxdomain(qname: &str, qtype: RecordType) {
        let a = answer(qname, qtype);
        assert_eq!(a.rcode, ResponseCode::NXDomain, "{qname} {qtype}");
        assert!(a.answers.is_empty());
        assert_eq!(a.authorities.len(), 1);
        assert_eq!(a.authorities[0].record_type(), RecordType::SOA);
    }

    fn assert_nodata(qname: &str, qtype: RecordType) {
        let a = answer(qname, qtype);
        assert_eq!(a.rcode, ResponseCode::NoError, "{qname} {qtype}");
        assert!(a.answers.is_empty(), "{qname} {qtype}: {:?}", a.answers);
        assert_eq!(a.authorities[0].record_type(), RecordType::SOA);
    }

    #[test]
    fn cluster_ip_service_a_keeps_query_case_and_ttl() {
        let a = answer("Web.Default.svc.Cluster.Local.", RecordType::A);
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert_eq!(rdatas(&a.answers), ["10.254.0.20"]);
        assert_eq!(
            a.answers[0].name.to_ascii(),
            "Web.Default.svc.Cluster.Local."
        );
        assert_eq!(a.answers[0].ttl, 5);
        assert!(a.authorities.is_empty());
    }

    #[test]
    fn aaaa_for_ipv4_service_is_nodata() {
        assert_nodata("web.default.svc.cluster.local.", RecordType::AAAA);
        assert_nodata("web.default.svc.cluster.local.", RecordType::TXT);
    }

    #[test]
    fn headless_answers_ready_endpoints_and_hostnames() {
        let a = answer("db.prod.svc.cluster.local.", RecordType::A);
        assert_eq!(rdatas(&a.answers), ["10.1.0.5", "10.1.0.6"]);
        let a = answer("db-0.db.prod.svc.cluster.local.", RecordType::A);
        assert_eq!(rdatas(&a.answers), ["10.1.0.5"]);
        let a = answer("10-1-0-6.db.prod.svc.cluster.local.", RecordType::A);
        assert_eq!(rdatas(&a.answers), ["10.1.0.6"]);
        assert_nxdomain("10-1-0-7.db.prod.svc.cluster.local.", RecordType::A);
        // Endpoint names work for ClusterIP services too.
        let a = answer("10-1-1-9.web.default.svc.cluster.local.", RecordType::A);
        assert_eq!(rdatas(&a.answers), ["10.1.1.9"]);
        assert_nxdomain("empty.prod.svc.cluster.local.", RecordType::A);
    }

    #[test]
    fn srv_for_named_ports() {
        let a = answer("_http._tcp.web.default.svc.cluster.local.", RecordType::SRV);
        assert_eq!(
            rdatas(&a.answers),
            ["0 100 80 web.default.svc.cluster.local."]
        );
        assert_eq!(rdatas(&a.additionals), ["10.254.0.20"]);
        assert_eq!(
            a.additionals[0].name.to_ascii(),
            "web.default.svc.cluster.local."
        );
        let a = answer("_dns._udp.web.default.svc.cluster.local.", RecordType::SRV);
        assert_eq!(
            rdatas(&a.answers),
            ["0 100 53 web.default.svc.cluster.local."]
        );
        assert_nxdomain("_dns._tcp.web.default.svc.cluster.local.", RecordType::SRV);
        assert_nxdomain("_nope._tcp.web.default.svc.cluster.local.", RecordType::SRV);
        // A bare service name answers SRV for every port.
        let a = answer("web.default.svc.cluster.local.", RecordType::SRV);
        assert_eq!(a.answers.len(), 3);
        assert_eq!(
            rdatas(&a.answers)[0],
            "0 33 80 web.default.svc.cluster.local."
        );
    }

    #[test]
    fn srv_for_headless_targets_endpoints() {
        let a = answer("_pg._tcp.db.prod.svc.cluster.local.", RecordType::SRV);
        assert_eq!(
            rdatas(&a.answers),
            [
                "0 50 5432 db-0.db.prod.svc.cluster.local.",
                "0 50 5432 10-1-0-6.db.prod.svc.cluster.local."
            ]
        );
        assert_eq!(rdatas(&a.additionals), ["10.1.0.5", "10.1.0.6"]);
        assert_eq!(
            a.additionals[0].name.to_ascii(),
            "db-0.db.prod.svc.cluster.local."
        );
    }

    #[test]
    fn external_name_is_a_cname_chased_upstream() {
        let a = answer("ext.default.svc.cluster.local.", RecordType::A);
        assert_eq!(rdatas(&a.answers), ["example.com."]);
        assert_eq!(a.answers[0].record_type(), RecordType::CNAME);
        assert_eq!(a.chase, Some(name("example.com.")));
        let a = answer("ext.default.svc.cluster.local.", RecordType::CNAME);
        assert_eq!(a.chase, None);
    }

    #[test]
    fn external_name_inside_the_zone_is_chased_locally() {
        use serde_json::json;
        let services = [
            crate::index::tests::service(json!({"metadata": {"name": "alias", "namespace": "a"},
                "spec": {"type": "ExternalName", "externalName": "web.default.svc.cluster.local"}})),
            crate::index::tests::service(
                json!({"metadata": {"name": "web", "namespace": "default"},
                "spec": {"clusterIP": "10.254.0.20"}}),
            ),
        ];
        let index = ClusterIndex::build(&services, []);
        let Lookup::Answer(a) = lookup(
            &index,
            &zone(),
            &name("alias.a.svc.cluster.local."),
            RecordType::A,
        )
        .unwrap() else {
            panic!("forwarded")
        };
        assert_eq!(
            rdatas(&a.answers),
            ["web.default.svc.cluster.local.", "10.254.0.20"]
        );
        assert_eq!(a.chase, None);
    }

    #[test]
    fn pod_names() {
        let a = answer("10-1-2-3.anything.pod.cluster.local.", RecordType::A);
        assert_eq!(rdatas(&a.answers), ["10.1.2.3"]);
        let a = answer("fd00--5.ns.pod.cluster.local.", RecordType::AAAA);
        assert_eq!(rdatas(&a.answers), ["fd00::5"]);
        assert_nodata("10-1-2-3.ns.pod.cluster.local.", RecordType::AAAA);
        assert_nxdomain("not-an-ip.ns.pod.cluster.local.", RecordType::A);
    }

    #[test]
    fn unknown_names_in_zone_are_nxdomain_with_soa() {
        assert_nxdomain("nope.default.svc.cluster.local.", RecordType::A);
        assert_nxdomain("web.nope.svc.cluster.local.", RecordType::A);
        assert_nxdomain("nope.svc.cluster.local.", RecordType::A);
        assert_nxdomain("google.com.default.svc.cluster.local.", RecordType::A);
        assert_nxdomain("x.cluster.local.", RecordType::A);
        assert_nxdomain("a.b.c.web.default.svc.cluster.local.", RecordType::A);
        let a = answer("nope.default.svc.cluster.local.", RecordType::A);
        assert_eq!(
            rdatas(&a.authorities),
            ["ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5"]
        );
        assert_eq!(a.authorities[0].ttl, 5);
        assert_nodata("default.svc.cluster.local.", RecordType::A);
        assert_nodata("svc.cluster.local.", RecordType::A);
        assert_nodata("cluster.local.", RecordType::A);
    }

    #[test]
    fn schema_version_txt() {
        let a = answer("dns-version.cluster.local.", RecordType::TXT);
        assert_eq!(rdatas(&a.answers), ["1.1.0"]);
        assert_nodata("dns-version.cluster.local.", RecordType::A);
    }

    #[test]
    fn apex_soa_and_ns() {
        let a = answer("cluster.local.", RecordType::SOA);
        assert_eq!(a.answers[0].record_type(), RecordType::SOA);
        let a = answer("cluster.local.", RecordType::NS);
        assert_eq!(rdatas(&a.answers), ["ns.dns.cluster.local."]);
    }

    #[test]
    fn ptr_for_cluster_ips_and_endpoints() {
        let a = answer("20.0.254.10.in-addr.arpa.", RecordType::PTR);
        assert_eq!(rdatas(&a.answers), ["web.default.svc.cluster.local."]);
        let a = answer("5.0.1.10.in-addr.arpa.", RecordType::PTR);
        assert_eq!(rdatas(&a.answers), ["db-0.db.prod.svc.cluster.local."]);
        let a = answer("6.0.1.10.in-addr.arpa.", RecordType::PTR);
        assert_eq!(rdatas(&a.answers), ["10-1-0-6.db.prod.svc.cluster.local."]);
    }

    #[test]
    fn everything_else_is_forwarded() {
        let index = sample();
        let zone = zone();
        for (qname, qtype) in [
            ("example.com.", RecordType::A),
            ("cluster.local.example.com.", RecordType::A),
            ("local.", RecordType::A),
            ("9.9.9.10.in-addr.arpa.", RecordType::PTR),
            ("20.0.254.10.in-addr.arpa.", RecordType::A),
            ("10.in-addr.arpa.", RecordType::PTR),
        ] {
            assert_eq!(
                lookup(&index, &zone, &name(qname), qtype).unwrap(),
                Lookup::Forward,
                "{qname}"
            );
        }
        assert!(zone.is_authoritative(&name("web.default.svc.cluster.local.")));
        assert!(zone.is_authoritative(&name("9.9.9.10.in-addr.arpa.")));
        assert!(!zone.is_authoritative(&name("example.com.")));
    }

    #[test]
    fn other_domains() {
        let zone = Zone::new("corp.example", 30, 1).unwrap();
        let Lookup::Answer(a) = lookup(
            &sample(),
            &zone,
            &name("web.default.svc.corp.example."),
            RecordType::A,
        )
        .unwrap() else {
            panic!("forwarded")
        };
        assert_eq!(a.answers[0].ttl, 30);
        assert_eq!(
            lookup(
                &sample(),
                &zone,
                &name("web.default.svc.cluster.local."),
                RecordType::A
            )
            .unwrap(),
            Lookup::Forward
        );
    }
}
