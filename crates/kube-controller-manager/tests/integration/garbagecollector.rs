use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kube::ResourceExt;
use serde_json::json;

use crate::common::{create_json, live_pods, wait_default_sa, wait_for, Cluster};

const T: Duration = Duration::from_secs(30);

fn rs_json(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
    })
}

async fn wait_pods(client: &kube::Client, selector: &str, n: usize) {
    wait_for(&format!("{n} pods {selector}"), T, || async move {
        (live_pods(client, "default", selector).await.len() == n).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_orphan_and_dangling_references() {
    let cluster = Cluster::start(&[]);
    let client = cluster.client().await;
    wait_default_sa(&client, "default").await;

    // Background (kubectl's default): the ReplicaSet goes at once, its pods after.
    create_json(&client, rs_json("bg")).await;
    wait_pods(&client, "app=bg", 2).await;
    cluster
        .kubectl(&["delete", "rs", "bg", "--cascade=background"])
        .assert_success();
    wait_pods(&client, "app=bg", 0).await;

    // Orphan: the ReplicaSet goes, its pods stay without an owner.
    create_json(&client, rs_json("orph")).await;
    wait_pods(&client, "app=orph", 2).await;
    cluster
        .kubectl(&["delete", "rs", "orph", "--cascade=orphan"])
        .assert_success();
    let rs_api: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    wait_for("orphaned RS gone", T, || {
        let rs_api = rs_api.clone();
        async move { rs_api.get_opt("orph").await.ok()?.is_none().then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pods = live_pods(&client, "default", "app=orph").await;
    assert_eq!(pods.len(), 2, "orphaned pods must stay");
    assert!(
        pods.iter().all(|p| p.owner_references().is_empty()),
        "references not removed"
    );

    // A dependent whose owner never existed is collected; one with a live owner is not.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let owner: ConfigMap = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner"}})).expect("cm"),
        )
        .await
        .expect("owner");
    let dep = |name: &str, uid: &str, owner: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name, "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": uid}]}}))
        .expect("cm")
    };
    cms.create(
        &PostParams::default(),
        &dep("dangling", "00000000-0000-0000-0000-000000000000", "ghost"),
    )
    .await
    .expect("dangling");
    cms.create(
        &PostParams::default(),
        &dep("kept", owner.metadata.uid.as_deref().unwrap_or(""), "owner"),
    )
    .await
    .expect("kept");
    wait_for("dangling dependent collected", T, || {
        let cms = cms.clone();
        async move { cms.get_opt("dangling").await.ok()?.is_none().then_some(()) }
    })
    .await;
    assert!(cms.get_opt("kept").await.expect("get").is_some());
    // Deleting the owner collects the dependent.
    cluster
        .kubectl(&["delete", "configmap", "owner"])
        .assert_success();
    wait_for("dependent of deleted owner collected", T, || {
        let cms = cms.clone();
        async move { cms.get_opt("kept").await.ok()?.is_none().then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_deletion_removes_dependents_before_the_owner() {
    let cluster = Cluster::start(&[]);
    let client = cluster.client().await;
    wait_default_sa(&client, "default").await;
    cluster
        .kubectl(&[
            "create",
            "deployment",
            "fg",
            "--image=busybox",
            "--replicas=2",
        ])
        .assert_success();
    wait_pods(&client, "app=fg", 2).await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let rs_api: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");

    // kubectl --cascade=foreground waits until the owner is gone.
    let out = cluster.kubectl(&[
        "delete",
        "deployment",
        "fg",
        "--cascade=foreground",
        "--timeout=40s",
    ]);
    out.assert_success();
    assert!(
        deploys.get_opt("fg").await.expect("get").is_none(),
        "owner still there"
    );
    let remaining_rs = rs_api.list(&Default::default()).await.expect("list").items;
    assert!(
        remaining_rs.is_empty(),
        "replica sets left: {:?}",
        remaining_rs
            .iter()
            .map(|r| r.name_any())
            .collect::<Vec<_>>()
    );
    assert!(
        live_pods(&client, "default", "app=fg").await.is_empty(),
        "pods left"
    );
}
