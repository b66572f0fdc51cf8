//! One CronJob sync: reconcile status.active with the child jobs, start what is
//! due, prune history, and say when the next start is due.

use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::json;

use super::schedule::{self, Decision, Inputs};
use super::{Ctx, SCHEDULED_TIMESTAMP};
use crate::util::events::{NORMAL, WARNING};
use crate::util::owner::{is_controlled_by, new_controller_ref};
use crate::util::{is_not_found, is_status, key_of, ApiContext, Result};

fn finished_condition(job: &Job) -> Option<&str> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .map(|c| c.type_.as_str())
}

fn to_chrono(t: &Time) -> DateTime<Utc> {
    schedule::utc(t.0.as_second())
}

fn to_time(t: DateTime<Utc>) -> Option<Time> {
    k8s_openapi::jiff::Timestamp::from_second(t.timestamp())
        .ok()
        .map(Time)
}

fn job_ref(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        ..Default::default()
    }
}

/// A Job from the template (upstream `getJobFromTemplate2`).
pub fn job_from_template(
    cj: &CronJob,
    scheduled: DateTime<Utc>,
    sched: &schedule::Schedule,
) -> Job {
    let template = cj
        .spec
        .as_ref()
        .map(|s| s.job_template.clone())
        .unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    let mut annotations = tmeta.annotations.unwrap_or_default();
    annotations.insert(SCHEDULED_TIMESTAMP.into(), sched.format(scheduled));
    Job {
        metadata: ObjectMeta {
            name: Some(schedule::job_name(&cj.name_any(), scheduled)),
            namespace: cj.namespace(),
            labels: tmeta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![new_controller_ref(cj)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

pub async fn sync_cronjob(cj: &CronJob, ctx: &Ctx, now: DateTime<Utc>) -> Result<Option<Duration>> {
    let ns = cj.namespace().unwrap_or_default();
    let key = key_of(&cj.metadata);
    let uid = cj.metadata.uid.clone().unwrap_or_default();
    let children: Vec<Job> = ctx
        .jobs
        .state()
        .iter()
        .filter(|j| {
            j.metadata.namespace.as_deref() == Some(ns.as_str())
                && is_controlled_by(&j.metadata, &uid)
        })
        .map(|j| j.as_ref().clone())
        .collect();
    let old = cj.status.clone().unwrap_or_default();
    let mut active: Vec<ObjectReference> = old.active.clone().unwrap_or_default();
    for j in &children {
        if let Some(condition) =
            finished_condition(j).filter(|_| active.iter().any(|r| r.uid == j.metadata.uid))
        {
            ctx.recorder.event(
                cj,
                NORMAL,
                "SawCompletedJob",
                format!(
                    "Saw completed job: {}, condition: {condition}",
                    j.name_any()
                ),
            );
        }
    }
    active.retain(|r| {
        children
            .iter()
            .any(|j| j.metadata.uid == r.uid && finished_condition(j).is_none())
    });
    for j in &children {
        if finished_condition(j).is_none() && !active.iter().any(|r| r.uid == j.metadata.uid) {
            active.push(job_ref(j));
        }
    }
    let mut last_successful = old.last_successful_time.as_ref().map(to_chrono);
    for j in &children {
        if finished_condition(j) == Some("Complete") {
            if let Some(done) = j
                .status
                .as_ref()
                .and_then(|s| s.completion_time.as_ref())
                .map(to_chrono)
            {
                last_successful = Some(last_successful.map_or(done, |t| t.max(done)));
            }
        }
    }
    let mut last_schedule = old.last_schedule_time.as_ref().map(to_chrono);
    let spec = cj.spec.clone().unwrap_or_default();
    let mut requeue = None;
    let mut start_result = Ok(());

    if cj.metadata.deletion_timestamp.is_none() {
        match schedule::parse(&spec.schedule, spec.time_zone.as_deref()) {
            Err(err) => tracing::warn!(cronjob = %key, "not scheduling: {err}"),
            Ok(cron) => {
                let earliest = last_schedule
                    .or_else(|| cj.metadata.creation_timestamp.as_ref().map(to_chrono))
                    .unwrap_or(now);
                let exists = |t: DateTime<Utc>| {
                    let name = schedule::job_name(&cj.name_any(), t);
                    children
                        .iter()
                        .any(|j| j.metadata.name.as_deref() == Some(name.as_str()))
                };
                let inputs = Inputs {
                    cron: &cron,
                    earliest,
                    starting_deadline_seconds: spec.starting_deadline_seconds,
                    concurrency_policy: spec.concurrency_policy.as_deref().unwrap_or("Allow"),
                    suspended: spec.suspend == Some(true),
                    active_jobs: active.len(),
                    exists: &exists,
                };
                let (_, missed) = schedule::most_recent(&cron, earliest, now);
                if missed > schedule::TOO_MANY_MISSED {
                    tracing::warn!(cronjob = %key, "too many missed start times (> {}); check clock skew", schedule::TOO_MANY_MISSED);
                    let message = format!("too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds or check clock skew");
                    ctx.recorder
                        .event(cj, WARNING, "TooManyMissedTimes", message);
                }
                match schedule::decide(&inputs, now) {
                    Decision::Wait => {}
                    Decision::Started { scheduled } => {
                        if last_schedule.is_none_or(|t| t < scheduled) {
                            last_schedule = Some(scheduled);
                        }
                    }
                    Decision::Forbidden { scheduled } => {
                        tracing::info!(cronjob = %key, %scheduled, "not starting job: concurrencyPolicy Forbid and a job is still running");
                        ctx.recorder.event(cj, NORMAL, "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid");
                    }
                    Decision::Start {
                        scheduled,
                        replace_active,
                    } => {
                        if replace_active {
                            start_result = delete_active(cj, ctx, &key, &mut active).await;
                        }
                        if start_result.is_ok() {
                            start_result =
                                start_job(cj, ctx, &key, scheduled, &cron, &mut active).await;
                            if start_result.is_ok() {
                                last_schedule = Some(scheduled);
                            }
                        }
                    }
                }
                if let Some(next) = cron.next_after(now) {
                    let wait =
                        (next - now).to_std().unwrap_or_default() + Duration::from_millis(100);
                    requeue = Some(wait);
                }
            }
        }
    }

    let status = json!({
        "active": if active.is_empty() { serde_json::Value::Null } else { json!(active) },
        "lastScheduleTime": last_schedule.and_then(to_time),
        "lastSuccessfulTime": last_successful.and_then(to_time),
    });
    let old_json = json!({
        "active": old.active.filter(|a| !a.is_empty()),
        "lastScheduleTime": old.last_schedule_time,
        "lastSuccessfulTime": old.last_successful_time,
    });
    if status != old_json {
        // One write for active + lastScheduleTime, conditional on the version this
        // sync read (upstream's UpdateStatus): a sync on a cached CronJob older than
        // the last write (e.g. woken by its own new Job before the status event
        // arrived) must not put the previous lastScheduleTime back.
        let api: Api<CronJob> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = json!({ "metadata": { "resourceVersion": cj.metadata.resource_version }, "status": status });
        match api
            .patch_status(
                &cj.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => return Ok(None),
            Err(err) if is_status(&err, 409) && start_result.is_ok() => {
                tracing::debug!(cronjob = %key, "status changed since read; syncing again");
                return Ok(Some(Duration::from_millis(50)));
            }
            Err(err) => return Err(err).ctx(|| format!("updating status of cronjob {key}")),
        }
    }
    start_result?;
    cleanup_history(cj, ctx, &children).await?;
    Ok(requeue)
}

async fn start_job(
    cj: &CronJob,
    ctx: &Ctx,
    key: &str,
    scheduled: DateTime<Utc>,
    sched: &schedule::Schedule,
    active: &mut Vec<ObjectReference>,
) -> Result<()> {
    let job = job_from_template(cj, scheduled, sched);
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &cj.namespace().unwrap_or_default());
    match api.create(&PostParams::default(), &job).await {
        Ok(created) => {
            tracing::info!(cronjob = %key, job = %created.name_any(), %scheduled, "created job");
            ctx.recorder.event(
                cj,
                NORMAL,
                "SuccessfulCreate",
                format!("Created job {}", created.name_any()),
            );
            active.push(job_ref(&created));
            Ok(())
        }
        // Made by an earlier sync whose status write was lost: adopt the time.
        Err(err) if is_status(&err, 409) => Ok(()),
        Err(err) => {
            ctx.recorder.event(
                cj,
                WARNING,
                "FailedCreate",
                format!("Error creating job: {err}"),
            );
            Err(err).ctx(|| format!("creating job for cronjob {key}"))
        }
    }
}

async fn delete_job(cj: &CronJob, ctx: &Ctx, ns: &str, name: &str) -> Result<()> {
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {
            ctx.recorder.event(
                cj,
                NORMAL,
                "SuccessfulDelete",
                format!("Deleted job {name}"),
            );
            Ok(())
        }
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(err).ctx(|| format!("deleting job {ns}/{name}")),
    }
}

/// concurrencyPolicy Replace: the running jobs go (with their pods).
async fn delete_active(
    cj: &CronJob,
    ctx: &Ctx,
    key: &str,
    active: &mut Vec<ObjectReference>,
) -> Result<()> {
    for r in active.drain(..) {
        let (ns, name) = (r.namespace.unwrap_or_default(), r.name.unwrap_or_default());
        delete_job(cj, ctx, &ns, &name).await?;
        tracing::info!(cronjob = %key, job = %name, "deleted active job (Replace)");
    }
    Ok(())
}

/// Deletes the oldest finished jobs beyond successfulJobsHistoryLimit (3) and
/// failedJobsHistoryLimit (1), as upstream `cleanupFinishedJobs`.
async fn cleanup_history(cj: &CronJob, ctx: &Ctx, children: &[Job]) -> Result<()> {
    let spec = cj.spec.clone().unwrap_or_default();
    let ns = cj.namespace().unwrap_or_default();
    for (kind, limit) in [
        ("Complete", spec.successful_jobs_history_limit.unwrap_or(3)),
        ("Failed", spec.failed_jobs_history_limit.unwrap_or(1)),
    ] {
        let mut done: Vec<&Job> = children
            .iter()
            .filter(|j| {
                finished_condition(j) == Some(kind) && j.metadata.deletion_timestamp.is_none()
            })
            .collect();
        let limit = usize::try_from(limit.max(0)).unwrap_or(0);
        if done.len() <= limit {
            continue;
        }
        // Oldest first: by start time, then creation time (upstream `byJobStartTime`).
        done.sort_by_key(|j| {
            let start = j
                .status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0.as_second());
            (
                start.is_none(),
                start,
                j.metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0.as_second()),
                j.name_any(),
            )
        });
        for j in &done[..done.len() - limit] {
            delete_job(cj, ctx, &ns, &j.name_any()).await?;
            tracing::info!(cronjob = %key_of(&cj.metadata), job = %j.name_any(), "deleted finished job past history limit");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{CronJobSpec, JobTemplateSpec};

    #[test]
    fn jobs_from_template_are_named_annotated_and_owned() {
        let cj = CronJob {
            metadata: ObjectMeta {
                name: Some("hello".into()),
                namespace: Some("ns".into()),
                uid: Some("u".into()),
                ..Default::default()
            },
            spec: Some(CronJobSpec {
                schedule: "* * * * *".into(),
                job_template: JobTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some([("a".to_string(), "b".to_string())].into()),
                        ..Default::default()
                    }),
                    spec: None,
                },
                ..Default::default()
            }),
            status: None,
        };
        let job = job_from_template(
            &cj,
            schedule::utc(6_000),
            &schedule::parse("* * * * *", None).expect("parse"),
        );
        assert_eq!(job.metadata.name.as_deref(), Some("hello-100"));
        assert_eq!(
            job.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(SCHEDULED_TIMESTAMP))
                .map(String::as_str),
            Some("1970-01-01T01:40:00Z")
        );
        assert_eq!(
            job.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("a"))
                .map(String::as_str),
            Some("b")
        );
        let r = &job.metadata.owner_references.expect("refs")[0];
        assert_eq!(
            (r.kind.as_str(), r.uid.as_str(), r.controller),
            ("CronJob", "u", Some(true))
        );
    }
}
