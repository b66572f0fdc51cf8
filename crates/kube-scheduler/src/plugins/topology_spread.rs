//! PodTopologySpread: `DoNotSchedule` constraints filter on skew, `ScheduleAnyway`
//! constraints score (upstream `plugins/podtopologyspread`). System default
//! constraints (which need Service/ReplicaSet listers) are not applied.

use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::TopologySpreadConstraint;

use crate::cache::Cache;
use crate::framework::{
    Code, CycleState, FilterPlugin, NodeInfo, PodInfo, ScorePlugin, Status, MAX_NODE_SCORE,
};
use crate::labels::{tolerations_tolerate, Labels, Selector};
use crate::plugins::node_affinity::required_matches;

pub struct PodTopologySpread;

impl PodTopologySpread {
    pub const NAME: &'static str = "PodTopologySpread";
    pub const REASON: &'static str = "node(s) didn't match pod topology spread constraints";
    pub const REASON_MISSING_LABEL: &'static str =
        "node(s) didn't match pod topology spread constraints (missing required label)";
}

const HOSTNAME: &str = "kubernetes.io/hostname";

#[derive(Debug, Clone)]
pub struct Constraint {
    max_skew: i64,
    topology_key: String,
    selector: Selector,
    min_domains: usize,
    honor_node_affinity: bool,
    honor_node_taints: bool,
}

impl Constraint {
    /// Upstream `matchNodeInclusionPolicies`.
    fn includes_node(&self, pod: &PodInfo, node: &NodeInfo) -> bool {
        if self.honor_node_affinity && !required_matches(pod, node) {
            return false;
        }
        if self.honor_node_taints {
            let untolerated = node
                .taints
                .iter()
                .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
                .any(|t| !tolerations_tolerate(&pod.tolerations, t));
            if untolerated {
                return false;
            }
        }
        true
    }
}

/// Upstream `filterTopologySpreadConstraints`: the pod's constraints of one kind,
/// with `matchLabelKeys` merged into the selector.
fn constraints_of(pod: &PodInfo, when: &str) -> Vec<Constraint> {
    pod.spread_constraints
        .iter()
        .filter(|c: &&TopologySpreadConstraint| c.when_unsatisfiable == when)
        .map(|c| {
            let mut selector = Selector::from_label_selector(c.label_selector.as_ref());
            for key in c.match_label_keys.iter().flatten() {
                if let Some(v) = pod.labels.get(key) {
                    selector.and_equals(key, v);
                }
            }
            Constraint {
                max_skew: i64::from(c.max_skew),
                topology_key: c.topology_key.clone(),
                selector,
                min_domains: c
                    .min_domains
                    .and_then(|m| usize::try_from(m).ok())
                    .unwrap_or(1),
                honor_node_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
                honor_node_taints: c.node_taints_policy.as_deref() == Some("Honor"),
            }
        })
        .collect()
}

fn node_has_all_keys(labels: &Labels, constraints: &[Constraint]) -> bool {
    constraints
        .iter()
        .all(|c| labels.contains_key(&c.topology_key))
}

/// Upstream `countPodsMatchSelector`: same namespace, not terminating.
fn count_matching(node: &NodeInfo, selector: &Selector, namespace: &str) -> i64 {
    if selector.is_empty_nothing() {
        return 0;
    }
    node.pods
        .iter()
        .filter(|p| !p.terminating && p.namespace == namespace && selector.matches(&p.labels))
        .count() as i64
}

#[derive(Debug, Default)]
pub struct PreFilterState {
    constraints: Vec<Constraint>,
    /// Per constraint: topology value → matching pods.
    counts: Vec<HashMap<String, i64>>,
}

impl PreFilterState {
    fn min_match(&self, i: usize) -> i64 {
        let counts = &self.counts[i];
        if counts.len() < self.constraints[i].min_domains {
            return 0;
        }
        counts
            .values()
            .copied()
            .min()
            .unwrap_or(i64::from(i32::MAX))
    }
}

#[derive(Debug, Default)]
pub struct PreScoreState {
    constraints: Vec<Constraint>,
    counts: Vec<HashMap<String, i64>>,
    weights: Vec<f64>,
    ignored: HashSet<String>,
}

impl FilterPlugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, cache: &Cache) -> Status {
        let constraints = constraints_of(pod, "DoNotSchedule");
        if constraints.is_empty() {
            return Status::skip();
        }
        let mut counts = vec![HashMap::new(); constraints.len()];
        for node in cache.nodes.values().filter(|n| n.node.is_some()) {
            if !node_has_all_keys(&node.labels, &constraints) {
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if !c.includes_node(pod, node) {
                    continue;
                }
                let value = node
                    .labels
                    .get(&c.topology_key)
                    .cloned()
                    .unwrap_or_default();
                *counts[i].entry(value).or_insert(0) +=
                    count_matching(node, &c.selector, &pod.namespace);
            }
        }
        state.spread_filter = Some(PreFilterState {
            constraints,
            counts,
        });
        Status::success()
    }

    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.spread_filter.as_ref() else {
            return Status::success();
        };
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(value) = node.labels.get(&c.topology_key) else {
                return Status::new(
                    Code::UnschedulableAndUnresolvable,
                    Self::NAME,
                    Self::REASON_MISSING_LABEL,
                );
            };
            let self_match = i64::from(c.selector.matches(&pod.labels));
            let match_num = s.counts[i].get(value).copied().unwrap_or(0);
            let skew = match_num + self_match - s.min_match(i);
            if skew > c.max_skew {
                return Status::new(Code::Unschedulable, Self::NAME, Self::REASON);
            }
        }
        Status::success()
    }
}

impl ScorePlugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn weight(&self) -> i64 {
        2
    }

    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
        cache: &Cache,
    ) -> Code {
        let constraints = constraints_of(pod, "ScheduleAnyway");
        if constraints.is_empty() || nodes.is_empty() {
            return Code::Skip;
        }
        let mut s = PreScoreState {
            counts: vec![HashMap::new(); constraints.len()],
            ..PreScoreState::default()
        };
        let mut sizes = vec![0usize; constraints.len()];
        for node in nodes {
            if !node_has_all_keys(&node.labels, &constraints) {
                s.ignored.insert(node.name.clone());
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if c.topology_key == HOSTNAME {
                    continue;
                }
                let value = node
                    .labels
                    .get(&c.topology_key)
                    .cloned()
                    .unwrap_or_default();
                if let std::collections::hash_map::Entry::Vacant(e) = s.counts[i].entry(value) {
                    e.insert(0);
                    sizes[i] += 1;
                }
            }
        }
        s.weights = constraints
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let size = if c.topology_key == HOSTNAME {
                    nodes.len() - s.ignored.len()
                } else {
                    sizes[i]
                };
                ((size + 2) as f64).ln()
            })
            .collect();
        for node in cache.nodes.values().filter(|n| n.node.is_some()) {
            if !node_has_all_keys(&node.labels, &constraints) {
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if !c.includes_node(pod, node) {
                    continue;
                }
                let value = node
                    .labels
                    .get(&c.topology_key)
                    .cloned()
                    .unwrap_or_default();
                if let Some(count) = s.counts[i].get_mut(&value) {
                    *count += count_matching(node, &c.selector, &pod.namespace);
                }
            }
        }
        s.constraints = constraints;
        state.spread_score = Some(s);
        Code::Success
    }

    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(s) = state.spread_score.as_ref() else {
            return 0;
        };
        if s.ignored.contains(&node.name) {
            return 0;
        }
        let mut score = 0f64;
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(value) = node.labels.get(&c.topology_key) else {
                continue;
            };
            let count = if c.topology_key == HOSTNAME {
                count_matching(node, &c.selector, &pod.namespace)
            } else {
                s.counts[i].get(value).copied().unwrap_or(0)
            };
            score += count as f64 * s.weights[i] + (c.max_skew - 1) as f64;
        }
        score.round() as i64
    }

    fn normalize(&self, state: &CycleState, nodes: &[&NodeInfo], scores: &mut [i64]) {
        let Some(s) = state.spread_score.as_ref() else {
            return;
        };
        let ignored = |i: usize| nodes.get(i).is_some_and(|n| s.ignored.contains(&n.name));
        let (mut min, mut max) = (i64::MAX, 0i64);
        for (i, score) in scores.iter().enumerate() {
            if ignored(i) {
                continue;
            }
            min = min.min(*score);
            max = max.max(*score);
        }
        for (i, score) in scores.iter_mut().enumerate() {
            if ignored(i) {
                *score = 0;
            } else if max == 0 {
                *score = MAX_NODE_SCORE;
            } else {
                *score = MAX_NODE_SCORE * (max + min - *score) / max;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::{cache, pod};
    use serde_json::{json, Value};

    fn zone_nodes() -> Vec<Value> {
        ["a1:a", "a2:a", "b1:b"]
            .iter()
            .map(|s| {
                let (n, z) = s.split_once(':').expect("pair");
                json!({"metadata": {"name": n, "labels": {"zone": z, "kubernetes.io/hostname": n}}})
            })
            .collect()
    }

    fn web(name: &str, node: Option<&str>, when: &str) -> Value {
        let mut spec = json!({"containers": [{"name": "c"}], "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": when, "labelSelector": {"matchLabels": {"app": "web"}}}]});
        if let Some(n) = node {
            spec["nodeName"] = n.into();
        }
        json!({"metadata": {"name": name, "labels": {"app": "web"}}, "spec": spec})
    }

    #[test]
    fn skew_filter() {
        let c = cache(zone_nodes(), vec![web("w1", Some("a1"), "DoNotSchedule")]);
        let p = pod(web("new", None, "DoNotSchedule"));
        let mut st = CycleState::default();
        assert!(PodTopologySpread.pre_filter(&mut st, &p, &c).is_success());
        // zone a has 1, b has 0: placing in a gives skew 2.
        let s = PodTopologySpread.filter(&st, &p, &c.nodes["a2"]);
        assert_eq!(
            (s.code, s.reasons.clone()),
            (
                Code::Unschedulable,
                vec![PodTopologySpread::REASON.to_string()]
            )
        );
        assert!(PodTopologySpread
            .filter(&st, &p, &c.nodes["b1"])
            .is_success());
    }

    #[test]
    fn missing_label_is_unresolvable() {
        let mut nodes = zone_nodes();
        nodes.push(json!({"metadata": {"name": "bare"}}));
        let c = cache(nodes, vec![]);
        let p = pod(web("new", None, "DoNotSchedule"));
        let mut st = CycleState::default();
        PodTopologySpread.pre_filter(&mut st, &p, &c);
        let s = PodTopologySpread.filter(&st, &p, &c.nodes["bare"]);
        assert_eq!(s.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(s.reasons, [PodTopologySpread::REASON_MISSING_LABEL]);
    }

    #[test]
    fn soft_constraints_prefer_emptier_zone() {
        let c = cache(
            zone_nodes(),
            vec![
                web("w1", Some("a1"), "ScheduleAnyway"),
                web("w2", Some("a2"), "ScheduleAnyway"),
            ],
        );
        let p = pod(web("new", None, "ScheduleAnyway"));
        let mut st = CycleState::default();
        let nodes: Vec<&NodeInfo> = ["a1", "a2", "b1"].iter().map(|n| &c.nodes[*n]).collect();
        assert_eq!(
            PodTopologySpread.pre_score(&mut st, &p, &nodes, &c),
            Code::Success
        );
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| PodTopologySpread.score(&st, &p, n))
            .collect();
        // zone a: 2 × ln(4) ≈ 2.77 → 3; zone b: 0.
        assert_eq!(scores, [3, 3, 0]);
        PodTopologySpread.normalize(&st, &nodes, &mut scores);
        assert_eq!(scores, [0, 0, 100]);
    }
}
