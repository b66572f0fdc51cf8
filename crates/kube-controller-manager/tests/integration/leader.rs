use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;

use crate::common::{
    create_json, live_pods, wait_default_sa, wait_for, Cluster, ControllerManager,
};

const LE: &[&str] = &[
    "--leader-elect=true",
    "--leader-elect-lease-duration=4s",
    "--leader-elect-renew-deadline=3s",
    "--leader-elect-retry-period=500ms",
];

async fn holder(client: &kube::Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    leases
        .get_opt("kube-controller-manager")
        .await
        .ok()??
        .spec?
        .holder_identity
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_controller_managers_one_leader_and_handover() {
    let mut cluster = Cluster::start(LE);
    let client = cluster.client().await;
    let first = wait_for("first leader", Duration::from_secs(20), || {
        let client = client.clone();
        async move { holder(&client).await.filter(|h| !h.is_empty()) }
    })
    .await;
    let mut second = ControllerManager::start(&cluster.server, LE);

    wait_default_sa(&client, "default").await;
    let rs = |replicas: i32| {
        serde_json::json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "le", "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "le"}},
                     "template": {"metadata": {"labels": {"app": "le"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
        })
    };
    create_json(&client, rs(3)).await;
    wait_for("3 pods", Duration::from_secs(20), || {
        let client = client.clone();
        async move { (live_pods(&client, "default", "app=le").await.len() == 3).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        live_pods(&client, "default", "app=le").await.len(),
        3,
        "pods created twice"
    );
    assert_eq!(
        holder(&client).await.as_deref(),
        Some(first.as_str()),
        "leadership moved while the leader lives"
    );

    // Kill the leader: the standby takes over within the lease duration (plus a retry).
    cluster.kcm.kill();
    let started = std::time::Instant::now();
    let next = wait_for("new leader", Duration::from_secs(15), || {
        let client = client.clone();
        let first = first.clone();
        async move {
            holder(&client)
                .await
                .filter(|h| !h.is_empty() && *h != first)
        }
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "handover took {:?}",
        started.elapsed()
    );
    assert_ne!(next, first);
    cluster
        .kubectl(&["scale", "rs/le", "--replicas=5"])
        .assert_success();
    wait_for("5 pods by the new leader", Duration::from_secs(20), || {
        let client = client.clone();
        async move { (live_pods(&client, "default", "app=le").await.len() == 5).then_some(()) }
    })
    .await;
    second.kill();
}
