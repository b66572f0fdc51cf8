//! iptables mode (`--proxy-mode=iptables`): KUBE-SERVICES / KUBE-SVC-* / KUBE-SEP-*
//! chains written with `iptables-restore --noflush`. Generation is pure
//! ([`build_rules`], [`restore_input`] for a full sync, [`partial_restore_input`]
//! for only the changed chains); [`IptablesBackend`] applies it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::backend::{BackendError, ProxyBackend, Runner, SyncConfig, SyncStats};
use crate::hash::hash_prefix;
use crate::state::{Endpoint, ProxyState, ServicePort};

/// Jumps from built-in chains into ours: (table, built-in chain, our chain).
pub const JUMPS: &[(&str, &str, &str)] = &[
    ("filter", "INPUT", "KUBE-NODEPORTS-CHECK"),
    ("filter", "FORWARD", "KUBE-SERVICES"),
    ("filter", "OUTPUT", "KUBE-SERVICES"),
    ("nat", "PREROUTING", "KUBE-SERVICES"),
    ("nat", "OUTPUT", "KUBE-SERVICES"),
    ("nat", "POSTROUTING", "KUBE-POSTROUTING"),
];

/// `KUBE-SVC-<16 base32>` for a service port.
pub fn svc_chain(sp: &ServicePort) -> String {
    format!(
        "KUBE-SVC-{}",
        hash_prefix(&format!("{}{}", sp.port_name_string(), sp.protocol), 16)
    )
}

/// `KUBE-EXT-<16 base32>` for a service port's NodePort/externalIP traffic.
pub fn ext_chain(sp: &ServicePort) -> String {
    format!(
        "KUBE-EXT-{}",
        hash_prefix(&format!("{}{}", sp.port_name_string(), sp.protocol), 16)
    )
}

/// `KUBE-SEP-<16 base32>` for one endpoint of a service port.
pub fn sep_chain(sp: &ServicePort, ep: &Endpoint) -> String {
    format!(
        "KUBE-SEP-{}",
        hash_prefix(
            &format!(
                "{}{}{}:{}",
                sp.port_name_string(),
                sp.protocol,
                ep.ip,
                ep.port
            ),
            16
        )
    )
}

/// Is this one of the per-service chains we own (candidates for deletion)?
pub fn is_service_chain(name: &str) -> bool {
    name.starts_with("KUBE-SVC-") || name.starts_with("KUBE-SEP-") || name.starts_with("KUBE-EXT-")
}

/// Everything the backend writes: the filter rules (all in our two filter chains)
/// and each nat chain we own with its rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// `-A ...` lines of the filter table (KUBE-SERVICES, KUBE-NODEPORTS-CHECK).
    pub filter: Vec<String>,
    /// nat chains in declaration order.
    pub nat_order: Vec<String>,
    /// nat chain → its `-A ...` lines, in order.
    pub nat: BTreeMap<String, Vec<String>>,
}

impl Rules {
    pub fn rule_count(&self) -> usize {
        self.filter.len() + self.nat.values().map(Vec::len).sum::<usize>()
    }

    fn write_filter(&self, out: &mut String) {
        out.push_str("*filter\n:KUBE-SERVICES - [0:0]\n:KUBE-NODEPORTS-CHECK - [0:0]\n");
        for rule in &self.filter {
            let _ = writeln!(out, "{rule}");
        }
        out.push_str("COMMIT\n");
    }

    /// The nat section rewriting `chains` (declaring a chain flushes it) and
    /// flushing then deleting `stale` ones.
    fn write_nat(&self, out: &mut String, chains: &[&String], stale: &[&String]) {
        out.push_str("*nat\n");
        for chain in chains.iter().chain(stale) {
            let _ = writeln!(out, ":{chain} - [0:0]");
        }
        for chain in chains {
            for rule in self.nat.get(*chain).into_iter().flatten() {
                let _ = writeln!(out, "{rule}");
            }
        }
        for chain in stale {
            let _ = writeln!(out, "-X {chain}");
        }
        out.push_str("COMMIT\n");
    }
}

/// Input for `iptables-restore --noflush`: every chain we own is declared (which
/// flushes it), refilled, and per-service chains in `existing_nat` that are no
/// longer wanted are deleted. Returns the text and the rule count.
pub fn restore_input(
    state: &ProxyState,
    config: &SyncConfig,
    existing_nat: &BTreeSet<String>,
) -> (String, usize) {
    let rules = build_rules(state, config);
    let all: Vec<&String> = rules.nat_order.iter().collect();
    let stale: Vec<&String> = existing_nat
        .iter()
        .filter(|c| is_service_chain(c) && !rules.nat.contains_key(*c))
        .collect();
    let mut out = String::new();
    rules.write_filter(&mut out);
    rules.write_nat(&mut out, &all, &stale);
    (out, rules.rule_count())
}

/// Input for `iptables-restore --noflush` turning `old` into `new`, upstream's
/// partial sync: only nat chains whose rules changed are rewritten (a changed
/// KUBE-SVC-/KUBE-SEP-/KUBE-EXT- chain, and KUBE-SERVICES / KUBE-NODEPORTS when a
/// service's dispatch rules changed), removed ones flushed and deleted; the filter
/// table only when its rules changed. Empty when nothing changed.
pub fn partial_restore_input(old: &Rules, new: &Rules) -> String {
    let changed: Vec<&String> = new
        .nat_order
        .iter()
        .filter(|c| old.nat.get(*c) != new.nat.get(*c))
        .collect();
    let stale: Vec<&String> = old
        .nat_order
        .iter()
        .filter(|c| !new.nat.contains_key(*c))
        .collect();
    let mut out = String::new();
    if old.filter != new.filter {
        new.write_filter(&mut out);
    }
    if !changed.is_empty() || !stale.is_empty() {
        new.write_nat(&mut out, &changed, &stale);
    }
    out
}

/// The rules for `state`.
pub fn build_rules(state: &ProxyState, config: &SyncConfig) -> Rules {
    let mut filter_rules = Vec::new();
    let mut nat_chains: Vec<String> = [
        "KUBE-SERVICES",
        "KUBE-NODEPORTS",
        "KUBE-POSTROUTING",
        "KUBE-MARK-MASQ",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let mut nat_rules = vec![
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN".to_string(),
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000".to_string(),
        "-A KUBE-POSTROUTING -j MASQUERADE --random-fully".to_string(),
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000".to_string(),
    ];
    let mut nodeport_rules = Vec::new();
    for sp in &state.services {
        let Some(cip) = sp.cluster_ip else { continue };
        let proto = sp.protocol.lower();
        let cluster_eps = sp.cluster_endpoints();
        let external_eps = sp.external_endpoints();
        let svc = svc_chain(sp);
        let comment = format!("-m comment --comment \"{}\"", sp.port_name_string());
        if cluster_eps.is_empty() {
            filter_rules.push(format!(
                "-A KUBE-SERVICES -d {cip}/32 -p {proto} {comment} -m {proto} --dport {} -j REJECT",
                sp.port
            ));
        } else {
            nat_chains.push(svc.clone());
            nat_rules.push(format!(
                "-A KUBE-SERVICES -d {cip}/32 -p {proto} {comment} -m {proto} --dport {} -j {svc}",
                sp.port
            ));
            if config.masquerade_all {
                nat_rules.push(format!(
                    "-A {svc} -d {cip}/32 -p {proto} -m {proto} --dport {} -j KUBE-MARK-MASQ",
                    sp.port
                ));
            } else if let Some(cidr) = config.cluster_cidr {
                nat_rules.push(format!("-A {svc} ! -s {cidr} -d {cip}/32 -p {proto} -m {proto} --dport {} -j KUBE-MARK-MASQ", sp.port));
            }
            balance(&mut nat_rules, sp, &svc, &cluster_eps);
        }
        let has_external = sp.node_port.is_some() || !sp.external_ips.is_empty();
        if !has_external {
            continue;
        }
        if external_eps.is_empty() {
            for ip in &sp.external_ips {
                filter_rules.push(format!("-A KUBE-SERVICES -d {ip}/32 -p {proto} {comment} -m {proto} --dport {} -j REJECT", sp.port));
            }
            if let Some(np) = sp.node_port {
                filter_rules.push(format!("-A KUBE-NODEPORTS-CHECK -m addrtype --dst-type LOCAL -p {proto} {comment} -m {proto} --dport {np} -j REJECT"));
            }
            continue;
        }
        let ext = ext_chain(sp);
        nat_chains.push(ext.clone());
        if sp.external_policy_local {
            balance(&mut nat_rules, sp, &ext, &external_eps);
        } else {
            nat_rules.push(format!("-A {ext} -j KUBE-MARK-MASQ"));
            if cluster_eps == external_eps {
                nat_rules.push(format!("-A {ext} -j {svc}"));
            } else {
                balance(&mut nat_rules, sp, &ext, &external_eps);
            }
        }
        for ip in &sp.external_ips {
            nat_rules.push(format!(
                "-A KUBE-SERVICES -d {ip}/32 -p {proto} {comment} -m {proto} --dport {} -j {ext}",
                sp.port
            ));
        }
        if let Some(np) = sp.node_port {
            nodeport_rules.push(format!(
                "-A KUBE-NODEPORTS -p {proto} {comment} -m {proto} --dport {np} -j {ext}"
            ));
        }
        for ep in external_eps.iter().filter(|e| !cluster_eps.contains(e)) {
            sep_rules(&mut nat_rules, sp, ep);
            nat_chains.push(sep_chain(sp, ep));
        }
    }
    for sp in &state.services {
        for ep in sp.cluster_endpoints() {
            nat_chains.push(sep_chain(sp, &ep));
        }
    }
    if config.nodeport_addresses.is_empty() {
        nat_rules.push(
            "-A KUBE-SERVICES -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS"
                .to_string(),
        );
    } else {
        for net in &config.nodeport_addresses {
            nat_rules.push(format!("-A KUBE-SERVICES -d {net} -j KUBE-NODEPORTS"));
        }
    }
    nat_rules.extend(nodeport_rules);

    let mut nat: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut nat_order = Vec::with_capacity(nat_chains.len());
    for chain in nat_chains {
        if !nat.contains_key(&chain) {
            nat.insert(chain.clone(), Vec::new());
            nat_order.push(chain);
        }
    }
    for rule in nat_rules {
        let chain = rule.split_whitespace().nth(1).unwrap_or_default();
        if let Some(rules) = nat.get_mut(chain) {
            rules.push(rule);
        }
    }
    Rules {
        filter: filter_rules,
        nat_order,
        nat,
    }
}

fn balance(rules: &mut Vec<String>, sp: &ServicePort, chain: &str, eps: &[Endpoint]) {
    if let Some(timeout) = sp.affinity_timeout {
        for ep in eps {
            let sep = sep_chain(sp, ep);
            rules.push(format!(
                "-A {chain} -m recent --name {sep} --rcheck --seconds {timeout} --reap -j {sep}"
            ));
        }
    }
    let n = eps.len();
    for (i, ep) in eps.iter().enumerate() {
        let sep = sep_chain(sp, ep);
        if i + 1 == n {
            rules.push(format!("-A {chain} -j {sep}"));
        } else {
            let probability = 1.0 / (n - i) as f64;
            rules.push(format!(
                "-A {chain} -m statistic --mode random --probability {probability:.10} -j {sep}"
            ));
        }
    }
    if chain.starts_with("KUBE-SVC-") {
        for ep in eps {
            sep_rules(rules, sp, ep);
        }
    }
}

fn sep_rules(rules: &mut Vec<String>, sp: &ServicePort, ep: &Endpoint) {
    let sep = sep_chain(sp, ep);
    let proto = sp.protocol.lower();
    rules.push(format!("-A {sep} -s {}/32 -j KUBE-MARK-MASQ", ep.ip));
    let recent = if sp.affinity_timeout.is_some() {
        format!("-m recent --name {sep} --set ")
    } else {
        String::new()
    };
    rules.push(format!(
        "-A {sep} -p {proto} {recent}-m {proto} -j DNAT --to-destination {}:{}",
        ep.ip, ep.port
    ));
}

/// Chain names declared in `iptables-save` output.
pub fn saved_chains(save: &str) -> BTreeSet<String> {
    save.lines()
        .filter_map(|l| l.strip_prefix(':'))
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect()
}

/// What the iptables backend last applied.
struct Applied {
    config: SyncConfig,
    rules: Rules,
}

/// The iptables backend: a full rewrite (after `iptables-save` to find stale
/// chains) on the first sync and after [`ProxyBackend::invalidate`] or a failure;
/// then partial `iptables-restore --noflush` runs rewriting only changed chains.
pub struct IptablesBackend {
    runner: Runner,
    applied: Option<Applied>,
}

impl IptablesBackend {
    pub fn new(runner: Runner) -> Self {
        Self {
            runner,
            applied: None,
        }
    }

    fn ensure_jumps(&self) -> Result<(), BackendError> {
        for (table, builtin, chain) in JUMPS {
            // Our chain must exist before a jump to it can be added.
            let _ = self
                .runner
                .run("iptables", &["-w", "-t", table, "-N", chain], None);
            let check = ["-w", "-t", table, "-C", builtin, "-j", chain];
            if self.runner.run("iptables", &check, None).is_err() {
                self.runner.run(
                    "iptables",
                    &["-w", "-t", table, "-I", builtin, "-j", chain],
                    None,
                )?;
            }
        }
        Ok(())
    }
}

impl ProxyBackend for IptablesBackend {
    fn mode(&self) -> &'static str {
        "iptables"
    }

    fn sync(&mut self, state: &ProxyState, config: &SyncConfig) -> Result<SyncStats, BackendError> {
        let rules = build_rules(state, config);
        let count = rules.rule_count();
        let text = match self.applied.take() {
            Some(applied) if applied.config == *config => {
                partial_restore_input(&applied.rules, &rules)
            }
            _ => {
                self.ensure_jumps()?;
                let existing =
                    saved_chains(&self.runner.run("iptables-save", &["-t", "nat"], None)?);
                let stale: Vec<&String> = existing
                    .iter()
                    .filter(|c| is_service_chain(c) && !rules.nat.contains_key(*c))
                    .collect();
                let all: Vec<&String> = rules.nat_order.iter().collect();
                let mut text = String::new();
                rules.write_filter(&mut text);
                rules.write_nat(&mut text, &all, &stale);
                text
            }
        };
        if !text.is_empty() {
            self.runner
                .run("iptables-restore", &["-w", "--noflush"], Some(&text))?;
        }
        self.applied = Some(Applied {
            config: config.clone(),
            rules,
        });
        Ok(SyncStats { rules: count })
    }

    fn invalidate(&mut self) {
        self.applied = None;
    }

    fn cleanup(&mut self) -> Result<(), BackendError> {
        self.applied = None;
        for (table, builtin, chain) in JUMPS {
            let _ = self.runner.run(
                "iptables",
                &["-w", "-t", table, "-D", builtin, "-j", chain],
                None,
            );
        }
        let existing = saved_chains(&self.runner.run("iptables-save", &["-t", "nat"], None)?);
        let mut text = String::from("*filter\n:KUBE-SERVICES - [0:0]\n:KUBE-NODEPORTS-CHECK - [0:0]\n-X KUBE-SERVICES\n-X KUBE-NODEPORTS-CHECK\nCOMMIT\n*nat\n");
        let ours: Vec<&String> = existing.iter().filter(|c| c.starts_with("KUBE-")).collect();
        for chain in &ours {
            let _ = writeln!(text, ":{chain} - [0:0]");
        }
        for chain in &ours {
            let _ = writeln!(text, "-X {chain}");
        }
        text.push_str("COMMIT\n");
        self.runner
            .run("iptables-restore", &["-w", "--noflush"], Some(&text))
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Protocol;

    fn sp(eps: &[&str]) -> ServicePort {
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
                .map(|ip| Endpoint {
                    ip: ip.parse().unwrap(),
                    port: 8080,
                    local: false,
                })
                .collect(),
        }
    }

    #[test]
    fn two_endpoints_and_stale_chain_removed() {
        let s = sp(&["10.180.0.1", "10.180.0.2"]);
        let svc = svc_chain(&s);
        let sep1 = sep_chain(&s, &s.endpoints[0]);
        let sep2 = sep_chain(&s, &s.endpoints[1]);
        let existing: BTreeSet<String> = [
            "KUBE-SVC-OLDOLDOLDOLDOLDO".to_string(),
            "PREROUTING".to_string(),
        ]
        .into();
        let config = SyncConfig {
            cluster_cidr: Some("10.0.0.0/8".parse().unwrap()),
            ..Default::default()
        };
        let (text, rules) = restore_input(&ProxyState { services: vec![s] }, &config, &existing);
        let expected = format!(
            "\
*filter
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS-CHECK - [0:0]
COMMIT
*nat
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:{svc} - [0:0]
:{sep1} - [0:0]
:{sep2} - [0:0]
:KUBE-SVC-OLDOLDOLDOLDOLDO - [0:0]
-A KUBE-SERVICES -d 172.30.0.41/32 -p tcp -m comment --comment \"ns1/svc1:p80\" -m tcp --dport 80 -j {svc}
-A KUBE-SERVICES -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A {svc} ! -s 10.0.0.0/8 -d 172.30.0.41/32 -p tcp -m tcp --dport 80 -j KUBE-MARK-MASQ
-A {svc} -m statistic --mode random --probability 0.5000000000 -j {sep1}
-A {svc} -j {sep2}
-A {sep1} -s 10.180.0.1/32 -j KUBE-MARK-MASQ
-A {sep1} -p tcp -m tcp -j DNAT --to-destination 10.180.0.1:8080
-A {sep2} -s 10.180.0.2/32 -j KUBE-MARK-MASQ
-A {sep2} -p tcp -m tcp -j DNAT --to-destination 10.180.0.2:8080
-X KUBE-SVC-OLDOLDOLDOLDOLDO
COMMIT
"
        );
        assert_eq!(text, expected);
        assert_eq!(rules, 13);
        assert!(svc.starts_with("KUBE-SVC-") && svc.len() == 25);
    }

    #[test]
    fn no_endpoints_rejected_in_filter() {
        let mut s = sp(&[]);
        s.node_port = Some(30080);
        let (text, _) = restore_input(
            &ProxyState { services: vec![s] },
            &SyncConfig::default(),
            &BTreeSet::new(),
        );
        assert!(text.contains("-A KUBE-SERVICES -d 172.30.0.41/32 -p tcp -m comment --comment \"ns1/svc1:p80\" -m tcp --dport 80 -j REJECT\n"));
        assert!(text.contains("-A KUBE-NODEPORTS-CHECK -m addrtype --dst-type LOCAL -p tcp -m comment --comment \"ns1/svc1:p80\" -m tcp --dport 30080 -j REJECT\n"));
        assert!(!text.contains("KUBE-SVC-"));
    }

    #[test]
    fn partial_rewrites_only_changed_chains() {
        let config = SyncConfig::default();
        let mut other = sp(&["10.180.0.9"]);
        other.name = "other".into();
        other.cluster_ip = Some("172.30.0.42".parse().unwrap());
        let before = sp(&["10.180.0.1", "10.180.0.2"]);
        let after = sp(&["10.180.0.1", "10.180.0.3"]);
        let old = build_rules(
            &ProxyState {
                services: vec![before.clone(), other.clone()],
            },
            &config,
        );
        let new = build_rules(
            &ProxyState {
                services: vec![after.clone(), other.clone()],
            },
            &config,
        );
        assert_eq!(partial_restore_input(&new, &new), "");
        let text = partial_restore_input(&old, &new);
        let svc = svc_chain(&after);
        let kept = sep_chain(&after, &after.endpoints[0]);
        let added = sep_chain(&after, &after.endpoints[1]);
        let gone = sep_chain(&before, &before.endpoints[1]);
        let expected = format!(
            "\
*nat
:{svc} - [0:0]
:{added} - [0:0]
:{gone} - [0:0]
-A {svc} -m statistic --mode random --probability 0.5000000000 -j {kept}
-A {svc} -j {added}
-A {added} -s 10.180.0.3/32 -j KUBE-MARK-MASQ
-A {added} -p tcp -m tcp -j DNAT --to-destination 10.180.0.3:8080
-X {gone}
COMMIT
"
        );
        assert_eq!(text, expected);

        // A removed service: its dispatch rule goes (KUBE-SERVICES rewritten), its
        // chains are deleted, the other service's chains are untouched.
        let only_other = build_rules(
            &ProxyState {
                services: vec![other.clone()],
            },
            &config,
        );
        let text = partial_restore_input(&new, &only_other);
        assert!(text.contains(":KUBE-SERVICES - [0:0]\n"), "{text}");
        assert!(text.contains(&format!("-X {svc}\n")), "{text}");
        assert!(!text.contains(&format!(":{}", svc_chain(&other))), "{text}");
        assert!(!text.contains("*filter"), "{text}");
    }

    #[test]
    fn saved_chains_parsed() {
        let save = "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SVC-ABC - [0:0]\n-A PREROUTING -j KUBE-SERVICES\nCOMMIT\n";
        let chains = saved_chains(save);
        assert!(chains.contains("KUBE-SVC-ABC") && chains.contains("PREROUTING"));
        assert_eq!(chains.len(), 2);
    }
}
