//! ReplicaSet and ReplicationController controllers (upstream
//! `pkg/controller/replicaset`): keep `spec.replicas` active pods matching the
//! selector, adopting orphans and releasing pods that stop matching, and report
//! replicas/fullyLabeled/ready/available/observedGeneration.

mod kinds;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::Api;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;

pub use kinds::{ReplicaStatus, ReplicatedKind};

use crate::context::ControllerContext;
use crate::util::backoff::KeyBackoff;
use crate::util::events::Recorder;
use crate::util::expectations::Expectations;
use crate::util::informer;
use crate::util::owner::controller_of;
use crate::util::selector::labels_of;

/// Upstream `BurstReplicas`: at most this many creations or deletions per sync.
pub const BURST_REPLICAS: usize = 500;

pub(crate) struct Ctx<K: ReplicatedKind> {
    _kind: std::marker::PhantomData<K>,
    pub client: kube::Client,
    pub pods: Store<Pod>,
    pub expectations: Arc<Expectations>,
    pub backoff: KeyBackoff,
    pub recorder: Recorder,
}

pub fn start_replicaset(ctx: ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    let concurrency = ctx.options.concurrent_replicaset_syncs;
    Box::pin(run::<ReplicaSet>(ctx, concurrency))
}

pub fn start_replicationcontroller(
    ctx: ControllerContext,
) -> BoxFuture<'static, anyhow::Result<()>> {
    let concurrency = ctx.options.concurrent_rc_syncs;
    Box::pin(run::<ReplicationController>(ctx, concurrency))
}

/// `namespace/name` of an owner.
pub(crate) fn owner_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// Records what the pod watch shows against the expectations of the pod's
/// controller. Runs before the pod cache applies the event, so "not cached yet"
/// means "new".
fn observe<K: ReplicatedKind>(
    event: &watcher::Event<Pod>,
    pods: &Store<Pod>,
    expectations: &Expectations,
) {
    let kind = K::kind(&());
    let owner = |pod: &Pod| {
        controller_of(&pod.metadata)
            .filter(|r| r.kind == kind)
            .map(|r| owner_key(pod.metadata.namespace.as_deref().unwrap_or(""), &r.name))
    };
    match event {
        watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => {
            let Some(key) = owner(pod) else { return };
            let cached = pods.get(&ObjectRef::from_obj(pod));
            if cached.is_none_or(|c| c.metadata.uid != pod.metadata.uid) {
                expectations.creation_observed(&key);
            }
            if pod.metadata.deletion_timestamp.is_some() {
                expectations.deletion_observed(&key, &crate::util::key_of(&pod.metadata));
            }
        }
        watcher::Event::Delete(pod) => {
            if let Some(key) = owner(pod) {
                expectations.deletion_observed(&key, &crate::util::key_of(&pod.metadata));
            }
        }
        watcher::Event::Init | watcher::Event::InitDone => {}
    }
}

/// The owners a pod event concerns: its controller, or for an orphan every owner
/// whose selector matches it (candidates for adoption).
fn owners_of_pod<K: ReplicatedKind>(pod: &Pod, owners: &Store<K>) -> Vec<ObjectRef<K>> {
    let ns = pod.namespace().unwrap_or_default();
    if let Some(r) = controller_of(&pod.metadata) {
        if r.kind == K::kind(&()) {
            return vec![ObjectRef::new(&r.name).within(&ns)];
        }
        return Vec::new();
    }
    let labels = labels_of(&pod.metadata.labels);
    owners
        .state()
        .iter()
        .filter(|o| o.namespace().as_deref() == Some(ns.as_str()))
        .filter(|o| o.selector().is_some_and(|s| s.matches(&labels)))
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

async fn run<K: ReplicatedKind>(ctx: ControllerContext, concurrency: u16) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let expectations = Arc::new(Expectations::new());
    // The observer sees each event before the cache applies it.
    let (observed_tx, observed_rx) = tokio::sync::oneshot::channel::<Store<Pod>>();
    let observer = expectations.clone();
    let mut observed_pods: Option<Store<Pod>> = None;
    let mut observed_rx = Some(observed_rx);
    let events = watcher(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .map(move |event| {
            if observed_pods.is_none() {
                observed_pods = observed_rx.as_mut().and_then(|rx| rx.try_recv().ok());
            }
            if let (Ok(event), Some(pods)) = (&event, &observed_pods) {
                observe::<K>(event, pods, &observer);
            }
            event
        });
    let (pods, pod_stream) = informer::spawn(events);
    let _ = observed_tx.send(pods.clone());
    pods.wait_until_ready().await?;
    let controller = Controller::new(Api::<K>::all(client.clone()), watcher::Config::default());
    let mapper_owners = controller.store();
    // Upstream's event sources: `replicaset-controller`, `replication-controller`.
    let component = if K::kind(&()) == "ReplicaSet" {
        "replicaset-controller"
    } else {
        "replication-controller"
    };
    let recorder = Recorder::new(client.clone(), component);
    let state = Arc::new(Ctx {
        _kind: std::marker::PhantomData,
        client,
        pods: pods.clone(),
        expectations,
        backoff: KeyBackoff::default(),
        recorder,
    });
    let mut stream = controller
        .watches_stream(pod_stream, move |pod: Pod| {
            owners_of_pod(&pod, &mapper_owners)
        })
        .with_config(ControllerConfig::default().concurrency(concurrency))
        .run(reconcile::<K>, error_policy::<K>, state)
        .boxed();
    while let Some(result) = stream.next().await {
        if let Err(err) = result {
            tracing::debug!(kind = %K::kind(&()), "replica controller: {err}");
        }
    }
    Ok(())
}

async fn reconcile<K: ReplicatedKind>(
    owner: Arc<K>,
    ctx: Arc<Ctx<K>>,
) -> crate::util::Result<Action> {
    let key = owner_key(&owner.namespace().unwrap_or_default(), &owner.name_any());
    let requeue = sync::sync_owner(&owner, &ctx).await?;
    ctx.backoff.forget(&key);
    Ok(match requeue {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

fn error_policy<K: ReplicatedKind>(
    owner: Arc<K>,
    err: &crate::util::Error,
    ctx: Arc<Ctx<K>>,
) -> Action {
    let key = owner_key(&owner.namespace().unwrap_or_default(), &owner.name_any());
    tracing::warn!(kind = %K::kind(&()), owner = %key, "sync failed: {err}");
    Action::requeue(ctx.backoff.next_delay(&key).max(Duration::from_millis(5)))
}
