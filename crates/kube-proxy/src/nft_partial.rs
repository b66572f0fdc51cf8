//! Partial nftables syncs (pure): the difference between the fragments applied
//! last time and the wanted ones, as one `nft -f` transaction that touches only
//! changed chains, sets and map elements.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::backend::SyncConfig;
use crate::nft::{service_fragment, set_command, Fragment, FAMILY, TABLE};
use crate::state::ProxyState;

/// Every service port's fragment, keyed by service port id.
pub fn fragments(state: &ProxyState, config: &SyncConfig) -> BTreeMap<String, Fragment> {
    state
        .services
        .iter()
        .map(|sp| (sp.id(), service_fragment(sp, config)))
        .collect()
}

/// The transaction turning `old` into `new`; empty when nothing changed.
///
/// Order: new sets; new/changed chains created if needed and flushed, then refilled;
/// stale map elements deleted, new ones added; removed chains flushed then
/// deleted; removed sets deleted last (once nothing references them).
pub fn partial_update(
    old: &BTreeMap<String, Fragment>,
    new: &BTreeMap<String, Fragment>,
) -> String {
    let empty = Fragment::default();
    let mut add_sets = String::new();
    let mut declare = String::new();
    let mut chains = String::new();
    let mut del_elements = String::new();
    let mut add_elements = String::new();
    let mut flush_removed = String::new();
    let mut del_chains = String::new();
    let mut del_sets = String::new();
    let ids: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for id in ids {
        let before = old.get(id).unwrap_or(&empty);
        let after = new.get(id).unwrap_or(&empty);
        if before == after {
            continue;
        }
        for (name, timeout) in &after.sets {
            if !before.sets.iter().any(|(n, _)| n == name) {
                let _ = writeln!(add_sets, "{}", set_command(name, *timeout));
            }
        }
        for (name, rules) in &after.chains {
            let previous = before.chains.iter().find(|(n, _)| n == name);
            if previous.map(|(_, r)| r) == Some(rules) {
                continue;
            }
            // All chains exist before any rule refers to them.
            let _ = writeln!(declare, "add chain {FAMILY} {TABLE} {name}");
            if previous.is_some() {
                let _ = writeln!(declare, "flush chain {FAMILY} {TABLE} {name}");
            }
            for rule in rules {
                let _ = writeln!(chains, "add rule {FAMILY} {TABLE} {name} {rule}");
            }
        }
        for element in &before.elements {
            if !after.elements.contains(element) {
                let (map, key, _) = element;
                let _ = writeln!(
                    del_elements,
                    "delete element {FAMILY} {TABLE} {map} {{ {key} }}"
                );
            }
        }
        for element in &after.elements {
            if !before.elements.contains(element) {
                let (map, key, value) = element;
                let _ = writeln!(
                    add_elements,
                    "add element {FAMILY} {TABLE} {map} {{ {key} : {value} }}"
                );
            }
        }
        for (name, _) in &before.chains {
            if !after.chains.iter().any(|(n, _)| n == name) {
                let _ = writeln!(flush_removed, "flush chain {FAMILY} {TABLE} {name}");
                let _ = writeln!(del_chains, "delete chain {FAMILY} {TABLE} {name}");
            }
        }
        for (name, _) in &before.sets {
            if !after.sets.iter().any(|(n, _)| n == name) {
                let _ = writeln!(del_sets, "delete set {FAMILY} {TABLE} {name}");
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

    fn frags(services: Vec<ServicePort>) -> BTreeMap<String, Fragment> {
        fragments(&ProxyState { services }, &SyncConfig::default())
    }

    #[test]
    fn unchanged_state_gives_empty_update() {
        let a = frags(vec![sp("a", "10.254.0.1", &["10.1.0.1"])]);
        assert_eq!(partial_update(&a, &a), "");
    }

    #[test]
    fn endpoint_change_touches_only_that_service() {
        let other = sp("other", "10.254.0.2", &["10.1.0.9"]);
        let before = sp("a", "10.254.0.1", &["10.1.0.1", "10.1.0.2"]);
        let after = sp("a", "10.254.0.1", &["10.1.0.1"]);
        let update = partial_update(
            &frags(vec![before.clone(), other.clone()]),
            &frags(vec![after.clone(), other.clone()]),
        );
        let svc = service_chain(&after);
        let kept = endpoint_chain(&after, &after.endpoints[0]);
        let gone = endpoint_chain(&before, &before.endpoints[1]);
        let expected = format!(
            "\
add chain ip kube-proxy {svc}
flush chain ip kube-proxy {svc}
add rule ip kube-proxy {svc} numgen random mod 1 vmap {{ 0 : goto {kept} }}
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
        let update = partial_update(&frags(vec![before]), &frags(vec![after.clone()]));
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
        let update = partial_update(&frags(vec![a.clone()]), &BTreeMap::new());
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
        let update = partial_update(&frags(vec![with]), &frags(vec![without]));
        assert!(
            update.contains("delete element ip kube-proxy service-ips { 10.254.0.1 . tcp . 80 }\n"),
            "{update}"
        );
        assert!(update.contains("add element ip kube-proxy no-endpoint-services { 10.254.0.1 . tcp . 80 : goto reject-chain }\n"), "{update}");
    }
}
