//! core/v1 Events for pods (`Scheduled`, `FailedScheduling`) through the shared
//! recorder in `kube_common::events`: non-blocking, bounded, and correlated, so a pod
//! that keeps failing for the same reason has one `FailedScheduling` Event whose
//! `count` grows. (Upstream's scheduler writes events.k8s.io/v1 with a series; we
//! use the core/v1 correlator, which `kubectl describe` shows the same way.)

use k8s_openapi::api::core::v1::Pod;
use kube_common::events::{EventRecord, ObjectRef, Recorder, Source};

pub use kube_common::events::truncate_message;

#[derive(Clone)]
pub struct EventRecorder {
    recorder: Recorder,
}

impl EventRecorder {
    /// Starts the writer task on the current runtime; `component` is the scheduler
    /// name (`source.component`), `instance` the `reportingInstance`.
    pub fn start(client: kube::Client, component: &str, instance: &str) -> Self {
        EventRecorder {
            recorder: Recorder::new(client, Source::new(component).with_instance(instance)),
        }
    }

    /// Records an event about `pod`.
    pub fn pod_event(&self, pod: &Pod, type_: &str, reason: &str, action: &str, message: &str) {
        let mut record = EventRecord::new(ObjectRef::of(pod), type_, reason, message);
        record.action = Some(action.to_string());
        self.recorder.record(record);
    }
}
