//! Controller Events as upstream records them (`kubectl describe` shows them):
//! pod creation by the job controller, job completion and failure, and the
//! cronjob controller's job creation, the deployment controller's scaling.

use std::time::Duration;

use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::common::{create_json, live_pods, wait_default_sa, wait_for, Cluster};
use crate::job::{job_json, set_phase};

const T: Duration = Duration::from_secs(30);

/// Waits for an event about `kind`/`name` with `reason`; returns (type, message, source).
async fn wait_event(
    client: &Client,
    kind: &str,
    name: &str,
    reason: &str,
) -> (String, String, String) {
    let api: Api<Event> = Api::namespaced(client.clone(), "default");
    wait_for(&format!("{reason} event on {kind}/{name}"), T, || {
        let api = api.clone();
        async move {
            let events = api.list(&ListParams::default()).await.ok()?.items;
            events.into_iter().find_map(|e| {
                let o = &e.involved_object;
                (o.kind.as_deref() == Some(kind)
                    && o.name.as_deref() == Some(name)
                    && e.reason.as_deref() == Some(reason))
                .then(|| {
                    (
                        e.type_.unwrap_or_default(),
                        e.message.unwrap_or_default(),
                        e.source.and_then(|s| s.component).unwrap_or_default(),
                    )
                })
            })
        }
    })
    .await
}

#[tokio::test]
async fn job_and_cronjob_controllers_record_upstream_events() {
    let cluster = Cluster::start(&["--controllers=job,cronjob,deployment,serviceaccount"]);
    let client = cluster.client().await;
    wait_default_sa(&client, "default").await;

    create_json(&client, job_json("pi", json!({}))).await;
    let pods =
        wait_for("job pod", T, || {
            let client = client.clone();
            async move {
                Some(live_pods(&client, "default", "job-name=pi").await).filter(|p| !p.is_empty())
            }
        })
        .await;
    let (type_, message, source) = wait_event(&client, "Job", "pi", "SuccessfulCreate").await;
    assert_eq!(
        (type_.as_str(), source.as_str()),
        ("Normal", "job-controller")
    );
    assert_eq!(message, format!("Created pod: {}", pods[0].name_any()));
    set_phase(&client, &pods[0].name_any(), "Succeeded").await;
    let (type_, message, _) = wait_event(&client, "Job", "pi", "Completed").await;
    assert_eq!(
        (type_.as_str(), message.as_str()),
        ("Normal", "Job completed")
    );

    create_json(&client, job_json("doomed", json!({"backoffLimit": 0}))).await;
    let pods = wait_for("doomed pod", T, || {
        let client = client.clone();
        async move {
            Some(live_pods(&client, "default", "job-name=doomed").await).filter(|p| !p.is_empty())
        }
    })
    .await;
    set_phase(&client, &pods[0].name_any(), "Failed").await;
    let (type_, message, _) = wait_event(&client, "Job", "doomed", "BackoffLimitExceeded").await;
    assert_eq!(
        (type_.as_str(), message.as_str()),
        ("Warning", "Job has reached the specified backoff limit")
    );

    // A yearly CronJob made due by back-dating lastScheduleTime.
    let template = json!({"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}});
    create_json(&client, json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "yearly", "namespace": "default"},
        "spec": {"schedule": "0 0 1 1 *", "jobTemplate": template}})).await;
    let back = k8s_openapi::jiff::Timestamp::from_second(
        k8s_openapi::jiff::Timestamp::now().as_second() - 2 * 366 * 86_400,
    )
    .expect("time")
    .to_string();
    Api::<CronJob>::namespaced(client.clone(), "default")
        .patch_status(
            "yearly",
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"lastScheduleTime": back}})),
        )
        .await
        .expect("back-date");
    let (type_, message, source) =
        wait_event(&client, "CronJob", "yearly", "SuccessfulCreate").await;
    assert_eq!(
        (type_.as_str(), source.as_str()),
        ("Normal", "cronjob-controller")
    );
    assert!(message.starts_with("Created job yearly-"), "{message}");

    // The deployment controller reports each scaling of its ReplicaSets.
    let template = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    create_json(&client, json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template}})).await;
    let (type_, message, source) =
        wait_event(&client, "Deployment", "web", "ScalingReplicaSet").await;
    assert_eq!(
        (type_.as_str(), source.as_str()),
        ("Normal", "deployment-controller")
    );
    assert!(
        message.starts_with("Scaled up replica set web-") && message.ends_with(" from 0 to 2"),
        "{message}"
    );
}
