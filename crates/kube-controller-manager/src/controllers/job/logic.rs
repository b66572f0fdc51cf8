//! The pure decisions of one Job sync (upstream `syncJob`, `manageJob`,
//! `pastBackoffLimitOnFailure`, `pastActiveDeadline`, indexed-job helpers).

use std::collections::BTreeSet;

use k8s_openapi::api::batch::v1::{Job, JobCondition};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::util::pod::{is_active, is_ready, phase};

pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
pub const DEFAULT_BACKOFF_LIMIT: i32 = 6;

/// Condition types and reasons, as upstream's `batch` API constants.
pub const COMPLETE: &str = "Complete";
pub const FAILED: &str = "Failed";
pub const SUCCESS_CRITERIA_MET: &str = "SuccessCriteriaMet";
pub const FAILURE_TARGET: &str = "FailureTarget";
pub const REASON_COMPLETIONS_REACHED: &str = "CompletionsReached";
pub const REASON_BACKOFF_LIMIT: &str = "BackoffLimitExceeded";
pub const REASON_DEADLINE: &str = "DeadlineExceeded";
pub const MSG_COMPLETIONS_REACHED: &str = "Reached expected number of succeeded pods";
pub const MSG_BACKOFF_LIMIT: &str = "Job has reached the specified backoff limit";
pub const MSG_DEADLINE: &str = "Job was active longer than specified deadline";
pub const SUSPENDED: &str = "Suspended";
pub const REASON_SUSPENDED: &str = "JobSuspended";
pub const MSG_SUSPENDED: &str = "Job suspended";
pub const REASON_RESUMED: &str = "JobResumed";
pub const MSG_RESUMED: &str = "Job resumed";

/// What the job's pods add up to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub active: i32,
    pub ready: i32,
    pub succeeded: i32,
    pub failed: i32,
    /// Pods being deleted that have not finished.
    pub terminating: i32,
    /// Completion indexes of succeeded pods (Indexed jobs).
    pub succeeded_indexes: BTreeSet<i32>,
    /// Completion indexes of active pods (Indexed jobs).
    pub active_indexes: BTreeSet<i32>,
}

fn n(count: usize) -> i32 {
    i32::try_from(count).unwrap_or(i32::MAX)
}

/// The completion index a pod carries (annotation, else label).
pub fn pod_index(pod: &Pod) -> Option<i32> {
    let meta = &pod.metadata;
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(COMPLETION_INDEX))
        .or_else(|| meta.labels.as_ref().and_then(|l| l.get(COMPLETION_INDEX)))
        .and_then(|v| v.parse().ok())
}

pub fn is_indexed(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed")
}

pub fn completions(job: &Job) -> Option<i32> {
    job.spec.as_ref().and_then(|s| s.completions)
}

pub fn parallelism(job: &Job) -> i32 {
    job.spec
        .as_ref()
        .and_then(|s| s.parallelism)
        .unwrap_or(1)
        .max(0)
}

pub fn backoff_limit(job: &Job) -> i32 {
    job.spec
        .as_ref()
        .and_then(|s| s.backoff_limit)
        .unwrap_or(DEFAULT_BACKOFF_LIMIT)
}

/// Counts the job's pods; `prior` are the counts already recorded in status (pods
/// may have been removed since), so counts never go down.
pub fn count(job: &Job, pods: &[Pod]) -> Counts {
    let indexed = is_indexed(job);
    let total = completions(job).unwrap_or(0);
    let valid = |i: i32| (0..total).contains(&i);
    let mut c = Counts::default();
    let mut succeeded = 0;
    for p in pods {
        match phase(p) {
            "Succeeded" => {
                succeeded += 1;
                if indexed {
                    if let Some(i) = pod_index(p).filter(|i| valid(*i)) {
                        c.succeeded_indexes.insert(i);
                    }
                }
            }
            "Failed" => c.failed += 1,
            _ if p.metadata.deletion_timestamp.is_some() => c.terminating += 1,
            _ => {}
        }
        if is_active(p) {
            c.active += 1;
            if is_ready(p) {
                c.ready += 1;
            }
            if indexed {
                if let Some(i) = pod_index(p) {
                    c.active_indexes.insert(i);
                }
            }
        }
    }
    c.succeeded = if indexed {
        n(c.succeeded_indexes.len())
    } else {
        succeeded
    };
    let prior = job.status.clone().unwrap_or_default();
    c.succeeded = c.succeeded.max(prior.succeeded.unwrap_or(0));
    c.failed = c.failed.max(prior.failed.unwrap_or(0));
    c
}

/// How many pods should be running now (upstream `manageJob`'s `wantActive`).
pub fn want_active(job: &Job, c: &Counts) -> i32 {
    let parallelism = parallelism(job);
    match completions(job) {
        // Work-queue jobs: once one pod succeeded, no new pods start.
        None if c.succeeded > 0 => c.active.min(parallelism),
        None => parallelism,
        Some(total) => parallelism.min((total - c.succeeded).max(0)),
    }
}

/// Indexes to start pods for: not succeeded, not running, lowest first.
pub fn pending_indexes(job: &Job, c: &Counts, want: usize) -> Vec<i32> {
    let total = completions(job).unwrap_or(0);
    (0..total)
        .filter(|i| !c.succeeded_indexes.contains(i) && !c.active_indexes.contains(i))
        .take(want)
        .collect()
}

/// `status.completedIndexes` form: `1,3-5,7`.
pub fn format_indexes(indexes: &BTreeSet<i32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = indexes.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

/// Whether the job's work is done (upstream: succeeded reached completions, or for
/// work-queue jobs one success and nothing left running).
pub fn success_criteria_met(job: &Job, c: &Counts) -> bool {
    match completions(job) {
        Some(total) => c.succeeded >= total,
        None => c.succeeded > 0 && c.active == 0,
    }
}

/// Why the job must fail, if it must (backoff limit first, then the deadline).
pub fn failure(job: &Job, c: &Counts, now_secs: i64) -> Option<(&'static str, &'static str)> {
    if c.failed > backoff_limit(job) {
        return Some((REASON_BACKOFF_LIMIT, MSG_BACKOFF_LIMIT));
    }
    if let Some(remaining) = deadline_remaining(job, now_secs) {
        if remaining <= 0 {
            return Some((REASON_DEADLINE, MSG_DEADLINE));
        }
    }
    None
}

/// Seconds left before `activeDeadlineSeconds` runs out, counted from startTime.
/// A suspended job's deadline does not run (upstream `pastActiveDeadline`).
pub fn deadline_remaining(job: &Job, now_secs: i64) -> Option<i64> {
    if job.spec.as_ref()?.suspend == Some(true) {
        return None;
    }
    let deadline = job.spec.as_ref()?.active_deadline_seconds?;
    let start = job.status.as_ref()?.start_time.as_ref()?;
    Some(start.0.as_second() + deadline - now_secs)
}

pub fn condition<'a>(job: &'a Job, type_: &str) -> Option<&'a JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
}

/// A finished job (Complete or Failed) is never touched again.
pub fn is_finished(job: &Job) -> bool {
    condition(job, COMPLETE).is_some() || condition(job, FAILED).is_some()
}

/// A new True condition.
pub fn new_condition(type_: &str, reason: &str, message: &str, now: &Time) -> JobCondition {
    JobCondition {
        type_: type_.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    }
}

/// Sets a condition's status, moving its transition time only when the status
/// changes (upstream `ensureJobConditionStatus`).
pub fn set_condition(
    conditions: &mut Vec<JobCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &Time,
) {
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) if c.status == status => {}
        Some(c) => {
            c.status = status.into();
            c.reason = Some(reason.into());
            c.message = Some(message.into());
            c.last_probe_time = Some(now.clone());
            c.last_transition_time = Some(now.clone());
        }
        None => {
            let mut c = new_condition(type_, reason, message, now);
            c.status = status.into();
            conditions.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobSpec, JobStatus};
    use k8s_openapi::api::core::v1::PodStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::jiff::Timestamp;

    fn job(completions: Option<i32>, parallelism: i32) -> Job {
        Job {
            spec: Some(JobSpec {
                completions,
                parallelism: Some(parallelism),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod(phase: &str, index: Option<i32>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                annotations: index.map(|i| [(COMPLETION_INDEX.to_string(), i.to_string())].into()),
                ..Default::default()
            },
            status: Some(PodStatus {
                phase: Some(phase.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn want_active_is_parallelism_capped_by_remaining_completions() {
        let j = job(Some(5), 2);
        let c = count(
            &j,
            &[
                pod("Succeeded", None),
                pod("Succeeded", None),
                pod("Succeeded", None),
                pod("Running", None),
            ],
        );
        assert_eq!((c.succeeded, c.active), (3, 1));
        assert_eq!(want_active(&j, &c), 2);
        let c = count(&j, &vec![pod("Succeeded", None); 4]);
        assert_eq!(want_active(&j, &c), 1);
        assert!(!success_criteria_met(&j, &c));
        let c = count(&j, &vec![pod("Succeeded", None); 5]);
        assert_eq!(want_active(&j, &c), 0);
        assert!(success_criteria_met(&j, &c));
        // Work queue: after a success, no new pods; done when none run.
        let wq = job(None, 3);
        let c = count(&wq, &[pod("Succeeded", None), pod("Running", None)]);
        assert_eq!(want_active(&wq, &c), 1);
        assert!(!success_criteria_met(&wq, &c));
        assert_eq!(want_active(&wq, &count(&wq, &[])), 3);
    }

    #[test]
    fn counts_never_go_below_recorded_status() {
        let mut j = job(Some(3), 1);
        j.status = Some(JobStatus {
            succeeded: Some(2),
            failed: Some(1),
            ..Default::default()
        });
        let c = count(&j, &[pod("Succeeded", None)]);
        assert_eq!((c.succeeded, c.failed), (2, 1));
    }

    #[test]
    fn indexed_jobs_track_indexes() {
        let mut j = job(Some(6), 3);
        j.spec.as_mut().expect("spec").completion_mode = Some("Indexed".into());
        let c = count(
            &j,
            &[
                pod("Succeeded", Some(0)),
                pod("Succeeded", Some(0)),
                pod("Succeeded", Some(2)),
                pod("Running", Some(1)),
            ],
        );
        assert_eq!(c.succeeded, 2);
        assert_eq!(pending_indexes(&j, &c, 2), [3, 4]);
        let all: BTreeSet<i32> = [0, 1, 2, 4, 6, 7].into();
        assert_eq!(format_indexes(&all), "0-2,4,6-7");
        assert_eq!(format_indexes(&BTreeSet::new()), "");
    }

    #[test]
    fn backoff_limit_then_deadline() {
        let mut j = job(Some(1), 1);
        j.spec.as_mut().expect("spec").backoff_limit = Some(1);
        j.spec.as_mut().expect("spec").active_deadline_seconds = Some(10);
        j.status = Some(JobStatus {
            start_time: Some(Time(Timestamp::from_second(100).expect("ts"))),
            ..Default::default()
        });
        let one_failed = count(&j, &[pod("Failed", None)]);
        assert_eq!(failure(&j, &one_failed, 105), None);
        assert_eq!(deadline_remaining(&j, 105), Some(5));
        assert_eq!(
            failure(&j, &one_failed, 110),
            Some((REASON_DEADLINE, MSG_DEADLINE))
        );
        let two_failed = count(&j, &[pod("Failed", None), pod("Failed", None)]);
        assert_eq!(
            failure(&j, &two_failed, 105),
            Some((REASON_BACKOFF_LIMIT, MSG_BACKOFF_LIMIT))
        );
    }
}
