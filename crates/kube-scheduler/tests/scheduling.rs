//! The scheduler against real etcd + our apiserver: nodes and pods created through
//! the API (no kubelets), placements and failure reporting checked through the API.

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};
use serde_json::json;

const BIND_TIMEOUT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binds_pods_respecting_selectors_affinity_taints_resources_and_ports() {
    let cluster = Cluster::start();
    let client = cluster.client().await;
    create_node(
        &client,
        node_json(
            "node-1",
            "4",
            json!({"disk": "ssd", "zone": "a", "cores": "8"}),
            json!([]),
        ),
    )
    .await;
    create_node(
        &client,
        node_json(
            "node-2",
            "4",
            json!({"disk": "hdd", "zone": "b", "cores": "4"}),
            json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
        ),
    )
    .await;
    create_node(
        &client,
        node_json(
            "node-3",
            "1",
            json!({"disk": "hdd", "zone": "b", "cores": "2"}),
            json!([]),
        ),
    )
    .await;
    let scheduler = SchedulerProcess::start(&cluster.apiserver.url(), &["--leader-elect=false"]);

    let gpu_toleration =
        json!([{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]);
    create_pod(
        &client,
        pod_json("ssd-pod", json!({"nodeSelector": {"disk": "ssd"}})),
    )
    .await;
    create_pod(&client, pod_json("zone-b-2cpu", json!({
        "tolerations": gpu_toleration,
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}]}}},
        "containers": [{"name": "c", "image": "pause", "resources": {"requests": {"cpu": "2"}}}]
    }))).await;
    create_pod(&client, pod_json("many-cores", json!({
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}, {"key": "gpu", "operator": "DoesNotExist"}]}]}}}
    }))).await;
    create_pod(&client, pod_json("not-ssd", json!({
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "disk", "operator": "NotIn", "values": ["ssd"]}]}]}}}
    }))).await;
    for i in 0..3 {
        create_pod(&client, pod_json(&format!("port-{i}"), json!({
            "tolerations": gpu_toleration,
            "containers": [{"name": "c", "image": "pause", "ports": [{"containerPort": 80, "hostPort": 9000}]}]
        }))).await;
    }

    assert_eq!(wait_bound(&client, "ssd-pod", BIND_TIMEOUT).await, "node-1");
    assert_eq!(
        wait_bound(&client, "zone-b-2cpu", BIND_TIMEOUT).await,
        "node-2",
        "node-3 has 1 cpu"
    );
    assert_eq!(
        wait_bound(&client, "many-cores", BIND_TIMEOUT).await,
        "node-1"
    );
    assert_eq!(
        wait_bound(&client, "not-ssd", BIND_TIMEOUT).await,
        "node-3",
        "node-2's taint is not tolerated"
    );
    let mut port_nodes = Vec::new();
    for i in 0..3 {
        port_nodes.push(wait_bound(&client, &format!("port-{i}"), BIND_TIMEOUT).await);
    }
    port_nodes.sort();
    assert_eq!(
        port_nodes,
        ["node-1", "node-2", "node-3"],
        "one hostPort 9000 pod per node"
    );

    // A fourth hostPort 9000 pod fits nowhere.
    create_pod(&client, pod_json("port-3", json!({
        "tolerations": gpu_toleration,
        "containers": [{"name": "c", "image": "pause", "ports": [{"containerPort": 80, "hostPort": 9000}]}]
    }))).await;
    let msg = eventually(BIND_TIMEOUT, "port-3 to be unschedulable", || async {
        let p = get_pod(&client, "port-3").await;
        scheduled_condition(&p)
            .filter(|(status, _, _)| status == "False")
            .map(|(_, _, m)| m)
    })
    .await;
    assert_eq!(
        msg,
        "0/3 nodes are available: 3 node(s) didn't have free ports for the requested pod ports. \
         preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.."
    );

    // The bound pod carries PodScheduled=True and a Scheduled event.
    let p = get_pod(&client, "ssd-pod").await;
    assert_eq!(
        scheduled_condition(&p).map(|c| c.0),
        Some("True".to_string())
    );
    let events = eventually(BIND_TIMEOUT, "a Scheduled event", || async {
        let evs: Vec<_> = pod_events(&client, "ssd-pod")
            .await
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some("Scheduled"))
            .collect();
        (!evs.is_empty()).then_some(evs)
    })
    .await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].message.as_deref(),
        Some("Successfully assigned default/ssd-pod to node-1")
    );
    assert_eq!(events[0].type_.as_deref(), Some("Normal"));
    assert_eq!(
        events[0]
            .source
            .as_ref()
            .and_then(|s| s.component.as_deref()),
        Some("default-scheduler")
    );

    // Pods of other schedulers are left alone.
    create_pod(
        &client,
        pod_json("other-scheduler", json!({"schedulerName": "my-scheduler"})),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(node_of(&get_pod(&client, "other-scheduler").await), None);

    // Health and metrics.
    let health = test_support::http_get(&format!(
        "http://127.0.0.1:{}/healthz",
        scheduler.health_port
    ))
    .expect("healthz");
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    let metrics = test_support::http_get(&format!(
        "http://127.0.0.1:{}/metrics",
        scheduler.health_port
    ))
    .expect("metrics");
    assert!(metrics.body.contains("scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"scheduled\"} 7"), "{}", metrics.body);
    assert!(
        metrics.body.contains("result=\"unschedulable\""),
        "{}",
        metrics.body
    );
}

/// (status, reason, message) of the PodScheduled condition.
fn scheduled_condition(p: &Pod) -> Option<(String, String, String)> {
    let c = p
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled")?;
    Some((
        c.status.clone(),
        c.reason.clone().unwrap_or_default(),
        c.message.clone().unwrap_or_default(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unschedulable_pod_reports_upstream_reason_and_is_scheduled_when_a_node_fits() {
    let cluster = Cluster::start();
    let client = cluster.client().await;
    create_node(
        &client,
        node_json("n1", "4", json!({"disk": "hdd"}), json!([])),
    )
    .await;
    create_node(
        &client,
        node_json("n2", "1", json!({"disk": "ssd"}), json!([])),
    )
    .await;
    create_node(
        &client,
        node_json("n3", "1", json!({"disk": "ssd"}), json!([])),
    )
    .await;
    let _scheduler = SchedulerProcess::start(&cluster.apiserver.url(), &["--leader-elect=false"]);

    create_pod(&client, pod_json("web-1", json!({
        "nodeSelector": {"disk": "ssd"},
        "containers": [{"name": "c", "image": "pause", "resources": {"requests": {"cpu": "2"}}}]
    }))).await;
    let expected = "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient cpu. \
                    preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod..";
    let cond = eventually(BIND_TIMEOUT, "the Unschedulable condition", || async {
        scheduled_condition(&get_pod(&client, "web-1").await).filter(|c| c.0 == "False")
    })
    .await;
    assert_eq!(
        cond,
        (
            "False".to_string(),
            "Unschedulable".to_string(),
            expected.to_string()
        )
    );
    let event = eventually(BIND_TIMEOUT, "a FailedScheduling event", || async {
        pod_events(&client, "web-1")
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("FailedScheduling"))
    })
    .await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(event.message.as_deref(), Some(expected));

    // A fitting node appears: the pod leaves the unschedulable queue and is bound.
    create_node(
        &client,
        node_json("n4", "4", json!({"disk": "ssd"}), json!([])),
    )
    .await;
    assert_eq!(
        wait_bound(&client, "web-1", Duration::from_secs(10)).await,
        "n4"
    );

    // Deleting a bound pod frees room for a pending one.
    create_pod(&client, pod_json("web-2", json!({
        "nodeSelector": {"disk": "ssd"},
        "containers": [{"name": "c", "image": "pause", "resources": {"requests": {"cpu": "3"}}}]
    }))).await;
    eventually(BIND_TIMEOUT, "web-2 to be unschedulable", || async {
        scheduled_condition(&get_pod(&client, "web-2").await).filter(|c| c.0 == "False")
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.delete(
        "web-1",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        },
    )
    .await
    .expect("delete web-1");
    assert_eq!(
        wait_bound(&client, "web-2", Duration::from_secs(10)).await,
        "n4"
    );
}
