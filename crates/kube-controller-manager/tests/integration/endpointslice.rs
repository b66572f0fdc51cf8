use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::common::{wait_default_sa, wait_for, Cluster};
use crate::endpoints::{create_pod, create_service, set_pod_status};

const T: Duration = Duration::from_secs(30);

async fn slices_of(api: &Api<EndpointSlice>, svc: &str) -> Vec<EndpointSlice> {
    let lp = ListParams::default().labels(&format!("kubernetes.io/service-name={svc}"));
    let mut items = api.list(&lp).await.map(|l| l.items).unwrap_or_default();
    items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    items
}

fn endpoint<'a>(slices: &'a [EndpointSlice], ip: &str) -> Option<&'a Endpoint> {
    slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .find(|e| e.addresses.first().map(String::as_str) == Some(ip))
}

/// (ready, serving, terminating) of an endpoint.
fn conditions(e: &Endpoint) -> (Option<bool>, Option<bool>, Option<bool>) {
    let c = e.conditions.clone().unwrap_or_default();
    (c.ready, c.serving, c.terminating)
}

#[tokio::test]
async fn endpointslices_list_pods_update_in_place_and_split_at_the_maximum() {
    let cluster = Cluster::start(&[
        "--controllers=serviceaccount,endpointslice",
        "--max-endpoints-per-slice=3",
    ]);
    let client = cluster.client().await;
    wait_default_sa(&client, "default").await;
    let node: Node = serde_json::from_value(
        json!({"metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "zone-a"}}}),
    )
    .expect("node");
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .expect("create node");
    let svc = create_service(
        &client,
        "default",
        json!({"metadata": {"name": "web", "labels": {"team": "a"}}, "spec": {"selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}),
    )
    .await;
    let svc_uid = svc.metadata.uid.clone().expect("uid");
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");

    create_pod(&client, "default", "a", json!({"app": "web"}), "n1", 8080).await;
    create_pod(&client, "default", "b", json!({"app": "web"}), "n1", 8080).await;
    set_pod_status(&client, "default", "a", "10.1.0.1", true).await;
    set_pod_status(&client, "default", "b", "10.1.0.2", false).await;
    let slices = wait_for("slice with a and b", T, || async {
        let s = slices_of(&api, "web").await;
        (s.len() == 1 && s[0].endpoints.len() == 2).then_some(s)
    })
    .await;
    let slice = &slices[0];
    let name = slice.metadata.name.clone().expect("name");
    assert!(
        name.starts_with("web-") && name.len() == "web-".len() + 5,
        "{name}"
    );
    let labels = slice.metadata.labels.clone().expect("labels");
    assert_eq!(
        labels.get("kubernetes.io/service-name").map(String::as_str),
        Some("web")
    );
    assert_eq!(
        labels
            .get("endpointslice.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("endpointslice-controller.k8s.io")
    );
    assert_eq!(labels.get("team").map(String::as_str), Some("a"));
    let owner = &slice.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.uid.as_str(),
            owner.controller
        ),
        ("Service", "web", svc_uid.as_str(), Some(true))
    );
    assert_eq!(slice.address_type, "IPv4");
    let port = &slice.ports.as_ref().expect("ports")[0];
    assert_eq!(
        (port.name.as_deref(), port.port, port.protocol.as_deref()),
        (Some("http"), Some(8080), Some("TCP"))
    );
    let a = endpoint(&slices, "10.1.0.1").expect("a");
    assert_eq!(conditions(a), (Some(true), Some(true), Some(false)));
    assert_eq!(
        (a.node_name.as_deref(), a.zone.as_deref()),
        (Some("n1"), Some("zone-a"))
    );
    let target = a.target_ref.as_ref().expect("targetRef");
    assert_eq!(
        (target.kind.as_deref(), target.name.as_deref()),
        (Some("Pod"), Some("a"))
    );
    assert_eq!(
        conditions(endpoint(&slices, "10.1.0.2").expect("b")),
        (Some(false), Some(false), Some(false))
    );

    // b becomes ready: the same slice is updated in place.
    set_pod_status(&client, "default", "b", "10.1.0.2", true).await;
    let slices = wait_for("b ready", T, || async {
        let s = slices_of(&api, "web").await;
        endpoint(&s, "10.1.0.2")
            .is_some_and(|e| conditions(e).0 == Some(true))
            .then_some(s)
    })
    .await;
    assert_eq!(slices.len(), 1);
    assert_eq!(slices[0].metadata.name.as_deref(), Some(name.as_str()));
    assert_eq!(slices[0].metadata.uid, slice.metadata.uid);

    // A terminating pod: not ready, still serving, terminating.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"finalizers": ["test.example.com/keep"]}})),
    )
    .await
    .expect("finalizer");
    pods.delete("a", &DeleteParams::default())
        .await
        .expect("delete a");
    wait_for("a terminating", T, || async {
        let s = slices_of(&api, "web").await;
        endpoint(&s, "10.1.0.1")
            .is_some_and(|e| conditions(e) == (Some(false), Some(true), Some(true)))
            .then_some(())
    })
    .await;

    // Seven pods with at most three per slice: three slices, every pod once.
    for i in 3..=7 {
        let name = format!("p{i}");
        create_pod(&client, "default", &name, json!({"app": "web"}), "n1", 8080).await;
        set_pod_status(&client, "default", &name, &format!("10.1.0.{i}"), true).await;
    }
    let slices = wait_for("7 endpoints in 3 slices", T, || async {
        let s = slices_of(&api, "web").await;
        let total: usize = s.iter().map(|s| s.endpoints.len()).sum();
        (total == 7 && s.len() == 3).then_some(s)
    })
    .await;
    assert!(slices.iter().all(|s| s.endpoints.len() <= 3));
    let ips: BTreeSet<&str> = slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .map(|e| e.addresses[0].as_str())
        .collect();
    assert_eq!(ips.len(), 7);
    // The first slice survived all of this.
    assert!(slices
        .iter()
        .any(|s| s.metadata.name.as_deref() == Some(name.as_str())));

    // A headless service over the same pods gets its own, marked slices.
    create_service(
        &client,
        "default",
        json!({"metadata": {"name": "hl"}, "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 8080}]}}),
    )
    .await;
    let hl = wait_for("headless slices", T, || async {
        let s = slices_of(&api, "hl").await;
        let total: usize = s.iter().map(|s| s.endpoints.len()).sum();
        (total == 7).then_some(s)
    })
    .await;
    assert!(hl.iter().all(|s| s
        .metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key("service.kubernetes.io/headless"))));

    // Release the finalizer and confirm the deletion as a kubelet would: gone.
    pods.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("unfinalize");
    pods.delete(
        "a",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .expect("force delete a");
    wait_for("a gone from slices", T, || async {
        let s = slices_of(&api, "web").await;
        endpoint(&s, "10.1.0.1").is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn endpointslices_of_a_service_without_pods_is_a_placeholder_and_is_recreated() {
    let cluster = Cluster::start(&["--controllers=endpointslice"]);
    let client = cluster.client().await;
    create_service(&client, "default", json!({"metadata": {"name": "empty"}, "spec": {"selector": {"app": "none"}, "ports": [{"port": 80}]}}))
        .await;
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let first = wait_for("placeholder slice", T, || async {
        let s = slices_of(&api, "empty").await;
        (s.len() == 1).then_some(s)
    })
    .await;
    assert!(first[0].endpoints.is_empty());
    // Deleted by hand: written again.
    let name = first[0].metadata.name.clone().expect("name");
    api.delete(&name, &DeleteParams::default())
        .await
        .expect("delete slice");
    wait_for("slice recreated", T, || async {
        let s = slices_of(&api, "empty").await;
        (s.len() == 1 && s[0].metadata.name.as_deref() != Some(name.as_str())).then_some(())
    })
    .await;
    // And stays one.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(slices_of(&api, "empty").await.len(), 1);
}
