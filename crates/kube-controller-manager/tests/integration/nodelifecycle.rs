use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::common::{wait_default_sa, wait_for, AbortOnDrop, Cluster};
use crate::endpoints::set_pod_status;

const T: Duration = Duration::from_secs(40);

fn now_str() -> String {
    let now = k8s_openapi::jiff::Timestamp::now();
    k8s_openapi::jiff::Timestamp::from_second(now.as_second())
        .expect("now")
        .to_string()
}

/// One kubelet heartbeat: Ready status and a renewed Lease.
async fn heartbeat(client: &kube::Client, node: &str) {
    let nodes: Api<Node> = Api::all(client.clone());
    let now = now_str();
    let status = json!({"status": {"conditions": [
        {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
         "lastHeartbeatTime": now, "lastTransitionTime": now},
        {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "lastHeartbeatTime": now, "lastTransitionTime": now}
    ]}});
    nodes
        .patch_status(node, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("node status");
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let micro = k8s_openapi::jiff::Timestamp::now().to_string();
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": node},
        "spec": {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": micro}});
    match leases.get_opt(node).await.expect("get lease") {
        Some(_) => {
            leases
                .patch(
                    node,
                    &PatchParams::default(),
                    &Patch::Merge(&json!({"spec": {"renewTime": micro}})),
                )
                .await
                .expect("renew lease");
        }
        None => {
            let l: Lease = serde_json::from_value(lease).expect("lease");
            leases
                .create(&PostParams::default(), &l)
                .await
                .expect("create lease");
        }
    }
}

/// A kubelet stand-in heartbeating every second until dropped.
fn spawn_kubelet(client: kube::Client, node: &'static str) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        loop {
            heartbeat(&client, node).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }))
}

async fn create_node(client: &kube::Client, name: &str) {
    let node: Node = serde_json::from_value(json!({"metadata": {"name": name}})).expect("node");
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .expect("create node");
    heartbeat(client, name).await;
}

async fn create_pod(client: &kube::Client, name: &str, node: &str, tolerations: serde_json::Value) {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"nodeName": node, "tolerations": tolerations, "containers": [{"name": "c", "image": "busybox"}]}}))
    .expect("pod");
    api.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    set_pod_status(client, "default", name, "10.1.0.1", true).await;
}

fn taints(node: &Node) -> Vec<(String, String, bool)> {
    let mut v: Vec<_> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.key, t.effect, t.time_added.is_some()))
        .collect();
    v.sort();
    v
}

fn pod_condition(pod: &Pod, type_: &str) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}

#[tokio::test]
async fn silent_node_goes_unknown_is_tainted_evicts_pods_and_recovers() {
    let cluster = Cluster::start(&[
        "--controllers=serviceaccount,nodelifecycle",
        "--node-monitor-grace-period=5s",
        "--node-monitor-period=1s",
    ]);
    let client = cluster.client().await;
    wait_default_sa(&client, "default").await;
    create_node(&client, "silent").await;
    create_node(&client, "healthy").await;
    let healthy_kubelet = spawn_kubelet(client.clone(), "healthy");
    let unreachable = |secs: Option<i64>| {
        let mut t = json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"});
        if let Some(s) = secs {
            t["tolerationSeconds"] = json!(s);
        }
        json!([t])
    };
    create_pod(&client, "short", "silent", unreachable(Some(3))).await;
    create_pod(&client, "forever", "silent", unreachable(None)).await;
    create_pod(&client, "defaulted", "silent", json!([])).await;
    create_pod(&client, "fine", "healthy", json!([])).await;

    let nodes: Api<Node> = Api::all(client.clone());
    let node = wait_for("silent node Unknown and tainted", T, || async {
        let n = nodes.get("silent").await.ok()?;
        let ready = n
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Ready")?
            .clone();
        (ready.status == "Unknown" && taints(&n).len() == 2).then_some(n)
    })
    .await;
    let conds = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .expect("conditions");
    for c in &conds {
        assert_eq!(c.status, "Unknown", "{c:?}");
        if c.type_ == "Ready" || c.type_ == "MemoryPressure" {
            assert_eq!(c.reason.as_deref(), Some("NodeStatusUnknown"));
            assert_eq!(
                c.message.as_deref(),
                Some("Kubelet stopped posting node status.")
            );
        } else {
            // Conditions the kubelet never posted.
            assert_eq!(c.reason.as_deref(), Some("NodeStatusNeverUpdated"), "{c:?}");
        }
    }
    assert!(conds.iter().any(|c| c.type_ == "PIDPressure"));
    assert_eq!(
        taints(&node),
        vec![
            (
                "node.kubernetes.io/unreachable".into(),
                "NoExecute".into(),
                true
            ),
            (
                "node.kubernetes.io/unreachable".into(),
                "NoSchedule".into(),
                false
            )
        ]
    );

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    // The pods on the silent node are no longer Ready.
    wait_for("pods on silent node NotReady", T, || async {
        let f = pods.get("forever").await.ok()?;
        (pod_condition(&f, "Ready").as_deref() == Some("False")).then_some(())
    })
    .await;
    // The pod tolerating 3 s is deleted; the others stay.
    let short = wait_for("short evicted", T, || async {
        let p = pods.get_opt("short").await.ok()?;
        match p {
            Some(p) if p.metadata.deletion_timestamp.is_none() => None,
            other => Some(other),
        }
    })
    .await;
    if let Some(p) = short {
        assert_eq!(
            pod_condition(&p, "DisruptionTarget").as_deref(),
            Some("True")
        );
    }
    for name in ["forever", "defaulted", "fine"] {
        let p = pods.get(name).await.expect("pod");
        assert!(
            p.metadata.deletion_timestamp.is_none(),
            "{name} was evicted"
        );
    }
    assert_eq!(
        pod_condition(&pods.get("fine").await.expect("fine"), "Ready").as_deref(),
        Some("True")
    );

    // The healthy node was never touched.
    let healthy = nodes.get("healthy").await.expect("healthy");
    assert!(taints(&healthy).is_empty(), "{:?}", taints(&healthy));
    drop(healthy_kubelet);

    // The kubelet comes back: the taints go.
    let _kubelet = spawn_kubelet(client.clone(), "silent");
    wait_for("taints removed", T, || async {
        let n = nodes.get("silent").await.ok()?;
        taints(&n).is_empty().then_some(())
    })
    .await;
}
