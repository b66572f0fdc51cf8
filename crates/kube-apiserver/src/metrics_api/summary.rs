//! From a kubelet's `/stats/summary` to `metrics.k8s.io/v1beta1` objects, as the
//! summary-based metrics-server does (`pkg/sources/summary`): CPU is
//! `usageNanoCores`, memory is `workingSetBytes`; a node or pod with a missing
//! value is left out (the HPA treats a missing pod specially, a zero it does not).

use std::collections::HashMap;

use api_types::quantity::{format_bytes, ParsedQuantity};
use serde_json::{json, Map, Value};

pub const API_VERSION: &str = "metrics.k8s.io/v1beta1";

/// The window metrics-server reports for summary data: cAdvisor's longest CPU
/// rate window (the summary API does not say which one it used).
pub const WINDOW: &str = "30s";

/// CPU and memory of a node or container at `timestamp` (RFC 3339).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub timestamp: String,
    pub nano_cores: u64,
    pub working_set_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodUsage {
    /// The earliest of the containers' CPU times.
    pub timestamp: String,
    pub containers: Vec<(String, Usage)>,
}

/// One kubelet's summary, decoded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub node: Option<Usage>,
    /// By (namespace, name).
    pub pods: HashMap<(String, String), PodUsage>,
}

fn usage(stats: &Value) -> Option<Usage> {
    let timestamp = stats
        .pointer("/cpu/time")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())?;
    Some(Usage {
        timestamp: timestamp.to_string(),
        nano_cores: stats
            .pointer("/cpu/usageNanoCores")
            .and_then(Value::as_u64)?,
        working_set_bytes: stats
            .pointer("/memory/workingSetBytes")
            .and_then(Value::as_u64)?,
    })
}

fn pod_usage(pod: &Value) -> Option<PodUsage> {
    let mut containers = Vec::new();
    for c in pod
        .get("containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = c.get("name").and_then(Value::as_str)?;
        c.get("startTime")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())?;
        containers.push((name.to_string(), usage(c)?));
    }
    // RFC 3339 UTC strings of one format order as the times do.
    let timestamp = containers.iter().map(|(_, u)| u.timestamp.clone()).min()?;
    Some(PodUsage {
        timestamp,
        containers,
    })
}

pub fn decode(summary: &Value) -> Decoded {
    let node = summary.get("node").and_then(usage);
    let mut pods = HashMap::new();
    for p in summary
        .get("pods")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(ns), Some(name)) = (
            p.pointer("/podRef/namespace").and_then(Value::as_str),
            p.pointer("/podRef/name").and_then(Value::as_str),
        ) else {
            continue;
        };
        if let Some(u) = pod_usage(p) {
            pods.insert((ns.to_string(), name.to_string()), u);
        }
    }
    Decoded { node, pods }
}

/// `123456n`, `250m`, `2`: nanocores in the canonical DecimalSI form.
pub fn cpu_quantity(nano_cores: u64) -> String {
    ParsedQuantity::parse(&format!("{nano_cores}n"))
        .map(|q| q.canonical())
        .unwrap_or_else(|_| format!("{nano_cores}n"))
}

/// `1234Ki`, `1000`: bytes in the canonical BinarySI form.
pub fn memory_quantity(bytes: u64) -> String {
    format_bytes(i64::try_from(bytes).unwrap_or(i64::MAX))
}

fn usage_json(u: &Usage) -> Value {
    json!({"cpu": cpu_quantity(u.nano_cores), "memory": memory_quantity(u.working_set_bytes)})
}

fn labels_of(obj: &Value) -> Option<Value> {
    obj.pointer("/metadata/labels")
        .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
        .cloned()
}

fn metadata(name: &str, namespace: Option<&str>, source: &Value, now: &str) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    if let Some(ns) = namespace {
        m.insert("namespace".into(), json!(ns));
    }
    m.insert("creationTimestamp".into(), json!(now));
    if let Some(labels) = labels_of(source) {
        m.insert("labels".into(), labels);
    }
    Value::Object(m)
}

/// A `NodeMetrics` for `node` (the Node object, for its labels).
pub fn node_metrics(node: &Value, u: &Usage, now: &str) -> Value {
    let name = api_types::meta::name(node).unwrap_or("");
    json!({
        "kind": "NodeMetrics",
        "apiVersion": API_VERSION,
        "metadata": metadata(name, None, node, now),
        "timestamp": u.timestamp,
        "window": WINDOW,
        "usage": usage_json(u),
    })
}

/// A `PodMetrics` for `pod` (the Pod object, for its labels).
pub fn pod_metrics(pod: &Value, u: &PodUsage, now: &str) -> Value {
    let name = api_types::meta::name(pod).unwrap_or("");
    let containers: Vec<Value> = u
        .containers
        .iter()
        .map(|(name, c)| json!({"name": name, "usage": usage_json(c)}))
        .collect();
    json!({
        "kind": "PodMetrics",
        "apiVersion": API_VERSION,
        "metadata": metadata(name, api_types::meta::namespace(pod), pod, now),
        "timestamp": u.timestamp,
        "window": WINDOW,
        "containers": containers,
    })
}

pub fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"kind": format!("{kind}List"), "apiVersion": API_VERSION, "metadata": {}, "items": items})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Value {
        json!({
            "node": {"nodeName": "n1", "cpu": {"time": "2024-05-01T10:00:05Z", "usageNanoCores": 250_000_000u64, "usageCoreNanoSeconds": 9}, "memory": {"time": "2024-05-01T10:00:05Z", "workingSetBytes": 2u64 << 30}},
            "pods": [
                {"podRef": {"name": "web", "namespace": "default", "uid": "u1"}, "containers": [
                    {"name": "a", "startTime": "2024-05-01T09:00:00Z", "cpu": {"time": "2024-05-01T10:00:04Z", "usageNanoCores": 123_456u64}, "memory": {"time": "2024-05-01T10:00:04Z", "workingSetBytes": 1_500u64}},
                    {"name": "b", "startTime": "2024-05-01T09:00:00Z", "cpu": {"time": "2024-05-01T10:00:03Z", "usageNanoCores": 1_000_000_000u64}, "memory": {"workingSetBytes": 4096u64}},
                ]},
                {"podRef": {"name": "partial", "namespace": "default", "uid": "u2"}, "containers": [
                    {"name": "a", "startTime": "2024-05-01T09:00:00Z", "cpu": {"time": "2024-05-01T10:00:04Z"}, "memory": {"workingSetBytes": 1u64}},
                ]},
            ],
        })
    }

    #[test]
    fn decodes_nodes_and_pods_and_drops_partial_pods() {
        let d = decode(&summary());
        assert_eq!(
            d.node,
            Some(Usage {
                timestamp: "2024-05-01T10:00:05Z".into(),
                nano_cores: 250_000_000,
                working_set_bytes: 2 << 30
            })
        );
        let web = &d.pods[&("default".to_string(), "web".to_string())];
        assert_eq!(web.timestamp, "2024-05-01T10:00:03Z");
        assert_eq!(web.containers.len(), 2);
        assert!(!d
            .pods
            .contains_key(&("default".to_string(), "partial".to_string())));
        assert_eq!(
            decode(&json!({"node": {"cpu": {"usageNanoCores": 1}}})).node,
            None
        );
    }

    #[test]
    fn quantities_are_canonical() {
        assert_eq!(cpu_quantity(123_456), "123456n");
        assert_eq!(cpu_quantity(250_000_000), "250m");
        assert_eq!(cpu_quantity(2_000_000_000), "2");
        assert_eq!(cpu_quantity(5_000), "5u");
        assert_eq!(cpu_quantity(0), "0");
        assert_eq!(memory_quantity(1_500), "1500");
        assert_eq!(memory_quantity(4096), "4Ki");
        assert_eq!(memory_quantity(2 << 30), "2Gi");
    }

    #[test]
    fn objects_carry_labels_timestamp_and_window() {
        let d = decode(&summary());
        let node = json!({"metadata": {"name": "n1", "labels": {"zone": "a"}}});
        let m = node_metrics(
            &node,
            d.node.as_ref().expect("node"),
            "2024-05-01T10:00:06Z",
        );
        assert_eq!(m["kind"], "NodeMetrics");
        assert_eq!(m["metadata"]["labels"]["zone"], "a");
        assert_eq!(m["usage"], json!({"cpu": "250m", "memory": "2Gi"}));
        assert_eq!(
            (m["timestamp"].as_str(), m["window"].as_str()),
            (Some("2024-05-01T10:00:05Z"), Some("30s"))
        );
        let pod = json!({"metadata": {"name": "web", "namespace": "default"}});
        let p = pod_metrics(
            &pod,
            &d.pods[&("default".to_string(), "web".to_string())],
            "now",
        );
        assert_eq!(p["metadata"]["namespace"], "default");
        assert!(p["metadata"].get("labels").is_none());
        assert_eq!(
            p["containers"][1],
            json!({"name": "b", "usage": {"cpu": "1", "memory": "4Ki"}})
        );
        assert_eq!(list("PodMetrics", vec![p])["kind"], "PodMetricsList");
    }
}
