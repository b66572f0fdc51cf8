//! TTL-after-finished controller (upstream `pkg/controller/ttlafterfinished`):
//! deletes finished Jobs (with their pods, foreground) `ttlSecondsAfterFinished`
//! after they completed or failed.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, Preconditions};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::watcher;
use kube::ResourceExt;

use super::logic;
use crate::context::ControllerContext;
use crate::util::backoff::KeyBackoff;
use crate::util::{is_not_found, is_status, key_of, ApiContext, Result};

struct Ctx {
    client: kube::Client,
    backoff: KeyBackoff,
}

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(run(ctx))
}

async fn run(ctx: ControllerContext) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let state = Arc::new(Ctx {
        client: client.clone(),
        backoff: KeyBackoff::default(),
    });
    let mut stream = Controller::new(Api::<Job>::all(client), watcher::Config::default())
        .with_config(
            ControllerConfig::default()
                .concurrency(ctx.options.concurrent_ttl_after_finished_syncs),
        )
        .run(reconcile, error_policy, state)
        .boxed();
    while let Some(result) = stream.next().await {
        if let Err(err) = result {
            tracing::debug!("ttl-after-finished controller: {err}");
        }
    }
    Ok(())
}

/// When the job finished: the Complete/Failed condition's transition time
/// (upstream `jobFinishTime`).
pub fn finish_time(job: &Job) -> Option<i64> {
    let c =
        logic::condition(job, logic::COMPLETE).or_else(|| logic::condition(job, logic::FAILED))?;
    c.last_transition_time.as_ref().map(|t| t.0.as_second())
}

/// Seconds until the job expires (<= 0: now); `None` when it never does.
pub fn time_left(job: &Job, now_secs: i64) -> Option<i64> {
    if job.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    Some(finish_time(job)? + i64::from(ttl) - now_secs)
}

async fn reconcile(job: Arc<Job>, ctx: Arc<Ctx>) -> Result<Action> {
    let key = key_of(&job.metadata);
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    let Some(left) = time_left(&job, now) else {
        return Ok(Action::await_change());
    };
    if left > 0 {
        return Ok(Action::requeue(Duration::from_secs(
            u64::try_from(left).unwrap_or(1),
        )));
    }
    // Check the live object: the TTL may have been changed since the cache saw it.
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
    let fresh = match api.get(&job.name_any()).await {
        Ok(j) => j,
        Err(err) if is_not_found(&err) => return Ok(Action::await_change()),
        Err(err) => return Err(err).ctx(|| format!("getting job {key}")),
    };
    match time_left(&fresh, now) {
        None => return Ok(Action::await_change()),
        Some(left) if left > 0 => {
            return Ok(Action::requeue(Duration::from_secs(
                u64::try_from(left).unwrap_or(1),
            )))
        }
        Some(_) => {}
    }
    let params = DeleteParams {
        propagation_policy: Some(kube::api::PropagationPolicy::Foreground),
        preconditions: Some(Preconditions {
            uid: fresh.metadata.uid.clone(),
            resource_version: fresh.metadata.resource_version.clone(),
        }),
        ..Default::default()
    };
    match api.delete(&fresh.name_any(), &params).await {
        Ok(_) => tracing::info!(job = %key, "deleted finished job past its TTL"),
        Err(err) if is_not_found(&err) || is_status(&err, 409) => {}
        Err(err) => return Err(err).ctx(|| format!("deleting job {key}")),
    }
    ctx.backoff.forget(&key);
    Ok(Action::await_change())
}

fn error_policy(job: Arc<Job>, err: &crate::util::Error, ctx: Arc<Ctx>) -> Action {
    let key = key_of(&job.metadata);
    tracing::warn!(job = %key, "ttl-after-finished failed: {err}");
    Action::requeue(ctx.backoff.next_delay(&key).max(Duration::from_millis(5)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobSpec, JobStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    #[test]
    fn expires_ttl_after_the_finish_condition() {
        let mut job = Job {
            spec: Some(JobSpec {
                ttl_seconds_after_finished: Some(30),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(time_left(&job, 100), None);
        let t = Time(Timestamp::from_second(100).expect("ts"));
        job.status = Some(JobStatus {
            conditions: Some(vec![logic::new_condition(logic::FAILED, "r", "m", &t)]),
            ..Default::default()
        });
        assert_eq!(time_left(&job, 110), Some(20));
        assert_eq!(time_left(&job, 140), Some(-10));
        job.spec.as_mut().expect("spec").ttl_seconds_after_finished = None;
        assert_eq!(time_left(&job, 140), None);
    }
}
