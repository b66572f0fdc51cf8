use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::common::{
    create_json, live_pods, spawn_fake_kubelet, wait_default_sa, wait_for, Cluster,
};

const T: Duration = Duration::from_secs(30);
const CONTROLLERS: &str = "--controllers=serviceaccount,daemonset,garbagecollector";

async fn create_node(
    client: &Client,
    name: &str,
    labels: serde_json::Value,
    taints: serde_json::Value,
) {
    create_json(client, json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}})).await;
}

/// The node each daemon pod is pinned to through its node-affinity term.
fn pinned_node(p: &Pod) -> String {
    let terms = &p
        .spec
        .as_ref()
        .expect("spec")
        .affinity
        .as_ref()
        .expect("affinity")
        .node_affinity
        .as_ref()
        .expect("node affinity")
        .required_during_scheduling_ignored_during_execution
        .as_ref()
        .expect("required")
        .node_selector_terms;
    assert_eq!(terms.len(), 1);
    let f = &terms[0].match_fields.as_ref().expect("matchFields")[0];
    assert_eq!(
        (f.key.as_str(), f.operator.as_str()),
        ("metadata.name", "In")
    );
    f.values.as_ref().expect("values")[0].clone()
}

async fn wait_nodes(client: &Client, selector: &str, want: &[&str]) -> Vec<Pod> {
    let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
    wait_for(&format!("daemon pods on {want:?}"), T, || {
        let want = want.clone();
        async move {
            let pods = live_pods(client, "default", selector).await;
            let nodes: Vec<String> = pods.iter().map(pinned_node).collect();
            let set: BTreeSet<String> = nodes.iter().cloned().collect();
            (set == want && nodes.len() == want.len()).then_some(pods)
        }
    })
    .await
}

fn ds_json(name: &str, image: &str, node_selector: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"nodeSelector": node_selector, "containers": [{"name": "c", "image": image}]}
            }
        }
    })
}

async fn wait_status(
    client: &Client,
    name: &str,
    check: impl Fn(&k8s_openapi::api::apps::v1::DaemonSetStatus) -> bool,
) {
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), "default");
    wait_for(&format!("status of {name}"), T, || {
        let api = api.clone();
        let check = &check;
        async move {
            api.get(name)
                .await
                .ok()?
                .status
                .filter(|s| check(s))
                .map(|_| ())
        }
    })
    .await;
}

#[tokio::test]
async fn daemonset_runs_one_pod_per_eligible_node_and_follows_node_changes() {
    let cluster = Cluster::start(&[CONTROLLERS]);
    let client = cluster.client().await;
    wait_default_sa(&client, "default").await;
    create_node(&client, "n1", json!({"role": "worker"}), json!([])).await;
    create_node(&client, "n2", json!({"role": "worker"}), json!([])).await;
    create_node(
        &client,
        "n3",
        json!({"role": "worker"}),
        json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
    )
    .await;
    create_node(&client, "edge", json!({"role": "edge"}), json!([])).await;

    let ds = create_json(
        &client,
        ds_json("agent", "agent:1", json!({"role": "worker"})),
    )
    .await;
    let uid = ds["metadata"]["uid"].as_str().expect("uid").to_string();
    let pods = wait_nodes(&client, "app=agent", &["n1", "n2"]).await;
    let revs: Vec<ControllerRevision> =
        Api::<ControllerRevision>::namespaced(client.clone(), "default")
            .list(&Default::default())
            .await
            .expect("revisions")
            .items;
    assert_eq!(revs.len(), 1);
    let hash = revs[0]
        .labels()
        .get("controller-revision-hash")
        .cloned()
        .expect("hash label");
    assert_eq!(revs[0].revision, 1);
    assert_eq!(revs[0].name_any(), format!("agent-{hash}"));
    for p in &pods {
        assert_eq!(p.labels().get("controller-revision-hash"), Some(&hash));
        assert_eq!(
            p.labels()
                .get("pod-template-generation")
                .map(String::as_str),
            Some("1")
        );
        let r = &p.owner_references()[0];
        assert_eq!(
            (r.kind.as_str(), r.uid.as_str(), r.controller),
            ("DaemonSet", uid.as_str(), Some(true))
        );
        let tolerations = p
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.clone())
            .unwrap_or_default();
        for (key, effect) in [
            ("node.kubernetes.io/not-ready", "NoExecute"),
            ("node.kubernetes.io/unschedulable", "NoSchedule"),
            ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ] {
            assert!(
                tolerations.iter().any(|t| t.key.as_deref() == Some(key)
                    && t.effect.as_deref() == Some(effect)
                    && t.operator.as_deref() == Some("Exists")),
                "{key}"
            );
        }
    }
    wait_status(&client, "agent", |s| {
        s.desired_number_scheduled == 2
            && s.current_number_scheduled == 2
            && s.number_ready == 0
            && s.updated_number_scheduled == Some(2)
            && s.observed_generation == Some(1)
    })
    .await;

    // Ready pods are counted.
    let _kubelet = spawn_fake_kubelet(client.clone(), "default", "never");
    wait_status(&client, "agent", |s| {
        s.number_ready == 2 && s.number_available == Some(2) && s.number_misscheduled == 0
    })
    .await;

    // A new worker node gets a pod; untainting n3 makes it eligible too.
    create_node(&client, "n4", json!({"role": "worker"}), json!([])).await;
    wait_nodes(&client, "app=agent", &["n1", "n2", "n4"]).await;
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .patch(
            "n3",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"taints": null}})),
        )
        .await
        .expect("untaint");
    wait_nodes(&client, "app=agent", &["n1", "n2", "n3", "n4"]).await;

    // A node that stops matching loses its pod; a NoExecute taint evicts too.
    nodes
        .patch(
            "n1",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"role": "edge"}}})),
        )
        .await
        .expect("relabel");
    wait_nodes(&client, "app=agent", &["n2", "n3", "n4"]).await;
    let taint = json!({"spec": {"taints": [{"key": "maintenance", "effect": "NoExecute"}]}});
    nodes
        .patch("n2", &PatchParams::default(), &Patch::Merge(&taint))
        .await
        .expect("taint");
    wait_nodes(&client, "app=agent", &["n3", "n4"]).await;
    nodes
        .delete("n4", &Default::default())
        .await
        .expect("delete node");
    wait_nodes(&client, "app=agent", &["n3"]).await;
    wait_status(&client, "agent", |s| {
        s.desired_number_scheduled == 1 && s.current_number_scheduled == 1
    })
    .await;
}

#[tokio::test]
async fn daemonset_rolling_update_replaces_pods_with_new_revision() {
    let cluster = Cluster::start(&[CONTROLLERS]);
    let client = cluster.client().await;
    wait_default_sa(&client, "default").await;
    for n in ["a", "b", "c"] {
        create_node(&client, n, json!({}), json!([])).await;
    }
    let _kubelet = spawn_fake_kubelet(client.clone(), "default", "never");
    create_json(&client, ds_json("logs", "logs:1", json!({}))).await;
    let old = wait_nodes(&client, "app=logs", &["a", "b", "c"]).await;
    wait_status(&client, "logs", |s| s.number_available == Some(3)).await;
    let old_names: BTreeSet<String> = old.iter().map(|p| p.name_any()).collect();

    cluster
        .kubectl(&["set", "image", "ds/logs", "c=logs:2"])
        .assert_success();
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), "default");
    wait_status(&client, "logs", |s| {
        s.observed_generation == Some(2)
            && s.updated_number_scheduled == Some(3)
            && s.number_available == Some(3)
    })
    .await;
    let pods = wait_nodes(&client, "app=logs", &["a", "b", "c"]).await;
    for p in &pods {
        assert!(!old_names.contains(&p.name_any()));
        assert_eq!(
            p.spec.as_ref().expect("spec").containers[0]
                .image
                .as_deref(),
            Some("logs:2")
        );
        assert_eq!(
            p.labels()
                .get("pod-template-generation")
                .map(String::as_str),
            Some("2")
        );
    }
    let mut revs: Vec<ControllerRevision> =
        Api::<ControllerRevision>::namespaced(client.clone(), "default")
            .list(&Default::default())
            .await
            .expect("revisions")
            .items;
    revs.sort_by_key(|r| r.revision);
    assert_eq!(revs.iter().map(|r| r.revision).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(
        pods[0].labels().get("controller-revision-hash"),
        revs[1].labels().get("controller-revision-hash")
    );
    let out = cluster.kubectl(&["rollout", "status", "ds/logs", "--timeout=20s"]);
    out.assert_success();

    // OnDelete: a template change leaves pods alone until they are deleted.
    let patch = json!({"spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": null}, "template": {"spec": {"containers": [{"name": "c", "image": "logs:3"}]}}}});
    api.patch("logs", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch");
    wait_status(&client, "logs", |s| {
        s.observed_generation == Some(3) && s.updated_number_scheduled == Some(0)
    })
    .await;
    let victim = pods
        .iter()
        .find(|p| pinned_node(p) == "b")
        .expect("pod on b")
        .name_any();
    Api::<Pod>::namespaced(client.clone(), "default")
        .delete(&victim, &Default::default())
        .await
        .expect("delete");
    wait_status(&client, "logs", |s| {
        s.updated_number_scheduled == Some(1) && s.current_number_scheduled == 3
    })
    .await;
    let pods = live_pods(&client, "default", "app=logs").await;
    let images: BTreeSet<String> = pods
        .iter()
        .map(|p| {
            p.spec.as_ref().expect("spec").containers[0]
                .image
                .clone()
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(images, ["logs:2".to_string(), "logs:3".to_string()].into());
}
