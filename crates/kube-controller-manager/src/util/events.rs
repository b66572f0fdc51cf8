//! core/v1 Events from controllers (upstream `record.EventRecorder` with source
//! `<controller>`): recording never blocks a sync; a background task creates the
//! Event, or bumps `count`/`lastTimestamp` of the one it created before for the
//! same object, reason and message (upstream's event correlator).

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Resource;
use serde_json::{json, Value};
use tokio::sync::mpsc;

pub const NORMAL: &str = "Normal";
pub const WARNING: &str = "Warning";

/// Upstream's broadcaster queue length; beyond it events are dropped.
const MAX_QUEUED: usize = 1000;
/// Upstream `noteLengthLimit`.
const NOTE_LENGTH_LIMIT: usize = 1024;

/// The object an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Involved {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    pub resource_version: String,
}

impl Involved {
    pub fn of<K: Resource<DynamicType = ()>>(obj: &K) -> Involved {
        let m = obj.meta();
        Involved {
            api_version: K::api_version(&()).into_owned(),
            kind: K::kind(&()).into_owned(),
            namespace: m.namespace.clone(),
            name: m.name.clone().unwrap_or_default(),
            uid: m.uid.clone().unwrap_or_default(),
            resource_version: m.resource_version.clone().unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub involved: Involved,
    pub type_: &'static str,
    pub reason: String,
    pub message: String,
}

/// Sends events to the API in the background; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: Option<mpsc::Sender<EventRecord>>,
}

impl Recorder {
    /// Starts the sender task for `component` (e.g. `job-controller`).
    pub fn new(client: kube::Client, component: &str) -> Recorder {
        let (tx, rx) = mpsc::channel(MAX_QUEUED);
        tokio::spawn(send_events(client, component.to_string(), rx));
        Recorder { tx: Some(tx) }
    }

    /// A recorder that drops everything (unit tests).
    pub fn disabled() -> Recorder {
        Recorder { tx: None }
    }

    pub fn record(&self, record: EventRecord) {
        if let Some(tx) = &self.tx {
            if tx.try_send(record).is_err() {
                tracing::debug!("event backlog full; dropping event");
            }
        }
    }

    /// An event about `obj`.
    pub fn event<K: Resource<DynamicType = ()>>(&self, obj: &K, type_: &'static str, reason: &str, message: impl Into<String>) {
        self.record(EventRecord { involved: Involved::of(obj), type_, reason: reason.to_string(), message: message.into() });
    }
}

/// Upstream `truncateMessage`.
fn truncate(message: &str) -> String {
    if message.len() <= NOTE_LENGTH_LIMIT {
        return message.to_string();
    }
    let mut end = NOTE_LENGTH_LIMIT - 4;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} ...", &message[..end])
}

fn stamp(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The Event object for a first occurrence. Cluster-scoped objects' events go to
/// `default`, as upstream.
pub fn event_object(record: &EventRecord, component: &str, at: Timestamp) -> Value {
    let i = &record.involved;
    let ns = i.namespace.clone().unwrap_or_else(|| "default".into());
    let mut involved = json!({"apiVersion": i.api_version, "kind": i.kind, "name": i.name, "uid": i.uid, "resourceVersion": i.resource_version});
    if let Some(n) = &i.namespace {
        involved["namespace"] = json!(n);
    }
    json!({
        "apiVersion": "v1", "kind": "Event",
        // Upstream names events `<object>.<unix nanoseconds in hex>`.
        "metadata": {"name": format!("{}.{:x}", i.name, at.as_nanosecond()), "namespace": ns},
        "involvedObject": involved,
        "reason": record.reason,
        "message": truncate(&record.message),
        "type": record.type_,
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": "",
        "firstTimestamp": stamp(at),
        "lastTimestamp": stamp(at),
        "count": 1,
    })
}

/// What makes two events the same occurrence: object uid, reason, message.
type EventKey = (String, String, String);

async fn send_events(client: kube::Client, component: String, mut rx: mpsc::Receiver<EventRecord>) {
    let mut seen: HashMap<EventKey, (String, String, i32)> = HashMap::new();
    while let Some(record) = rx.recv().await {
        let key = (record.involved.uid.clone(), record.reason.clone(), record.message.clone());
        if let Some((ns, name, count)) = seen.get_mut(&key) {
            let api: Api<Event> = Api::namespaced(client.clone(), ns);
            let patch = json!({"count": *count + 1, "lastTimestamp": stamp(Timestamp::now())});
            match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => {
                    *count += 1;
                    continue;
                }
                // Expired (events have a TTL) or deleted: create it anew below.
                Err(err) => tracing::debug!("updating event {name}: {err}"),
            }
        }
        let object = event_object(&record, &component, Timestamp::now());
        let event: Event = match serde_json::from_value(object) {
            Ok(e) => e,
            Err(err) => {
                tracing::debug!("building event: {err}");
                continue;
            }
        };
        let ns = event.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let name = event.metadata.name.clone().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(client.clone(), &ns);
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => {
                if seen.len() > 4096 {
                    seen.clear();
                }
                seen.insert(key, (ns, name, 1));
            }
            Err(err) => tracing::debug!(reason = %record.reason, "creating event: {err}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::Job;
    use k8s_openapi::api::core::v1::Node;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn events_name_the_object_and_source() {
        let job = Job { metadata: ObjectMeta { name: Some("pi".into()), namespace: Some("ns".into()), uid: Some("u".into()), ..Default::default() }, ..Default::default() };
        let record = EventRecord { involved: Involved::of(&job), type_: NORMAL, reason: "Completed".into(), message: "Job completed".into() };
        let at = Timestamp::from_second(1_700_000_000).expect("time");
        let e = event_object(&record, "job-controller", at);
        assert_eq!(e["metadata"]["namespace"], "ns");
        assert_eq!(e["metadata"]["name"], format!("pi.{:x}", 1_700_000_000_000_000_000i128));
        assert_eq!((e["involvedObject"]["kind"].as_str(), e["involvedObject"]["apiVersion"].as_str()), (Some("Job"), Some("batch/v1")));
        assert_eq!(e["source"]["component"], "job-controller");
        serde_json::from_value::<Event>(e).expect("a valid Event");
        // Cluster-scoped objects' events live in default.
        let node = Node { metadata: ObjectMeta { name: Some("n1".into()), ..Default::default() }, ..Default::default() };
        let record = EventRecord { involved: Involved::of(&node), type_: NORMAL, reason: "NodeNotReady".into(), message: "x".repeat(2000) };
        let e = event_object(&record, "node-controller", at);
        assert_eq!(e["metadata"]["namespace"], "default");
        assert!(e["involvedObject"].get("namespace").is_none());
        assert_eq!(e["message"].as_str().map(str::len), Some(1024));
    }
}
