//! Partial nftables syncs (pure): the difference between the fragments applied
//! last time and the wanted ones, as one `nft -f` transaction that touches only
//! changed chains, sets and map elements.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::{self, Write};
use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::backend::SyncConfig;
use crate::nft::{
    render_ruleset, service_fragment, set_command, Fragment, Ruleset, SlotAllocator, FAMILY, TABLE,
};
use crate::nft_rule::{MapElement, Rule, Slot, HAIRPIN_SET};
use crate::state::{ProxyState, ServicePort};

/// What the table holds after the last sync, per service port. A partial sync
/// updates it in place, so only changed service ports cost anything (at 10 000
/// services, rebuilding every fragment costs more than the kernel's part).
#[derive(Debug, Clone)]
pub struct Applied {
    config: SyncConfig,
    services: HashMap<String, ServicePort>,
    fragments: BTreeMap<String, Arc<Fragment>>,
    slots: SlotAllocator,
    hairpin: HairpinCounts,
    rules: usize,
}

impl Applied {
    /// The table after a full sync of `state`, and that sync's `nft -f` transaction.
    pub fn full(state: &ProxyState, config: &SyncConfig) -> (Applied, Ruleset) {
        let mut slots = SlotAllocator::default();
        let built: Vec<Arc<Fragment>> = state
            .services
            .iter()
            .map(|sp| Arc::new(service_fragment(sp, config, &mut slots, None)))
            .collect();
        let ruleset = render_ruleset(&built, config);
        let applied = Applied {
            config: config.clone(),
            services: state
                .services
                .iter()
                .map(|sp| (sp.id(), sp.clone()))
                .collect(),
            hairpin: hairpin_counts(built.iter().map(|f| &**f)),
            fragments: state
                .services
                .iter()
                .map(ServicePort::id)
                .zip(built)
                .collect(),
            slots,
            rules: ruleset.rules,
        };
        (applied, ruleset)
    }

    /// The config the table was built with (another one needs a full sync).
    pub fn config(&self) -> &SyncConfig {
        &self.config
    }

    /// Rules in the table.
    pub fn rules(&self) -> usize {
        self.rules
    }

    /// Moves to `state`, returning the partial transaction that gets the table
    /// there; `None` when the endpoint map's slot keys ran out (do a full sync).
    pub fn update(&mut self, state: &ProxyState, config: &SyncConfig) -> Option<Vec<Op>> {
        let mut old_changed = BTreeMap::new();
        let mut new_changed = BTreeMap::new();
        for sp in &state.services {
            let id = sp.id();
            match self.services.get_mut(&id) {
                Some(old) if old == sp => continue,
                Some(old) => *old = sp.clone(),
                None => {
                    self.services.insert(id.clone(), sp.clone());
                }
            }
            let previous = self.fragments.get(&id).cloned();
            let fragment = Arc::new(service_fragment(
                sp,
                config,
                &mut self.slots,
                previous.as_deref(),
            ));
            self.fragments.insert(id.clone(), fragment.clone());
            if let Some(previous) = previous {
                old_changed.insert(id.clone(), previous);
            }
            new_changed.insert(id, fragment);
        }
        // Every wanted id is in `services` now: more entries means removed ones.
        if self.services.len() != state.services.len() {
            let wanted: std::collections::HashSet<String> =
                state.services.iter().map(ServicePort::id).collect();
            self.services.retain(|id, _| wanted.contains(id));
            let removed: Vec<String> = self
                .fragments
                .keys()
                .filter(|id| !wanted.contains(*id))
                .cloned()
                .collect();
            for id in removed {
                if let Some(old) = self.fragments.remove(&id) {
                    old_changed.insert(id, old);
                }
            }
        }
        if self.slots.exhausted() {
            return None;
        }
        let removed: usize = old_changed.values().map(|f| f.rule_count()).sum();
        let added: usize = new_changed.values().map(|f| f.rule_count()).sum();
        self.rules = (self.rules + added).saturating_sub(removed);
        Some(partial_update(
            &old_changed,
            &new_changed,
            &mut self.hairpin,
        ))
    }
}

/// Every service port's fragment, keyed by service port id, with slots allocated
/// in `state` order as a full sync does.
pub fn fragments(state: &ProxyState, config: &SyncConfig) -> BTreeMap<String, Arc<Fragment>> {
    let mut slots = SlotAllocator::default();
    state
        .services
        .iter()
        .map(|sp| {
            let fragment = service_fragment(sp, config, &mut slots, None);
            (sp.id(), Arc::new(fragment))
        })
        .collect()
}

/// How many fragments put each address in the shared hairpin set (it holds an
/// address while any does).
pub type HairpinCounts = HashMap<Ipv4Addr, usize>;

/// The hairpin counts of `fragments`.
pub fn hairpin_counts<'a>(fragments: impl IntoIterator<Item = &'a Fragment>) -> HairpinCounts {
    let mut counts = HairpinCounts::new();
    for fragment in fragments {
        for ip in &fragment.hairpin {
            *counts.entry(*ip).or_insert(0) += 1;
        }
    }
    counts
}

/// One step of a partial transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `add set` for a sessionAffinity set (name, timeout seconds).
    AddSet(String, u32),
    /// `add chain` (no error when it exists).
    AddChain(String),
    /// `flush chain`: remove all its rules.
    FlushChain(String),
    AddRule(String, Rule),
    DeleteElement(MapElement),
    AddElement(MapElement),
    DeleteChain(String),
    DeleteSet(String),
    /// An element of the shared endpoint map.
    AddSlot(Slot),
    /// Removes the element with this slot's key.
    DeleteSlot(Slot),
    /// `<ip> . <ip>` in the shared hairpin set.
    AddHairpin(Ipv4Addr),
    DeleteHairpin(Ipv4Addr),
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::AddSet(name, timeout) => f.write_str(&set_command(name, *timeout)),
            Op::AddChain(name) => write!(f, "add chain {FAMILY} {TABLE} {name}"),
            Op::FlushChain(name) => write!(f, "flush chain {FAMILY} {TABLE} {name}"),
            Op::AddRule(chain, rule) => write!(f, "add rule {FAMILY} {TABLE} {chain} {rule}"),
            Op::DeleteElement(e) => write!(
                f,
                "delete element {FAMILY} {TABLE} {} {{ {} }}",
                e.map,
                e.key()
            ),
            Op::AddElement(e) => write!(
                f,
                "add element {FAMILY} {TABLE} {} {{ {} : goto {} }}",
                e.map,
                e.key(),
                e.chain
            ),
            Op::DeleteChain(name) => write!(f, "delete chain {FAMILY} {TABLE} {name}"),
            Op::DeleteSet(name) => write!(f, "delete set {FAMILY} {TABLE} {name}"),
            Op::AddSlot(slot) => write!(
                f,
                "add element {FAMILY} {TABLE} {} {{ {} : {} . {} }}",
                slot.map(),
                slot.key,
                slot.ip,
                slot.port
            ),
            Op::DeleteSlot(slot) => write!(
                f,
                "delete element {FAMILY} {TABLE} {} {{ {} }}",
                slot.map(),
                slot.key
            ),
            Op::AddHairpin(ip) => write!(
                f,
                "add element {FAMILY} {TABLE} {HAIRPIN_SET} {{ {ip} . {ip} }}"
            ),
            Op::DeleteHairpin(ip) => write!(
                f,
                "delete element {FAMILY} {TABLE} {HAIRPIN_SET} {{ {ip} . {ip} }}"
            ),
        }
    }
}

/// The operations as one `nft -f` transaction.
pub fn render(ops: &[Op]) -> String {
    let mut out = String::new();
    for op in ops {
        let _ = writeln!(out, "{op}");
    }
    out
}

/// The transaction turning `old` into `new` (both may hold only the changed
/// service ports: equal fragments are skipped); empty when nothing changed.
/// `hairpin` holds the counts of everything applied and is updated to `new`.
///
/// Order: new sets; new/changed chains created if needed and flushed, then refilled;
/// stale map elements deleted, new ones added (an endpoint map slot whose
/// endpoint changed is deleted, then added back); removed chains flushed then
/// deleted; removed sets deleted last (once nothing references them).
pub fn partial_update(
    old: &BTreeMap<String, Arc<Fragment>>,
    new: &BTreeMap<String, Arc<Fragment>>,
    hairpin: &mut HairpinCounts,
) -> Vec<Op> {
    let mut hairpin_delta: BTreeMap<Ipv4Addr, i64> = BTreeMap::new();
    let empty = Arc::new(Fragment::default());
    let mut add_sets = Vec::new();
    let mut declare = Vec::new();
    let mut chains = Vec::new();
    let mut del_elements = Vec::new();
    let mut add_elements = Vec::new();
    let mut flush_removed = Vec::new();
    let mut del_chains = Vec::new();
    let mut del_sets = Vec::new();
    let ids: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for id in ids {
        let before = old.get(id).unwrap_or(&empty);
        let after = new.get(id).unwrap_or(&empty);
        if Arc::ptr_eq(before, after) || before == after {
            continue;
        }
        for (name, timeout) in &after.sets {
            if !before.sets.iter().any(|(n, _)| n == name) {
                add_sets.push(Op::AddSet(name.clone(), *timeout));
            }
        }
        for (name, rules) in &after.chains {
            let previous = before.chains.iter().find(|(n, _)| n == name);
            if previous.map(|(_, r)| r) == Some(rules) {
                continue;
            }
            // All chains exist before any rule refers to them.
            declare.push(Op::AddChain(name.clone()));
            if previous.is_some() {
                declare.push(Op::FlushChain(name.clone()));
            }
            for rule in rules {
                chains.push(Op::AddRule(name.clone(), rule.clone()));
            }
        }
        for element in &before.elements {
            if !after.elements.contains(element) {
                del_elements.push(Op::DeleteElement(element.clone()));
            }
        }
        for element in &after.elements {
            if !before.elements.contains(element) {
                add_elements.push(Op::AddElement(element.clone()));
            }
        }
        if before.slots != after.slots {
            let was: BTreeMap<u32, &Slot> = before.slots.iter().map(|s| (s.key, s)).collect();
            let is: BTreeMap<u32, &Slot> = after.slots.iter().map(|s| (s.key, s)).collect();
            for (key, slot) in &was {
                if is.get(key) != Some(slot) {
                    del_elements.push(Op::DeleteSlot(**slot));
                }
            }
            for (key, slot) in &is {
                if was.get(key) != Some(slot) {
                    add_elements.push(Op::AddSlot(**slot));
                }
            }
        }
        for ip in &before.hairpin {
            *hairpin_delta.entry(*ip).or_insert(0) -= 1;
        }
        for ip in &after.hairpin {
            *hairpin_delta.entry(*ip).or_insert(0) += 1;
        }
        for (name, _) in &before.chains {
            if !after.chains.iter().any(|(n, _)| n == name) {
                flush_removed.push(Op::FlushChain(name.clone()));
                del_chains.push(Op::DeleteChain(name.clone()));
            }
        }
        for (name, _) in &before.sets {
            if !after.sets.iter().any(|(n, _)| n == name) {
                del_sets.push(Op::DeleteSet(name.clone()));
            }
        }
    }
    for (ip, delta) in hairpin_delta {
        let was = hairpin.get(&ip).copied().unwrap_or(0);
        let is = usize::try_from(i64::try_from(was).unwrap_or(i64::MAX) + delta).unwrap_or(0);
        if was == 0 && is > 0 {
            add_elements.push(Op::AddHairpin(ip));
        } else if was > 0 && is == 0 {
            del_elements.push(Op::DeleteHairpin(ip));
        }
        if is == 0 {
            hairpin.remove(&ip);
        } else {
            hairpin.insert(ip, is);
        }
    }
    [
        add_sets,
        declare,
        chains,
        del_elements,
        add_elements,
        flush_removed,
        del_chains,
        del_sets,
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft::{endpoint_chain, service_chain};
    use crate::nft_rule::{endpoint_map, endpoint_shard};
    use crate::state::{Endpoint, Protocol, ServicePort};

    fn sp(name: &str, ip: &str, eps: &[&str]) -> ServicePort {
        ServicePort {
            namespace: "ns".into(),
            name: name.into(),
            port_name: "p".into(),
            protocol: Protocol::Tcp,
            cluster_ip: Some(ip.parse().unwrap()),
            port: 80,
            node_port: None,
            external_ips: vec![],
            affinity_timeout: None,
            external_policy_local: false,
            internal_policy_local: false,
            endpoints: eps
                .iter()
                .map(|ip| Endpoint {
                    ip: ip.parse().unwrap(),
                    port: 8080,
                    local: false,
                })
                .collect(),
        }
    }

    fn frags(services: Vec<ServicePort>) -> BTreeMap<String, Arc<Fragment>> {
        fragments(&ProxyState { services }, &SyncConfig::default())
    }

    /// The partial transaction from a full sync of `old` to `new`.
    fn update(old: Vec<ServicePort>, new: Vec<ServicePort>) -> String {
        let config = SyncConfig::default();
        let (mut applied, _) = Applied::full(&ProxyState { services: old }, &config);
        let ops = applied
            .update(
                &ProxyState {
                    services: new.clone(),
                },
                &config,
            )
            .expect("slots left");
        // The updated table equals a full sync of `new` in what it holds.
        let (full, _) = Applied::full(&ProxyState { services: new }, &config);
        assert_eq!(applied.hairpin, full.hairpin);
        assert_eq!(applied.rules, full.rules);
        render(&ops)
    }

    #[test]
    fn unchanged_state_gives_empty_update() {
        let a = frags(vec![sp("a", "10.254.0.1", &["10.1.0.1"])]);
        assert_eq!(
            render(&partial_update(
                &a,
                &a,
                &mut hairpin_counts(a.values().map(|f| &**f))
            )),
            ""
        );
        let a = vec![sp("a", "10.254.0.1", &["10.1.0.1"])];
        assert_eq!(update(a.clone(), a), "");
    }

    #[test]
    fn replaced_endpoint_changes_only_map_elements() {
        let other = sp("other", "10.254.0.2", &["10.1.0.9"]);
        let before = sp("a", "10.254.0.1", &["10.1.0.1", "10.1.0.2"]);
        let after = sp("a", "10.254.0.1", &["10.1.0.1", "10.1.0.3"]);
        let text = update(vec![before, other.clone()], vec![after, other]);
        // Slots 0-1 are in the map of offset 0.
        let expected = "\
delete element ip kube-proxy endpoints-0 { 1 }
delete element ip kube-proxy hairpin { 10.1.0.2 . 10.1.0.2 }
add element ip kube-proxy endpoints-0 { 1 : 10.1.0.3 . 8080 }
add element ip kube-proxy hairpin { 10.1.0.3 . 10.1.0.3 }
";
        assert_eq!(text, expected);
    }

    #[test]
    fn endpoint_count_change_moves_the_range_and_keeps_shared_hairpins() {
        let before = sp("a", "10.254.0.1", &["10.1.0.1", "10.1.0.2"]);
        let after = sp("a", "10.254.0.1", &["10.1.0.1"]);
        // 10.1.0.2 is also used elsewhere: it stays in the hairpin set.
        let other = sp("other", "10.254.0.2", &["10.1.0.2"]);
        let text = update(vec![before, other.clone()], vec![after.clone(), other]);
        let svc = service_chain(&after);
        // Slots 0-1 were a's, 2 other's: a's one endpoint goes to slot 3.
        let map3 = endpoint_map(endpoint_shard(3));
        let expected = format!(
            "\
add chain ip kube-proxy {svc}
flush chain ip kube-proxy {svc}
add rule ip kube-proxy {svc} meta l4proto tcp dnat ip to numgen random mod 1 offset 3 map @{map3}
delete element ip kube-proxy endpoints-0 {{ 0 }}
delete element ip kube-proxy endpoints-0 {{ 1 }}
add element ip kube-proxy {map3} {{ 3 : 10.1.0.1 . 8080 }}
"
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn added_endpoint_chain_declared_before_rules_use_it() {
        let mut before = sp("a", "10.254.0.1", &["10.1.0.1"]);
        before.affinity_timeout = Some(60);
        let mut after = sp("a", "10.254.0.1", &["10.1.0.1", "10.1.0.2"]);
        after.affinity_timeout = Some(60);
        let update = update(vec![before], vec![after.clone()]);
        let new_ep = endpoint_chain(&after, &after.endpoints[1]);
        let declared = update
            .find(&format!("add chain ip kube-proxy {new_ep}\n"))
            .expect("new chain declared");
        let used = update
            .find(&format!("goto {new_ep}"))
            .expect("new chain used");
        assert!(declared < used, "{update}");
        assert!(!update.contains("delete"), "{update}");
    }

    #[test]
    fn removed_service_deletes_elements_then_chains() {
        let a = sp("a", "10.254.0.1", &["10.1.0.1"]);
        let update = update(vec![a.clone()], vec![]);
        let svc = service_chain(&a);
        let expected = format!(
            "\
delete element ip kube-proxy service-ips {{ 10.254.0.1 . tcp . 80 }}
delete element ip kube-proxy endpoints-0 {{ 0 }}
delete element ip kube-proxy hairpin {{ 10.1.0.1 . 10.1.0.1 }}
flush chain ip kube-proxy {svc}
delete chain ip kube-proxy {svc}
"
        );
        assert_eq!(update, expected);
    }

    #[test]
    fn service_losing_all_endpoints_switches_to_reject() {
        let with = sp("a", "10.254.0.1", &["10.1.0.1"]);
        let without = sp("a", "10.254.0.1", &[]);
        let update = update(vec![with], vec![without]);
        assert!(
            update.contains("delete element ip kube-proxy service-ips { 10.254.0.1 . tcp . 80 }\n"),
            "{update}"
        );
        assert!(update.contains("add element ip kube-proxy no-endpoint-services { 10.254.0.1 . tcp . 80 : goto reject-chain }\n"), "{update}");
        assert!(
            update.contains("delete element ip kube-proxy endpoints-0 { 0 }\n"),
            "{update}"
        );
    }

    #[test]
    fn new_udp_service_next_to_tcp_gets_its_own_slots() {
        let tcp = sp("dns", "10.254.0.10", &["10.1.0.1"]);
        let mut udp = sp("dns", "10.254.0.10", &["10.1.0.1"]);
        udp.protocol = Protocol::Udp;
        let update = update(vec![tcp.clone()], vec![tcp, udp.clone()]);
        let svc = service_chain(&udp);
        let map1 = endpoint_map(endpoint_shard(1));
        assert!(
            update.contains(&format!("add rule ip kube-proxy {svc} meta l4proto udp dnat ip to numgen random mod 1 offset 1 map @{map1}\n")),
            "{update}"
        );
        assert!(
            update.contains(&format!(
                "add element ip kube-proxy {map1} {{ 1 : 10.1.0.1 . 8080 }}\n"
            )),
            "{update}"
        );
        // The address is already in the hairpin set through the TCP service.
        assert!(!update.contains("hairpin"), "{update}");
    }
}
