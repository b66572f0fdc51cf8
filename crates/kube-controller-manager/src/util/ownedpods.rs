//! A pod informer for a controller kind that creates pods (Job, DaemonSet): the
//! watch feeds the kind's expectations before the cache applies each event, as
//! upstream's `addPod`/`deletePod` handlers lower `ControllerExpectations`.

use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};

use crate::util::expectations::Expectations;
use crate::util::informer;
use crate::util::key_of;
use crate::util::owner::controller_of;

/// `namespace/name` of the `kind` controlling `pod`.
pub fn owner_key(pod: &Pod, kind: &str) -> Option<String> {
    controller_of(&pod.metadata)
        .filter(|r| r.kind == kind)
        .map(|r| {
            format!(
                "{}/{}",
                pod.metadata.namespace.as_deref().unwrap_or(""),
                r.name
            )
        })
}

/// Lowers the expectations of the pod's `kind` controller for what `event` shows.
/// Runs before the cache applies the event, so "not cached yet" means "new".
pub fn observe(
    kind: &str,
    event: &watcher::Event<Pod>,
    pods: &Store<Pod>,
    expectations: &Expectations,
) {
    match event {
        watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => {
            let Some(key) = owner_key(pod, kind) else {
                return;
            };
            let cached = pods.get(&ObjectRef::from_obj(pod));
            if cached.is_none_or(|c| c.metadata.uid != pod.metadata.uid) {
                expectations.creation_observed(&key);
            }
            if pod.metadata.deletion_timestamp.is_some() {
                expectations.deletion_observed(&key, &key_of(&pod.metadata));
            }
        }
        watcher::Event::Delete(pod) => {
            if let Some(key) = owner_key(pod, kind) {
                expectations.deletion_observed(&key, &key_of(&pod.metadata));
            }
        }
        watcher::Event::Init | watcher::Event::InitDone => {}
    }
}

/// Starts the pod informer, waits for its first list, and returns the cache and
/// the stream of touched pods.
pub async fn spawn(
    client: kube::Client,
    kind: &'static str,
    expectations: Arc<Expectations>,
) -> anyhow::Result<(
    Store<Pod>,
    impl Stream<Item = Result<Pod, watcher::Error>> + Send + 'static,
)> {
    let (tx, rx) = tokio::sync::oneshot::channel::<Store<Pod>>();
    let mut observed: Option<Store<Pod>> = None;
    let mut rx = Some(rx);
    let events = watcher(Api::<Pod>::all(client), watcher::Config::default())
        .default_backoff()
        .map(move |event| {
            if observed.is_none() {
                observed = rx.as_mut().and_then(|rx| rx.try_recv().ok());
            }
            if let (Ok(event), Some(pods)) = (&event, &observed) {
                observe(kind, event, pods, &expectations);
            }
            event
        });
    let (pods, stream) = informer::spawn(events);
    let _ = tx.send(pods.clone());
    pods.wait_until_ready().await?;
    Ok((pods, stream))
}
