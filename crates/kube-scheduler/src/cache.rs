//! The scheduler cache (upstream `internal/cache`): nodes with the pods bound or
//! assumed on them. An assumed pod counts on its node from the moment the scheduling
//! cycle picks the node until the informer confirms the binding or the bind fails.

use std::collections::HashMap;
use std::ops::Index;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;

use crate::framework::{NodeInfo, PodInfo};
use crate::labels::Labels;

/// Node infos in stable slots (the scheduling loop walks them by slot index, which
/// avoids a hash lookup and its cache misses per node), with a name index.
#[derive(Debug, Default)]
pub struct NodeMap {
    slots: Vec<Option<NodeInfo>>,
    index: HashMap<String, usize>,
    free: Vec<usize>,
}

impl NodeMap {
    pub fn get(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).and_then(|i| self.slot(*i))
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut NodeInfo> {
        let i = *self.index.get(name)?;
        self.slots.get_mut(i).and_then(Option::as_mut)
    }

    pub fn slot(&self, i: usize) -> Option<&NodeInfo> {
        self.slots.get(i).and_then(Option::as_ref)
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The info for `name`, created empty if absent.
    pub fn get_or_insert(&mut self, name: &str) -> &mut NodeInfo {
        let i = match self.index.get(name) {
            Some(i) => *i,
            None => {
                let info = NodeInfo {
                    name: name.to_string(),
                    ..NodeInfo::default()
                };
                let i = match self.free.pop() {
                    Some(i) => {
                        self.slots[i] = Some(info);
                        i
                    }
                    None => {
                        self.slots.push(Some(info));
                        self.slots.len() - 1
                    }
                };
                self.index.insert(name.to_string(), i);
                i
            }
        };
        self.slots[i].get_or_insert_with(NodeInfo::default)
    }

    pub fn remove(&mut self, name: &str) {
        if let Some(i) = self.index.remove(name) {
            self.slots[i] = None;
            self.free.push(i);
        }
    }

    pub fn values(&self) -> impl Iterator<Item = &NodeInfo> {
        self.slots.iter().flatten()
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

impl Index<&str> for NodeMap {
    type Output = NodeInfo;

    fn index(&self, name: &str) -> &NodeInfo {
        match self.get(name) {
            Some(n) => n,
            None => panic!("no node {name:?} in the cache"),
        }
    }
}

#[derive(Debug)]
struct PodState {
    node: String,
    assumed: bool,
}

/// Nodes, assigned pods and namespaces' labels, as the scheduling cycle sees them.
#[derive(Debug, Default)]
pub struct Cache {
    pub nodes: NodeMap,
    /// Per zone (in order of first appearance), the names of its nodes.
    zones: Vec<(String, Vec<String>)>,
    /// Node slots interleaved across zones (upstream `nodeTree.list`).
    order: Vec<usize>,
    order_dirty: bool,
    pod_states: HashMap<String, PodState>,
    /// Normalized image name → number of nodes that have it.
    pub image_nodes: HashMap<String, usize>,
    pub namespaces: HashMap<String, Labels>,
    /// Pods (bound or assumed) with any pod (anti-)affinity, and with required
    /// anti-affinity: when zero, InterPodAffinity need not look at existing pods.
    pub pods_with_affinity: usize,
    pub pods_with_required_anti_affinity: usize,
}

/// Upstream `utilnode.GetZoneKey`: region and zone, empty when neither is set.
fn zone_key(node: &Node) -> String {
    let labels = node.metadata.labels.as_ref();
    let get = |a: &str, b: &str| {
        labels
            .and_then(|l| l.get(a).or_else(|| l.get(b)))
            .cloned()
            .unwrap_or_default()
    };
    let region = get(
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/region",
    );
    let zone = get(
        "topology.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/zone",
    );
    if region.is_empty() && zone.is_empty() {
        String::new()
    } else {
        format!("{region}:\x00:{zone}")
    }
}

impl Cache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of nodes with a Node object.
    pub fn node_count(&self) -> usize {
        self.zones.iter().map(|(_, n)| n.len()).sum()
    }

    /// Node slots (see [`NodeMap::slot`]) in scheduling order.
    pub fn node_order(&mut self) -> &[usize] {
        if self.order_dirty {
            self.order.clear();
            let mut idx = vec![0usize; self.zones.len()];
            let total = self.node_count();
            let mut added = 0;
            while added < total {
                for (z, (_, names)) in self.zones.iter().enumerate() {
                    if let Some(n) = names.get(idx[z]) {
                        if let Some(slot) = self.nodes.index_of(n) {
                            self.order.push(slot);
                        }
                        added += 1;
                        idx[z] += 1;
                    }
                }
            }
            self.order_dirty = false;
        }
        &self.order
    }

    /// The order computed by the last [`Cache::node_order`] call.
    pub fn cached_order(&self) -> &[usize] {
        &self.order
    }

    /// Node names in scheduling order.
    pub fn node_names(&mut self) -> Vec<String> {
        self.node_order();
        self.order
            .iter()
            .filter_map(|i| self.nodes.slot(*i))
            .map(|n| n.name.clone())
            .collect()
    }

    fn tree_remove(&mut self, name: &str) {
        for (_, names) in self.zones.iter_mut() {
            if let Some(i) = names.iter().position(|n| n == name) {
                names.remove(i);
                self.order_dirty = true;
            }
        }
        self.zones.retain(|(_, n)| !n.is_empty());
    }

    fn tree_add(&mut self, zone: String, name: &str) {
        match self.zones.iter_mut().find(|(z, _)| *z == zone) {
            Some((_, names)) => names.push(name.to_string()),
            None => self.zones.push((zone, vec![name.to_string()])),
        }
        self.order_dirty = true;
    }

    /// Adds or updates a node.
    pub fn add_node(&mut self, node: Arc<Node>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let zone = zone_key(&node);
        let info = self.nodes.get_or_insert(&name);
        let old_zone = info.node.as_deref().map(zone_key);
        for image in info.images.keys() {
            if let Some(c) = self.image_nodes.get_mut(image) {
                *c = c.saturating_sub(1);
            }
        }
        info.set_node(node);
        for image in info.images.keys() {
            *self.image_nodes.entry(image.clone()).or_insert(0) += 1;
        }
        if old_zone.as_deref() != Some(zone.as_str()) {
            if old_zone.is_some() {
                self.tree_remove(&name);
            }
            self.tree_add(zone, &name);
        }
    }

    /// Removes a node; its pods stay accounted until they are deleted themselves.
    pub fn remove_node(&mut self, name: &str) {
        let Some(info) = self.nodes.get_mut(name) else {
            return;
        };
        for image in info.images.keys() {
            if let Some(c) = self.image_nodes.get_mut(image) {
                *c = c.saturating_sub(1);
            }
        }
        info.images.clear();
        info.node = None;
        if info.pods.is_empty() {
            self.nodes.remove(name);
        }
        self.tree_remove(name);
    }

    fn remove_from_node(&mut self, key: &str, node: &str) {
        if let Some(info) = self.nodes.get_mut(node) {
            if let Some(pod) = info.remove_pod(key) {
                if pod.has_affinity() {
                    self.pods_with_affinity -= 1;
                }
                if !pod.required_anti_affinity.is_empty() {
                    self.pods_with_required_anti_affinity -= 1;
                }
            }
            if info.node.is_none() && info.pods.is_empty() {
                self.nodes.remove(node);
            }
        }
    }

    fn place(&mut self, pod: Arc<PodInfo>, assumed: bool) {
        let node = pod.node_name.clone();
        self.pod_states.insert(
            pod.key.clone(),
            PodState {
                node: node.clone(),
                assumed,
            },
        );
        if pod.has_affinity() {
            self.pods_with_affinity += 1;
        }
        if !pod.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity += 1;
        }
        let info = self.nodes.get_or_insert(&node);
        info.add_pod(pod);
    }

    /// An assigned pod seen by the informer (add or update); confirms an assumed pod.
    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        if let Some(old) = self.pod_states.remove(&pod.key) {
            self.remove_from_node(&pod.key, &old.node);
        }
        self.place(pod, false);
    }

    /// An assigned pod deleted (or terminated).
    pub fn remove_pod(&mut self, key: &str) {
        if let Some(old) = self.pod_states.remove(key) {
            self.remove_from_node(key, &old.node);
        }
    }

    /// Counts `pod` (with `node_name` set) on its node before the bind completes.
    pub fn assume_pod(&mut self, pod: Arc<PodInfo>) {
        self.remove_pod(&pod.key);
        self.place(pod, true);
    }

    /// Drops an assumed pod whose bind failed; a confirmed pod is left alone.
    pub fn forget_pod(&mut self, key: &str) {
        if self.is_assumed(key) {
            self.remove_pod(key);
        }
    }

    pub fn is_assumed(&self, key: &str) -> bool {
        self.pod_states.get(key).is_some_and(|s| s.assumed)
    }

    /// Whether the cache has this pod on some node (assumed or confirmed).
    pub fn has_pod(&self, key: &str) -> bool {
        self.pod_states.contains_key(key)
    }

    pub fn pod_count(&self) -> usize {
        self.pod_states.len()
    }

    pub fn assumed_count(&self) -> usize {
        self.pod_states.values().filter(|s| s.assumed).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn node(name: &str, zone: &str) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
                "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                           "images": [{"names": ["busybox:latest"], "sizeBytes": 1000}]}
            }))
            .expect("node"),
        )
    }

    fn pod(name: &str, node: &str, cpu: &str) -> Arc<PodInfo> {
        let p: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu}}}]}
        }))
        .expect("pod");
        Arc::new(PodInfo::new(Arc::new(p)))
    }

    #[test]
    fn zones_are_interleaved() {
        let mut c = Cache::new();
        for (n, z) in [
            ("a1", "a"),
            ("a2", "a"),
            ("a3", "a"),
            ("b1", "b"),
            ("c1", "c"),
        ] {
            c.add_node(node(n, z));
        }
        assert_eq!(c.node_names(), ["a1", "b1", "c1", "a2", "a3"]);
        c.remove_node("b1");
        assert_eq!(c.node_names(), ["a1", "c1", "a2", "a3"]);
        // A new node may reuse b1's slot.
        c.add_node(node("d1", "d"));
        assert_eq!(c.node_names(), ["a1", "c1", "d1", "a2", "a3"]);
        assert_eq!(
            c.image_nodes.get("busybox:latest"),
            Some(&5),
            "a1 a2 a3 c1 d1"
        );
    }

    #[test]
    fn assume_confirm_and_forget() {
        let mut c = Cache::new();
        c.add_node(node("n1", "a"));
        c.add_node(node("n2", "a"));
        c.assume_pod(pod("p", "n1", "1"));
        assert!(c.is_assumed("default/p"));
        assert_eq!(c.nodes["n1"].requested.milli_cpu, 1000);
        // The informer says it landed on n2 after all: moved and confirmed.
        c.add_pod(pod("p", "n2", "1"));
        assert!(!c.is_assumed("default/p"));
        assert_eq!(c.nodes["n1"].requested.milli_cpu, 0);
        assert_eq!(c.nodes["n2"].requested.milli_cpu, 1000);
        c.forget_pod("default/p");
        assert_eq!(
            c.nodes["n2"].requested.milli_cpu, 1000,
            "confirmed pods are not forgotten"
        );
        c.assume_pod(pod("q", "n1", "500m"));
        c.forget_pod("default/q");
        assert_eq!(c.nodes["n1"].requested.milli_cpu, 0);
        assert_eq!(c.nodes["n1"].pods.len(), 0);
    }

    #[test]
    fn pods_of_deleted_nodes_linger_until_removed() {
        let mut c = Cache::new();
        c.add_node(node("n1", "a"));
        c.add_pod(pod("p", "n1", "1"));
        c.remove_node("n1");
        assert_eq!(c.node_count(), 0);
        assert!(c.nodes.contains_key("n1"));
        c.remove_pod("default/p");
        assert!(!c.nodes.contains_key("n1"));
    }
}
