use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::Api;

use crate::common::{create_json, live_pods, wait_default_sa, wait_for, Cluster};

#[tokio::test]
async fn deleting_a_namespace_deletes_its_content_then_the_namespace() {
    let cluster = Cluster::start(&[]);
    let client = cluster.client().await;
    cluster
        .kubectl(&["create", "namespace", "doomed"])
        .assert_success();
    wait_default_sa(&client, "doomed").await;
    cluster
        .kubectl(&[
            "create",
            "configmap",
            "cfg",
            "-n",
            "doomed",
            "--from-literal=a=b",
        ])
        .assert_success();
    cluster
        .kubectl(&[
            "create",
            "secret",
            "generic",
            "s",
            "-n",
            "doomed",
            "--from-literal=a=b",
        ])
        .assert_success();
    cluster
        .kubectl(&[
            "create",
            "service",
            "clusterip",
            "svc",
            "-n",
            "doomed",
            "--tcp=80:80",
        ])
        .assert_success();
    create_json(
        &client,
        serde_json::json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "rs", "namespace": "doomed"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "x"}},
                     "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
        }),
    )
    .await;
    wait_for("pods of the RS", Duration::from_secs(30), || {
        let client = client.clone();
        async move { (live_pods(&client, "doomed", "app=x").await.len() == 2).then_some(()) }
    })
    .await;

    // kubectl waits for the namespace to be gone.
    let started = Instant::now();
    cluster
        .kubectl(&["delete", "namespace", "doomed", "--timeout=50s"])
        .assert_success();
    assert!(started.elapsed() < Duration::from_secs(50));
    let ns_api: Api<Namespace> = Api::all(client.clone());
    assert!(
        ns_api.get_opt("doomed").await.expect("get ns").is_none(),
        "namespace still exists"
    );
    // Nothing left behind in etcd under the namespace.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    assert!(cms
        .list(&Default::default())
        .await
        .expect("list")
        .items
        .is_empty());
    assert!(live_pods(&client, "doomed", "app=x").await.is_empty());
    // And the name can be used again.
    cluster
        .kubectl(&["create", "namespace", "doomed"])
        .assert_success();
}
