//! DaemonSet controller (upstream `pkg/controller/daemon`): one pod per eligible
//! node (nodeSelector, required node affinity, taints against tolerations), pinned
//! with a `metadata.name` node-affinity term for the scheduler to bind, history in
//! ControllerRevisions (`controller-revision-hash`), RollingUpdate (maxUnavailable)
//! and OnDelete updates, and the scheduled/ready/available/updated status counts.

mod predicates;
mod revision;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::Api;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;

pub use predicates::{add_daemon_tolerations, should_run, target_node};
pub use revision::REVISION_HASH;
pub use sync::TEMPLATE_GENERATION;

use crate::context::ControllerContext;
use crate::util::backoff::KeyBackoff;
use crate::util::events::Recorder;
use crate::util::expectations::Expectations;
use crate::util::owner::controller_of;
use crate::util::{informer, key_of, ownedpods};

pub(crate) struct Ctx {
    pub client: kube::Client,
    pub pods: Store<Pod>,
    pub nodes: Store<Node>,
    pub expectations: Arc<Expectations>,
    pub backoff: KeyBackoff,
    pub recorder: Recorder,
}

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(run(ctx))
}

fn ds_of_pod(pod: &Pod) -> Option<ObjectRef<DaemonSet>> {
    let r = controller_of(&pod.metadata).filter(|r| r.kind == "DaemonSet")?;
    Some(ObjectRef::new(&r.name).within(pod.metadata.namespace.as_deref().unwrap_or("")))
}

async fn run(ctx: ControllerContext) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let expectations = Arc::new(Expectations::new());
    let (pods, pod_stream) =
        ownedpods::spawn(client.clone(), "DaemonSet", expectations.clone()).await?;
    let (nodes, node_stream) = informer::spawn(
        watcher(Api::<Node>::all(client.clone()), watcher::Config::default()).default_backoff(),
    );
    nodes.wait_until_ready().await?;
    let controller = Controller::new(
        Api::<DaemonSet>::all(client.clone()),
        watcher::Config::default(),
    );
    let daemonsets = controller.store();
    let recorder = Recorder::new(client.clone(), "daemonset-controller");
    let state = Arc::new(Ctx {
        client,
        pods,
        nodes,
        expectations,
        backoff: KeyBackoff::default(),
        recorder,
    });
    let mut stream = controller
        .watches_stream(pod_stream, |pod: Pod| ds_of_pod(&pod))
        // Any node change may change where daemons belong.
        .watches_stream(node_stream, move |_node: Node| {
            daemonsets
                .state()
                .iter()
                .map(|d| ObjectRef::from_obj(d.as_ref()))
                .collect::<Vec<_>>()
        })
        .with_config(
            ControllerConfig::default().concurrency(ctx.options.concurrent_daemonset_syncs),
        )
        .run(reconcile, error_policy, state)
        .boxed();
    while let Some(result) = stream.next().await {
        if let Err(err) = result {
            tracing::debug!("daemonset controller: {err}");
        }
    }
    Ok(())
}

async fn reconcile(ds: Arc<DaemonSet>, ctx: Arc<Ctx>) -> crate::util::Result<Action> {
    let key = key_of(&ds.metadata);
    let requeue = sync::sync_daemonset(&ds, &ctx).await?;
    ctx.backoff.forget(&key);
    Ok(match requeue {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

fn error_policy(ds: Arc<DaemonSet>, err: &crate::util::Error, ctx: Arc<Ctx>) -> Action {
    let key = format!("{}/{}", ds.namespace().unwrap_or_default(), ds.name_any());
    tracing::warn!(daemonset = %key, "sync failed: {err}");
    Action::requeue(ctx.backoff.next_delay(&key).max(Duration::from_millis(5)))
}
