use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};

use crate::common::{wait_for, Cluster};

const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n";

async fn ca_of(api: &Api<ConfigMap>) -> Option<String> {
    api.get_opt("kube-root-ca.crt")
        .await
        .ok()
        .flatten()?
        .data?
        .get("ca.crt")
        .cloned()
}

#[tokio::test]
async fn root_ca_is_published_in_every_namespace_and_repaired() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = dir.path().join("ca.crt");
    std::fs::write(&ca_file, PEM).expect("write ca");
    let flag = format!("--root-ca-file={}", ca_file.display());
    let cluster = Cluster::start(&["--controllers=root-ca-cert-publisher", &flag]);
    let client = cluster.client().await;
    for ns in ["default", "kube-system"] {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        let ca = wait_for(
            &format!("kube-root-ca.crt in {ns}"),
            Duration::from_secs(30),
            || {
                let api = api.clone();
                async move { ca_of(&api).await }
            },
        )
        .await;
        assert_eq!(ca, PEM);
    }
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "team-ca"}})).expect("ns");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create ns");
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "team-ca");
    wait_for(
        "kube-root-ca.crt in team-ca",
        Duration::from_secs(20),
        || {
            let api = api.clone();
            async move { ca_of(&api).await.filter(|c| c == PEM) }
        },
    )
    .await;
    let cm = api.get("kube-root-ca.crt").await.expect("get");
    let description = cm
        .metadata
        .annotations
        .unwrap_or_default()
        .get("kubernetes.io/description")
        .cloned()
        .unwrap_or_default();
    assert!(
        description.starts_with("Contains a CA bundle"),
        "{description}"
    );

    // Edited: put back. Deleted: re-created.
    let edit = serde_json::json!({"data": {"ca.crt": "tampered"}});
    api.patch(
        "kube-root-ca.crt",
        &PatchParams::default(),
        &Patch::Merge(&edit),
    )
    .await
    .expect("patch");
    wait_for("kube-root-ca.crt repaired", Duration::from_secs(20), || {
        let api = api.clone();
        async move { ca_of(&api).await.filter(|c| c == PEM) }
    })
    .await;
    api.delete("kube-root-ca.crt", &DeleteParams::default())
        .await
        .expect("delete");
    wait_for(
        "kube-root-ca.crt re-created",
        Duration::from_secs(20),
        || {
            let api = api.clone();
            async move { ca_of(&api).await.filter(|c| c == PEM) }
        },
    )
    .await;
}
