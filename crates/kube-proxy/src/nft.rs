//! nftables ruleset generation (pure): [`ProxyState`] → one `nft -f` transaction
//! that replaces table `ip kube-proxy` atomically.
//!
//! Layout follows upstream's nftables proxier: base chains `filter-*` (reject for
//! services without endpoints) and `nat-*` jumping to `services`, which looks up
//! the verdict maps `service-ips` (`ipv4_addr . inet_proto . inet_service`) and
//! `service-nodeports`; per-service chains `service-<hash>-<ns>/<name>/<proto>/<port>`
//! (and `external-<hash>-...` for NodePorts / externalIPs). Unlike upstream, a
//! balancing chain does not jump to per-endpoint chains: it DNATs to
//! `numgen random mod N offset K map @endpoints`, a slot of the one shared data
//! map `endpoints` (slot → address . port) where the chain owns slots K..K+N. So
//! replacing an endpoint only replaces map elements: no rule and no verdict
//! changes, which would make the kernel re-validate every chain reachable from the
//! base chains (~100 ms at 10 000 services). Endpoints reaching themselves through
//! a service are masqueraded through the shared `hairpin` set (`<ip> . <ip>`,
//! checked after DNAT in `masquerading`). sessionAffinity services keep upstream's
//! per-endpoint chains `endpoint-<hash>-<id>__<ip>/<port>` (their DNAT and the
//! client set update), picked by a cascade of `numgen random mod N-i == 0 goto`
//! rules after the affinity lookups. Packets marked 0x4000 are masqueraded in
//! `nat-postrouting`.

use std::fmt::Write;

use crate::backend::SyncConfig;
use crate::hash::hash_prefix;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use crate::nft_rule::{
    endpoint_map, endpoint_shard, random_cascade, MapElement, Rule, Slot, ENDPOINT_MAPS,
    HAIRPIN_SET,
};
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
    /// Elements of the shared endpoint map (slots of this port's balancing chains).
    pub slots: Vec<Slot>,
    /// Endpoint addresses this port puts in the shared hairpin set (no duplicates).
    pub hairpin: Vec<Ipv4Addr>,
}

/// Hands out ranges of the shared endpoint map's slots to balancing chains. A
/// chain keeps its range while its endpoint count stays the same (so replacing an
/// endpoint changes only elements); otherwise it gets a fresh range after all
/// ranges handed out so far. Ranges are never reused until the next full sync
/// starts over from 0; [`SlotAllocator::exhausted`] tells when the u32 key space
/// ran out (the caller then does a full sync).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotAllocator {
    next: u32,
    exhausted: bool,
}

impl SlotAllocator {
    /// The first slot of `chain`'s range of `count` slots; `previous` is the
    /// fragment that chain belonged to in the last sync.
    pub fn range(&mut self, previous: Option<&Fragment>, chain: &str, count: u32) -> u32 {
        if let Some((offset, modulus)) = previous.and_then(|f| f.balancer(chain)) {
            if modulus == count {
                return offset;
            }
        }
        match self.next.checked_add(count) {
            Some(end) => std::mem::replace(&mut self.next, end),
            None => {
                self.exhausted = true;
                0
            }
        }
    }

    pub fn exhausted(&self) -> bool {
        self.exhausted
    }
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

    /// The (offset, modulus) of `chain`'s [`Rule::DnatMap`], if it balances that way.
    pub fn balancer(&self, chain: &str) -> Option<(u32, u32)> {
        let (_, rules) = self.chains.iter().find(|(name, _)| name == chain)?;
        rules.iter().find_map(|rule| match rule {
            Rule::DnatMap {
                offset, modulus, ..
            } => Some((*offset, *modulus)),
            _ => None,
        })
    }

    /// Appends the `add` commands creating this fragment's sets, chains and rules
    /// ([`render_ruleset`] adds the map elements of all fragments at once, one
    /// statement per map: 10 000 separate statements cost nft much more).
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
    let mut slots = SlotAllocator::default();
    let fragments: Vec<Fragment> = state
        .services
        .iter()
        .map(|sp| service_fragment(sp, config, &mut slots, None))
        .collect();
    render_ruleset(&fragments, config)
}

/// The full transaction creating the fixed chains and maps and `fragments` (built
/// with one fresh [`SlotAllocator`], in this order).
pub fn render_ruleset<F: std::borrow::Borrow<Fragment>>(
    fragments: &[F],
    config: &SyncConfig,
) -> Ruleset {
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
    // `th dport`, not `tcp dport`: the maps serve UDP and SCTP services too.
    for shard in 0..ENDPOINT_MAPS {
        o.line(&format!(
            "add map {table} {} {{ typeof numgen random mod 1 : ip daddr . th dport ; comment \"endpoint address and port by slot\" ; }}",
            endpoint_map(shard)
        ));
    }
    o.line(&format!(
        "add set {table} {HAIRPIN_SET} {{ type ipv4_addr . ipv4_addr ; comment \"endpoints reaching themselves through a service\" ; }}"
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
    o.rule(
        "masquerading",
        &format!("ct status dnat ip saddr . ip daddr @{HAIRPIN_SET} jump mark-for-masquerade"),
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

    let mut hairpin = BTreeSet::new();
    let mut slots = Vec::new();
    // Verdict map elements, by map in declaration order.
    let mut elements: Vec<(&str, Vec<String>)> = [
        "service-ips",
        "service-nodeports",
        "no-endpoint-services",
        "no-endpoint-nodeports",
    ]
    .into_iter()
    .map(|map| (map, Vec::new()))
    .collect();
    for fragment in fragments {
        let fragment = fragment.borrow();
        o.rules += fragment.rule_count();
        fragment.render_add(&mut o.text);
        hairpin.extend(fragment.hairpin.iter().copied());
        slots.extend(fragment.slots.iter().copied());
        for e in &fragment.elements {
            let element = format!("{} : goto {}", e.key(), e.chain);
            match elements.iter_mut().find(|(map, _)| *map == e.map) {
                Some((_, list)) => list.push(element),
                None => elements.push((e.map, vec![element])),
            }
        }
    }
    for (map, list) in &elements {
        if !list.is_empty() {
            o.line(&format!(
                "add element {table} {map} {{ {} }}",
                list.join(", ")
            ));
        }
    }
    let mut by_map: Vec<Vec<String>> = vec![Vec::new(); ENDPOINT_MAPS as usize];
    for s in &slots {
        if let Some(list) = by_map.get_mut(s.shard as usize) {
            list.push(format!("{} : {} . {}", s.key, s.ip, s.port));
        }
    }
    for (shard, elements) in (0..ENDPOINT_MAPS).zip(&by_map) {
        if !elements.is_empty() {
            o.line(&format!(
                "add element {table} {} {{ {} }}",
                endpoint_map(shard),
                elements.join(", ")
            ));
        }
    }
    if !hairpin.is_empty() {
        let elements: Vec<String> = hairpin.iter().map(|ip| format!("{ip} . {ip}")).collect();
        o.line(&format!(
            "add element {table} {HAIRPIN_SET} {{ {} }}",
            elements.join(", ")
        ));
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

/// The chains, sets and map elements of one service port. `slots` hands out the
/// endpoint map ranges; `previous` is this port's fragment from the last sync (a
/// chain keeps its range while its endpoint count stays).
pub fn service_fragment(
    sp: &ServicePort,
    config: &SyncConfig,
    slots: &mut SlotAllocator,
    previous: Option<&Fragment>,
) -> Fragment {
    let mut f = Fragment::default();
    let mut ranges = Ranges { slots, previous };
    service_rules(&mut f, &mut ranges, sp, config);
    f.hairpin.sort_unstable();
    f.hairpin.dedup();
    f
}

/// Where balancing chains get their endpoint map slots.
struct Ranges<'a> {
    slots: &'a mut SlotAllocator,
    previous: Option<&'a Fragment>,
}

fn service_rules(o: &mut Fragment, ranges: &mut Ranges, sp: &ServicePort, config: &SyncConfig) {
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
        o.chain(&svc_chain);
        endpoint_chain_rules(o, sp, &cluster_eps);
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
        balance(o, ranges, sp, &svc_chain, &cluster_eps);
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
        balance(o, ranges, sp, &ext_chain, &external_eps);
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
            balance(o, ranges, sp, &ext_chain, &external_eps);
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

/// Per-endpoint chains, only for sessionAffinity services (the others DNAT from
/// the endpoint map: [`balance`]).
fn endpoint_chain_rules(o: &mut Fragment, sp: &ServicePort, eps: &[Endpoint]) {
    let Some(timeout) = sp.affinity_timeout else {
        return;
    };
    for ep in eps {
        let chain = endpoint_chain(sp, ep);
        let set = affinity_set(sp, ep);
        o.chain(&chain);
        o.set(&set, timeout);
        // Hairpin: an endpoint reaching itself through the service must be masqueraded.
        o.rule(&chain, Rule::SourceMasq { ip: ep.ip });
        o.rule(&chain, Rule::AffinityUpdate { set });
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

/// Without session affinity: a DNAT to a random one of the chain's endpoint map
/// slots. With it: the affinity lookups, then the random cascade over endpoint
/// chains.
fn balance(o: &mut Fragment, ranges: &mut Ranges, sp: &ServicePort, chain: &str, eps: &[Endpoint]) {
    if sp.affinity_timeout.is_none() {
        if eps.is_empty() {
            return;
        }
        let modulus = u32::try_from(eps.len()).unwrap_or(u32::MAX);
        let offset = ranges.slots.range(ranges.previous, chain, modulus);
        for (index, ep) in eps.iter().enumerate() {
            // In range: the allocator made sure offset + modulus fits in a u32.
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            o.slots.push(Slot {
                shard: endpoint_shard(offset),
                key: offset.wrapping_add(index),
                ip: ep.ip,
                port: ep.port,
            });
            o.hairpin.push(ep.ip);
        }
        o.rule(
            chain,
            Rule::DnatMap {
                protocol: sp.protocol,
                offset,
                modulus,
            },
        );
        return;
    }
    for ep in eps {
        o.rule(
            chain,
            Rule::AffinityGoto {
                set: affinity_set(sp, ep),
                chain: endpoint_chain(sp, ep),
            },
        );
    }
    let targets: Vec<String> = eps.iter().map(|ep| endpoint_chain(sp, ep)).collect();
    for rule in random_cascade(&targets) {
        o.rule(chain, rule);
    }
}

#[cfg(test)]
mod tests;
