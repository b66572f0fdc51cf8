//! One scheduling attempt (upstream `schedulePod`): PreFilter, Filter over a rotating
//! window of nodes until enough feasible ones are found, PreScore/Score/Normalize,
//! weighted sum, pick the best (ties at random). A failure becomes a `FitError` whose
//! message is upstream's, including the PostFilter (preemption) verdict.

use std::collections::{BTreeMap, HashSet};

use rand::Rng;

use crate::cache::Cache;
use crate::framework::{Code, CycleState, FilterPlugin, NodeInfo, PodInfo, ScorePlugin, Status};
use crate::plugins::{default_filters, default_scorers};

/// Upstream `minFeasibleNodesToFind`.
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// Upstream `minFeasibleNodesPercentageToFind`.
const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: usize = 5;

/// Upstream `ErrNoNodesAvailable`.
pub const NO_NODES_AVAILABLE: &str = "no nodes available to schedule pods";

/// Upstream `numFeasibleNodesToFind`: all nodes below 100; else the percentage
/// (adaptive `50 - nodes/125`, at least 5 %), never fewer than 100.
pub fn num_feasible_nodes_to_find(percentage: u32, num_all_nodes: usize) -> usize {
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND {
        return num_all_nodes;
    }
    let mut pct = percentage as usize;
    if pct == 0 {
        pct = 50usize
            .saturating_sub(num_all_nodes / 125)
            .max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND);
    }
    let n = num_all_nodes * pct.min(100) / 100;
    n.max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Why no node fits (upstream `FitError` with its `Diagnosis`).
#[derive(Debug, Clone, Default)]
pub struct FitError {
    pub num_all_nodes: usize,
    pub pre_filter_msg: Option<String>,
    /// Failing status per node (node name → status).
    pub node_statuses: BTreeMap<String, Status>,
    pub post_filter_msg: Option<String>,
    /// Plugins that rejected the pod (drive the queue's move decisions).
    pub unschedulable_plugins: HashSet<&'static str>,
}

/// `"N reason"` entries sorted as Go's `sort.Strings`.
fn reasons_histogram<'a>(statuses: impl Iterator<Item = &'a Status>) -> Vec<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in statuses {
        for r in &s.reasons {
            *counts.entry(r.as_str()).or_insert(0) += 1;
        }
    }
    let mut out: Vec<String> = counts
        .into_iter()
        .map(|(r, n)| format!("{n} {r}"))
        .collect();
    out.sort();
    out
}

impl FitError {
    /// Upstream `FitError.Error()`.
    pub fn message(&self) -> String {
        let mut msg = format!("0/{} nodes are available:", self.num_all_nodes);
        match &self.pre_filter_msg {
            Some(pre) => msg.push_str(&format!(" {pre}.")),
            None => {
                let hist = reasons_histogram(self.node_statuses.values());
                if !hist.is_empty() {
                    msg.push_str(&format!(" {}.", hist.join(", ")));
                }
            }
        }
        if let Some(post) = &self.post_filter_msg {
            msg.push_str(&format!(" {post}."));
        }
        msg
    }
}

#[derive(Debug, Clone)]
pub enum ScheduleError {
    /// The cluster has no nodes.
    NoNodes,
    Fit(Box<FitError>),
}

impl ScheduleError {
    pub fn message(&self) -> String {
        match self {
            ScheduleError::NoNodes => NO_NODES_AVAILABLE.to_string(),
            ScheduleError::Fit(f) => f.message(),
        }
    }

    pub fn unschedulable_plugins(&self) -> HashSet<&'static str> {
        match self {
            ScheduleError::NoNodes => HashSet::new(),
            ScheduleError::Fit(f) => f.unschedulable_plugins.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleResult {
    pub node: String,
    pub evaluated_nodes: usize,
    pub feasible_nodes: usize,
}

/// The plugin set and the rotating start index of the node window.
pub struct Framework {
    filters: Vec<Box<dyn FilterPlugin>>,
    scorers: Vec<Box<dyn ScorePlugin>>,
    percentage_of_nodes_to_score: u32,
    next_start_node_index: usize,
}

impl Framework {
    pub fn new(percentage_of_nodes_to_score: u32) -> Self {
        Framework {
            filters: default_filters(),
            scorers: default_scorers(),
            percentage_of_nodes_to_score,
            next_start_node_index: 0,
        }
    }

    fn run_filters(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        for (i, f) in self.filters.iter().enumerate() {
            if state.skip_filter.get(i).copied().unwrap_or(false) {
                continue;
            }
            let mut s = f.filter(state, pod, node);
            if !s.is_success() {
                s.plugin = f.name();
                return s;
            }
        }
        Status::success()
    }

    /// Finds a node for `pod`.
    pub fn schedule(
        &mut self,
        cache: &mut Cache,
        pod: &PodInfo,
        rng: &mut impl Rng,
    ) -> Result<ScheduleResult, ScheduleError> {
        cache.node_order();
        let cache: &Cache = cache;
        let order = cache.cached_order();
        let num_nodes = order.len();
        if num_nodes == 0 {
            return Err(ScheduleError::NoNodes);
        }
        let mut state = CycleState::default();
        let mut fit = FitError {
            num_all_nodes: num_nodes,
            ..FitError::default()
        };

        state.skip_filter = vec![false; self.filters.len()];
        for (i, f) in self.filters.iter().enumerate() {
            let s = f.pre_filter(&mut state, pod, cache);
            match s.code {
                Code::Success => {}
                Code::Skip => state.skip_filter[i] = true,
                _ => {
                    fit.pre_filter_msg = Some(s.reasons.join(", "));
                    fit.unschedulable_plugins.insert(f.name());
                    for node in order.iter().filter_map(|i| cache.nodes.slot(*i)) {
                        fit.node_statuses.insert(
                            node.name.clone(),
                            Status {
                                plugin: f.name(),
                                ..s.clone()
                            },
                        );
                    }
                    return Err(ScheduleError::Fit(Box::new(fit)));
                }
            }
        }

        let to_find = num_feasible_nodes_to_find(self.percentage_of_nodes_to_score, num_nodes);
        let mut feasible: Vec<&NodeInfo> = Vec::with_capacity(to_find.min(num_nodes));
        let start = self.next_start_node_index % num_nodes;
        let mut processed = 0;
        for i in 0..num_nodes {
            if feasible.len() >= to_find {
                break;
            }
            processed += 1;
            let Some(node) = cache.nodes.slot(order[(start + i) % num_nodes]) else {
                continue;
            };
            let s = self.run_filters(&state, pod, node);
            if s.is_success() {
                feasible.push(node);
            } else {
                fit.unschedulable_plugins.insert(s.plugin);
                fit.node_statuses.insert(node.name.clone(), s);
            }
        }
        self.next_start_node_index = (start + processed) % num_nodes;

        if feasible.is_empty() {
            fit.post_filter_msg = self.post_filter(cache, pod, &state, &fit);
            return Err(ScheduleError::Fit(Box::new(fit)));
        }
        let evaluated_nodes = processed;
        let feasible_nodes = feasible.len();
        if feasible.len() == 1 {
            return Ok(ScheduleResult {
                node: feasible[0].name.clone(),
                evaluated_nodes,
                feasible_nodes,
            });
        }

        let totals = self.prioritize(&mut state, cache, pod, &feasible);
        let node = select_host(&feasible, &totals, rng);
        Ok(ScheduleResult {
            node,
            evaluated_nodes,
            feasible_nodes,
        })
    }

    /// Weighted sum of normalized plugin scores per feasible node.
    fn prioritize(
        &self,
        state: &mut CycleState,
        cache: &Cache,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
    ) -> Vec<i64> {
        state.skip_score = self
            .scorers
            .iter()
            .map(|s| s.pre_score(state, pod, nodes, cache) == Code::Skip)
            .collect();
        let mut totals = vec![0i64; nodes.len()];
        let mut scores = vec![0i64; nodes.len()];
        for (i, s) in self.scorers.iter().enumerate() {
            if state.skip_score[i] {
                continue;
            }
            for (i, node) in nodes.iter().enumerate() {
                scores[i] = s.score(state, pod, node);
            }
            s.normalize(state, nodes, &mut scores);
            for (t, v) in totals.iter_mut().zip(&scores) {
                *t += v * s.weight();
            }
        }
        totals
    }

    /// DefaultPreemption's dry run, for its message: nodes rejected as unresolvable are
    /// not helped; elsewhere, removing all lower-priority pods must make room. When it
    /// would, preemption (not implemented here) would act and there is no message.
    fn post_filter(
        &self,
        cache: &Cache,
        pod: &PodInfo,
        state: &CycleState,
        fit: &FitError,
    ) -> Option<String> {
        if pod.preemption_never {
            return Some("preemption: not eligible due to preemptionPolicy=Never.".to_string());
        }
        let mut statuses = Vec::with_capacity(fit.node_statuses.len());
        for (name, s) in &fit.node_statuses {
            if s.code == Code::UnschedulableAndUnresolvable {
                statuses.push(Status::new(
                    Code::UnschedulableAndUnresolvable,
                    "",
                    "Preemption is not helpful for scheduling",
                ));
                continue;
            }
            let Some(node) = cache.nodes.get(name) else {
                continue;
            };
            let victims: Vec<&str> = node
                .pods
                .iter()
                .filter(|p| p.priority < pod.priority)
                .map(|p| p.key.as_str())
                .collect();
            if victims.is_empty() {
                statuses.push(Status::new(
                    Code::UnschedulableAndUnresolvable,
                    "",
                    "No preemption victims found for incoming pod",
                ));
                continue;
            }
            let mut without = node.clone();
            for v in victims {
                without.remove_pod(v);
            }
            let s = self.run_filters(state, pod, &without);
            if s.is_success() {
                return None;
            }
            statuses.push(s);
        }
        let hist = reasons_histogram(statuses.iter());
        let mut msg = format!("preemption: 0/{} nodes are available:", fit.num_all_nodes);
        if !hist.is_empty() {
            msg.push_str(&format!(" {}.", hist.join(", ")));
        }
        Some(msg)
    }
}

/// Highest total wins; ties broken uniformly at random (reservoir sampling).
fn select_host(nodes: &[&NodeInfo], totals: &[i64], rng: &mut impl Rng) -> String {
    let mut best = 0;
    let mut ties = 1u32;
    for i in 1..nodes.len() {
        if totals[i] > totals[best] {
            best = i;
            ties = 1;
        } else if totals[i] == totals[best] {
            ties += 1;
            if rng.random_range(0..ties) == 0 {
                best = i;
            }
        }
    }
    nodes[best].name.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::{cache, pod};
    use serde_json::{json, Value};

    fn node(name: &str, labels: Value, cpu: &str) -> Value {
        json!({"metadata": {"name": name, "labels": labels}, "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"}}})
    }

    fn rng() -> rand::rngs::StdRng {
        rand::SeedableRng::seed_from_u64(7)
    }

    #[test]
    fn feasible_node_counts_as_upstream() {
        assert_eq!(num_feasible_nodes_to_find(0, 50), 50);
        assert_eq!(num_feasible_nodes_to_find(0, 1000), 420);
        assert_eq!(num_feasible_nodes_to_find(0, 5000), 500);
        assert_eq!(num_feasible_nodes_to_find(0, 6000), 300);
        assert_eq!(num_feasible_nodes_to_find(0, 1200), 1200 * 41 / 100);
        assert_eq!(num_feasible_nodes_to_find(10, 500), 100);
        assert_eq!(num_feasible_nodes_to_find(100, 500), 500);
    }

    #[test]
    fn upstream_fit_error_message() {
        let mut c = cache(
            vec![
                node("n1", json!({"disk": "hdd"}), "4"),
                node("n2", json!({"disk": "ssd"}), "1"),
                node("n3", json!({"disk": "ssd"}), "1"),
            ],
            vec![],
        );
        let p = pod(
            json!({"metadata": {"name": "p"}, "spec": {"nodeSelector": {"disk": "ssd"},
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]}}),
        );
        let mut fw = Framework::new(0);
        let err = fw
            .schedule(&mut c, &p, &mut rng())
            .expect_err("unschedulable");
        assert_eq!(
            err.message(),
            "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient cpu. \
             preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.."
        );
        let plugins = err.unschedulable_plugins();
        assert!(plugins.contains("NodeAffinity") && plugins.contains("NodeResourcesFit"));
    }

    #[test]
    fn preemption_message_when_victims_do_not_help() {
        let mut c = cache(
            vec![node("n1", json!({}), "1")],
            vec![
                json!({"metadata": {"name": "low"}, "spec": {"nodeName": "n1", "priority": -5, "containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}}}]}}),
            ],
        );
        let p = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]}}),
        );
        let err = Framework::new(0)
            .schedule(&mut c, &p, &mut rng())
            .expect_err("unschedulable");
        assert_eq!(err.message(), "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 Insufficient cpu..");
        let never = pod(
            json!({"metadata": {"name": "p"}, "spec": {"preemptionPolicy": "Never", "containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]}}),
        );
        let err = Framework::new(0)
            .schedule(&mut c, &never, &mut rng())
            .expect_err("unschedulable");
        assert_eq!(err.message(), "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never..");
    }

    #[test]
    fn no_nodes() {
        let mut c = Cache::new();
        let err = Framework::new(0)
            .schedule(&mut c, &pod(json!({"metadata": {"name": "p"}})), &mut rng())
            .expect_err("none");
        assert_eq!(err.message(), "no nodes available to schedule pods");
    }

    #[test]
    fn picks_least_allocated_and_rotates_window() {
        let mut c = cache(
            vec![node("busy", json!({}), "4"), node("idle", json!({}), "4")],
            vec![
                json!({"metadata": {"name": "x"}, "spec": {"nodeName": "busy", "containers": [{"name": "c", "resources": {"requests": {"cpu": "3", "memory": "1Gi"}}}]}}),
            ],
        );
        let p = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "500m", "memory": "100Mi"}}}]}}),
        );
        let mut fw = Framework::new(0);
        for _ in 0..5 {
            let r = fw.schedule(&mut c, &p, &mut rng()).expect("fits");
            assert_eq!(r.node, "idle");
            assert_eq!((r.evaluated_nodes, r.feasible_nodes), (2, 2));
        }
    }

    #[test]
    fn stops_after_enough_feasible_nodes() {
        let nodes: Vec<Value> = (0..1000)
            .map(|i| node(&format!("n{i}"), json!({}), "4"))
            .collect();
        let mut c = cache(nodes, vec![]);
        let p = pod(json!({"metadata": {"name": "p"}}));
        let mut fw = Framework::new(0);
        let r = fw.schedule(&mut c, &p, &mut rng()).expect("fits");
        assert_eq!(r.evaluated_nodes, 420);
        assert_eq!(fw.next_start_node_index, 420);
    }
}

#[cfg(test)]
mod perf {
    use super::*;
    use crate::plugins::testutil::{cache, pod};
    use serde_json::json;
    use std::sync::Arc;

    /// Scheduling cost per pod with 5 000 nodes (run with `--release -- --ignored`).
    #[test]
    #[ignore]
    fn cost_per_pod_5000_nodes() {
        let nodes = (0..5000)
            .map(|i| json!({"metadata": {"name": format!("node-{i}"), "labels": {"kubernetes.io/hostname": format!("node-{i}"), "topology.kubernetes.io/zone": format!("zone-{}", i % 10)}},
                "status": {"allocatable": {"cpu": "4", "memory": "32Gi", "pods": "110"}}}))
            .collect();
        let mut c = cache(nodes, vec![]);
        let mut fw = Framework::new(0);
        let mut rng: rand::rngs::StdRng = rand::SeedableRng::seed_from_u64(1);
        let start = std::time::Instant::now();
        let n = 2000;
        for i in 0..n {
            let p = pod(
                json!({"metadata": {"name": format!("p{i}")}, "spec": {"containers": [{"name": "c", "image": "pause",
                "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}}}]}}),
            );
            let r = fw.schedule(&mut c, &p, &mut rng).expect("fits");
            c.assume_pod(Arc::new(p.assumed_on(&r.node)));
        }
        let per_pod_us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
        eprintln!("{per_pod_us:.1} µs per pod");
        assert!(
            per_pod_us < 1000.0,
            "a scheduling cycle over 5 000 nodes should take well under 1 ms"
        );
    }
}
