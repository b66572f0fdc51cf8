//! Partial nftables syncs (pure): the difference between the fragments applied
//! last time and the wanted ones, as one `nft -f` transaction that touches only
//! changed chains, sets and map elements.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write};
use std::sync::Arc;

use crate::backend::SyncConfig;
use crate::nft::{service_fragment, set_command, Fragment, FAMILY, TABLE};
use crate::nft_rule::{MapElement, Rule};
use crate::state::ProxyState;

/// Every service port's fragment, keyed by service port id.
pub fn fragments(state: &ProxyState, config: &SyncConfig) -> BTreeMap<String, Arc<Fragment>> {
    state
        .services
        .iter()
        .map(|sp| (sp.id(), Arc::new(service_fragment(sp, config))))
        .collect()
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

/// The transaction turning `old` into `new`; empty when nothing changed.
///
/// Order: new sets; new/changed chains created if needed and flushed, then refilled;
/// stale map elements deleted, new ones added; removed chains flushed then
/// deleted; removed sets deleted last (once nothing references them).
pub fn partial_update(
    old: &BTreeMap<String, Arc<Fragment>>,
    new: &BTreeMap<String, Arc<Fragment>>,
) -> Vec<Op> {
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

    #[test]
    fn unchanged_state_gives_empty_update() {
        let a = frags(vec![sp("a", "10.254.0.1", &["10.1.0.1"])]);
        assert_eq!(render(&partial_update(&a, &a)), "");
    }

    #[test]
    fn endpoint_change_touches_only_that_service() {
        let other = sp("other", "10.254.0.2", &["10.1.0.9"]);
        let before = sp("a", "10.254.0.1", &["10.1.0.1", "10.1.0.2"]);
        let after = sp("a", "10.254.0.1", &["10.1.0.1"]);
        let update = render(&partial_update(
            &frags(vec![before.clone(), other.clone()]),
            &frags(vec![after.clone(), other.clone()]),
        ));
        let svc = service_chain(&after);
        let kept = endpoint_chain(&after, &after.endpoints[0]);
        let gone = endpoint_chain(&before, &before.endpoints[1]);
        let expected = format!(
            "\
add chain ip kube-proxy {svc}
flush chain ip kube-proxy {svc}
add rule ip kube-proxy {svc} goto {kept}
flush chain ip kube-proxy {gone}
delete chain ip kube-proxy {gone}
"
        );
        assert_eq!(update, expected);
        assert!(!update.contains("other"));
    }

    #[test]
    fn added_endpoint_chain_declared_before_rules_use_it() {
        let before = sp("a", "10.254.0.1", &["10.1.0.1"]);
        let after = sp("a", "10.254.0.1", &["10.1.0.1", "10.1.0.2"]);
        let update = render(&partial_update(
            &frags(vec![before]),
            &frags(vec![after.clone()]),
        ));
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
    fn removed_service_deletes_element_then_chains() {
        let a = sp("a", "10.254.0.1", &["10.1.0.1"]);
        let update = render(&partial_update(&frags(vec![a.clone()]), &BTreeMap::new()));
        let svc = service_chain(&a);
        let ep = endpoint_chain(&a, &a.endpoints[0]);
        let expected = format!(
            "\
delete element ip kube-proxy service-ips {{ 10.254.0.1 . tcp . 80 }}
flush chain ip kube-proxy {svc}
flush chain ip kube-proxy {ep}
delete chain ip kube-proxy {svc}
delete chain ip kube-proxy {ep}
"
        );
        assert_eq!(update, expected);
    }

    #[test]
    fn service_losing_all_endpoints_switches_to_reject() {
        let with = sp("a", "10.254.0.1", &["10.1.0.1"]);
        let without = sp("a", "10.254.0.1", &[]);
        let update = render(&partial_update(&frags(vec![with]), &frags(vec![without])));
        assert!(
            update.contains("delete element ip kube-proxy service-ips { 10.254.0.1 . tcp . 80 }\n"),
            "{update}"
        );
        assert!(update.contains("add element ip kube-proxy no-endpoint-services { 10.254.0.1 . tcp . 80 : goto reject-chain }\n"), "{update}");
    }
}
