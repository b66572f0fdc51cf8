//! Informer event handlers (upstream `eventhandlers.go`): assigned pods go to the
//! cache, unassigned pods of this scheduler to the queue, nodes to the cache; changes
//! that may help unschedulable pods move them back.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use parking_lot::Mutex;

use crate::cache::Cache;
use crate::framework::PodInfo;
use crate::informer::Handler;
use crate::queue::{ClusterEvent, SchedulingQueue};

fn assigned(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

fn terminated(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Upstream SchedulingGates (PreEnqueue): gated pods are not attempted.
fn gated(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.scheduling_gates.as_ref())
        .is_some_and(|g| !g.is_empty())
}

fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

pub struct PodHandler {
    pub cache: Arc<Mutex<Cache>>,
    pub queue: Arc<SchedulingQueue>,
    pub scheduler_name: String,
}

impl PodHandler {
    fn responsible(&self, pod: &Pod) -> bool {
        let name = pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.as_deref())
            .filter(|s| !s.is_empty())
            .unwrap_or("default-scheduler");
        name == self.scheduler_name
    }

    fn add_assigned(&self, pod: Arc<Pod>, event: ClusterEvent) {
        let info = Arc::new(PodInfo::new(pod));
        let key = info.key.clone();
        self.cache.lock().add_pod(info);
        self.queue.delete(&key);
        self.queue.move_all(event);
    }

    fn remove_assigned(&self, pod: &Pod) {
        self.cache.lock().remove_pod(&pod_key(pod));
        self.queue.move_all(ClusterEvent::AssignedPodDelete);
    }
}

impl Handler<Pod> for PodHandler {
    fn on_add(&mut self, pod: Arc<Pod>) {
        if terminated(&pod) {
            return;
        }
        if assigned(&pod) {
            self.add_assigned(pod, ClusterEvent::AssignedPodAdd);
        } else if self.responsible(&pod) && !gated(&pod) {
            self.queue.add(Arc::new(PodInfo::new(pod)));
        }
    }

    fn on_update(&mut self, old: Arc<Pod>, new: Arc<Pod>) {
        if terminated(&new) {
            self.on_delete(old);
            return;
        }
        if assigned(&new) {
            let event = if !assigned(&old) {
                ClusterEvent::AssignedPodAdd
            } else if old.metadata.labels != new.metadata.labels {
                ClusterEvent::AssignedPodUpdate
            } else {
                // Status-only updates change nothing the plugins look at; still refresh.
                let info = Arc::new(PodInfo::new(new));
                self.cache.lock().add_pod(info);
                return;
            };
            self.add_assigned(new, event);
        } else if self.responsible(&new) {
            if self.cache.lock().is_assumed(&pod_key(&new)) {
                return;
            }
            if gated(&new) {
                self.queue.delete(&pod_key(&new));
                return;
            }
            self.queue.update(Arc::new(PodInfo::new(new)));
        }
    }

    fn on_delete(&mut self, pod: Arc<Pod>) {
        if assigned(&pod) {
            self.remove_assigned(&pod);
        } else {
            self.queue.delete(&pod_key(&pod));
        }
    }
}

pub struct NodeHandler {
    pub cache: Arc<Mutex<Cache>>,
    pub queue: Arc<SchedulingQueue>,
}

/// Upstream `nodeSchedulingPropertiesChange`, reduced to what our plugins read.
fn scheduling_relevant_change(old: &Node, new: &Node) -> bool {
    let spec = |n: &Node| n.spec.clone().unwrap_or_default();
    let (os, ns) = (spec(old), spec(new));
    old.metadata.labels != new.metadata.labels
        || os.taints != ns.taints
        || os.unschedulable != ns.unschedulable
        || old.status.as_ref().and_then(|s| s.allocatable.as_ref())
            != new.status.as_ref().and_then(|s| s.allocatable.as_ref())
}

impl Handler<Node> for NodeHandler {
    fn on_add(&mut self, node: Arc<Node>) {
        self.cache.lock().add_node(node);
        self.queue.move_all(ClusterEvent::NodeAdd);
    }

    fn on_update(&mut self, old: Arc<Node>, new: Arc<Node>) {
        let relevant = scheduling_relevant_change(&old, &new);
        self.cache.lock().add_node(new);
        if relevant {
            self.queue.move_all(ClusterEvent::NodeUpdate);
        }
    }

    fn on_delete(&mut self, node: Arc<Node>) {
        self.cache
            .lock()
            .remove_node(node.metadata.name.as_deref().unwrap_or(""));
    }
}

/// Namespace labels for pod affinity `namespaceSelector`s.
pub struct NamespaceHandler {
    pub cache: Arc<Mutex<Cache>>,
}

impl Handler<Namespace> for NamespaceHandler {
    fn on_add(&mut self, ns: Arc<Namespace>) {
        let name = ns.metadata.name.clone().unwrap_or_default();
        self.cache
            .lock()
            .namespaces
            .insert(name, ns.metadata.labels.clone().unwrap_or_default());
    }

    fn on_update(&mut self, _old: Arc<Namespace>, new: Arc<Namespace>) {
        self.on_add(new);
    }

    fn on_delete(&mut self, ns: Arc<Namespace>) {
        self.cache
            .lock()
            .namespaces
            .remove(ns.metadata.name.as_deref().unwrap_or(""));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn pod(v: serde_json::Value) -> Arc<Pod> {
        Arc::new(serde_json::from_value(v).expect("pod"))
    }

    fn handler() -> PodHandler {
        PodHandler {
            cache: Arc::new(Mutex::new(Cache::new())),
            queue: Arc::new(SchedulingQueue::new(
                Duration::from_millis(10),
                Duration::from_millis(20),
            )),
            scheduler_name: "default-scheduler".into(),
        }
    }

    #[test]
    fn routes_pods_by_assignment_and_scheduler_name() {
        let mut h = handler();
        h.on_add(pod(
            json!({"metadata": {"name": "a", "namespace": "default"}, "spec": {"containers": []}}),
        ));
        h.on_add(pod(json!({"metadata": {"name": "b", "namespace": "default"}, "spec": {"schedulerName": "other", "containers": []}})));
        h.on_add(pod(json!({"metadata": {"name": "c", "namespace": "default"}, "spec": {"nodeName": "n1", "containers": []}})));
        assert_eq!(h.queue.pending().active, 1);
        assert!(h.cache.lock().has_pod("default/c"));
        // a gets bound: leaves the queue, enters the cache.
        let old = pod(
            json!({"metadata": {"name": "a", "namespace": "default"}, "spec": {"containers": []}}),
        );
        h.on_update(old, pod(json!({"metadata": {"name": "a", "namespace": "default"}, "spec": {"nodeName": "n1", "containers": []}})));
        assert_eq!(h.queue.pending().active, 0);
        assert!(h.cache.lock().has_pod("default/a"));
        // c finishes: gone from the cache.
        let old = pod(
            json!({"metadata": {"name": "c", "namespace": "default"}, "spec": {"nodeName": "n1", "containers": []}}),
        );
        h.on_update(old, pod(json!({"metadata": {"name": "c", "namespace": "default"}, "spec": {"nodeName": "n1", "containers": []}, "status": {"phase": "Succeeded"}})));
        assert!(!h.cache.lock().has_pod("default/c"));
    }

    #[test]
    fn gated_pods_wait_until_their_gates_are_removed() {
        let mut h = handler();
        let gated = pod(
            json!({"metadata": {"name": "g", "namespace": "default"}, "spec": {"schedulingGates": [{"name": "example.com/wait"}], "containers": []}}),
        );
        h.on_add(gated.clone());
        assert_eq!(h.queue.pending().active, 0);
        h.on_update(gated, pod(json!({"metadata": {"name": "g", "namespace": "default"}, "spec": {"containers": []}})));
        assert_eq!(h.queue.pending().active, 1);
    }
}
