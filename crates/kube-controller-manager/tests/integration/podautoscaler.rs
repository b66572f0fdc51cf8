//! Horizontal pod autoscaling end to end: the HPA reads `metrics.k8s.io` from
//! our apiserver, which reads `/stats/summary` from a fake kubelet registered as
//! the Node's address (the kubelet's HTTP API is the interface); the HPA scales a
//! ReplicaSet through `/scale`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::get;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{json, Value};

use crate::common::{create_json, wait_default_sa, wait_for, AbortOnDrop, Cluster};

const T: Duration = Duration::from_secs(60);

#[derive(Clone)]
struct Kubelet {
    client: Client,
    /// Millicores each pod uses.
    millicores: Arc<AtomicU64>,
}

/// The summary of every running `app=web` pod, each at the current usage.
async fn summary(State(k): State<Kubelet>) -> axum::Json<Value> {
    let api: Api<Pod> = Api::namespaced(k.client.clone(), "default");
    let pods = api
        .list(&ListParams::default().labels("app=web"))
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let t = Timestamp::from_second(Timestamp::now().as_second())
        .expect("now")
        .to_string();
    let nano = k.millicores.load(Ordering::SeqCst) * 1_000_000;
    let stats = |name: &str| json!({"name": name, "startTime": "2026-01-01T00:00:00Z", "cpu": {"time": t, "usageNanoCores": nano, "usageCoreNanoSeconds": 1}, "memory": {"time": t, "workingSetBytes": 1u64 << 20}});
    let pods: Vec<Value> = pods
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .map(|p| json!({"podRef": {"name": p.name_any(), "namespace": "default", "uid": p.uid()}, "containers": [stats("c")]}))
        .collect();
    axum::Json(
        json!({"node": {"nodeName": "n1", "cpu": {"time": t, "usageNanoCores": 1u64, "usageCoreNanoSeconds": 1}, "memory": {"time": t, "workingSetBytes": 1u64}}, "pods": pods}),
    )
}

async fn start_kubelet(client: Client, millicores: Arc<AtomicU64>) -> (u16, AbortOnDrop) {
    let port = test_support::free_port();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    let app = axum::Router::new()
        .route("/stats/summary", get(summary))
        .with_state(Kubelet { client, millicores });
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (port, AbortOnDrop(handle))
}

/// Marks new `app=web` pods Running and Ready since an hour ago (past the CPU
/// initialization period), as their kubelet would.
fn spawn_pod_starter(client: Client) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        let api: Api<Pod> = Api::namespaced(client, "default");
        let ago = Timestamp::from_second(Timestamp::now().as_second() - 3600)
            .expect("time")
            .to_string();
        loop {
            for p in api
                .list(&ListParams::default().labels("app=web"))
                .await
                .map(|l| l.items)
                .unwrap_or_default()
            {
                if p.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Running") {
                    let status = json!({"status": {"phase": "Running", "startTime": ago, "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": ago}]}});
                    let _ = api
                        .patch_status(
                            &p.name_any(),
                            &PatchParams::default(),
                            &Patch::Merge(&status),
                        )
                        .await;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }))
}

async fn rs_replicas(client: &Client) -> i32 {
    Api::<ReplicaSet>::namespaced(client.clone(), "default")
        .get("web")
        .await
        .ok()
        .and_then(|r| r.spec?.replicas)
        .unwrap_or(-1)
}

async fn wait_replicas(client: &Client, n: i32) {
    wait_for(&format!("{n} replicas"), T, || {
        let client = client.clone();
        async move { (rs_replicas(&client).await == n).then_some(()) }
    })
    .await;
}

fn condition<'a>(hpa: &'a HorizontalPodAutoscaler, type_: &str) -> Option<(&'a str, &'a str)> {
    let c = hpa
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.as_str(), c.reason.as_deref().unwrap_or("")))
}

async fn rescale_messages(client: &Client) -> Vec<String> {
    let events = Api::<Event>::namespaced(client.clone(), "default")
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    events
        .into_iter()
        .filter(|e| {
            e.involved_object.kind.as_deref() == Some("HorizontalPodAutoscaler")
                && e.reason.as_deref() == Some("SuccessfulRescale")
        })
        .filter_map(|e| e.message)
        .collect()
}

#[tokio::test]
async fn hpa_scales_up_to_max_and_down_after_the_stabilization_window() {
    let cluster = Cluster::start(&[
        "--controllers=horizontalpodautoscaling,replicaset,serviceaccount",
        "--horizontal-pod-autoscaler-sync-period=1s",
        "--horizontal-pod-autoscaler-downscale-stabilization=5s",
    ]);
    let client = cluster.client().await;
    wait_default_sa(&client, "default").await;
    let millicores = Arc::new(AtomicU64::new(90));
    let (port, _kubelet) = start_kubelet(client.clone(), millicores.clone()).await;
    // Registered with its status, as a kubelet does.
    create_json(&client, json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
        "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}], "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}})).await;
    let _starter = spawn_pod_starter(client.clone());
    let template = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "100m"}}}]}});
    create_json(&client, json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template}})).await;
    create_json(&client, json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web"}, "minReplicas": 1, "maxReplicas": 4,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]}})).await;

    // 90% of request against 50%: 1 → 2, then 2 → 4 (8 wanted, clamped to max).
    wait_replicas(&client, 2).await;
    wait_replicas(&client, 4).await;
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "default");
    let hpa = wait_for("status at max", T, || {
        let hpas = hpas.clone();
        async move {
            let h = hpas.get("web").await.ok()?;
            (condition(&h, "ScalingLimited") == Some(("True", "TooManyReplicas"))).then_some(h)
        }
    })
    .await;
    let status = hpa.status.clone().expect("status");
    assert_eq!(
        (status.current_replicas, status.desired_replicas),
        (Some(4), 4)
    );
    assert!(status.last_scale_time.is_some());
    let current = &status.current_metrics.expect("metrics")[0];
    let cpu = current.resource.as_ref().expect("resource");
    assert_eq!(
        (cpu.name.as_str(), cpu.current.average_utilization),
        ("cpu", Some(90))
    );
    assert_eq!(
        cpu.current.average_value.as_ref().map(|q| q.0.as_str()),
        Some("90m")
    );
    assert_eq!(
        condition(&hpa, "ScalingActive"),
        Some(("True", "ValidMetricFound"))
    );
    assert_eq!(condition(&hpa, "AbleToScale").map(|c| c.0), Some("True"));
    let messages = rescale_messages(&client).await;
    assert!(messages.iter().any(|m| m == "New size: 2; reason: cpu resource utilization (percentage of request) above target"), "{messages:?}");
    assert!(messages.iter().any(|m| m == "New size: 4; reason: cpu resource utilization (percentage of request) above target"), "{messages:?}");

    // Load drops to 10%: held by the 5 s stabilization window, then down to 1.
    let dropped = Instant::now();
    millicores.store(10, Ordering::SeqCst);
    let stabilized_seen = Arc::new(AtomicBool::new(false));
    wait_for("scaled down", T, || {
        let (client, hpas, seen) = (client.clone(), hpas.clone(), stabilized_seen.clone());
        async move {
            if let Ok(h) = hpas.get("web").await {
                if condition(&h, "AbleToScale") == Some(("True", "ScaleDownStabilized")) {
                    seen.store(true, Ordering::SeqCst);
                }
            }
            (rs_replicas(&client).await == 1).then_some(())
        }
    })
    .await;
    assert!(
        dropped.elapsed() >= Duration::from_secs(3),
        "scaled down after {:?}, inside the window",
        dropped.elapsed()
    );
    assert!(
        stabilized_seen.load(Ordering::SeqCst),
        "AbleToScale never reported ScaleDownStabilized"
    );
    wait_for("scale-down event", T, || {
        let client = client.clone();
        async move {
            rescale_messages(&client)
                .await
                .iter()
                .any(|m| m == "New size: 1; reason: All metrics below target")
                .then_some(())
        }
    })
    .await;
}
