//! core/v1 Events about pods (upstream `record.EventRecorder` with source
//! `kubelet`/<node>), an adapter over the shared recorder in `kube_common::events`
//! (non-blocking, bounded, upstream's event correlator).

use k8s_openapi::api::core::v1::Pod;
use kube_common::events::{self, ObjectRef, Source};

pub use kube_common::events::{NORMAL, WARNING};

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
    inner: events::Recorder,
}

/// The `fieldPath` of a container in a pod's spec.
pub fn container_field_path(pod: &Pod, container: &str) -> String {
    let is_init = pod
        .spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .any(|c| c.name == container);
    if is_init {
        format!("spec.initContainers{{{container}}}")
    } else {
        format!("spec.containers{{{container}}}")
    }
}

impl Recorder {
    /// Starts the sender task (needs a tokio runtime); source `kubelet`/`node_name`.
    pub fn new(client: kube::Client, node_name: String) -> Recorder {
        Recorder {
            inner: events::Recorder::new(client, Source::new("kubelet").with_host(node_name)),
        }
    }

    /// A recorder that drops everything (unit tests, no API).
    pub fn disabled() -> Recorder {
        Recorder {
            inner: events::Recorder::disabled(),
        }
    }

    pub fn record(&self, record: EventRecord) {
        self.inner.record(record.into_shared());
    }

    /// An event about `container` of `pod`.
    pub fn container_event(
        &self,
        pod: &Pod,
        container: &str,
        type_: &'static str,
        reason: &'static str,
        message: String,
    ) {
        self.record(EventRecord {
            namespace: pod
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            pod_name: pod.metadata.name.clone().unwrap_or_default(),
            pod_uid: pod.metadata.uid.clone().unwrap_or_default(),
            field_path: Some(container_field_path(pod, container)),
            type_,
            reason,
            message,
        });
    }
}

impl EventRecord {
    fn into_shared(self) -> events::EventRecord {
        let involved = ObjectRef {
            api_version: "v1".into(),
            kind: "Pod".into(),
            namespace: Some(self.namespace),
            name: self.pod_name,
            uid: self.pod_uid,
            resource_version: String::new(),
            field_path: self.field_path,
        };
        events::EventRecord::new(involved, self.type_, self.reason, self.message)
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
                init_containers: Some(vec![Container {
                    name: "setup".into(),
                    ..Default::default()
                }]),
                containers: vec![Container {
                    name: "app".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(container_field_path(&pod, "app"), "spec.containers{app}");
        assert_eq!(
            container_field_path(&pod, "setup"),
            "spec.initContainers{setup}"
        );
        let record = EventRecord {
            namespace: "default".into(),
            pod_name: "web".into(),
            pod_uid: "u1".into(),
            field_path: Some("spec.containers{app}".into()),
            type_: WARNING,
            reason: "Unhealthy",
            message: "Liveness probe failed: ".into(),
        };
        let at = k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).expect("time");
        let e = events::make_event(
            &Source::new("kubelet").with_host("n1"),
            &record.into_shared(),
            at,
        );
        assert_eq!(
            e.metadata.name,
            Some(format!("web.{:x}", 1_700_000_000_000_000_000i128))
        );
        assert_eq!(
            e.involved_object.field_path.as_deref(),
            Some("spec.containers{app}")
        );
        assert_eq!(
            (
                e.involved_object.kind.as_deref(),
                e.involved_object.uid.as_deref()
            ),
            (Some("Pod"), Some("u1"))
        );
        let source = e.source.expect("source");
        assert_eq!(
            (source.component.as_deref(), source.host.as_deref()),
            (Some("kubelet"), Some("n1"))
        );
        assert_eq!(e.count, Some(1));
    }
}
