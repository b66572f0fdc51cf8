use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::common::{create_json, live_pods, wait_default_sa, wait_for, Cluster};

const T: Duration = Duration::from_secs(30);

pub fn job_json(name: &str, spec: serde_json::Value) -> serde_json::Value {
    let mut spec = spec;
    spec["template"] = json!({"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}});
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

/// Sets a pod's phase through `pods/status`, as its kubelet would when it ends.
pub async fn set_phase(client: &Client, name: &str, phase: &str) {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let patch = json!({"status": {"phase": phase}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch pod phase");
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Pods of a job that have not finished.
async fn running(client: &Client, job: &str) -> Vec<Pod> {
    live_pods(client, "default", &format!("job-name={job}"))
        .await
        .into_iter()
        .filter(|p| phase(p) != "Succeeded" && phase(p) != "Failed")
        .collect()
}

async fn wait_running(client: &Client, job: &str, n: usize) -> Vec<Pod> {
    wait_for(&format!("{n} running pods of {job}"), T, || async move {
        let pods = running(client, job).await;
        (pods.len() == n).then_some(pods)
    })
    .await
}

async fn wait_condition(client: &Client, job: &str, type_: &str) -> Job {
    let api: Api<Job> = Api::namespaced(client.clone(), "default");
    wait_for(&format!("{job} {type_}"), T, || {
        let api = api.clone();
        async move {
            let j = api.get(job).await.ok()?;
            let has = j
                .status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .any(|c| c.type_ == type_ && c.status == "True");
            has.then_some(j)
        }
    })
    .await
}

fn condition_reason(job: &Job, type_: &str) -> Option<String> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)?
        .reason
        .clone()
}

#[tokio::test]
async fn job_runs_completions_with_parallelism_and_kubectl_wait_sees_complete() {
    let cluster = Cluster::start(&[]);
    let client = cluster.client().await;
    wait_default_sa(&client, "default").await;
    let job = create_json(
        &client,
        job_json("pi", json!({"completions": 5, "parallelism": 2})),
    )
    .await;
    let uid = job["metadata"]["uid"].as_str().expect("uid").to_string();

    // Five completions, two at a time: 2, 2, 1 pods run; never more than two.
    for expected in [2, 2, 1] {
        let pods = wait_running(&client, "pi", expected).await;
        for p in &pods {
            let labels = p.labels();
            assert_eq!(labels.get("batch.kubernetes.io/controller-uid"), Some(&uid));
            assert_eq!(labels.get("controller-uid"), Some(&uid));
            assert_eq!(
                labels
                    .get("batch.kubernetes.io/job-name")
                    .map(String::as_str),
                Some("pi")
            );
            let r = &p.owner_references()[0];
            assert_eq!(
                (r.kind.as_str(), r.uid.as_str(), r.controller),
                ("Job", uid.as_str(), Some(true))
            );
        }
        let api: Api<Job> = Api::namespaced(client.clone(), "default");
        let want = i32::try_from(expected).expect("small");
        wait_for("status.active", T, || {
            let api = api.clone();
            async move { (api.get("pi").await.ok()?.status?.active == Some(want)).then_some(()) }
        })
        .await;
        for p in &pods {
            set_phase(&client, &p.name_any(), "Succeeded").await;
        }
    }

    let out = cluster.kubectl(&[
        "wait",
        "--for=condition=complete",
        "job/pi",
        "--timeout=30s",
    ]);
    out.assert_success();
    assert!(out.stdout.contains("job.batch/pi condition met"), "{out}");
    let job = wait_condition(&client, "pi", "Complete").await;
    let status = job.status.clone().expect("status");
    assert_eq!(
        (status.succeeded, status.failed, status.active),
        (Some(5), Some(0), Some(0))
    );
    assert!(status.start_time.is_some() && status.completion_time.is_some());
    assert_eq!(
        condition_reason(&job, "SuccessCriteriaMet").as_deref(),
        Some("CompletionsReached")
    );
    assert_eq!(
        condition_reason(&job, "Complete").as_deref(),
        Some("CompletionsReached")
    );
    assert_eq!(live_pods(&client, "default", "job-name=pi").await.len(), 5);
    // Nothing more is started.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(running(&client, "pi").await.is_empty());
    let out = cluster.kubectl(&["get", "job", "pi", "--no-headers"]);
    assert!(out.stdout.contains("5/5"), "{out}");
}

#[tokio::test]
async fn job_fails_past_backoff_limit_and_active_deadline() {
    let cluster = Cluster::start(&[]);
    let client = cluster.client().await;
    wait_default_sa(&client, "default").await;

    // backoffLimit 1: the second failed pod fails the job; the replacement for the
    // first comes only after the 10 s pod-failure backoff.
    create_json(&client, job_json("flaky", json!({"backoffLimit": 1}))).await;
    let first = wait_running(&client, "flaky", 1).await;
    let failed_at = k8s_openapi::jiff::Timestamp::now().as_second();
    set_phase(&client, &first[0].name_any(), "Failed").await;
    let second = wait_running(&client, "flaky", 1).await;
    let created = second[0]
        .metadata
        .creation_timestamp
        .as_ref()
        .expect("created")
        .0
        .as_second();
    assert!(
        created >= failed_at + 9,
        "replacement after {}s",
        created - failed_at
    );
    set_phase(&client, &second[0].name_any(), "Failed").await;
    let job = wait_condition(&client, "flaky", "Failed").await;
    assert_eq!(
        condition_reason(&job, "FailureTarget").as_deref(),
        Some("BackoffLimitExceeded")
    );
    assert_eq!(
        condition_reason(&job, "Failed").as_deref(),
        Some("BackoffLimitExceeded")
    );
    let status = job.status.expect("status");
    assert_eq!((status.failed, status.active), (Some(2), Some(0)));
    assert!(status.completion_time.is_none());
    assert!(running(&client, "flaky").await.is_empty());

    // activeDeadlineSeconds: running pods are stopped and the job fails.
    create_json(
        &client,
        job_json(
            "slow",
            json!({"parallelism": 2, "completions": 4, "activeDeadlineSeconds": 3}),
        ),
    )
    .await;
    wait_running(&client, "slow", 2).await;
    let job = wait_condition(&client, "slow", "Failed").await;
    assert_eq!(
        condition_reason(&job, "Failed").as_deref(),
        Some("DeadlineExceeded")
    );
    assert!(live_pods(&client, "default", "job-name=slow")
        .await
        .is_empty());
    let out = cluster.kubectl(&[
        "wait",
        "--for=condition=failed",
        "job/slow",
        "--timeout=10s",
    ]);
    out.assert_success();
}

#[tokio::test]
async fn indexed_job_runs_each_index_once() {
    let cluster = Cluster::start(&[]);
    let client = cluster.client().await;
    wait_default_sa(&client, "default").await;
    create_json(
        &client,
        job_json(
            "idx",
            json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed"}),
        ),
    )
    .await;
    let pods = wait_running(&client, "idx", 3).await;
    let mut indexes: Vec<String> = pods
        .iter()
        .map(|p| {
            p.annotations()
                .get("batch.kubernetes.io/job-completion-index")
                .cloned()
                .expect("index annotation")
        })
        .collect();
    indexes.sort();
    assert_eq!(indexes, ["0", "1", "2"]);
    // Index 1 fails once and is retried under the same index.
    let one = pods
        .iter()
        .find(|p| {
            p.annotations()
                .get("batch.kubernetes.io/job-completion-index")
                .map(String::as_str)
                == Some("1")
        })
        .expect("pod 1");
    set_phase(&client, &one.name_any(), "Failed").await;
    let retried = wait_for("index 1 retried", T, || {
        let client = client.clone();
        async move {
            running(&client, "idx").await.into_iter().find(|p| {
                p.labels()
                    .get("batch.kubernetes.io/job-completion-index")
                    .map(String::as_str)
                    == Some("1")
            })
        }
    })
    .await;
    assert!(
        retried.name_any().starts_with("idx-1-"),
        "{}",
        retried.name_any()
    );
    for p in running(&client, "idx").await {
        set_phase(&client, &p.name_any(), "Succeeded").await;
    }
    let job = wait_condition(&client, "idx", "Complete").await;
    let status = job.status.expect("status");
    assert_eq!(status.completed_indexes.as_deref(), Some("0-2"));
    assert_eq!((status.succeeded, status.failed), (Some(3), Some(1)));
}

#[tokio::test]
async fn finished_job_is_deleted_after_its_ttl() {
    let cluster = Cluster::start(&[]);
    let client = cluster.client().await;
    wait_default_sa(&client, "default").await;
    create_json(
        &client,
        job_json("brief", json!({"ttlSecondsAfterFinished": 2})),
    )
    .await;
    let pods = wait_running(&client, "brief", 1).await;
    set_phase(&client, &pods[0].name_any(), "Succeeded").await;
    let done = wait_condition(&client, "brief", "Complete").await;
    let finished = done
        .status
        .and_then(|s| s.completion_time)
        .expect("completionTime")
        .0
        .as_second();
    let api: Api<Job> = Api::namespaced(client.clone(), "default");
    wait_for("job deleted by TTL", T, || {
        let api = api.clone();
        async move { api.get_opt("brief").await.ok()?.is_none().then_some(()) }
    })
    .await;
    assert!(
        k8s_openapi::jiff::Timestamp::now().as_second() >= finished + 2,
        "deleted before its TTL"
    );
    wait_for("job pods deleted", T, || {
        let client = client.clone();
        async move {
            live_pods(&client, "default", "job-name=brief")
                .await
                .is_empty()
                .then_some(())
        }
    })
    .await;
}

fn condition_status(job: &Job, type_: &str) -> Option<String> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}

#[tokio::test]
async fn suspended_job_runs_no_pods_until_resumed() {
    let cluster = Cluster::start(&[]);
    let client = cluster.client().await;
    wait_default_sa(&client, "default").await;
    create_json(
        &client,
        job_json(
            "later",
            json!({"suspend": true, "parallelism": 2, "completions": 2}),
        ),
    )
    .await;
    let job = wait_condition(&client, "later", "Suspended").await;
    assert_eq!(
        condition_reason(&job, "Suspended").as_deref(),
        Some("JobSuspended")
    );
    assert!(job
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .is_none());
    assert!(live_pods(&client, "default", "job-name=later")
        .await
        .is_empty());

    cluster
        .kubectl(&[
            "patch",
            "job",
            "later",
            "--type=merge",
            "-p",
            r#"{"spec":{"suspend":false}}"#,
        ])
        .assert_success();
    wait_running(&client, "later", 2).await;
    let api: Api<Job> = Api::namespaced(client.clone(), "default");
    let resumed = wait_for("resumed condition", T, || {
        let api = api.clone();
        async move {
            api.get("later")
                .await
                .ok()
                .filter(|j| condition_status(j, "Suspended").as_deref() == Some("False"))
        }
    })
    .await;
    assert_eq!(
        condition_reason(&resumed, "Suspended").as_deref(),
        Some("JobResumed")
    );
    assert!(resumed
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .is_some());

    // Suspending again stops the running pods.
    cluster
        .kubectl(&[
            "patch",
            "job",
            "later",
            "--type=merge",
            "-p",
            r#"{"spec":{"suspend":true}}"#,
        ])
        .assert_success();
    wait_for("pods stopped", T, || {
        let client = client.clone();
        async move {
            live_pods(&client, "default", "job-name=later")
                .await
                .is_empty()
                .then_some(())
        }
    })
    .await;
    wait_condition(&client, "later", "Suspended").await;
}
