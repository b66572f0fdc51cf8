//! Job controller (upstream `pkg/controller/job`): runs pods until `completions`
//! succeed with at most `parallelism` at once (NonIndexed or Indexed), fails the
//! job past `backoffLimit` or `activeDeadlineSeconds`, and reports
//! active/ready/succeeded/failed, start and completion times and the
//! SuccessCriteriaMet/FailureTarget then Complete/Failed conditions.

mod logic;
mod podbackoff;
mod sync;
pub mod ttl;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::ResourceExt;

pub use logic::COMPLETION_INDEX;

use crate::context::ControllerContext;
use crate::util::backoff::KeyBackoff;
use crate::util::events::Recorder;
use crate::util::expectations::Expectations;
use crate::util::owner::controller_of;
use crate::util::{key_of, ownedpods};

pub(crate) struct Ctx {
    pub client: kube::Client,
    pub pods: Store<Pod>,
    pub expectations: Arc<Expectations>,
    pub backoff: KeyBackoff,
    pub pod_backoff: podbackoff::PodBackoff,
    pub recorder: Recorder,
}

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(run(ctx))
}

fn job_of_pod(pod: &Pod) -> Option<ObjectRef<Job>> {
    let r = controller_of(&pod.metadata).filter(|r| r.kind == "Job")?;
    Some(ObjectRef::new(&r.name).within(pod.metadata.namespace.as_deref().unwrap_or("")))
}

async fn run(ctx: ControllerContext) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let expectations = Arc::new(Expectations::new());
    let (pods, pod_stream) = ownedpods::spawn(client.clone(), "Job", expectations.clone()).await?;
    let controller = Controller::new(Api::<Job>::all(client.clone()), watcher::Config::default());
    let recorder = Recorder::new(client.clone(), "job-controller");
    let state = Arc::new(Ctx {
        client,
        pods,
        expectations,
        backoff: KeyBackoff::default(),
        pod_backoff: Default::default(),
        recorder,
    });
    let mut stream = controller
        .watches_stream(pod_stream, |pod: Pod| job_of_pod(&pod))
        .with_config(ControllerConfig::default().concurrency(ctx.options.concurrent_job_syncs))
        .run(reconcile, error_policy, state)
        .boxed();
    while let Some(result) = stream.next().await {
        if let Err(err) = result {
            tracing::debug!("job controller: {err}");
        }
    }
    Ok(())
}

async fn reconcile(job: Arc<Job>, ctx: Arc<Ctx>) -> crate::util::Result<Action> {
    let key = key_of(&job.metadata);
    let requeue = sync::sync_job(&job, &ctx).await?;
    ctx.backoff.forget(&key);
    Ok(match requeue {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

fn error_policy(job: Arc<Job>, err: &crate::util::Error, ctx: Arc<Ctx>) -> Action {
    let key = format!("{}/{}", job.namespace().unwrap_or_default(), job.name_any());
    tracing::warn!(job = %key, "sync failed: {err}");
    Action::requeue(ctx.backoff.next_delay(&key).max(Duration::from_millis(5)))
}
