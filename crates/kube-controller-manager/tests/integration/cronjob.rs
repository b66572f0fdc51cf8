//! CronJob tests that never wait for a minute boundary: a start is made due by
//! moving `status.lastScheduleTime` back, as if the controller had been down.

use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::common::{create_json, wait_for, Cluster};

const T: Duration = Duration::from_secs(30);
const CONTROLLERS: &str = "--controllers=cronjob";
/// Far enough back that a yearly schedule's last start (this New Year) is due.
const TWO_YEARS: i64 = 2 * 366 * 86_400;

fn job_template() -> serde_json::Value {
    json!({"metadata": {"labels": {"team": "batch"}}, "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}})
}

async fn create_cronjob(
    client: &Client,
    name: &str,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut spec = json!({"schedule": "* * * * *", "jobTemplate": job_template()});
    for (k, v) in extra.as_object().expect("object") {
        spec[k] = v.clone();
    }
    create_json(client, json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "namespace": "default"}, "spec": spec})).await
}

fn rfc3339(secs: i64) -> String {
    Timestamp::from_second(secs).expect("ts").to_string()
}

/// Pretends the last start was `ago` seconds back, so the latest minute is due now.
async fn last_scheduled_ago(client: &Client, name: &str, ago: i64) {
    let api: Api<CronJob> = Api::namespaced(client.clone(), "default");
    let t = rfc3339(Timestamp::now().as_second() - ago);
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": {"lastScheduleTime": t}})),
    )
    .await
    .expect("patch status");
}

/// A job owned by the cronjob, as if it had made it.
async fn owned_job(client: &Client, cj: &serde_json::Value, name: &str) {
    let owner = json!([{"apiVersion": "batch/v1", "kind": "CronJob", "name": cj["metadata"]["name"], "uid": cj["metadata"]["uid"], "controller": true}]);
    let mut job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "default", "ownerReferences": owner}});
    job["spec"] = job_template()["spec"].clone();
    create_json(client, job).await;
}

async fn finish_job(client: &Client, name: &str, condition: &str, started: i64) {
    let api: Api<Job> = Api::namespaced(client.clone(), "default");
    let (start, end) = (rfc3339(started), rfc3339(started + 1));
    let mut conditions = vec![];
    let mut status = json!({"startTime": start});
    if condition == "Complete" {
        conditions.push(json!({"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "lastTransitionTime": end}));
        conditions.push(json!({"type": "Complete", "status": "True", "reason": "CompletionsReached", "lastTransitionTime": end}));
        status["completionTime"] = json!(end);
        status["succeeded"] = json!(1);
    } else {
        conditions.push(json!({"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "lastTransitionTime": end}));
        conditions.push(json!({"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "lastTransitionTime": end}));
        status["failed"] = json!(1);
    }
    status["conditions"] = json!(conditions);
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": status})),
    )
    .await
    .expect("finish job");
}

async fn job_names(client: &Client) -> Vec<String> {
    let api: Api<Job> = Api::namespaced(client.clone(), "default");
    let mut names: Vec<String> = api
        .list(&Default::default())
        .await
        .expect("jobs")
        .items
        .iter()
        .filter(|j| j.metadata.deletion_timestamp.is_none())
        .map(|j| j.name_any())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn cronjob_starts_the_due_job_and_tracks_active_and_last_successful() {
    let cluster = Cluster::start(&[CONTROLLERS]);
    let client = cluster.client().await;
    // Created suspended, so no minute boundary can start a job before the test's
    // back-dated lastScheduleTime is in place; then resumed.
    let cj = create_cronjob(
        &client,
        "hello",
        json!({"startingDeadlineSeconds": 300, "suspend": true}),
    )
    .await;
    last_scheduled_ago(&client, "hello", 600).await;
    let api: Api<CronJob> = Api::namespaced(client.clone(), "default");
    api.patch(
        "hello",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"suspend": false}})),
    )
    .await
    .expect("resume");
    let status = wait_for("job started", T, || {
        let api = api.clone();
        async move {
            let s = api.get("hello").await.ok()?.status?;
            // The controller may report the new active job one status write before
            // its lastScheduleTime: wait until the back-dated (unaligned) time is gone.
            let aligned = s
                .last_schedule_time
                .as_ref()
                .is_some_and(|t| t.0.as_second() % 60 == 0);
            (aligned && s.active.as_ref().is_some_and(|a| a.len() == 1)).then_some(s)
        }
    })
    .await;
    let scheduled = status
        .last_schedule_time
        .expect("lastScheduleTime")
        .0
        .as_second();
    let now = Timestamp::now().as_second();
    assert_eq!(scheduled % 60, 0);
    assert!(
        scheduled <= now && scheduled > now - 120,
        "scheduled {scheduled}, now {now}"
    );
    let name = format!("hello-{}", scheduled / 60);
    let active = &status.active.expect("active")[0];
    assert_eq!(
        (active.kind.as_deref(), active.name.as_deref()),
        (Some("Job"), Some(name.as_str()))
    );
    let job = Api::<Job>::namespaced(client.clone(), "default")
        .get(&name)
        .await
        .expect("job");
    assert_eq!(
        job.annotations()
            .get("batch.kubernetes.io/cronjob-scheduled-timestamp"),
        Some(&rfc3339(scheduled))
    );
    assert_eq!(job.labels().get("team").map(String::as_str), Some("batch"));
    let r = &job.owner_references()[0];
    assert_eq!(
        (r.kind.as_str(), r.uid.as_str(), r.controller),
        (
            "CronJob",
            cj["metadata"]["uid"].as_str().expect("uid"),
            Some(true)
        )
    );

    finish_job(&client, &name, "Complete", now).await;
    wait_for("active cleared, lastSuccessfulTime set", T, || {
        let api = api.clone();
        async move {
            let s = api.get("hello").await.ok()?.status?;
            (s.active.unwrap_or_default().is_empty()
                && s.last_successful_time
                    .is_some_and(|t| t.0.as_second() == now + 1))
            .then_some(())
        }
    })
    .await;
    let out = cluster.kubectl(&["get", "cronjob", "hello", "--no-headers"]);
    out.assert_success();
    assert!(out.stdout.contains("* * * * *"), "{out}");
}

#[tokio::test]
async fn cronjob_prunes_history_and_applies_concurrency_policies() {
    let cluster = Cluster::start(&[CONTROLLERS]);
    let client = cluster.client().await;

    // History: keep the newest 2 successful and 1 failed job.
    let hist = create_cronjob(
        &client,
        "hist",
        json!({"schedule": "0 0 1 1 *", "successfulJobsHistoryLimit": 2}),
    )
    .await;
    let base = Timestamp::now().as_second() - 1000;
    for (i, name) in ["hist-ok-1", "hist-ok-2", "hist-ok-3", "hist-ok-4"]
        .iter()
        .enumerate()
    {
        owned_job(&client, &hist, name).await;
        finish_job(
            &client,
            name,
            "Complete",
            base + 10 * i64::try_from(i).expect("small"),
        )
        .await;
    }
    for (i, name) in ["hist-bad-1", "hist-bad-2"].iter().enumerate() {
        owned_job(&client, &hist, name).await;
        finish_job(
            &client,
            name,
            "Failed",
            base + 10 * i64::try_from(i).expect("small"),
        )
        .await;
    }
    wait_for("history pruned", T, || {
        let client = client.clone();
        async move {
            (job_names(&client).await == ["hist-bad-2", "hist-ok-3", "hist-ok-4"]).then_some(())
        }
    })
    .await;

    // Replace: a running job is deleted and the due one started (a yearly schedule
    // so no start falls due by itself during the test).
    let rep = create_cronjob(
        &client,
        "rep",
        json!({"concurrencyPolicy": "Replace", "schedule": "0 0 1 1 *"}),
    )
    .await;
    owned_job(&client, &rep, "rep-running").await;
    let api: Api<CronJob> = Api::namespaced(client.clone(), "default");
    wait_for("running job listed as active", T, || {
        let api = api.clone();
        async move {
            api.get("rep")
                .await
                .ok()?
                .status?
                .active?
                .iter()
                .any(|r| r.name.as_deref() == Some("rep-running"))
                .then_some(())
        }
    })
    .await;
    last_scheduled_ago(&client, "rep", TWO_YEARS).await;
    wait_for("replaced", T, || {
        let api = api.clone();
        let client = client.clone();
        async move {
            let active = api.get("rep").await.ok()?.status?.active?;
            let names = job_names(&client).await;
            let fresh = active.len() == 1
                && active[0]
                    .name
                    .as_deref()
                    .is_some_and(|n| n != "rep-running" && n.starts_with("rep-"));
            (fresh && !names.contains(&"rep-running".to_string())).then_some(())
        }
    })
    .await;

    // Forbid: with a job still running, the due start is skipped.
    let forbid = create_cronjob(
        &client,
        "forbid",
        json!({"concurrencyPolicy": "Forbid", "schedule": "0 0 1 1 *"}),
    )
    .await;
    owned_job(&client, &forbid, "forbid-running").await;
    wait_for("running job listed as active", T, || {
        let api = api.clone();
        async move {
            api.get("forbid")
                .await
                .ok()?
                .status?
                .active?
                .iter()
                .any(|r| r.name.as_deref() == Some("forbid-running"))
                .then_some(())
        }
    })
    .await;
    last_scheduled_ago(&client, "forbid", TWO_YEARS).await;
    wait_for("forbid logged", T, || {
        let log = cluster.kcm.log();
        async move {
            log.lines()
                .any(|l| l.contains("default/forbid") && l.contains("concurrencyPolicy Forbid"))
                .then_some(())
        }
    })
    .await;
    assert_eq!(
        job_names(&client)
            .await
            .iter()
            .filter(|n| n.starts_with("forbid-"))
            .count(),
        1
    );
}
