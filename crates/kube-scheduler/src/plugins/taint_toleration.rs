//! TaintToleration: NoSchedule/NoExecute taints must be tolerated; untolerated
//! PreferNoSchedule taints lower the score.

use k8s_openapi::api::core::v1::Toleration;

use crate::framework::{
    default_normalize_score, Code, CycleState, FilterPlugin, NodeInfo, PodInfo, ScorePlugin,
    Status, MAX_NODE_SCORE,
};
use crate::labels::tolerations_tolerate;

pub struct TaintToleration;

impl TaintToleration {
    pub const NAME: &'static str = "TaintToleration";
}

impl FilterPlugin for TaintToleration {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let untolerated = node
            .taints
            .iter()
            .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
            .find(|t| !tolerations_tolerate(&pod.tolerations, t));
        match untolerated {
            None => Status::success(),
            Some(t) => Status::new(
                Code::UnschedulableAndUnresolvable,
                Self::NAME,
                format!(
                    "node(s) had untolerated taint {{{}: {}}}",
                    t.key,
                    t.value.as_deref().unwrap_or("")
                ),
            ),
        }
    }
}

fn prefer_no_schedule_tolerations(pod: &PodInfo) -> Vec<Toleration> {
    pod.tolerations
        .iter()
        .filter(|t| {
            t.effect
                .as_deref()
                .is_none_or(|e| e.is_empty() || e == "PreferNoSchedule")
        })
        .cloned()
        .collect()
}

impl ScorePlugin for TaintToleration {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn weight(&self) -> i64 {
        3
    }

    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        if !node.taints.iter().any(|t| t.effect == "PreferNoSchedule") {
            return 0;
        }
        let tols = prefer_no_schedule_tolerations(pod);
        let count = node
            .taints
            .iter()
            .filter(|t| t.effect == "PreferNoSchedule" && !tolerations_tolerate(&tols, t))
            .count();
        i64::try_from(count).unwrap_or(i64::MAX)
    }

    fn normalize(&self, _state: &CycleState, _nodes: &[&NodeInfo], scores: &mut [i64]) {
        default_normalize_score(MAX_NODE_SCORE, true, scores);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::{cache, pod};
    use serde_json::json;

    #[test]
    fn untolerated_taint_message() {
        let c = cache(
            vec![json!({"metadata": {"name": "n"}, "spec": {"taints": [
            {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}})],
            vec![],
        );
        let s = TaintToleration.filter(
            &CycleState::default(),
            &pod(json!({"metadata": {"name": "p"}})),
            &c.nodes["n"],
        );
        assert_eq!(s.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(
            s.reasons,
            ["node(s) had untolerated taint {dedicated: gpu}"]
        );
    }

    #[test]
    fn prefer_no_schedule_lowers_score() {
        let c = cache(
            vec![
                json!({"metadata": {"name": "clean"}}),
                json!({"metadata": {"name": "tainted"}, "spec": {"taints": [{"key": "a", "effect": "PreferNoSchedule"}]}}),
            ],
            vec![],
        );
        let p = pod(json!({"metadata": {"name": "p"}}));
        let st = CycleState::default();
        let mut scores = [
            TaintToleration.score(&st, &p, &c.nodes["clean"]),
            TaintToleration.score(&st, &p, &c.nodes["tainted"]),
        ];
        assert!(TaintToleration
            .filter(&st, &p, &c.nodes["tainted"])
            .is_success());
        TaintToleration.normalize(&st, &[], &mut scores);
        assert_eq!(scores, [100, 0]);
    }
}
