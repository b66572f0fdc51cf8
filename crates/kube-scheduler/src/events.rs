//! core/v1 Events for pods (`Scheduled`, `FailedScheduling`), written in the
//! background; when the backlog is full, events are dropped as upstream's broadcaster
//! does.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::sync::{mpsc, Semaphore};

/// Upstream's broadcaster queue length.
const MAX_QUEUED_EVENTS: usize = 1000;
const CONCURRENT_WRITES: usize = 4;
/// Upstream `noteLengthLimit`.
const NOTE_LENGTH_LIMIT: usize = 1024;

/// Upstream `truncateMessage`.
pub fn truncate_message(message: &str) -> String {
    if message.len() <= NOTE_LENGTH_LIMIT {
        return message.to_string();
    }
    let mut end = NOTE_LENGTH_LIMIT - 4;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} ...", &message[..end])
}

#[derive(Clone)]
pub struct EventRecorder {
    tx: mpsc::Sender<Event>,
    component: String,
    instance: String,
}

impl EventRecorder {
    /// Starts the writer task on the current runtime.
    pub fn start(client: kube::Client, component: &str, instance: &str) -> Self {
        let (tx, mut rx) = mpsc::channel::<Event>(MAX_QUEUED_EVENTS);
        tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(CONCURRENT_WRITES));
            while let Some(ev) = rx.recv().await {
                let Ok(permit) = slots.clone().acquire_owned().await else { break };
                let ns = ev.metadata.namespace.clone().unwrap_or_else(|| "default".to_string());
                let api: Api<Event> = Api::namespaced(client.clone(), &ns);
                tokio::spawn(async move {
                    let pp = PostParams::default();
                    if let Err(err) = crate::retry::with_retries(|| api.create(&pp, &ev)).await {
                        tracing::debug!("writing event: {err}");
                    }
                    drop(permit);
                });
            }
        });
        EventRecorder { tx, component: component.to_string(), instance: instance.to_string() }
    }

    /// Records an event about `pod`.
    pub fn pod_event(&self, pod: &Pod, type_: &str, reason: &str, action: &str, message: &str) {
        let now = Timestamp::now();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let namespace = pod.metadata.namespace.clone().unwrap_or_else(|| "default".to_string());
        let nanos = now.as_nanosecond();
        let ev = Event {
            metadata: ObjectMeta { name: Some(format!("{name}.{nanos:x}")), namespace: Some(namespace.clone()), ..ObjectMeta::default() },
            involved_object: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(name),
                namespace: Some(namespace),
                uid: pod.metadata.uid.clone(),
                resource_version: pod.metadata.resource_version.clone(),
                ..ObjectReference::default()
            },
            reason: Some(reason.into()),
            message: Some(truncate_message(message)),
            type_: Some(type_.into()),
            action: Some(action.into()),
            source: Some(EventSource { component: Some(self.component.clone()), host: None }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.instance.clone()),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: Some(MicroTime(now)),
            count: Some(1),
            ..Event::default()
        };
        if self.tx.try_send(ev).is_err() {
            tracing::debug!("event backlog full; dropping event");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_truncated() {
        let long = "x".repeat(2000);
        let t = truncate_message(&long);
        assert_eq!(t.len(), 1024);
        assert!(t.ends_with(" ..."));
        assert_eq!(truncate_message("short"), "short");
    }
}
