use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::json;

use crate::common::{create_json, live_pods, mark_pod_ready, wait_default_sa, wait_for, Cluster};

const T: Duration = Duration::from_secs(30);

fn rs_json(name: &str, replicas: i32) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "tier": "fe"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}
            }
        }
    })
}

async fn wait_pod_count(client: &kube::Client, selector: &str, n: usize) -> Vec<Pod> {
    wait_for(&format!("{n} pods with {selector}"), T, || async move {
        let pods = live_pods(client, "default", selector).await;
        (pods.len() == n).then_some(pods)
    })
    .await
}

#[tokio::test]
async fn replicaset_keeps_replicas_reports_status_and_scales_down_not_ready_first() {
    let cluster = Cluster::start(&[]);
    let client = cluster.client().await;
    wait_default_sa(&client, "default").await;
    let rs = create_json(&client, rs_json("web", 3)).await;
    let rs_uid = rs["metadata"]["uid"].as_str().expect("uid").to_string();

    let pods = wait_pod_count(&client, "app=web", 3).await;
    for p in &pods {
        let refs = p
            .metadata
            .owner_references
            .clone()
            .expect("ownerReferences");
        assert_eq!(refs.len(), 1);
        assert_eq!(
            (refs[0].kind.as_str(), refs[0].uid.as_str()),
            ("ReplicaSet", rs_uid.as_str())
        );
        assert_eq!(
            (refs[0].controller, refs[0].block_owner_deletion),
            (Some(true), Some(true))
        );
        assert!(p.name_any().starts_with("web-"), "{}", p.name_any());
        assert_eq!(p.labels().get("tier").map(String::as_str), Some("fe"));
    }

    // Two become ready: one long ago, one just now; the third stays Pending.
    let mut names: Vec<String> = pods.iter().map(|p| p.name_any()).collect();
    names.sort();
    mark_pod_ready(&client, "default", &names[0], 600).await;
    mark_pod_ready(&client, "default", &names[1], 0).await;
    let rs_api: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    wait_for("RS status", T, || {
        let rs_api = rs_api.clone();
        async move {
            let s = rs_api.get("web").await.ok()?.status?;
            (s.replicas == 3
                && s.ready_replicas == Some(2)
                && s.available_replicas == Some(2)
                && s.fully_labeled_replicas == Some(3)
                && s.observed_generation == Some(1))
            .then_some(())
        }
    })
    .await;

    // A deleted pod is replaced.
    Api::<Pod>::namespaced(client.clone(), "default")
        .delete(&names[2], &DeleteParams::default())
        .await
        .expect("delete pod");
    let pods = wait_pod_count(&client, "app=web", 3).await;
    assert!(!pods.iter().any(|p| p.name_any() == names[2]));

    // Scale to 1 with kubectl: the Pending pod goes first, then the one ready for
    // less time; the long-ready pod survives.
    cluster
        .kubectl(&["scale", "rs/web", "--replicas=1"])
        .assert_success();
    let pods = wait_pod_count(&client, "app=web", 1).await;
    assert_eq!(pods[0].name_any(), names[0]);
    wait_for("RS status after scale down", T, || {
        let rs_api = rs_api.clone();
        async move {
            let s = rs_api.get("web").await.ok()?.status?;
            (s.replicas == 1 && s.ready_replicas == Some(1) && s.observed_generation == Some(2))
                .then_some(())
        }
    })
    .await;
    // And it stays at exactly one (no duplicate creations from a stale cache).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(live_pods(&client, "default", "app=web").await.len(), 1);
}

#[tokio::test]
async fn replicaset_adopts_orphans_and_releases_pods_that_stop_matching() {
    let cluster = Cluster::start(&[]);
    let client = cluster.client().await;
    wait_default_sa(&client, "default").await;
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let orphan: Pod = serde_json::from_value(json!({
        "metadata": {"name": "orphan", "labels": {"app": "api"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))
    .expect("pod");
    pods_api
        .create(&PostParams::default(), &orphan)
        .await
        .expect("create orphan");

    let rs = create_json(&client, rs_json("api", 2)).await;
    let rs_uid = rs["metadata"]["uid"].as_str().expect("uid").to_string();
    let pods = wait_pod_count(&client, "app=api", 2).await;
    assert!(
        pods.iter().any(|p| p.name_any() == "orphan"),
        "orphan not kept"
    );
    let adopted = wait_for("orphan adopted", T, || {
        let pods_api = pods_api.clone();
        let rs_uid = rs_uid.clone();
        async move {
            let p = pods_api.get("orphan").await.ok()?;
            p.owner_references()
                .iter()
                .any(|r| r.uid == rs_uid && r.controller == Some(true))
                .then_some(p)
        }
    })
    .await;
    assert_eq!(adopted.owner_references().len(), 1);

    // Relabel the adopted pod: released (no owner) and replaced.
    let patch = json!({"metadata": {"labels": {"app": "debug"}}});
    pods_api
        .patch("orphan", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("relabel");
    wait_for("orphan released", T, || {
        let pods_api = pods_api.clone();
        async move {
            pods_api
                .get("orphan")
                .await
                .ok()?
                .owner_references()
                .is_empty()
                .then_some(())
        }
    })
    .await;
    let pods = wait_pod_count(&client, "app=api", 2).await;
    assert!(!pods.iter().any(|p| p.name_any() == "orphan"));
}

#[tokio::test]
async fn replication_controller_creates_pods_and_reports_status() {
    let cluster = Cluster::start(&[]);
    let client = cluster.client().await;
    wait_default_sa(&client, "default").await;
    cluster
        .kubectl_stdin(
            &["create", "-f", "-"],
            r#"{"apiVersion":"v1","kind":"ReplicationController","metadata":{"name":"legacy"},
                "spec":{"replicas":2,"selector":{"app":"legacy"},
                "template":{"metadata":{"labels":{"app":"legacy"}},"spec":{"containers":[{"name":"c","image":"busybox"}]}}}}"#,
        )
        .assert_success();
    let pods = wait_pod_count(&client, "app=legacy", 2).await;
    assert!(pods.iter().all(|p| p
        .owner_references()
        .iter()
        .any(|r| r.kind == "ReplicationController" && r.name == "legacy")));
    for p in &pods {
        mark_pod_ready(&client, "default", &p.name_any(), 0).await;
    }
    let api: Api<ReplicationController> = Api::namespaced(client.clone(), "default");
    wait_for("RC status", T, || {
        let api = api.clone();
        async move {
            let s = api.get("legacy").await.ok()?.status?;
            (s.replicas == 2 && s.ready_replicas == Some(2) && s.available_replicas == Some(2))
                .then_some(())
        }
    })
    .await;
    let out = cluster.kubectl(&["get", "rc", "legacy", "--no-headers"]);
    out.assert_success();
    assert!(
        out.stdout.split_whitespace().collect::<Vec<_>>()[1..4] == ["2", "2", "2"],
        "{out}"
    );
}
