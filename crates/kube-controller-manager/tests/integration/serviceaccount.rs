use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams};

use crate::common::{wait_for, Cluster};

#[tokio::test]
async fn default_service_account_in_every_namespace_and_recreated() {
    let cluster = Cluster::start(&["--controllers=serviceaccount"]);
    let client = cluster.client().await;
    // Namespaces that exist at start-up get one.
    for ns in ["default", "kube-system"] {
        let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
        wait_for(
            &format!("default SA in {ns}"),
            Duration::from_secs(30),
            || {
                let api = api.clone();
                async move { api.get_opt("default").await.ok().flatten() }
            },
        )
        .await;
    }
    // A new namespace gets one, and pods can then be created through kubectl.
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "team-a"}})).expect("ns");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create ns");
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), "team-a");
    let first = wait_for("default SA in team-a", Duration::from_secs(20), || {
        let api = api.clone();
        async move { api.get_opt("default").await.ok().flatten() }
    })
    .await;
    cluster
        .kubectl(&[
            "run",
            "p",
            "-n",
            "team-a",
            "--image=busybox",
            "--restart=Never",
        ])
        .assert_success();

    // Deleted: re-created (a new uid).
    api.delete("default", &DeleteParams::default())
        .await
        .expect("delete sa");
    let second = wait_for("default SA re-created", Duration::from_secs(20), || {
        let api = api.clone();
        let old_uid = first.metadata.uid.clone();
        async move {
            api.get_opt("default")
                .await
                .ok()
                .flatten()
                .filter(|sa| sa.metadata.uid != old_uid)
        }
    })
    .await;
    assert_eq!(second.metadata.name.as_deref(), Some("default"));
}
