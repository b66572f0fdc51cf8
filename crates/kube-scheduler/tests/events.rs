//! Scheduler Events against real etcd + our apiserver: repeated scheduling failures
//! of one pod for the same reason fold into one `FailedScheduling` Event whose
//! `count` grows (the core/v1 event correlator in `kube_common::events`).

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(20);

fn failed_scheduling(events: Vec<Event>) -> Vec<Event> {
    events
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("FailedScheduling"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failed_scheduling_is_one_event_with_a_growing_count() {
    let cluster = Cluster::start();
    let client = cluster.client().await;
    create_node(&client, node_json("n1", "1", json!({}), json!([]))).await;
    let _scheduler = SchedulerProcess::start(&cluster.apiserver.url(), &["--leader-elect=false"]);
    create_pod(&client, pod_json("big", json!({
        "containers": [{"name": "c", "image": "pause", "resources": {"requests": {"cpu": "2"}}}]
    }))).await;
    eventually(TIMEOUT, "the first FailedScheduling event", || async {
        failed_scheduling(pod_events(&client, "big").await)
            .into_iter()
            .next()
    })
    .await;

    // A label change may make an unschedulable pod schedulable (upstream
    // `isPodUpdated`), so each one is another attempt that fails the same way.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut attempt = 0;
    let event = eventually(
        Duration::from_secs(60),
        "a FailedScheduling event with count >= 3",
        || {
            attempt += 1;
            let (pods, client) = (pods.clone(), client.clone());
            async move {
                let patch = json!({"metadata": {"labels": {"attempt": attempt.to_string()}}});
                pods.patch("big", &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .expect("label the pod");
                tokio::time::sleep(Duration::from_millis(400)).await;
                failed_scheduling(pod_events(&client, "big").await)
                    .into_iter()
                    .find(|e| e.count.unwrap_or(1) >= 3)
            }
        },
    )
    .await;

    let all = failed_scheduling(pod_events(&client, "big").await);
    assert_eq!(
        all.len(),
        1,
        "one FailedScheduling Event, not one per attempt: {all:#?}"
    );
    assert_eq!(all[0].metadata.name, event.metadata.name);
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(
        event.message.as_deref(),
        Some("0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod..")
    );
    assert_eq!(
        event.source.as_ref().and_then(|s| s.component.as_deref()),
        Some("default-scheduler")
    );
    assert!(event.last_timestamp >= event.first_timestamp);
    assert!(event
        .metadata
        .name
        .as_deref()
        .is_some_and(|n| n.starts_with("big.")));
}
