//! NodeUnschedulable, NodeName and NodePorts.

use k8s_openapi::api::core::v1::Taint;

use crate::cache::Cache;
use crate::framework::{Code, CycleState, FilterPlugin, NodeInfo, PodInfo, Status};
use crate::labels::tolerations_tolerate;

pub struct NodeUnschedulable;

impl NodeUnschedulable {
    pub const NAME: &'static str = "NodeUnschedulable";
    pub const REASON: &'static str = "node(s) were unschedulable";
}

impl FilterPlugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if !node.unschedulable {
            return Status::success();
        }
        // Tolerating the unschedulable taint means tolerating `spec.unschedulable`.
        let taint = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            ..Taint::default()
        };
        if tolerations_tolerate(&pod.tolerations, &taint) {
            return Status::success();
        }
        Status::new(Code::UnschedulableAndUnresolvable, Self::NAME, Self::REASON)
    }
}

pub struct NodeName;

impl NodeName {
    pub const NAME: &'static str = "NodeName";
    pub const REASON: &'static str = "node(s) didn't match the requested node name";
}

impl FilterPlugin for NodeName {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if pod.node_name.is_empty() || pod.node_name == node.name {
            return Status::success();
        }
        Status::new(Code::UnschedulableAndUnresolvable, Self::NAME, Self::REASON)
    }
}

pub struct NodePorts;

impl NodePorts {
    pub const NAME: &'static str = "NodePorts";
    pub const REASON: &'static str = "node(s) didn't have free ports for the requested pod ports";
}

impl FilterPlugin for NodePorts {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn pre_filter(&self, _state: &mut CycleState, pod: &PodInfo, _cache: &Cache) -> Status {
        if pod.host_ports.is_empty() {
            Status::skip()
        } else {
            Status::success()
        }
    }

    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let conflict = pod
            .host_ports
            .iter()
            .any(|want| node.used_ports.iter().any(|used| used.conflicts(want)));
        if conflict {
            Status::new(Code::Unschedulable, Self::NAME, Self::REASON)
        } else {
            Status::success()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::{cache, pod};
    use serde_json::json;

    #[test]
    fn unschedulable_nodes_unless_tolerated() {
        let c = cache(
            vec![json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}})],
            vec![],
        );
        let n = &c.nodes["n"];
        let st = CycleState::default();
        let s = NodeUnschedulable.filter(&st, &pod(json!({"metadata": {"name": "p"}})), n);
        assert_eq!(s.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(s.reasons, ["node(s) were unschedulable"]);
        let tolerant = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}],
            "tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}}),
        );
        assert!(NodeUnschedulable.filter(&st, &tolerant, n).is_success());
    }

    #[test]
    fn host_ports_conflict_with_used_ones() {
        let c = cache(
            vec![json!({"metadata": {"name": "n"}})],
            vec![
                json!({"metadata": {"name": "a"}, "spec": {"nodeName": "n", "containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}}),
            ],
        );
        let st = CycleState::default();
        let same = pod(
            json!({"metadata": {"name": "b"}, "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.1"}]}]}}),
        );
        let s = NodePorts.filter(&st, &same, &c.nodes["n"]);
        assert_eq!(s.reasons, [NodePorts::REASON]);
        let udp = pod(
            json!({"metadata": {"name": "b"}, "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}]}]}}),
        );
        assert!(NodePorts.filter(&st, &udp, &c.nodes["n"]).is_success());
    }
}
