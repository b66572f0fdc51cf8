//! InterPodAffinity: required pod affinity/anti-affinity (the incoming pod's and the
//! existing pods') as a filter, preferred terms (and existing pods' required affinity
//! at `hardPodAffinityWeight` 1) as a score.

use std::collections::HashMap;

use crate::cache::Cache;
use crate::framework::{
    AffinityTerm, Code, CycleState, FilterPlugin, NodeInfo, PodInfo, ScorePlugin, Status,
    WeightedAffinityTerm, MAX_NODE_SCORE,
};
use crate::labels::Labels;

pub struct InterPodAffinity;

impl InterPodAffinity {
    pub const NAME: &'static str = "InterPodAffinity";
    pub const REASON_AFFINITY: &'static str = "node(s) didn't match pod affinity rules";
    pub const REASON_ANTI_AFFINITY: &'static str = "node(s) didn't match pod anti-affinity rules";
    pub const REASON_EXISTING_ANTI_AFFINITY: &'static str =
        "node(s) didn't satisfy existing pods anti-affinity rules";
}

const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

type TopologyCounts = HashMap<(String, String), i64>;

fn bump(counts: &mut TopologyCounts, node: &NodeInfo, key: &str, by: i64) {
    if let Some(value) = node.labels.get(key) {
        let pair = (key.to_string(), value.clone());
        let entry = counts.entry(pair.clone()).or_insert(0);
        *entry += by;
        if *entry == 0 {
            counts.remove(&pair);
        }
    }
}

fn matches_all(terms: &[AffinityTerm], pod: &PodInfo, ns: &HashMap<String, Labels>) -> bool {
    !terms.is_empty() && terms.iter().all(|t| t.matches(pod, ns))
}

#[derive(Debug, Default)]
pub struct PreFilterState {
    existing_anti_affinity: TopologyCounts,
    affinity: TopologyCounts,
    anti_affinity: TopologyCounts,
    /// The incoming pod matches all its own required affinity terms.
    self_affine: bool,
}

impl FilterPlugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, cache: &Cache) -> Status {
        let ns = &cache.namespaces;
        let mut s = PreFilterState::default();
        let incoming_terms =
            !(pod.required_affinity.is_empty() && pod.required_anti_affinity.is_empty());
        if !incoming_terms && cache.pods_with_required_anti_affinity == 0 {
            return Status::skip();
        }
        for node in cache.nodes.values().filter(|n| n.node.is_some()) {
            if node.pods_with_required_anti_affinity > 0 {
                for existing in &node.pods {
                    for term in &existing.required_anti_affinity {
                        if term.matches(pod, ns) {
                            bump(&mut s.existing_anti_affinity, node, &term.topology_key, 1);
                        }
                    }
                }
            }
            if pod.required_affinity.is_empty() && pod.required_anti_affinity.is_empty() {
                continue;
            }
            for existing in &node.pods {
                if matches_all(&pod.required_affinity, existing, ns) {
                    for t in &pod.required_affinity {
                        bump(&mut s.affinity, node, &t.topology_key, 1);
                    }
                }
                for t in &pod.required_anti_affinity {
                    if t.matches(existing, ns) {
                        bump(&mut s.anti_affinity, node, &t.topology_key, 1);
                    }
                }
            }
        }
        if s.existing_anti_affinity.is_empty()
            && pod.required_affinity.is_empty()
            && pod.required_anti_affinity.is_empty()
        {
            return Status::skip();
        }
        s.self_affine = matches_all(&pod.required_affinity, pod, ns);
        state.interpod_filter = Some(s);
        Status::success()
    }

    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.interpod_filter.as_ref() else {
            return Status::success();
        };
        // The incoming pod's required affinity.
        let mut pods_exist = true;
        for term in &pod.required_affinity {
            let Some(value) = node.labels.get(&term.topology_key) else {
                return Status::new(
                    Code::UnschedulableAndUnresolvable,
                    Self::NAME,
                    Self::REASON_AFFINITY,
                );
            };
            if s.affinity
                .get(&(term.topology_key.clone(), value.clone()))
                .copied()
                .unwrap_or(0)
                <= 0
            {
                pods_exist = false;
            }
        }
        // The first pod of a self-affine group may go anywhere with the topology keys.
        if !(pods_exist || (s.affinity.is_empty() && s.self_affine)) {
            return Status::new(
                Code::UnschedulableAndUnresolvable,
                Self::NAME,
                Self::REASON_AFFINITY,
            );
        }
        if !s.anti_affinity.is_empty() {
            for term in &pod.required_anti_affinity {
                if let Some(value) = node.labels.get(&term.topology_key) {
                    if s.anti_affinity
                        .get(&(term.topology_key.clone(), value.clone()))
                        .copied()
                        .unwrap_or(0)
                        > 0
                    {
                        return Status::new(
                            Code::Unschedulable,
                            Self::NAME,
                            Self::REASON_ANTI_AFFINITY,
                        );
                    }
                }
            }
        }
        if !s.existing_anti_affinity.is_empty() {
            for (k, v) in &node.labels {
                if s.existing_anti_affinity
                    .get(&(k.clone(), v.clone()))
                    .copied()
                    .unwrap_or(0)
                    > 0
                {
                    return Status::new(
                        Code::Unschedulable,
                        Self::NAME,
                        Self::REASON_EXISTING_ANTI_AFFINITY,
                    );
                }
            }
        }
        Status::success()
    }
}

#[derive(Debug, Default)]
pub struct PreScoreState {
    /// topology key → value → score.
    topology_score: HashMap<String, HashMap<String, i64>>,
}

impl PreScoreState {
    fn add(&mut self, term: &AffinityTerm, weight: i64, node: &NodeInfo) {
        if let Some(value) = node.labels.get(&term.topology_key) {
            *self
                .topology_score
                .entry(term.topology_key.clone())
                .or_default()
                .entry(value.clone())
                .or_insert(0) += weight;
        }
    }

    fn process_terms(
        &mut self,
        terms: &[WeightedAffinityTerm],
        target: &PodInfo,
        ns: &HashMap<String, Labels>,
        node: &NodeInfo,
        sign: i64,
    ) {
        for t in terms {
            if t.term.matches(target, ns) {
                self.add(&t.term, t.weight * sign, node);
            }
        }
    }
}

impl ScorePlugin for InterPodAffinity {
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
        if nodes.is_empty() {
            return Code::Skip;
        }
        let ns = &cache.namespaces;
        let has_constraints =
            !pod.preferred_affinity.is_empty() || !pod.preferred_anti_affinity.is_empty();
        if !has_constraints && cache.pods_with_affinity == 0 {
            return Code::Skip;
        }
        let mut s = PreScoreState::default();
        for node in cache.nodes.values().filter(|n| n.node.is_some()) {
            if node.labels.is_empty() || (!has_constraints && node.pods_with_affinity == 0) {
                continue;
            }
            for existing in &node.pods {
                if !has_constraints && !existing.has_affinity() {
                    continue;
                }
                s.process_terms(&pod.preferred_affinity, existing, ns, node, 1);
                s.process_terms(&pod.preferred_anti_affinity, existing, ns, node, -1);
                for t in &existing.required_affinity {
                    if t.matches(pod, ns) {
                        s.add(t, HARD_POD_AFFINITY_WEIGHT, node);
                    }
                }
                s.process_terms(&existing.preferred_affinity, pod, ns, node, 1);
                s.process_terms(&existing.preferred_anti_affinity, pod, ns, node, -1);
            }
        }
        if s.topology_score.is_empty() {
            return Code::Skip;
        }
        state.interpod_score = Some(s);
        Code::Success
    }

    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(s) = state.interpod_score.as_ref() else {
            return 0;
        };
        s.topology_score
            .iter()
            .filter_map(|(k, values)| node.labels.get(k).and_then(|v| values.get(v)))
            .sum()
    }

    fn normalize(&self, state: &CycleState, _nodes: &[&NodeInfo], scores: &mut [i64]) {
        if state.interpod_score.is_none() {
            return;
        }
        let min = scores.iter().copied().min().unwrap_or(0);
        let max = scores.iter().copied().max().unwrap_or(0);
        let diff = max - min;
        for s in scores.iter_mut() {
            *s = if diff > 0 {
                (MAX_NODE_SCORE as f64 * ((*s - min) as f64 / diff as f64)) as i64
            } else {
                0
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::{cache, pod};
    use serde_json::{json, Value};

    fn nodes() -> Vec<Value> {
        ["n1:a", "n2:a", "n3:b"]
            .iter()
            .map(|s| {
                let (n, z) = s.split_once(':').expect("pair");
                json!({"metadata": {"name": n, "labels": {"zone": z, "kubernetes.io/hostname": n}}})
            })
            .collect()
    }

    fn with_affinity(name: &str, labels: Value, node: Option<&str>, affinity: Value) -> Value {
        let mut spec = json!({"containers": [{"name": "c"}], "affinity": affinity});
        if let Some(n) = node {
            spec["nodeName"] = n.into();
        }
        json!({"metadata": {"name": name, "labels": labels}, "spec": spec})
    }

    fn term(app: &str, key: &str) -> Value {
        json!({"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key})
    }

    fn run_filter(c: &Cache, p: &PodInfo, node: &str) -> Status {
        let mut st = CycleState::default();
        let pre = InterPodAffinity.pre_filter(&mut st, p, c);
        if pre.code == Code::Skip {
            return Status::success();
        }
        InterPodAffinity.filter(&st, p, &c.nodes[node])
    }

    #[test]
    fn required_affinity_follows_matching_pods_zone() {
        let c = cache(
            nodes(),
            vec![
                json!({"metadata": {"name": "db", "labels": {"app": "db"}}, "spec": {"nodeName": "n3", "containers": [{"name": "c"}]}}),
            ],
        );
        let p = pod(with_affinity(
            "web",
            json!({"app": "web"}),
            None,
            json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("db", "zone")]}}),
        ));
        assert_eq!(
            run_filter(&c, &p, "n1").reasons,
            [InterPodAffinity::REASON_AFFINITY]
        );
        assert!(run_filter(&c, &p, "n3").is_success());
    }

    #[test]
    fn first_self_affine_pod_goes_anywhere() {
        let c = cache(nodes(), vec![]);
        let p = pod(with_affinity(
            "web",
            json!({"app": "web"}),
            None,
            json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("web", "zone")]}}),
        ));
        assert!(run_filter(&c, &p, "n1").is_success());
    }

    #[test]
    fn anti_affinity_both_ways() {
        let c = cache(
            nodes(),
            vec![with_affinity(
                "w1",
                json!({"app": "web"}),
                Some("n1"),
                json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("web", "kubernetes.io/hostname")]}}),
            )],
        );
        // Incoming pod without affinity but labelled web: the existing pod's anti-affinity rejects n1.
        let plain = pod(json!({"metadata": {"name": "w2", "labels": {"app": "web"}}}));
        assert_eq!(
            run_filter(&c, &plain, "n1").reasons,
            [InterPodAffinity::REASON_EXISTING_ANTI_AFFINITY]
        );
        assert!(run_filter(&c, &plain, "n2").is_success());
        // Incoming anti-affine to web in the zone: n2 shares zone a with n1.
        let p = pod(with_affinity(
            "x",
            json!({"app": "x"}),
            None,
            json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term("web", "zone")]}}),
        ));
        assert_eq!(
            run_filter(&c, &p, "n2").reasons,
            [InterPodAffinity::REASON_ANTI_AFFINITY]
        );
        assert!(run_filter(&c, &p, "n3").is_success());
    }

    #[test]
    fn preferred_affinity_scores() {
        let c = cache(
            nodes(),
            vec![
                json!({"metadata": {"name": "db", "labels": {"app": "db"}}, "spec": {"nodeName": "n3", "containers": [{"name": "c"}]}}),
            ],
        );
        let p = pod(with_affinity(
            "web",
            json!({"app": "web"}),
            None,
            json!({"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 50, "podAffinityTerm": term("db", "zone")}]}}),
        ));
        let nodes: Vec<&NodeInfo> = ["n1", "n2", "n3"].iter().map(|n| &c.nodes[*n]).collect();
        let mut st = CycleState::default();
        assert_eq!(
            InterPodAffinity.pre_score(&mut st, &p, &nodes, &c),
            Code::Success
        );
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| InterPodAffinity.score(&st, &p, n))
            .collect();
        assert_eq!(scores, [0, 0, 50]);
        InterPodAffinity.normalize(&st, &nodes, &mut scores);
        assert_eq!(scores, [0, 0, 100]);
    }
}
