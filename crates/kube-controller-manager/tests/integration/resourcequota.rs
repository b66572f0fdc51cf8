use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, ResourceQuota};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;

use crate::common::{create_json, wait_default_sa, wait_for, Cluster};

const T: Duration = Duration::from_secs(30);
const NS: &str = "quota";

fn pod(name: &str, cpu: &str, memory: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS}, "spec": {"containers": [{
        "name": "c", "image": "busybox",
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}}}]}})
}

/// Quantities compared by value: admission and the controller may print the same
/// amount differently (`536870912` vs `512Mi`), as upstream compares with `quota.Equals`.
fn milli(q: &str) -> i64 {
    api_types::quantity::ParsedQuantity::parse(q)
        .map(|q| q.milli_value())
        .unwrap_or(i64::MIN)
}

/// Waits until status.used equals `want` by value.
async fn wait_used(client: &Client, want: &[(&str, &str)]) {
    let want: BTreeMap<String, i64> = want
        .iter()
        .map(|(k, v)| (k.to_string(), milli(v)))
        .collect();
    let api: Api<ResourceQuota> = Api::namespaced(client.clone(), NS);
    let mut last = BTreeMap::new();
    let result = tokio::time::timeout(T, async {
        loop {
            if let Ok(q) = api.get("compute").await {
                let used: BTreeMap<String, String> = q
                    .status
                    .and_then(|s| s.used)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect();
                let values: BTreeMap<String, i64> =
                    used.iter().map(|(k, v)| (k.clone(), milli(v))).collect();
                if values == want {
                    return;
                }
                last = used;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        result.is_ok(),
        "status.used stayed {last:?}, want (milli) {want:?}"
    );
}

#[tokio::test]
async fn resourcequota_status_tracks_usage_and_admission_agrees() {
    let cluster = Cluster::start(&["--controllers=serviceaccount,resourcequota"]);
    let client = cluster.client().await;
    create_json(
        &client,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
    )
    .await;
    wait_default_sa(&client, NS).await;
    let hard = json!({"pods": "4", "count/pods": "10", "requests.cpu": "2", "requests.memory": "2Gi", "limits.memory": "2Gi", "configmaps": "5", "services": "2"});
    create_json(&client, json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "compute", "namespace": NS}, "spec": {"hard": hard}})).await;
    let zero = [
        ("configmaps", "0"),
        ("count/pods", "0"),
        ("limits.memory", "0"),
        ("pods", "0"),
        ("requests.cpu", "0"),
        ("requests.memory", "0"),
        ("services", "0"),
    ];
    wait_used(&client, &zero).await;
    let api: Api<ResourceQuota> = Api::namespaced(client.clone(), NS);
    let status_hard = api
        .get("compute")
        .await
        .expect("quota")
        .status
        .and_then(|s| s.hard)
        .expect("status.hard");
    assert_eq!(serde_json::to_value(&status_hard).expect("json"), hard);

    create_json(&client, pod("a", "500m", "256Mi")).await;
    create_json(&client, pod("b", "500m", "256Mi")).await;
    create_json(&client, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": NS}})).await;
    create_json(&client, json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": NS}, "spec": {"ports": [{"port": 80}]}})).await;
    wait_used(
        &client,
        &[
            ("configmaps", "1"),
            ("count/pods", "2"),
            ("limits.memory", "512Mi"),
            ("pods", "2"),
            ("requests.cpu", "1"),
            ("requests.memory", "512Mi"),
            ("services", "1"),
        ],
    )
    .await;

    // A finished pod gives back its compute and `pods`, but still counts as an object.
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    pods.patch_status(
        "a",
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": {"phase": "Succeeded"}})),
    )
    .await
    .expect("finish pod");
    Api::<ConfigMap>::namespaced(client.clone(), NS)
        .delete("cm", &Default::default())
        .await
        .expect("delete cm");
    wait_used(
        &client,
        &[
            ("configmaps", "0"),
            ("count/pods", "2"),
            ("limits.memory", "256Mi"),
            ("pods", "1"),
            ("requests.cpu", "500m"),
            ("requests.memory", "256Mi"),
            ("services", "1"),
        ],
    )
    .await;

    // Admission charges on top of what the controller computed: three more fit, the fifth does not.
    for name in ["c", "d", "e"] {
        create_json(&client, pod(name, "100m", "64Mi")).await;
    }
    let extra: Pod = serde_json::from_value(pod("f", "100m", "64Mi")).expect("pod");
    let err = pods
        .create(&PostParams::default(), &extra)
        .await
        .expect_err("over quota");
    assert!(err.to_string().contains("exceeded quota: compute"), "{err}");
    wait_for("usage after admission", T, || {
        let api = api.clone();
        async move {
            let used = api.get("compute").await.ok()?.status?.used?;
            (used.get("pods")?.0 == "4" && used.get("requests.cpu")?.0 == "800m").then_some(())
        }
    })
    .await;
    let out = cluster.kubectl(&["describe", "quota", "compute", "-n", NS]);
    out.assert_success();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["requests.cpu", "800m", "2"]),
        "{out}"
    );
}
