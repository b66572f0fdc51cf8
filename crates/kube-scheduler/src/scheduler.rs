//! The scheduling loop (upstream `ScheduleOne`) on its own thread: pop a pod, run the
//! algorithm against the cache, assume the pod on the chosen node, and hand the bind
//! to the async runtime; failures go back to the queue with upstream's condition and
//! event.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::algorithm::{Framework, ScheduleError};
use crate::cache::Cache;
use crate::events::{truncate_message, EventRecorder};
use crate::framework::PodInfo;
use crate::metrics::SchedulerMetrics;
use crate::queue::{ClusterEvent, QueuedPod, SchedulingQueue};
use crate::retry::with_retries;

/// Binds in flight at once.
const MAX_CONCURRENT_BINDS: usize = 128;

/// The async side: binds, pod condition updates, events.
#[derive(Clone)]
pub struct Binder {
    pub client: kube::Client,
    pub queue: Arc<SchedulingQueue>,
    pub cache: Arc<Mutex<Cache>>,
    pub recorder: EventRecorder,
    pub metrics: SchedulerMetrics,
    pub runtime: tokio::runtime::Handle,
    pub binds: Arc<Semaphore>,
}

impl Binder {
    pub fn new(
        client: kube::Client,
        queue: Arc<SchedulingQueue>,
        cache: Arc<Mutex<Cache>>,
        recorder: EventRecorder,
        metrics: SchedulerMetrics,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Binder {
            client,
            queue,
            cache,
            recorder,
            metrics,
            runtime,
            binds: Arc::new(Semaphore::new(MAX_CONCURRENT_BINDS)),
        }
    }

    /// POSTs `pods/binding` in the background; on failure the assumed pod is
    /// forgotten and the pod re-queued (upstream `handleBindingCycleError`).
    pub fn bind(&self, qp: QueuedPod, node: String, started: Instant) {
        let this = self.clone();
        self.runtime.spawn(async move {
            let info = qp.info.clone();
            let Ok(_permit) = this.binds.clone().acquire_owned().await else {
                return;
            };
            let binding = Binding {
                metadata: ObjectMeta {
                    name: Some(info.name.clone()),
                    namespace: Some(info.namespace.clone()),
                    uid: Some(info.uid.clone()).filter(|u| !u.is_empty()),
                    ..ObjectMeta::default()
                },
                target: ObjectReference {
                    kind: Some("Node".into()),
                    name: Some(node.clone()),
                    ..ObjectReference::default()
                },
            };
            let api: Api<Pod> = Api::namespaced(this.client.clone(), &info.namespace);
            let pp = PostParams::default();
            let result = with_retries(|| {
                api.create_subresource::<Binding, serde_json::Value>(
                    "binding", &info.name, &pp, &binding,
                )
            })
            .await
            .map(|_| ());
            match result {
                Ok(()) => {
                    this.metrics
                        .attempt("scheduled", started.elapsed().as_secs_f64());
                    this.queue.done(&info.key);
                    tracing::debug!(pod = %info.key, %node, "bound");
                    this.recorder.pod_event(
                        &info.pod,
                        "Normal",
                        "Scheduled",
                        "Binding",
                        &format!("Successfully assigned {} to {node}", info.key),
                    );
                }
                Err(err) => {
                    tracing::warn!(pod = %info.key, %node, "binding failed: {err}");
                    this.metrics
                        .attempt("error", started.elapsed().as_secs_f64());
                    this.cache.lock().forget_pod(&info.key);
                    this.queue.move_all(ClusterEvent::AssignedPodDelete);
                    let msg = format!("Binding rejected: {err}");
                    this.recorder.pod_event(
                        &info.pod,
                        "Warning",
                        "FailedScheduling",
                        "Scheduling",
                        &msg,
                    );
                    this.queue.add_unschedulable(qp, HashSet::new(), true);
                }
            }
        });
    }

    /// `PodScheduled=False` (reason `Unschedulable`) and a `FailedScheduling` event.
    pub fn record_unschedulable(&self, info: &PodInfo, message: &str) {
        self.recorder.pod_event(
            &info.pod,
            "Warning",
            "FailedScheduling",
            "Scheduling",
            message,
        );
        let existing = info
            .pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"))
            .cloned();
        // Upstream `UpdatePodCondition`: unchanged conditions are not written.
        if existing.as_ref().is_some_and(|c| {
            c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
                && c.message.as_deref() == Some(message)
        }) {
            return;
        }
        let transition = match existing
            .as_ref()
            .filter(|c| c.status == "False")
            .and_then(|c| c.last_transition_time.clone())
        {
            Some(t) => t.0,
            None => Timestamp::from_second(Timestamp::now().as_second())
                .unwrap_or_else(|_| Timestamp::now()),
        };
        let patch = json!({"status": {"conditions": [{
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastProbeTime": null,
            "lastTransitionTime": transition.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        }]}});
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &info.namespace);
        let name = info.name.clone();
        self.runtime.spawn(async move {
            let patch = Patch::Strategic(patch);
            let pp = PatchParams::default();
            if let Err(err) = with_retries(|| api.patch_status(&name, &pp, &patch)).await {
                tracing::warn!(pod = %name, "updating the PodScheduled condition: {err}");
            }
        });
    }
}

/// The single scheduling loop.
pub struct Scheduler {
    pub framework: Framework,
    pub binder: Binder,
    rng: rand::rngs::StdRng,
}

impl Scheduler {
    pub fn new(framework: Framework, binder: Binder) -> Self {
        Scheduler {
            framework,
            binder,
            rng: rand::SeedableRng::from_os_rng(),
        }
    }

    /// Schedules pods until the queue is closed.
    pub fn run(mut self) {
        while self.schedule_one() {}
        tracing::info!("scheduling loop stopped");
    }

    /// One attempt; false when the queue is closed.
    pub fn schedule_one(&mut self) -> bool {
        let Some(qp) = self.binder.queue.pop() else {
            return false;
        };
        let info = qp.info.clone();
        let queue = self.binder.queue.clone();
        if info.terminating {
            queue.done(&info.key);
            return true;
        }
        let started = Instant::now();
        let outcome = {
            let mut cache = self.binder.cache.lock();
            if cache.has_pod(&info.key) {
                // Already assumed or bound: nothing to do.
                drop(cache);
                queue.done(&info.key);
                return true;
            }
            let result = self.framework.schedule(&mut cache, &info, &mut self.rng);
            if let Ok(r) = &result {
                cache.assume_pod(Arc::new(info.assumed_on(&r.node)));
            }
            result
        };
        match outcome {
            Ok(r) => {
                tracing::debug!(pod = %info.key, node = %r.node, evaluated = r.evaluated_nodes, feasible = r.feasible_nodes, "assumed");
                self.binder.bind(qp, r.node, started);
            }
            Err(err) => {
                let message = err.message();
                tracing::info!(pod = %info.key, "unable to schedule pod: {}", truncate_message(&message));
                self.binder
                    .metrics
                    .attempt("unschedulable", started.elapsed().as_secs_f64());
                let plugins = match &err {
                    ScheduleError::NoNodes => HashSet::new(),
                    ScheduleError::Fit(_) => err.unschedulable_plugins(),
                };
                queue.add_unschedulable(qp, plugins, false);
                self.binder.record_unschedulable(&info, &message);
            }
        }
        true
    }
}
