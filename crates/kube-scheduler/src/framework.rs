//! The scheduling framework's vocabulary: per-pod and per-node precomputed info,
//! plugin statuses, the plugin traits and the per-cycle state.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    Node, Pod, PodAffinityTerm, Taint, Toleration, TopologySpreadConstraint,
};

use crate::cache::Cache;
use crate::labels::{Labels, NodeTerm, Selector};
use crate::plugins::{inter_pod_affinity, topology_spread};
use crate::resources::{pod_requests, Resource};

/// Highest score a plugin gives a node (upstream `MaxNodeScore`).
pub const MAX_NODE_SCORE: i64 = 100;

/// Outcome class of a plugin call (upstream `framework.Code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Success,
    Error,
    /// The node does not fit now; preemption might help.
    Unschedulable,
    /// The node cannot fit this pod whatever is removed from it.
    UnschedulableAndUnresolvable,
    /// The plugin has nothing to do for this pod.
    Skip,
}

/// A plugin's verdict with its human reasons (they make up the FitError message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub reasons: Vec<String>,
    pub plugin: &'static str,
}

impl Status {
    pub const fn success() -> Self {
        Status {
            code: Code::Success,
            reasons: Vec::new(),
            plugin: "",
        }
    }

    pub const fn skip() -> Self {
        Status {
            code: Code::Skip,
            reasons: Vec::new(),
            plugin: "",
        }
    }

    pub fn new(code: Code, plugin: &'static str, reason: impl Into<String>) -> Self {
        Status {
            code,
            reasons: vec![reason.into()],
            plugin,
        }
    }

    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }

    pub fn is_rejected(&self) -> bool {
        matches!(
            self.code,
            Code::Unschedulable | Code::UnschedulableAndUnresolvable
        )
    }
}

/// A host port a pod asks for (upstream `HostPortInfo` entry).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

impl HostPort {
    /// Upstream `HostPortInfo.CheckConflict`: `0.0.0.0` conflicts with every address.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == "0.0.0.0" || other.ip == "0.0.0.0")
    }
}

/// A pod (anti-)affinity term compiled against the pod that carries it.
#[derive(Debug, Clone)]
pub struct AffinityTerm {
    pub namespaces: HashSet<String>,
    pub namespace_selector: Selector,
    pub selector: Selector,
    pub topology_key: String,
}

impl AffinityTerm {
    fn compile(owner_namespace: &str, term: &PodAffinityTerm) -> Self {
        let mut namespaces: HashSet<String> = term.namespaces.iter().flatten().cloned().collect();
        if namespaces.is_empty() && term.namespace_selector.is_none() {
            namespaces.insert(owner_namespace.to_string());
        }
        AffinityTerm {
            namespaces,
            namespace_selector: Selector::from_label_selector(term.namespace_selector.as_ref()),
            selector: Selector::from_label_selector(term.label_selector.as_ref()),
            topology_key: term.topology_key.clone(),
        }
    }

    /// Upstream `AffinityTerm.Matches(pod, nsLabels)`.
    pub fn matches(&self, pod: &PodInfo, namespace_labels: &HashMap<String, Labels>) -> bool {
        let ns_ok = self.namespaces.contains(&pod.namespace)
            || self.namespace_selector.is_everything()
            || namespace_labels
                .get(&pod.namespace)
                .is_some_and(|l| self.namespace_selector.matches(l));
        ns_ok && self.selector.matches(&pod.labels)
    }
}

#[derive(Debug, Clone)]
pub struct WeightedAffinityTerm {
    pub term: AffinityTerm,
    pub weight: i64,
}

/// Everything the plugins need from a pod, computed once per pod version.
#[derive(Debug, Clone)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub key: String,
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub node_name: String,
    pub scheduler_name: String,
    pub labels: Labels,
    pub priority: i32,
    pub preemption_never: bool,
    pub terminating: bool,
    pub requests: Resource,
    pub non_zero_requests: Resource,
    pub host_ports: Vec<HostPort>,
    pub tolerations: Vec<Toleration>,
    pub node_selector: Labels,
    /// `None`: no required node affinity.
    pub required_node_terms: Option<Vec<NodeTerm>>,
    pub preferred_node_terms: Vec<(i64, NodeTerm)>,
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<WeightedAffinityTerm>,
    pub preferred_anti_affinity: Vec<WeightedAffinityTerm>,
    pub spread_constraints: Vec<TopologySpreadConstraint>,
    /// Normalized image names of init containers and containers.
    pub images: Vec<String>,
}

/// Upstream `normalizedImageName`: a missing tag means `:latest`.
pub fn normalized_image_name(name: &str) -> String {
    if name.rfind(':').unwrap_or(0) <= name.rfind('/').unwrap_or(0) && !name.contains('@') {
        format!("{name}:latest")
    } else {
        name.to_string()
    }
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> Self {
        let meta = &pod.metadata;
        let namespace = meta
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let name = meta.name.clone().unwrap_or_default();
        let default_spec;
        let spec = match pod.spec.as_ref() {
            Some(s) => s,
            None => {
                default_spec = k8s_openapi::api::core::v1::PodSpec::default();
                &default_spec
            }
        };
        let mut host_ports = Vec::new();
        let sidecars = spec
            .init_containers
            .iter()
            .flatten()
            .filter(|c| c.restart_policy.as_deref() == Some("Always"));
        for c in spec.containers.iter().chain(sidecars) {
            for p in c.ports.iter().flatten() {
                if let Some(hp) = p.host_port.filter(|p| *p > 0) {
                    host_ports.push(HostPort {
                        ip: p
                            .host_ip
                            .clone()
                            .filter(|s| !s.is_empty())
                            .unwrap_or_else(|| "0.0.0.0".to_string()),
                        protocol: p
                            .protocol
                            .clone()
                            .filter(|s| !s.is_empty())
                            .unwrap_or_else(|| "TCP".to_string()),
                        port: hp,
                    });
                }
            }
        }
        let affinity = spec.affinity.clone().unwrap_or_default();
        let node_aff = affinity.node_affinity.unwrap_or_default();
        let required_node_terms = node_aff
            .required_during_scheduling_ignored_during_execution
            .as_ref()
            .map(|ns| {
                ns.node_selector_terms
                    .iter()
                    .map(NodeTerm::compile)
                    .collect()
            });
        let preferred_node_terms = node_aff
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
            .filter(|p| p.weight != 0)
            .map(|p| (i64::from(p.weight), NodeTerm::compile(&p.preference)))
            .collect();
        let pa = affinity.pod_affinity.unwrap_or_default();
        let paa = affinity.pod_anti_affinity.unwrap_or_default();
        let compile_all = |terms: Option<&Vec<PodAffinityTerm>>| -> Vec<AffinityTerm> {
            terms
                .into_iter()
                .flatten()
                .map(|t| AffinityTerm::compile(&namespace, t))
                .collect()
        };
        let compile_weighted = |terms: Option<
            &Vec<k8s_openapi::api::core::v1::WeightedPodAffinityTerm>,
        >|
         -> Vec<WeightedAffinityTerm> {
            terms
                .into_iter()
                .flatten()
                .map(|t| WeightedAffinityTerm {
                    term: AffinityTerm::compile(&namespace, &t.pod_affinity_term),
                    weight: i64::from(t.weight),
                })
                .collect()
        };
        let images = spec
            .init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
            .filter_map(|c| c.image.as_deref())
            .map(normalized_image_name)
            .collect();
        PodInfo {
            key: format!("{namespace}/{name}"),
            uid: meta.uid.clone().unwrap_or_default(),
            node_name: spec.node_name.clone().unwrap_or_default(),
            scheduler_name: spec
                .scheduler_name
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "default-scheduler".to_string()),
            labels: meta.labels.clone().unwrap_or_default(),
            priority: spec.priority.unwrap_or(0),
            preemption_never: spec.preemption_policy.as_deref() == Some("Never"),
            terminating: meta.deletion_timestamp.is_some(),
            requests: pod_requests(spec, false),
            non_zero_requests: pod_requests(spec, true),
            host_ports,
            tolerations: spec.tolerations.clone().unwrap_or_default(),
            node_selector: spec.node_selector.clone().unwrap_or_default(),
            required_node_terms,
            preferred_node_terms,
            required_affinity: compile_all(
                pa.required_during_scheduling_ignored_during_execution
                    .as_ref(),
            ),
            required_anti_affinity: compile_all(
                paa.required_during_scheduling_ignored_during_execution
                    .as_ref(),
            ),
            preferred_affinity: compile_weighted(
                pa.preferred_during_scheduling_ignored_during_execution
                    .as_ref(),
            ),
            preferred_anti_affinity: compile_weighted(
                paa.preferred_during_scheduling_ignored_during_execution
                    .as_ref(),
            ),
            spread_constraints: spec.topology_spread_constraints.clone().unwrap_or_default(),
            images,
            namespace,
            name,
            pod,
        }
    }

    /// The same pod as assumed on `node`. Plugins read `node_name`, not the pod
    /// object, so the object stays the unassigned one.
    pub fn assumed_on(&self, node: &str) -> PodInfo {
        PodInfo {
            node_name: node.to_string(),
            ..self.clone()
        }
    }

    pub fn has_affinity(&self) -> bool {
        !(self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty())
    }
}

/// A node with the pods on it (bound or assumed) and what they use.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    /// `None` while pods of a deleted node are still in the cache.
    pub node: Option<Arc<Node>>,
    pub name: String,
    pub labels: Labels,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub allocatable: Resource,
    pub requested: Resource,
    pub non_zero_requested: Resource,
    pub pods: Vec<Arc<PodInfo>>,
    pub pods_with_affinity: usize,
    pub pods_with_required_anti_affinity: usize,
    pub used_ports: Vec<HostPort>,
    /// Normalized image name → size in bytes, from `status.images`.
    pub images: HashMap<String, i64>,
    pub generation: u64,
}

impl NodeInfo {
    pub fn set_node(&mut self, node: Arc<Node>) {
        self.name = node.metadata.name.clone().unwrap_or_default();
        self.labels = node.metadata.labels.clone().unwrap_or_default();
        let spec = node.spec.clone().unwrap_or_default();
        self.taints = spec.taints.unwrap_or_default();
        self.unschedulable = spec.unschedulable.unwrap_or(false);
        let status = node.status.clone().unwrap_or_default();
        self.allocatable = status
            .allocatable
            .as_ref()
            .map(Resource::from_list)
            .unwrap_or_default();
        self.images.clear();
        for image in status.images.iter().flatten() {
            for name in image.names.iter().flatten() {
                self.images
                    .insert(normalized_image_name(name), image.size_bytes.unwrap_or(0));
            }
        }
        self.node = Some(node);
        self.generation += 1;
    }

    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.milli_cpu += pod.non_zero_requests.milli_cpu;
        self.non_zero_requested.memory += pod.non_zero_requests.memory;
        if pod.has_affinity() {
            self.pods_with_affinity += 1;
        }
        if !pod.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity += 1;
        }
        self.used_ports.extend(pod.host_ports.iter().cloned());
        self.pods.push(pod);
        self.generation += 1;
    }

    /// Removes the pod with this key and returns it.
    pub fn remove_pod(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        let idx = self.pods.iter().position(|p| p.key == key)?;
        let pod = self.pods.swap_remove(idx);
        self.requested.sub(&pod.requests);
        self.non_zero_requested.milli_cpu -= pod.non_zero_requests.milli_cpu;
        self.non_zero_requested.memory -= pod.non_zero_requests.memory;
        if pod.has_affinity() {
            self.pods_with_affinity -= 1;
        }
        if !pod.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity -= 1;
        }
        for hp in &pod.host_ports {
            if let Some(i) = self.used_ports.iter().position(|u| u == hp) {
                self.used_ports.swap_remove(i);
            }
        }
        self.generation += 1;
        Some(pod)
    }
}

/// Per scheduling cycle state written by PreFilter/PreScore and read by Filter/Score.
#[derive(Debug, Default)]
pub struct CycleState {
    /// Per filter/score plugin (by position), whether its PreX said Skip.
    pub skip_filter: Vec<bool>,
    pub skip_score: Vec<bool>,
    pub spread_filter: Option<topology_spread::PreFilterState>,
    pub spread_score: Option<topology_spread::PreScoreState>,
    pub interpod_filter: Option<inter_pod_affinity::PreFilterState>,
    pub interpod_score: Option<inter_pod_affinity::PreScoreState>,
    /// All nodes and, per pod image, how many nodes have it (ImageLocality).
    pub total_nodes: usize,
    pub image_spread: Vec<usize>,
}

/// A Filter plugin (with its optional PreFilter).
pub trait FilterPlugin: Send + Sync {
    fn name(&self) -> &'static str;
    /// May return Skip (Filter not needed) or a rejection for every node.
    fn pre_filter(&self, _state: &mut CycleState, _pod: &PodInfo, _cache: &Cache) -> Status {
        Status::success()
    }
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status;
}

/// A Score plugin (with its optional PreScore and NormalizeScore).
pub trait ScorePlugin: Send + Sync {
    fn name(&self) -> &'static str;
    fn weight(&self) -> i64;
    /// May return `Code::Skip` (Score not needed).
    fn pre_score(
        &self,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _nodes: &[&NodeInfo],
        _cache: &Cache,
    ) -> Code {
        Code::Success
    }
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64;
    fn normalize(&self, _state: &CycleState, _nodes: &[&NodeInfo], _scores: &mut [i64]) {}
}

/// Upstream `helper.DefaultNormalizeScore`.
pub fn default_normalize_score(max_priority: i64, reverse: bool, scores: &mut [i64]) {
    let max_count = scores.iter().copied().max().unwrap_or(0).max(0);
    if max_count == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = max_priority);
        }
        return;
    }
    for s in scores.iter_mut() {
        let mut v = max_priority * *s / max_count;
        if reverse {
            v = max_priority - v;
        }
        *s = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_get_latest() {
        assert_eq!(normalized_image_name("busybox"), "busybox:latest");
        assert_eq!(
            normalized_image_name("reg:5000/busybox"),
            "reg:5000/busybox:latest"
        );
        assert_eq!(normalized_image_name("busybox:1.36"), "busybox:1.36");
    }

    #[test]
    fn host_port_conflicts() {
        let hp = |ip: &str, port| HostPort {
            ip: ip.into(),
            protocol: "TCP".into(),
            port,
        };
        assert!(hp("0.0.0.0", 80).conflicts(&hp("10.0.0.1", 80)));
        assert!(!hp("10.0.0.2", 80).conflicts(&hp("10.0.0.1", 80)));
        assert!(!hp("0.0.0.0", 81).conflicts(&hp("0.0.0.0", 80)));
    }

    #[test]
    fn normalize_scores() {
        let mut s = [0, 5, 10];
        default_normalize_score(100, false, &mut s);
        assert_eq!(s, [0, 50, 100]);
        let mut s = [0, 5, 10];
        default_normalize_score(100, true, &mut s);
        assert_eq!(s, [100, 50, 0]);
        let mut s = [0, 0];
        default_normalize_score(100, true, &mut s);
        assert_eq!(s, [100, 100]);
    }
}
