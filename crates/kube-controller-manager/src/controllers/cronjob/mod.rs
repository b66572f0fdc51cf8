//! CronJob controller (upstream `pkg/controller/cronjob`, v2): starts Jobs named
//! `<cronjob>-<minutes since epoch>` on a 5-field schedule, honours suspend,
//! startingDeadlineSeconds and the Allow/Forbid/Replace concurrency policies,
//! tracks status.active/lastScheduleTime/lastSuccessfulTime and prunes finished
//! jobs past the history limits.

pub mod schedule;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::api::Api;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;

use crate::context::ControllerContext;
use crate::util::backoff::KeyBackoff;
use crate::util::events::Recorder;
use crate::util::owner::controller_of;
use crate::util::{informer, key_of};

/// The annotation on each Job with the time it was scheduled for (RFC 3339).
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

pub(crate) struct Ctx {
    pub client: kube::Client,
    pub jobs: Store<Job>,
    pub backoff: KeyBackoff,
    pub recorder: Recorder,
}

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(run(ctx))
}

fn cronjob_of(job: &Job) -> Option<ObjectRef<CronJob>> {
    let r = controller_of(&job.metadata).filter(|r| r.kind == "CronJob")?;
    Some(ObjectRef::new(&r.name).within(job.metadata.namespace.as_deref().unwrap_or("")))
}

async fn run(ctx: ControllerContext) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let (jobs, job_stream) = informer::spawn(
        watcher(Api::<Job>::all(client.clone()), watcher::Config::default()).default_backoff(),
    );
    jobs.wait_until_ready().await?;
    let controller = Controller::new(
        Api::<CronJob>::all(client.clone()),
        watcher::Config::default(),
    );
    let recorder = Recorder::new(client.clone(), "cronjob-controller");
    let state = Arc::new(Ctx {
        client,
        jobs,
        backoff: KeyBackoff::default(),
        recorder,
    });
    let mut stream = controller
        .watches_stream(job_stream, |job: Job| cronjob_of(&job))
        .with_config(ControllerConfig::default().concurrency(ctx.options.concurrent_cron_job_syncs))
        .run(reconcile, error_policy, state)
        .boxed();
    while let Some(result) = stream.next().await {
        if let Err(err) = result {
            tracing::debug!("cronjob controller: {err}");
        }
    }
    Ok(())
}

async fn reconcile(cj: Arc<CronJob>, ctx: Arc<Ctx>) -> crate::util::Result<Action> {
    let key = key_of(&cj.metadata);
    let requeue = sync::sync_cronjob(&cj, &ctx, chrono::Utc::now()).await?;
    ctx.backoff.forget(&key);
    Ok(match requeue {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

fn error_policy(cj: Arc<CronJob>, err: &crate::util::Error, ctx: Arc<Ctx>) -> Action {
    let key = format!("{}/{}", cj.namespace().unwrap_or_default(), cj.name_any());
    tracing::warn!(cronjob = %key, "sync failed: {err}");
    Action::requeue(ctx.backoff.next_delay(&key).max(Duration::from_millis(5)))
}
