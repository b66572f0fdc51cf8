//! The controller benchmark behind `scripts/bench-controllers.sh` (ignored in normal
//! runs): 50 fake nodes, a hollow-node agent that binds pods round-robin and marks
//! them Running/Ready (and finishes deletions) as kubelets would, a Deployment scaled
//! 0 → 1000 and then rolled to a new template.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;
use serde_json::json;

use crate::common::{wait_default_sa, AbortOnDrop, Cluster};

const NODES: usize = 50;
const REPLICAS: i32 = 1000;

fn hollow_nodes(client: kube::Client) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let next = Arc::new(AtomicUsize::new(0));
        watcher(pods.clone(), watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .for_each_concurrent(64, |pod| {
                let pods = pods.clone();
                let next = next.clone();
                async move {
                    let Ok(pod) = pod else { return };
                    let name = pod.name_any();
                    if pod.metadata.deletion_timestamp.is_some() {
                        let _ = pods.delete(&name, &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await;
                        return;
                    }
                    let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
                    if node.is_none() {
                        let n = next.fetch_add(1, Ordering::Relaxed) % NODES;
                        let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                                             "target": {"apiVersion": "v1", "kind": "Node", "name": format!("hollow-{n}")}});
                        let _ = pods.create_subresource::<_, serde_json::Value>("binding", &name, &PostParams::default(), &binding).await;
                        return;
                    }
                    let ready = crate::common::is_ready(&pod);
                    if !ready {
                        let now = k8s_openapi::jiff::Timestamp::from_second(k8s_openapi::jiff::Timestamp::now().as_second()).map(|t| t.to_string()).unwrap_or_default();
                        let patch = json!({"status": {"phase": "Running", "conditions": [
                            {"type": "Ready", "status": "True", "lastTransitionTime": now},
                            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now}]}});
                        let _ = pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await;
                    }
                }
            })
            .await;
    }))
}

async fn wait_deployment(api: &Api<Deployment>, done: impl Fn(&Deployment) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        if let Ok(d) = api.get("bench").await {
            if done(&d) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "benchmark timed out");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: scripts/bench-controllers.sh"]
async fn bench_controllers_scale_and_rollout_1000() {
    let cluster = Cluster::start(&[]);
    let client = cluster.client().await;
    wait_default_sa(&client, "default").await;
    let nodes: Api<Node> = Api::all(client.clone());
    for i in 0..NODES {
        let node: Node = serde_json::from_value(json!({"metadata": {"name": format!("hollow-{i}"), "labels": {"kubernetes.io/hostname": format!("hollow-{i}")}},
            "status": {"capacity": {"cpu": "32", "memory": "128Gi", "pods": "110"}, "allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"}}}))
        .expect("node");
        nodes
            .create(&PostParams::default(), &node)
            .await
            .expect("create node");
    }
    let _agent = hollow_nodes(client.clone());
    cluster
        .kubectl(&[
            "create",
            "deployment",
            "bench",
            "--image=pause:1",
            "--replicas=0",
        ])
        .assert_success();
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");

    let started = Instant::now();
    cluster
        .kubectl(&[
            "scale",
            "deployment/bench",
            &format!("--replicas={REPLICAS}"),
        ])
        .assert_success();
    wait_deployment(&deploys, |d| {
        d.status.as_ref().and_then(|s| s.ready_replicas) == Some(REPLICAS)
    })
    .await;
    let scale_ms = started.elapsed().as_millis();

    let started = Instant::now();
    cluster
        .kubectl(&["set", "image", "deployment/bench", "pause=pause:2"])
        .assert_success();
    wait_deployment(&deploys, |d| {
        let s = d.status.clone().unwrap_or_default();
        s.observed_generation >= d.metadata.generation
            && s.updated_replicas == Some(REPLICAS)
            && s.available_replicas == Some(REPLICAS)
            && s.replicas == Some(REPLICAS)
    })
    .await;
    let rollout_ms = started.elapsed().as_millis();
    println!("RESULT scale_1000_ms={scale_ms} rollout_1000_ms={rollout_ms}");
}
