use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::common::{wait_default_sa, wait_for, Cluster};

const T: Duration = Duration::from_secs(30);

async fn create_pod(client: &kube::Client, name: &str, node: &str) {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}}))
    .expect("pod");
    api.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
}

async fn set_phase(client: &kube::Client, name: &str, phase: &str) {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": {"phase": phase}})),
    )
    .await
    .expect("phase");
}

async fn names(client: &kube::Client) -> Vec<String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut v: Vec<String> = api
        .list(&Default::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn podgc_keeps_the_newest_terminated_pods_and_removes_orphans() {
    let cluster = Cluster::start(&[
        "--controllers=serviceaccount,podgc",
        "--terminated-pod-gc-threshold=2",
        "--pod-gc-period=1s",
        "--pod-gc-orphan-quarantine=2s",
    ]);
    let client = cluster.client().await;
    wait_default_sa(&client, "default").await;
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "n1"}})).expect("node");
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .expect("node");

    create_pod(&client, "running", "n1").await;
    set_phase(&client, "running", "Running").await;
    for (i, phase) in ["Succeeded", "Failed", "Succeeded", "Failed", "Succeeded"]
        .iter()
        .enumerate()
    {
        let name = format!("t{}", i + 1);
        create_pod(&client, &name, "n1").await;
        set_phase(&client, &name, phase).await;
    }
    // Only the two newest terminated pods remain; running pods are not touched.
    wait_for("terminated pods trimmed to 2", T, || async {
        let n = names(&client).await;
        (n == ["running", "t4", "t5"]).then_some(())
    })
    .await;

    // A pod bound to a node that does not exist goes after the quarantine.
    create_pod(&client, "orphan", "ghost").await;
    set_phase(&client, "orphan", "Running").await;
    wait_for("orphan deleted", T, || async {
        let n = names(&client).await;
        (!n.contains(&"orphan".to_string())).then_some(n)
    })
    .await;
    assert_eq!(names(&client).await, ["running", "t4", "t5"]);

    // A terminating pod stays on a node that is merely not ready, but is force
    // deleted once the node is also marked out-of-service.
    let nodes: Api<Node> = Api::all(client.clone());
    let down: Node = serde_json::from_value(json!({"metadata": {"name": "down"}})).expect("node");
    nodes
        .create(&PostParams::default(), &down)
        .await
        .expect("node");
    let now =
        k8s_openapi::jiff::Timestamp::from_second(k8s_openapi::jiff::Timestamp::now().as_second())
            .expect("now")
            .to_string();
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady",
        "lastHeartbeatTime": now, "lastTransitionTime": now}]}});
    nodes
        .patch_status("down", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("node status");
    create_pod(&client, "stuck", "down").await;
    set_phase(&client, "stuck", "Running").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.delete("stuck", &Default::default())
        .await
        .expect("delete stuck");
    let stuck = pods.get("stuck").await.expect("still there");
    assert!(stuck.metadata.deletion_timestamp.is_some());
    let taint = json!({"spec": {"taints": [{"key": "node.kubernetes.io/out-of-service", "value": "nodeshutdown", "effect": "NoExecute"}]}});
    nodes
        .patch("down", &PatchParams::default(), &Patch::Merge(&taint))
        .await
        .expect("taint");
    wait_for("stuck pod force deleted", T, || async {
        pods.get_opt("stuck").await.ok()?.is_none().then_some(())
    })
    .await;
}
