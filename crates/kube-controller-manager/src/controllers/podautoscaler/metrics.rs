//! The resource metrics client (upstream `metrics/client.go`
//! `resourceMetricsClient.GetResourceMetric`): PodMetrics from
//! `metrics.k8s.io/v1beta1`, summed over each pod's containers.

use api_types::quantity::ParsedQuantity;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde_json::Value;

use super::replica_calculator::{PodMetric, PodMetrics};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unable to fetch metrics from resource metrics API: {0}")]
    Fetch(#[source] kube::Error),
    #[error("no metrics returned from resource metrics API")]
    Empty,
}

fn pod_metrics_resource() -> ApiResource {
    ApiResource {
        group: "metrics.k8s.io".into(),
        version: "v1beta1".into(),
        api_version: "metrics.k8s.io/v1beta1".into(),
        kind: "PodMetrics".into(),
        plural: "pods".into(),
    }
}

fn millis(t: &str) -> Option<i64> {
    t.parse::<Timestamp>().ok().map(|t| t.as_millisecond())
}

fn window_ms(w: &str) -> i64 {
    kube_common::leader::parse_go_duration(w)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// One PodMetrics object's total of `resource` (milli), unless a container lacks it.
fn pod_total(item: &Value, resource: &str) -> Option<i64> {
    let containers = item
        .get("containers")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())?;
    let mut total = 0i64;
    for c in containers {
        let q = c
            .pointer(&format!("/usage/{resource}"))
            .and_then(Value::as_str)?;
        total += ParsedQuantity::parse(q).ok()?.milli_value();
    }
    Some(total)
}

/// Upstream `getPodMetrics` over the listed items: (metrics by pod, first item's timestamp).
pub fn decode(items: &[Value], resource: &str) -> (PodMetrics, i64) {
    let mut out = PodMetrics::new();
    for item in items {
        let (Some(name), Some(value)) = (
            item.pointer("/metadata/name").and_then(Value::as_str),
            pod_total(item, resource),
        ) else {
            continue;
        };
        let timestamp_ms = item
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(millis)
            .unwrap_or(0);
        let window = item
            .get("window")
            .and_then(Value::as_str)
            .map(window_ms)
            .unwrap_or(0);
        out.insert(
            name.to_string(),
            PodMetric {
                timestamp_ms,
                window_ms: window,
                value,
            },
        );
    }
    let first = items
        .first()
        .and_then(|i| i.get("timestamp"))
        .and_then(Value::as_str)
        .and_then(millis)
        .unwrap_or(0);
    (out, first)
}

/// The pods' usage of `resource` in `namespace` matching `selector`.
pub async fn resource_metric(
    client: &kube::Client,
    namespace: &str,
    selector: &str,
    resource: &str,
) -> Result<(PodMetrics, i64), Error> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &pod_metrics_resource());
    let list = api
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(Error::Fetch)?;
    if list.items.is_empty() {
        return Err(Error::Empty);
    }
    let items: Vec<Value> = list
        .items
        .iter()
        .filter_map(|i| serde_json::to_value(i).ok())
        .collect();
    Ok(decode(&items, resource))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sums_containers_and_skips_pods_missing_a_container_value() {
        let items = vec![
            json!({"metadata": {"name": "a"}, "timestamp": "2024-05-01T10:00:00Z", "window": "30s",
                   "containers": [{"name": "x", "usage": {"cpu": "250m", "memory": "1Mi"}}, {"name": "y", "usage": {"cpu": "500000n", "memory": "1Ki"}}]}),
            json!({"metadata": {"name": "b"}, "timestamp": "2024-05-01T10:00:01Z", "window": "30s",
                   "containers": [{"name": "x", "usage": {"memory": "1Mi"}}]}),
            json!({"metadata": {"name": "c"}, "timestamp": "2024-05-01T10:00:01Z", "window": "30s", "containers": []}),
        ];
        let (m, first) = decode(&items, "cpu");
        assert_eq!(m.len(), 1);
        let a = m["a"];
        assert_eq!((a.value, a.window_ms), (251, 30_000));
        assert_eq!(first, a.timestamp_ms);
        assert_eq!(decode(&items, "memory").0["b"].value, 1_048_576_000);
    }
}
