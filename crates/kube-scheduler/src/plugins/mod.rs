//! The default plugins, with upstream's names, order and score weights.

pub mod image_locality;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_basic;
pub mod noderesources;
pub mod taint_toleration;
pub mod topology_spread;

use crate::framework::{FilterPlugin, ScorePlugin};

/// Filter plugins in upstream's default order.
pub fn default_filters() -> Vec<Box<dyn FilterPlugin>> {
    vec![
        Box::new(node_basic::NodeUnschedulable),
        Box::new(node_basic::NodeName),
        Box::new(taint_toleration::TaintToleration),
        Box::new(node_affinity::NodeAffinity),
        Box::new(node_basic::NodePorts),
        Box::new(noderesources::Fit),
        Box::new(topology_spread::PodTopologySpread),
        Box::new(inter_pod_affinity::InterPodAffinity),
    ]
}

/// Score plugins with upstream's default weights.
pub fn default_scorers() -> Vec<Box<dyn ScorePlugin>> {
    vec![
        Box::new(taint_toleration::TaintToleration),
        Box::new(node_affinity::NodeAffinity),
        Box::new(noderesources::Fit),
        Box::new(topology_spread::PodTopologySpread),
        Box::new(inter_pod_affinity::InterPodAffinity),
        Box::new(noderesources::BalancedAllocation),
        Box::new(image_locality::ImageLocality),
    ]
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Builders for plugin tests.
    use std::sync::Arc;

    use serde_json::Value;

    use crate::cache::Cache;
    use crate::framework::PodInfo;

    pub fn pod(v: Value) -> PodInfo {
        let mut v = v;
        if v.pointer("/metadata/namespace").is_none() {
            v["metadata"]["namespace"] = "default".into();
        }
        if v.get("spec").is_none() {
            v["spec"] = serde_json::json!({"containers": [{"name": "c"}]});
        }
        PodInfo::new(Arc::new(serde_json::from_value(v).expect("pod")))
    }

    pub fn node(v: Value) -> Arc<k8s_openapi::api::core::v1::Node> {
        let mut v = v;
        if v.pointer("/status/allocatable").is_none() {
            v["status"]["allocatable"] =
                serde_json::json!({"cpu": "4", "memory": "8Gi", "pods": "110"});
        }
        Arc::new(serde_json::from_value(v).expect("node"))
    }

    /// A cache with these nodes and assigned pods.
    pub fn cache(nodes: Vec<Value>, pods: Vec<Value>) -> Cache {
        let mut c = Cache::new();
        for n in nodes {
            c.add_node(node(n));
        }
        for p in pods {
            c.add_pod(Arc::new(pod(p)));
        }
        c
    }
}
