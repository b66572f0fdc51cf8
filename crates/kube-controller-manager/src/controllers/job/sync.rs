//! One Job sync: count pods, decide success/failure, start or stop pods, write status.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;

use super::logic::{self, Counts, COMPLETION_INDEX};
use super::Ctx;
use crate::util::events::{NORMAL, WARNING};
use crate::util::owner::{is_controlled_by, new_controller_ref};
use crate::util::pod::is_active;
use crate::util::podcontrol::{targets, PodControl};
use crate::util::{is_not_found, key_of, time, ApiContext, Error, Result};

/// A pod for the job, for completion `index` when the job is Indexed.
pub fn pod_for_job(job: &Job, index: Option<i32>) -> Option<Pod> {
    let template = job.spec.as_ref()?.template.clone();
    let tmeta = template.metadata.unwrap_or_default();
    let name = job.name_any();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let mut labels = tmeta.labels.unwrap_or_default();
    for (k, v) in [
        ("batch.kubernetes.io/controller-uid", &uid),
        ("controller-uid", &uid),
        ("batch.kubernetes.io/job-name", &name),
        ("job-name", &name),
    ] {
        labels.entry(k.to_string()).or_insert_with(|| v.clone());
    }
    let mut annotations = tmeta.annotations.unwrap_or_default();
    let mut spec = template.spec?;
    let base = if name.len() > 50 {
        &name[..50]
    } else {
        name.as_str()
    };
    let generate_name = match index {
        Some(i) => {
            labels.insert(COMPLETION_INDEX.into(), i.to_string());
            annotations.insert(COMPLETION_INDEX.into(), i.to_string());
            if spec.hostname.is_none() {
                spec.hostname = Some(format!("{base}-{i}"));
            }
            let env = EnvVar {
                name: "JOB_COMPLETION_INDEX".into(),
                value: None,
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        api_version: None,
                        field_path: format!("metadata.annotations['{COMPLETION_INDEX}']"),
                    }),
                    ..Default::default()
                }),
            };
            for c in spec
                .containers
                .iter_mut()
                .chain(spec.init_containers.iter_mut().flatten())
            {
                let envs = c.env.get_or_insert_with(Vec::new);
                if !envs.iter().any(|e| e.name == env.name) {
                    envs.push(env.clone());
                }
            }
            format!("{base}-{i}-")
        }
        None => format!("{base}-"),
    };
    Some(Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name),
            namespace: job.namespace(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![new_controller_ref(job)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    })
}

/// Syncs one job; returns when to look again (the active deadline), if ever.
pub async fn sync_job(job: &Arc<Job>, ctx: &Ctx) -> Result<Option<Duration>> {
    let ns = job.namespace().unwrap_or_default();
    let key = key_of(&job.metadata);
    if job.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    if logic::is_finished(job) {
        ctx.expectations.forget(&key);
        ctx.pod_backoff.forget(&key);
        return Ok(None);
    }
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let pods: Vec<Pod> = ctx
        .pods
        .state()
        .iter()
        .filter(|p| {
            p.metadata.namespace.as_deref() == Some(ns.as_str())
                && is_controlled_by(&p.metadata, &uid)
        })
        .map(|p| p.as_ref().clone())
        .collect();
    let now = time::now();
    let now_secs = now.0.as_second();
    let suspended = job.spec.as_ref().and_then(|s| s.suspend) == Some(true);
    let old_status = job.status.clone().unwrap_or_default();
    let mut status = old_status.clone();
    if status.start_time.is_none() && !suspended {
        status.start_time = Some(now.clone());
    }
    let mut conditions = status.conditions.clone().unwrap_or_default();
    let was_suspended = conditions
        .iter()
        .any(|c| c.type_ == logic::SUSPENDED && c.status == "True");
    if suspended && !was_suspended {
        logic::set_condition(
            &mut conditions,
            logic::SUSPENDED,
            "True",
            logic::REASON_SUSPENDED,
            logic::MSG_SUSPENDED,
            &now,
        );
        tracing::info!(job = %key, "job suspended");
        ctx.recorder
            .event(job.as_ref(), NORMAL, "Suspended", "Job suspended");
    } else if !suspended && was_suspended {
        logic::set_condition(
            &mut conditions,
            logic::SUSPENDED,
            "False",
            logic::REASON_RESUMED,
            logic::MSG_RESUMED,
            &now,
        );
        // The active deadline starts over.
        status.start_time = Some(now.clone());
        tracing::info!(job = %key, "job resumed");
        ctx.recorder
            .event(job.as_ref(), NORMAL, "Resumed", "Job resumed");
    }
    let mut view = job.as_ref().clone();
    view.status = Some(status.clone());
    let counts = logic::count(&view, &pods);
    let has = |conds: &[k8s_openapi::api::batch::v1::JobCondition], t: &str| {
        conds.iter().any(|c| c.type_ == t && c.status == "True")
    };

    // The terminal target, once decided, sticks (upstream 1.31+ interim conditions).
    let target: Option<(&str, String, String)> = if let Some(c) = conditions
        .iter()
        .find(|c| c.type_ == logic::FAILURE_TARGET && c.status == "True")
    {
        Some((
            logic::FAILED,
            c.reason.clone().unwrap_or_default(),
            c.message.clone().unwrap_or_default(),
        ))
    } else if let Some(c) = conditions
        .iter()
        .find(|c| c.type_ == logic::SUCCESS_CRITERIA_MET && c.status == "True")
    {
        Some((
            logic::COMPLETE,
            c.reason.clone().unwrap_or_default(),
            c.message.clone().unwrap_or_default(),
        ))
    } else if let Some((reason, message)) = logic::failure(&view, &counts, now_secs) {
        conditions.push(logic::new_condition(
            logic::FAILURE_TARGET,
            reason,
            message,
            &now,
        ));
        tracing::info!(job = %key, reason, "job failing");
        Some((logic::FAILED, reason.into(), message.into()))
    } else if logic::success_criteria_met(&view, &counts) {
        let (reason, message) = (
            logic::REASON_COMPLETIONS_REACHED,
            logic::MSG_COMPLETIONS_REACHED,
        );
        conditions.push(logic::new_condition(
            logic::SUCCESS_CRITERIA_MET,
            reason,
            message,
            &now,
        ));
        Some((logic::COMPLETE, reason.into(), message.into()))
    } else {
        None
    };

    let active: Vec<&Pod> = pods.iter().filter(|p| is_active(p)).collect();
    // Failed pods are replaced only after the pod-failure backoff.
    let backoff_secs = ctx.pod_backoff.remaining(&key, &pods, now_secs);
    let mut manage_result = Ok(());
    if target.is_some() || suspended {
        manage_result = delete_pods(job.as_ref(), ctx, &key, &active).await;
    } else if ctx.expectations.satisfied(&key) {
        manage_result = manage(&view, &counts, &active, ctx, &key, backoff_secs == 0).await;
    }

    let finished_now = match &target {
        Some((final_type, reason, message))
            if counts.active == 0 && counts.terminating == 0 && !has(&conditions, final_type) =>
        {
            conditions.push(logic::new_condition(final_type, reason, message, &now));
            if *final_type == logic::COMPLETE {
                status.completion_time = Some(now.clone());
            }
            tracing::info!(job = %key, condition = %final_type, "job finished");
            true
        }
        _ => false,
    };
    status.conditions = (!conditions.is_empty()).then_some(conditions);
    status.active = Some(counts.active);
    status.ready = Some(counts.ready);
    status.succeeded = Some(counts.succeeded);
    status.failed = Some(counts.failed);
    status.terminating = Some(counts.terminating);
    status.uncounted_terminated_pods = Some(UncountedTerminatedPods::default());
    if logic::is_indexed(job) {
        status.completed_indexes = Some(logic::format_indexes(&counts.succeeded_indexes));
    }
    if status != old_status {
        let api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = json!({ "status": status });
        match api
            .patch_status(
                &job.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => return Ok(None),
            Err(err) => return Err(err).ctx(|| format!("updating status of job {key}")),
        }
    }
    if let (true, Some((final_type, reason, message))) = (finished_now, &target) {
        // Upstream `recordJobFinished`.
        if *final_type == logic::COMPLETE {
            ctx.recorder
                .event(job.as_ref(), NORMAL, "Completed", "Job completed");
        } else {
            ctx.recorder
                .event(job.as_ref(), WARNING, reason, message.clone());
        }
    }
    manage_result?;
    if finished_now {
        return Ok(None);
    }
    let backoff = (target.is_none() && !suspended && backoff_secs > 0).then_some(backoff_secs);
    let next = match (logic::deadline_remaining(&view, now_secs), backoff) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(next.map(|s| Duration::from_secs(u64::try_from(s.max(1)).unwrap_or(1))))
}

/// Starts or stops pods so `wantActive` run (upstream `manageJob`).
async fn manage(
    job: &Job,
    counts: &Counts,
    active: &[&Pod],
    ctx: &Ctx,
    key: &str,
    may_create: bool,
) -> Result<()> {
    let want = logic::want_active(job, counts);
    if counts.active > want {
        let excess = usize::try_from(counts.active - want).unwrap_or(0);
        // Newest / least advanced first, as upstream's ActivePods ordering.
        let owned: Vec<Pod> = active.iter().map(|p| (*p).clone()).collect();
        let victims = crate::util::pod::pods_to_delete(&owned, excess);
        let refs: Vec<&Pod> = victims.iter().collect();
        return delete_pods(job, ctx, key, &refs).await;
    }
    let missing = usize::try_from(want - counts.active).unwrap_or(0);
    if missing == 0 || !may_create {
        return Ok(());
    }
    let templates: Vec<Pod> = if logic::is_indexed(job) {
        logic::pending_indexes(job, counts, missing)
            .into_iter()
            .filter_map(|i| pod_for_job(job, Some(i)))
            .collect()
    } else {
        (0..missing)
            .filter_map(|_| pod_for_job(job, None))
            .collect()
    };
    if templates.is_empty() {
        return Err(Error::Invalid {
            object: key.to_string(),
            message: "spec.template.spec is required".into(),
        });
    }
    let diff = templates.len();
    pod_control(job, ctx, key)
        .create(&templates)
        .await
        .ctx(|| format!("creating pods for job {key}"))?;
    tracing::info!(job = %key, created = diff, "created pods");
    Ok(())
}

fn pod_control<'a>(job: &'a Job, ctx: &'a Ctx, key: &'a str) -> PodControl<'a, Job> {
    PodControl {
        client: &ctx.client,
        expectations: &ctx.expectations,
        recorder: &ctx.recorder,
        key,
        owner: job,
    }
}

async fn delete_pods(job: &Job, ctx: &Ctx, key: &str, pods: &[&Pod]) -> Result<()> {
    if pods.is_empty() {
        return Ok(());
    }
    pod_control(job, ctx, key)
        .delete(&targets(pods.iter().copied()))
        .await
        .ctx(|| format!("deleting pods of job {key}"))?;
    tracing::info!(job = %key, deleted = pods.len(), "deleted pods");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::JobSpec;
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};

    fn job() -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some("pi".into()),
                namespace: Some("ns".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            spec: Some(JobSpec {
                completion_mode: Some("Indexed".into()),
                template: PodTemplateSpec {
                    metadata: None,
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "c".into(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            status: None,
        }
    }

    fn job_pod_labels(job: &Job) -> std::collections::BTreeMap<String, String> {
        pod_for_job(job, None)
            .and_then(|p| p.metadata.labels)
            .unwrap_or_default()
    }

    #[test]
    fn pods_carry_job_labels_owner_and_index() {
        let labels = job_pod_labels(&job());
        assert_eq!(
            labels
                .get("batch.kubernetes.io/controller-uid")
                .map(String::as_str),
            Some("u1")
        );
        assert_eq!(labels.get("job-name").map(String::as_str), Some("pi"));
        let p = pod_for_job(&job(), Some(2)).expect("pod");
        assert_eq!(p.metadata.generate_name.as_deref(), Some("pi-2-"));
        assert_eq!(
            p.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(COMPLETION_INDEX))
                .map(String::as_str),
            Some("2")
        );
        assert_eq!(
            p.metadata
                .labels
                .as_ref()
                .and_then(|a| a.get(COMPLETION_INDEX))
                .map(String::as_str),
            Some("2")
        );
        let spec = p.spec.expect("spec");
        assert_eq!(spec.hostname.as_deref(), Some("pi-2"));
        assert!(spec.containers[0]
            .env
            .as_ref()
            .expect("env")
            .iter()
            .any(|e| e.name == "JOB_COMPLETION_INDEX"));
        let r = &p.metadata.owner_references.expect("refs")[0];
        assert_eq!((r.kind.as_str(), r.controller), ("Job", Some(true)));
    }
}
