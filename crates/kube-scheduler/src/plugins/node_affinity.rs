//! NodeAffinity: `nodeSelector` and required node affinity as a filter, preferred
//! terms as a score.

use crate::cache::Cache;
use crate::framework::{
    default_normalize_score, Code, CycleState, FilterPlugin, NodeInfo, PodInfo, ScorePlugin,
    Status, MAX_NODE_SCORE,
};

pub struct NodeAffinity;

impl NodeAffinity {
    pub const NAME: &'static str = "NodeAffinity";
    pub const REASON: &'static str = "node(s) didn't match Pod's node affinity/selector";
}

/// Upstream `GetRequiredNodeAffinity(pod).Match(node)`.
pub fn required_matches(pod: &PodInfo, node: &NodeInfo) -> bool {
    if !pod
        .node_selector
        .iter()
        .all(|(k, v)| node.labels.get(k) == Some(v))
    {
        return false;
    }
    match &pod.required_node_terms {
        None => true,
        Some(terms) => terms.iter().any(|t| t.matches(&node.name, &node.labels)),
    }
}

impl FilterPlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn pre_filter(&self, _state: &mut CycleState, pod: &PodInfo, _cache: &Cache) -> Status {
        if pod.node_selector.is_empty() && pod.required_node_terms.is_none() {
            return Status::skip();
        }
        Status::success()
    }

    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if required_matches(pod, node) {
            Status::success()
        } else {
            Status::new(Code::UnschedulableAndUnresolvable, Self::NAME, Self::REASON)
        }
    }
}

impl ScorePlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn weight(&self) -> i64 {
        2
    }

    fn pre_score(
        &self,
        _state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[&NodeInfo],
        _cache: &Cache,
    ) -> Code {
        if pod.preferred_node_terms.is_empty() {
            Code::Skip
        } else {
            Code::Success
        }
    }

    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        pod.preferred_node_terms
            .iter()
            .filter(|(_, t)| t.matches(&node.name, &node.labels))
            .map(|(w, _)| *w)
            .sum()
    }

    fn normalize(&self, _state: &CycleState, _nodes: &[&NodeInfo], scores: &mut [i64]) {
        default_normalize_score(MAX_NODE_SCORE, false, scores);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::{cache, pod};
    use serde_json::json;

    #[test]
    fn selector_and_required_terms() {
        let c = cache(
            vec![
                json!({"metadata": {"name": "a", "labels": {"disk": "ssd", "zone": "z1"}}}),
                json!({"metadata": {"name": "b", "labels": {"disk": "hdd", "zone": "z1"}}}),
                json!({"metadata": {"name": "c", "labels": {"disk": "ssd", "zone": "z2"}}}),
            ],
            vec![],
        );
        let p = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}], "nodeSelector": {"disk": "ssd"},
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2"]}]}]}}}}}),
        );
        let st = CycleState::default();
        assert!(!NodeAffinity.filter(&st, &p, &c.nodes["a"]).is_success());
        assert!(!NodeAffinity.filter(&st, &p, &c.nodes["b"]).is_success());
        assert!(NodeAffinity.filter(&st, &p, &c.nodes["c"]).is_success());
        assert_eq!(
            NodeAffinity.filter(&st, &p, &c.nodes["a"]).reasons,
            [NodeAffinity::REASON]
        );
    }

    #[test]
    fn preferred_terms_score() {
        let c = cache(
            vec![
                json!({"metadata": {"name": "a", "labels": {"zone": "z1"}}}),
                json!({"metadata": {"name": "b", "labels": {"zone": "z2"}}}),
            ],
            vec![],
        );
        let p = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}],
            "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2"]}]}},
                {"weight": 5, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}}]}}}}),
        );
        let st = CycleState::default();
        let mut s = [
            NodeAffinity.score(&st, &p, &c.nodes["a"]),
            NodeAffinity.score(&st, &p, &c.nodes["b"]),
        ];
        assert_eq!(s, [5, 15]);
        NodeAffinity.normalize(&st, &[], &mut s);
        assert_eq!(s, [33, 100]);
    }
}
