//! nftables ruleset generation (pure): [`ProxyState`] → one `nft -f` transaction
//! that replaces table `ip kube-proxy` atomically.
//!
//! Layout follows upstream's nftables proxier: base chains `filter-*` (reject for
//! services without endpoints) and `nat-*` jumping to `services`, which looks up
//! the verdict maps `service-ips` (`ipv4_addr . inet_proto . inet_service`) and
//! `service-nodeports`; per-service chains `service-<hash>-<ns>/<name>/<proto>/<port>`
//! load-balance with a cascade of `numgen random mod N-i == 0 goto` rules (no
//! per-service anonymous vmap: the kernel allocates those in quadratic time) over
//! per-endpoint chains
//! `endpoint-<hash>-<id>__<ip>/<port>` doing the DNAT; packets marked 0x4000 are
//! masqueraded in `nat-postrouting`.

use std::fmt::Write;

use crate::backend::SyncConfig;
use crate::hash::hash_prefix;
use crate::nft_rule::{random_cascade, MapElement, Rule};
use crate::state::{Endpoint, ProxyState, ServicePort};

pub const TABLE: &str = "kube-proxy";
pub const FAMILY: &str = "ip";
pub const MASQ_MARK: &str = "0x4000";

/// `service-<hash>-<ns>/<name>/<proto>/<port>`.
pub fn service_chain(sp: &ServicePort) -> String {
    let id = sp.id();
    format!("service-{}-{}", hash_prefix(&id, 8), id)
}

/// `external-<hash>-<id>`: NodePort / externalIP entry point.
pub fn external_chain(sp: &ServicePort) -> String {
    let id = sp.id();
    format!("external-{}-{}", hash_prefix(&id, 8), id)
}

/// `endpoint-<hash>-<id>__<ip>/<port>`.
pub fn endpoint_chain(sp: &ServicePort, ep: &Endpoint) -> String {
    let id = format!("{}__{}/{}", sp.id(), ep.ip, ep.port);
    format!("endpoint-{}-{}", hash_prefix(&id, 8), id)
}

/// `affinity-<hash>-<id>__<ip>/<port>`: the per-endpoint client set for sessionAffinity.
pub fn affinity_set(sp: &ServicePort, ep: &Endpoint) -> String {
    let id = format!("{}__{}/{}", sp.id(), ep.ip, ep.port);
    format!("affinity-{}-{}", hash_prefix(&id, 8), id)
}

struct Out {
    text: String,
    rules: usize,
}

impl Out {
    fn line(&mut self, s: &str) {
        self.text.push_str(s);
        self.text.push('\n');
    }
    fn chain(&mut self, name: &str) {
        let _ = writeln!(self.text, "add chain {FAMILY} {TABLE} {name}");
    }
    fn base_chain(&mut self, name: &str, kind: &str, hook: &str, priority: i32) {
        let _ = writeln!(
            self.text,
            "add chain {FAMILY} {TABLE} {name} {{ type {kind} hook {hook} priority {priority} ; }}"
        );
    }
    fn rule(&mut self, chain: &str, rule: &str) {
        self.rules += 1;
        let _ = writeln!(self.text, "add rule {FAMILY} {TABLE} {chain} {rule}");
    }
}

/// The objects one service port owns in the table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fragment {
    /// Affinity sets: (name, timeout seconds).
    pub sets: Vec<(String, u32)>,
    /// Regular chains and their rules, in creation order.
    pub chains: Vec<(String, Vec<Rule>)>,
    /// Dispatch map elements.
    pub elements: Vec<MapElement>,
}

impl Fragment {
    fn chain(&mut self, name: &str) {
        self.chains.push((name.to_string(), Vec::new()));
    }

    fn rule(&mut self, chain: &str, rule: Rule) {
        if let Some((_, rules)) = self.chains.iter_mut().rev().find(|(name, _)| name == chain) {
            rules.push(rule);
        }
    }

    fn element(
        &mut self,
        map: &'static str,
        sp: &ServicePort,
        ip: Option<std::net::Ipv4Addr>,
        port: u16,
        chain: &str,
    ) {
        self.elements.push(MapElement {
            map,
            ip,
            protocol: sp.protocol,
            port,
            chain: chain.to_string(),
        });
    }

    fn set(&mut self, name: &str, timeout: u32) {
        self.sets.push((name.to_string(), timeout));
    }

    pub fn rule_count(&self) -> usize {
        self.chains.iter().map(|(_, rules)| rules.len()).sum()
    }

    /// Appends the `add` commands creating everything in this fragment.
    pub fn render_add(&self, out: &mut String) {
        for (name, timeout) in &self.sets {
            let _ = writeln!(out, "{}", set_command(name, *timeout));
        }
        for (name, _) in &self.chains {
            let _ = writeln!(out, "add chain {FAMILY} {TABLE} {name}");
        }
        for (name, rules) in &self.chains {
            for rule in rules {
                let _ = writeln!(out, "add rule {FAMILY} {TABLE} {name} {rule}");
            }
        }
        for e in &self.elements {
            let _ = writeln!(
                out,
                "add element {FAMILY} {TABLE} {} {{ {} : goto {} }}",
                e.map,
                e.key(),
                e.chain
            );
        }
    }
}

/// `add set` for a sessionAffinity set.
pub fn set_command(name: &str, timeout: u32) -> String {
    format!("add set {FAMILY} {TABLE} {name} {{ type ipv4_addr ; flags dynamic,timeout ; timeout {timeout}s ; }}")
}

/// The result of [`ruleset`]: the transaction and the number of rules in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    pub text: String,
    pub rules: usize,
}

/// The full transaction for `state`: create-then-delete-then-create the table, so
/// the result never depends on what was there before, all in one atomic `nft -f`.
pub fn ruleset(state: &ProxyState, config: &SyncConfig) -> Ruleset {
    let mut o = Out {
        text: String::new(),
        rules: 0,
    };
    let table = format!("{FAMILY} {TABLE}");
    o.line(&format!(
        "add table {table} {{ comment \"rules for kube-proxy\" ; }}"
    ));
    o.line(&format!("delete table {table}"));
    o.line(&format!(
        "add table {table} {{ comment \"rules for kube-proxy\" ; }}"
    ));

    // Maps.
    o.line(&format!(
        "add map {table} service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict ; comment \"ClusterIP and ExternalIP traffic\" ; }}"
    ));
    o.line(&format!(
        "add map {table} service-nodeports {{ type inet_proto . inet_service : verdict ; comment \"NodePort traffic\" ; }}"
    ));
    o.line(&format!(
        "add map {table} no-endpoint-services {{ type ipv4_addr . inet_proto . inet_service : verdict ; comment \"vmap to drop or reject packets to services with no endpoints\" ; }}"
    ));
    o.line(&format!(
        "add map {table} no-endpoint-nodeports {{ type inet_proto . inet_service : verdict ; comment \"vmap to drop or reject packets to service nodeports with no endpoints\" ; }}"
    ));

    // Fixed chains.
    o.base_chain("filter-prerouting", "filter", "prerouting", -110);
    o.base_chain("filter-input", "filter", "input", -110);
    o.base_chain("filter-forward", "filter", "forward", -110);
    o.base_chain("filter-output", "filter", "output", -110);
    o.base_chain("nat-prerouting", "nat", "prerouting", -100);
    o.base_chain("nat-output", "nat", "output", -100);
    o.base_chain("nat-postrouting", "nat", "postrouting", 100);
    for chain in [
        "service-endpoints-check",
        "nodeport-endpoints-check",
        "reject-chain",
        "services",
        "masquerading",
        "mark-for-masquerade",
    ] {
        o.chain(chain);
    }
    o.rule("reject-chain", "reject");
    o.rule(
        "mark-for-masquerade",
        &format!("mark set mark or {MASQ_MARK}"),
    );
    o.rule("masquerading", &format!("mark and {MASQ_MARK} == 0 return"));
    o.rule("masquerading", &format!("mark set mark xor {MASQ_MARK}"));
    o.rule("masquerading", "masquerade fully-random");
    for chain in ["filter-prerouting", "filter-output"] {
        o.rule(chain, "ct state new jump service-endpoints-check");
    }
    o.rule("filter-input", "ct state new jump nodeport-endpoints-check");
    o.rule(
        "filter-forward",
        "ct state new jump service-endpoints-check",
    );
    o.rule(
        "service-endpoints-check",
        "ip daddr . meta l4proto . th dport vmap @no-endpoint-services",
    );
    let nodeport_match = nodeport_match(config);
    o.rule(
        "nodeport-endpoints-check",
        &format!("{nodeport_match} meta l4proto . th dport vmap @no-endpoint-nodeports"),
    );
    o.rule("nat-prerouting", "jump services");
    o.rule("nat-output", "jump services");
    o.rule("nat-postrouting", "jump masquerading");
    o.rule(
        "services",
        "ip daddr . meta l4proto . th dport vmap @service-ips",
    );
    o.rule(
        "services",
        &format!("{nodeport_match} meta l4proto . th dport vmap @service-nodeports"),
    );

    for sp in &state.services {
        let fragment = service_fragment(sp, config);
        o.rules += fragment.rule_count();
        fragment.render_add(&mut o.text);
    }
    Ruleset {
        text: o.text,
        rules: o.rules,
    }
}

/// The match for "addressed to this node" used for NodePorts.
fn nodeport_match(config: &SyncConfig) -> String {
    if config.nodeport_addresses.is_empty() {
        "fib daddr type local ip daddr != 127.0.0.0/8".to_string()
    } else {
        let nets: Vec<String> = config
            .nodeport_addresses
            .iter()
            .map(|n| n.to_string())
            .collect();
        format!("ip daddr {{ {} }}", nets.join(", "))
    }
}

/// The chains, sets and map elements of one service port.
pub fn service_fragment(sp: &ServicePort, config: &SyncConfig) -> Fragment {
    let mut f = Fragment::default();
    service_rules(&mut f, sp, config);
    f
}

fn service_rules(o: &mut Fragment, sp: &ServicePort, config: &SyncConfig) {
    let Some(cluster_ip) = sp.cluster_ip else {
        return;
    };
    let cluster_eps = sp.cluster_endpoints();
    let external_eps = sp.external_endpoints();
    let svc_chain = service_chain(sp);
    let ext_chain = external_chain(sp);
    let has_external = sp.node_port.is_some() || !sp.external_ips.is_empty();

    // ClusterIP.
    if cluster_eps.is_empty() {
        o.element(
            "no-endpoint-services",
            sp,
            Some(cluster_ip),
            sp.port,
            "reject-chain",
        );
    } else {
        endpoint_chains(o, sp, &svc_chain, &cluster_eps);
        let masq = if config.masquerade_all {
            Some(None)
        } else {
            config.cluster_cidr.map(Some)
        };
        if let Some(except) = masq {
            o.rule(
                &svc_chain,
                Rule::ServiceMasq {
                    ip: cluster_ip,
                    protocol: sp.protocol,
                    port: sp.port,
                    except,
                },
            );
        }
        balance(o, sp, &svc_chain, &cluster_eps);
        o.element("service-ips", sp, Some(cluster_ip), sp.port, &svc_chain);
    }

    // NodePort and externalIPs.
    if !has_external {
        return;
    }
    if external_eps.is_empty() {
        for ip in &sp.external_ips {
            o.element(
                "no-endpoint-services",
                sp,
                Some(*ip),
                sp.port,
                "reject-chain",
            );
        }
        if let Some(node_port) = sp.node_port {
            o.element("no-endpoint-nodeports", sp, None, node_port, "reject-chain");
        }
        return;
    }
    o.chain(&ext_chain);
    if sp.external_policy_local {
        // Source IP is preserved (no masquerade); only local endpoints are used.
        ensure_endpoint_chains(o, sp, &external_eps, &cluster_eps);
        balance(o, sp, &ext_chain, &external_eps);
    } else {
        o.rule(&ext_chain, Rule::MarkMasq);
        if cluster_eps == external_eps && !cluster_eps.is_empty() {
            o.rule(
                &ext_chain,
                Rule::Goto {
                    chain: svc_chain.clone(),
                },
            );
        } else {
            ensure_endpoint_chains(o, sp, &external_eps, &cluster_eps);
            balance(o, sp, &ext_chain, &external_eps);
        }
    }
    for ip in &sp.external_ips {
        o.element("service-ips", sp, Some(*ip), sp.port, &ext_chain);
    }
    if let Some(node_port) = sp.node_port {
        o.element("service-nodeports", sp, None, node_port, &ext_chain);
    }
}

/// Creates endpoint chains for `wanted` endpoints not already created for `existing`.
fn ensure_endpoint_chains(
    o: &mut Fragment,
    sp: &ServicePort,
    wanted: &[Endpoint],
    existing: &[Endpoint],
) {
    let missing: Vec<Endpoint> = wanted
        .iter()
        .copied()
        .filter(|e| !existing.contains(e))
        .collect();
    endpoint_chain_rules(o, sp, &missing);
}

fn endpoint_chains(o: &mut Fragment, sp: &ServicePort, svc_chain: &str, eps: &[Endpoint]) {
    o.chain(svc_chain);
    endpoint_chain_rules(o, sp, eps);
}

fn endpoint_chain_rules(o: &mut Fragment, sp: &ServicePort, eps: &[Endpoint]) {
    for ep in eps {
        let chain = endpoint_chain(sp, ep);
        o.chain(&chain);
        if let Some(timeout) = sp.affinity_timeout {
            let set = affinity_set(sp, ep);
            o.set(&set, timeout);
        }
        // Hairpin: an endpoint reaching itself through the service must be masqueraded.
        o.rule(&chain, Rule::SourceMasq { ip: ep.ip });
        if sp.affinity_timeout.is_some() {
            o.rule(
                &chain,
                Rule::AffinityUpdate {
                    set: affinity_set(sp, ep),
                },
            );
        }
        o.rule(
            &chain,
            Rule::Dnat {
                protocol: sp.protocol,
                ip: ep.ip,
                port: ep.port,
            },
        );
    }
}

/// Session affinity lookups, then the random cascade over endpoint chains.
fn balance(o: &mut Fragment, sp: &ServicePort, chain: &str, eps: &[Endpoint]) {
    if sp.affinity_timeout.is_some() {
        for ep in eps {
            o.rule(
                chain,
                Rule::AffinityGoto {
                    set: affinity_set(sp, ep),
                    chain: endpoint_chain(sp, ep),
                },
            );
        }
    }
    let targets: Vec<String> = eps.iter().map(|ep| endpoint_chain(sp, ep)).collect();
    for rule in random_cascade(&targets) {
        o.rule(chain, rule);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Protocol;

    pub(crate) fn sp(eps: &[(&str, u16)]) -> ServicePort {
        ServicePort {
            namespace: "ns1".into(),
            name: "svc1".into(),
            port_name: "p80".into(),
            protocol: Protocol::Tcp,
            cluster_ip: Some("172.30.0.41".parse().unwrap()),
            port: 80,
            node_port: None,
            external_ips: vec![],
            affinity_timeout: None,
            external_policy_local: false,
            internal_policy_local: false,
            endpoints: eps
                .iter()
                .map(|(ip, port)| Endpoint {
                    ip: ip.parse().unwrap(),
                    port: *port,
                    local: false,
                })
                .collect(),
        }
    }

    fn service_lines(text: &str) -> Vec<&str> {
        // Everything after the fixed preamble (the first service-related line).
        let start = text
            .lines()
            .position(|l| l.contains("ns1/svc1"))
            .unwrap_or(text.lines().count());
        text.lines().skip(start).collect()
    }

    #[test]
    fn fixed_preamble() {
        let r = ruleset(&ProxyState::default(), &SyncConfig::default());
        let expected = "\
add table ip kube-proxy { comment \"rules for kube-proxy\" ; }
delete table ip kube-proxy
add table ip kube-proxy { comment \"rules for kube-proxy\" ; }
add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment \"ClusterIP and ExternalIP traffic\" ; }
add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment \"NodePort traffic\" ; }
add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment \"vmap to drop or reject packets to services with no endpoints\" ; }
add map ip kube-proxy no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment \"vmap to drop or reject packets to service nodeports with no endpoints\" ; }
add chain ip kube-proxy filter-prerouting { type filter hook prerouting priority -110 ; }
add chain ip kube-proxy filter-input { type filter hook input priority -110 ; }
add chain ip kube-proxy filter-forward { type filter hook forward priority -110 ; }
add chain ip kube-proxy filter-output { type filter hook output priority -110 ; }
add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }
add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }
add chain ip kube-proxy service-endpoints-check
add chain ip kube-proxy nodeport-endpoints-check
add chain ip kube-proxy reject-chain
add chain ip kube-proxy services
add chain ip kube-proxy masquerading
add chain ip kube-proxy mark-for-masquerade
add rule ip kube-proxy reject-chain reject
add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000
add rule ip kube-proxy masquerading mark and 0x4000 == 0 return
add rule ip kube-proxy masquerading mark set mark xor 0x4000
add rule ip kube-proxy masquerading masquerade fully-random
add rule ip kube-proxy filter-prerouting ct state new jump service-endpoints-check
add rule ip kube-proxy filter-output ct state new jump service-endpoints-check
add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check
add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check
add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services
add rule ip kube-proxy nodeport-endpoints-check fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports
add rule ip kube-proxy nat-prerouting jump services
add rule ip kube-proxy nat-output jump services
add rule ip kube-proxy nat-postrouting jump masquerading
add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
add rule ip kube-proxy services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports
";
        assert_eq!(r.text, expected);
        assert_eq!(r.rules, 16);
    }

    #[test]
    fn cluster_ip_with_two_endpoints() {
        let state = ProxyState {
            services: vec![sp(&[("10.180.0.1", 8080), ("10.180.0.2", 8080)])],
        };
        let config = SyncConfig {
            cluster_cidr: Some("10.0.0.0/8".parse().unwrap()),
            ..Default::default()
        };
        let r = ruleset(&state, &config);
        let svc = service_chain(&state.services[0]);
        let ep1 = endpoint_chain(&state.services[0], &state.services[0].endpoints[0]);
        let ep2 = endpoint_chain(&state.services[0], &state.services[0].endpoints[1]);
        assert!(
            svc.starts_with("service-") && svc.ends_with("-ns1/svc1/tcp/p80"),
            "{svc}"
        );
        assert!(ep1.ends_with("-ns1/svc1/tcp/p80__10.180.0.1/8080"), "{ep1}");
        let expected = format!(
            "\
add chain ip kube-proxy {svc}
add chain ip kube-proxy {ep1}
add chain ip kube-proxy {ep2}
add rule ip kube-proxy {svc} ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy {svc} numgen random mod 2 == 0 goto {ep1}
add rule ip kube-proxy {svc} goto {ep2}
add rule ip kube-proxy {ep1} ip saddr 10.180.0.1 jump mark-for-masquerade
add rule ip kube-proxy {ep1} meta l4proto tcp dnat to 10.180.0.1:8080
add rule ip kube-proxy {ep2} ip saddr 10.180.0.2 jump mark-for-masquerade
add rule ip kube-proxy {ep2} meta l4proto tcp dnat to 10.180.0.2:8080
add element ip kube-proxy service-ips {{ 172.30.0.41 . tcp . 80 : goto {svc} }}"
        );
        assert_eq!(service_lines(&r.text).join("\n"), expected);
        assert_eq!(r.rules, 16 + 7);
    }

    #[test]
    fn no_endpoints_rejected_including_nodeport() {
        let mut s = sp(&[]);
        s.node_port = Some(30080);
        let r = ruleset(&ProxyState { services: vec![s] }, &SyncConfig::default());
        let tail: Vec<&str> = r
            .text
            .lines()
            .skip_while(|l| !l.starts_with("add element"))
            .collect();
        assert_eq!(
            tail,
            vec![
                "add element ip kube-proxy no-endpoint-services { 172.30.0.41 . tcp . 80 : goto reject-chain }",
                "add element ip kube-proxy no-endpoint-nodeports { tcp . 30080 : goto reject-chain }",
            ]
        );
        assert!(
            !r.text.contains("add element ip kube-proxy service-ips"),
            "no service-ips element without endpoints"
        );
    }

    #[test]
    fn nodeport_external_ip_and_masquerade_all() {
        let mut s = sp(&[("10.180.0.1", 8080)]);
        s.node_port = Some(30080);
        s.external_ips = vec!["192.0.2.7".parse().unwrap()];
        let config = SyncConfig {
            masquerade_all: true,
            nodeport_addresses: vec!["192.168.50.0/24".parse().unwrap()],
            ..Default::default()
        };
        let r = ruleset(
            &ProxyState {
                services: vec![s.clone()],
            },
            &config,
        );
        let svc = service_chain(&s);
        let ext = external_chain(&s);
        assert!(r.text.contains(&format!("add rule ip kube-proxy {svc} ip daddr 172.30.0.41 tcp dport 80 jump mark-for-masquerade\n")));
        assert!(r.text.contains(&format!("add rule ip kube-proxy {ext} jump mark-for-masquerade\nadd rule ip kube-proxy {ext} goto {svc}\n")));
        assert!(r.text.contains(&format!(
            "add element ip kube-proxy service-ips {{ 192.0.2.7 . tcp . 80 : goto {ext} }}"
        )));
        assert!(r.text.contains(&format!(
            "add element ip kube-proxy service-nodeports {{ tcp . 30080 : goto {ext} }}"
        )));
        assert!(r.text.contains("add rule ip kube-proxy services ip daddr { 192.168.50.0/24 } meta l4proto . th dport vmap @service-nodeports\n"));
    }

    #[test]
    fn session_affinity_sets_and_lookups() {
        let mut s = sp(&[("10.180.0.1", 8080)]);
        s.affinity_timeout = Some(600);
        let r = ruleset(
            &ProxyState {
                services: vec![s.clone()],
            },
            &SyncConfig::default(),
        );
        let ep = endpoint_chain(&s, &s.endpoints[0]);
        let set = affinity_set(&s, &s.endpoints[0]);
        let svc = service_chain(&s);
        let expected = format!(
            "\
add set ip kube-proxy {set} {{ type ipv4_addr ; flags dynamic,timeout ; timeout 600s ; }}
add chain ip kube-proxy {svc}
add chain ip kube-proxy {ep}
add rule ip kube-proxy {svc} ip saddr @{set} goto {ep}
add rule ip kube-proxy {svc} goto {ep}
add rule ip kube-proxy {ep} ip saddr 10.180.0.1 jump mark-for-masquerade
add rule ip kube-proxy {ep} update @{set} {{ ip saddr }}
add rule ip kube-proxy {ep} meta l4proto tcp dnat to 10.180.0.1:8080
"
        );
        assert!(r.text.contains(&expected), "{}", r.text);
    }

    #[test]
    fn external_policy_local_uses_only_local_endpoints() {
        let mut s = sp(&[("10.180.0.1", 8080), ("10.180.0.2", 8080)]);
        s.endpoints[1].local = true;
        s.node_port = Some(30080);
        s.external_policy_local = true;
        let r = ruleset(
            &ProxyState {
                services: vec![s.clone()],
            },
            &SyncConfig::default(),
        );
        let ext = external_chain(&s);
        let local = endpoint_chain(&s, &s.endpoints[1]);
        assert!(
            r.text
                .contains(&format!("add rule ip kube-proxy {ext} goto {local}\n")),
            "{}",
            r.text
        );
        assert!(!r.text.contains(&format!(
            "add rule ip kube-proxy {ext} jump mark-for-masquerade"
        )));
    }
}
