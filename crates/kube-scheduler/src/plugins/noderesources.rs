//! NodeResourcesFit (filter + LeastAllocated score) and
//! NodeResourcesBalancedAllocation, with upstream's default resources cpu and memory
//! at weight 1.

use crate::cache::Cache;
use crate::framework::{
    Code, CycleState, FilterPlugin, NodeInfo, PodInfo, ScorePlugin, Status, MAX_NODE_SCORE,
};

pub struct Fit;

impl Fit {
    pub const NAME: &'static str = "NodeResourcesFit";
}

/// The reasons a pod does not fit a node's allocatable minus what its pods request
/// (upstream `fitsRequest`).
pub fn insufficient_resources(pod: &PodInfo, node: &NodeInfo) -> Vec<String> {
    let mut out = Vec::new();
    let allowed = node.allocatable.allowed_pod_number;
    if i64::try_from(node.pods.len()).unwrap_or(i64::MAX) + 1 > allowed {
        out.push("Too many pods".to_string());
    }
    let req = &pod.requests;
    if req.is_zero_request() {
        return out;
    }
    let alloc = &node.allocatable;
    let used = &node.requested;
    if req.milli_cpu > 0 && req.milli_cpu > alloc.milli_cpu - used.milli_cpu {
        out.push("Insufficient cpu".to_string());
    }
    if req.memory > 0 && req.memory > alloc.memory - used.memory {
        out.push("Insufficient memory".to_string());
    }
    if req.ephemeral_storage > 0
        && req.ephemeral_storage > alloc.ephemeral_storage - used.ephemeral_storage
    {
        out.push("Insufficient ephemeral-storage".to_string());
    }
    for (name, q) in &req.scalar {
        if *q == 0 {
            continue;
        }
        let free = alloc.scalar.get(name).copied().unwrap_or(0)
            - used.scalar.get(name).copied().unwrap_or(0);
        if *q > free {
            out.push(format!("Insufficient {name}"));
        }
    }
    out
}

impl FilterPlugin for Fit {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let reasons = insufficient_resources(pod, node);
        if reasons.is_empty() {
            Status::success()
        } else {
            Status {
                code: Code::Unschedulable,
                reasons,
                plugin: Self::NAME,
            }
        }
    }
}

/// The scored resources: (allocatable, requested incl. the pod) for cpu and memory.
/// `use_requested` picks the real requests (BalancedAllocation) over the non-zero
/// defaults (LeastAllocated).
fn allocatable_and_requested(
    pod: &PodInfo,
    node: &NodeInfo,
    use_requested: bool,
) -> [(i64, i64); 2] {
    if use_requested {
        [
            (
                node.allocatable.milli_cpu,
                node.requested.milli_cpu + pod.requests.milli_cpu,
            ),
            (
                node.allocatable.memory,
                node.requested.memory + pod.requests.memory,
            ),
        ]
    } else {
        [
            (
                node.allocatable.milli_cpu,
                node.non_zero_requested.milli_cpu + pod.non_zero_requests.milli_cpu,
            ),
            (
                node.allocatable.memory,
                node.non_zero_requested.memory + pod.non_zero_requests.memory,
            ),
        ]
    }
}

fn least_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

/// LeastAllocated: the weighted mean of free fractions.
pub fn least_allocated_score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let (mut score, mut weights) = (0, 0);
    for (alloc, req) in allocatable_and_requested(pod, node, false) {
        if alloc == 0 {
            continue;
        }
        score += least_requested_score(req, alloc);
        weights += 1;
    }
    if weights == 0 {
        0
    } else {
        score / weights
    }
}

/// BalancedAllocation: `(1 - std(fractions)) × 100`, fractions capped at 1.
pub fn balanced_allocation_score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let fractions: Vec<f64> = allocatable_and_requested(pod, node, true)
        .iter()
        .filter(|(alloc, _)| *alloc != 0)
        .map(|(alloc, req)| (*req as f64 / *alloc as f64).min(1.0))
        .collect();
    let std = match fractions.len() {
        2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
        n if n > 2 => {
            let mean = fractions.iter().sum::<f64>() / n as f64;
            (fractions
                .iter()
                .map(|f| (f - mean) * (f - mean))
                .sum::<f64>()
                / n as f64)
                .sqrt()
        }
        _ => 0.0,
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

impl ScorePlugin for Fit {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn weight(&self) -> i64 {
        1
    }

    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        least_allocated_score(pod, node)
    }
}

pub struct BalancedAllocation;

impl BalancedAllocation {
    pub const NAME: &'static str = "NodeResourcesBalancedAllocation";
}

impl ScorePlugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn weight(&self) -> i64 {
        1
    }

    fn pre_score(
        &self,
        _state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[&NodeInfo],
        _cache: &Cache,
    ) -> Code {
        // Best-effort pods are not balanced, or they would all pile onto one node.
        if pod.requests.milli_cpu == 0 && pod.requests.memory == 0 {
            Code::Skip
        } else {
            Code::Success
        }
    }

    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        balanced_allocation_score(pod, node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::{cache, pod};
    use serde_json::json;

    fn req_pod(name: &str, node: Option<&str>, cpu: &str, mem: &str) -> serde_json::Value {
        let mut spec = json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]});
        if let Some(n) = node {
            spec["nodeName"] = n.into();
        }
        json!({"metadata": {"name": name}, "spec": spec})
    }

    #[test]
    fn fit_counts_assigned_pods() {
        let c = cache(
            vec![
                json!({"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": "2", "memory": "1Gi", "pods": "2"}}}),
            ],
            vec![req_pod("a", Some("n"), "1500m", "100Mi")],
        );
        let st = CycleState::default();
        let s = Fit.filter(&st, &pod(req_pod("p", None, "1", "1Gi")), &c.nodes["n"]);
        assert_eq!(s.code, Code::Unschedulable);
        assert_eq!(s.reasons, ["Insufficient cpu", "Insufficient memory"]);
        assert!(Fit
            .filter(
                &st,
                &pod(req_pod("p", None, "500m", "100Mi")),
                &c.nodes["n"]
            )
            .is_success());
        let c2 = cache(
            vec![
                json!({"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": "2", "memory": "1Gi", "pods": "1"}}}),
            ],
            vec![req_pod("a", Some("n"), "1", "1")],
        );
        assert_eq!(
            Fit.filter(&st, &pod(req_pod("p", None, "0", "0")), &c2.nodes["n"])
                .reasons,
            ["Too many pods"]
        );
    }

    #[test]
    fn least_allocated_and_balanced_scores() {
        // Upstream's example: node 4000m/10000 memory, pod 3000m/5000 → cpu 25, mem 50.
        let c = cache(
            vec![
                json!({"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": "4", "memory": "10000", "pods": "110"}}}),
            ],
            vec![],
        );
        let p = pod(req_pod("p", None, "3", "5000"));
        assert_eq!(least_allocated_score(&p, &c.nodes["n"]), (25 + 50) / 2);
        // fractions 0.75 and 0.5 → std 0.125 → 87.
        assert_eq!(balanced_allocation_score(&p, &c.nodes["n"]), 87);
        let mut st = CycleState::default();
        let best_effort = pod(json!({"metadata": {"name": "b"}}));
        assert_eq!(
            BalancedAllocation.pre_score(&mut st, &best_effort, &[], &c),
            Code::Skip
        );
    }
}
