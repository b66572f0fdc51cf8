//! core/v1 Events about pods (upstream `record.EventRecorder` with source
//! `kubelet`/<node>): recording never blocks a worker; a background task creates
//! the Event, or bumps `count`/`lastTimestamp` of the one it created before for
//! the same object, reason and message (upstream's event correlator).

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::mpsc;
use tracing::debug;

pub const NORMAL: &str = "Normal";
pub const WARNING: &str = "Warning";

/// One event to record.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub namespace: String,
    pub pod_name: String,
    pub pod_uid: String,
    /// `spec.containers{name}` / `spec.initContainers{name}`, or `None` for the pod.
    pub field_path: Option<String>,
    pub type_: &'static str,
    pub reason: &'static str,
    pub message: String,
}

/// Sends events to the API in the background; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: Option<mpsc::UnboundedSender<EventRecord>>,
}

/// The `fieldPath` of a container in a pod's spec.
pub fn container_field_path(pod: &Pod, container: &str) -> String {
    let is_init = pod.spec.iter().flat_map(|s| s.init_containers.iter().flatten()).any(|c| c.name == container);
    if is_init {
        format!("spec.initContainers{{{container}}}")
    } else {
        format!("spec.containers{{{container}}}")
    }
}

impl Recorder {
    /// Starts the sender task (needs a tokio runtime).
    pub fn new(client: kube::Client, node_name: String) -> Recorder {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(send_events(client, node_name, rx));
        Recorder { tx: Some(tx) }
    }

    /// A recorder that drops everything (unit tests, no API).
    pub fn disabled() -> Recorder {
        Recorder { tx: None }
    }

    pub fn record(&self, record: EventRecord) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(record);
        }
    }

    /// An event about `container` of `pod`.
    pub fn container_event(&self, pod: &Pod, container: &str, type_: &'static str, reason: &'static str, message: String) {
        self.record(EventRecord {
            namespace: pod.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
            pod_name: pod.metadata.name.clone().unwrap_or_default(),
            pod_uid: pod.metadata.uid.clone().unwrap_or_default(),
            field_path: Some(container_field_path(pod, container)),
            type_,
            reason,
            message,
        });
    }
}

fn now() -> String {
    Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The Event object for a first occurrence.
pub fn event_object(record: &EventRecord, node_name: &str, at: Timestamp) -> serde_json::Value {
    let stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut involved = json!({"kind": "Pod", "namespace": record.namespace, "name": record.pod_name, "uid": record.pod_uid, "apiVersion": "v1"});
    if let Some(path) = &record.field_path {
        involved["fieldPath"] = json!(path);
    }
    json!({
        "apiVersion": "v1", "kind": "Event",
        // Upstream names events `<object>.<unix nanoseconds in hex>`.
        "metadata": {"name": format!("{}.{:x}", record.pod_name, at.as_nanosecond()), "namespace": record.namespace},
        "involvedObject": involved,
        "reason": record.reason,
        "message": record.message,
        "type": record.type_,
        "source": {"component": "kubelet", "host": node_name},
        "reportingComponent": "kubelet",
        "reportingInstance": node_name,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    })
}

/// What makes two events the same occurrence: pod uid, fieldPath, reason, message.
type EventKey = (String, Option<String>, &'static str, String);

async fn send_events(client: kube::Client, node_name: String, mut rx: mpsc::UnboundedReceiver<EventRecord>) {
    // The events this kubelet created: name and count.
    let mut seen: HashMap<EventKey, (String, i32)> = HashMap::new();
    while let Some(record) = rx.recv().await {
        let api: Api<Event> = Api::namespaced(client.clone(), &record.namespace);
        let key = (record.pod_uid.clone(), record.field_path.clone(), record.reason, record.message.clone());
        if let Some((name, count)) = seen.get_mut(&key) {
            let patch = json!({"count": *count + 1, "lastTimestamp": now()});
            match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => {
                    *count += 1;
                    continue;
                }
                // Expired (events have a TTL) or deleted: create it anew below.
                Err(err) => debug!("updating event {name}: {err}"),
            }
        }
        let object = event_object(&record, &node_name, Timestamp::now());
        let event: Event = match serde_json::from_value(object) {
            Ok(e) => e,
            Err(err) => {
                debug!("building event: {err}");
                continue;
            }
        };
        let name = event.metadata.name.clone().unwrap_or_default();
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => {
                if seen.len() > 4096 {
                    seen.clear();
                }
                seen.insert(key, (name, 1));
            }
            Err(err) => debug!(reason = record.reason, "creating event: {err}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    #[test]
    fn event_names_the_pod_and_container() {
        let pod = Pod {
            spec: Some(PodSpec {
                init_containers: Some(vec![Container { name: "setup".into(), ..Default::default() }]),
                containers: vec![Container { name: "app".into(), ..Default::default() }],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(container_field_path(&pod, "app"), "spec.containers{app}");
        assert_eq!(container_field_path(&pod, "setup"), "spec.initContainers{setup}");
        let record = EventRecord {
            namespace: "default".into(),
            pod_name: "web".into(),
            pod_uid: "u1".into(),
            field_path: Some("spec.containers{app}".into()),
            type_: WARNING,
            reason: "Unhealthy",
            message: "Liveness probe failed: ".into(),
        };
        let at = Timestamp::from_second(1_700_000_000).expect("time");
        let e = event_object(&record, "n1", at);
        assert_eq!(e["metadata"]["name"], format!("web.{:x}", 1_700_000_000_000_000_000i128));
        assert_eq!(e["involvedObject"]["fieldPath"], "spec.containers{app}");
        assert_eq!((e["source"]["component"].as_str(), e["source"]["host"].as_str()), (Some("kubelet"), Some("n1")));
        assert_eq!(e["count"], 1);
        serde_json::from_value::<Event>(e).expect("a valid Event");
    }
}
