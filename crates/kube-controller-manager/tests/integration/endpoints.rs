use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::common::{wait_default_sa, wait_for, Cluster};

const T: Duration = Duration::from_secs(30);

/// Creates a pod (container port `http` = `http_port`) on `node` and gives it a
/// status as a kubelet would: Running with `ip`, Ready as asked.
pub async fn create_pod(
    client: &kube::Client,
    ns: &str,
    name: &str,
    labels: serde_json::Value,
    node: &str,
    http_port: i32,
) -> Pod {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox",
            "ports": [{"name": "http", "containerPort": http_port}]}]}
    }))
    .expect("pod");
    api.create(&PostParams::default(), &pod)
        .await
        .expect("create pod")
}

/// Sets the pod Running with `ip`, Ready or not.
pub async fn set_pod_status(client: &kube::Client, ns: &str, name: &str, ip: &str, ready: bool) {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let status = if ready { "True" } else { "False" };
    let now =
        k8s_openapi::jiff::Timestamp::from_second(k8s_openapi::jiff::Timestamp::now().as_second())
            .expect("now")
            .to_string();
    let patch = json!({"status": {
    "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "10.0.0.1",
    "conditions": [
        {"type": "Ready", "status": status, "lastTransitionTime": now},
        {"type": "ContainersReady", "status": status, "lastTransitionTime": now}
    ]}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch pod status");
}

pub async fn create_service(client: &kube::Client, ns: &str, spec: serde_json::Value) -> Service {
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    let svc: Service = serde_json::from_value(spec).expect("service");
    api.create(&PostParams::default(), &svc)
        .await
        .expect("create service")
}

/// (ready ips with port, not-ready ips with port), sorted.
type Seen = (Vec<(String, i32)>, Vec<(String, i32)>);

fn summarize(ep: &Endpoints) -> Seen {
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    for s in ep.subsets.iter().flatten() {
        for p in s.ports.iter().flatten() {
            for a in s.addresses.iter().flatten() {
                ready.push((a.ip.clone(), p.port));
            }
            for a in s.not_ready_addresses.iter().flatten() {
                not_ready.push((a.ip.clone(), p.port));
            }
        }
    }
    ready.sort();
    not_ready.sort();
    (ready, not_ready)
}

fn pairs(v: &[(&str, i32)]) -> Vec<(String, i32)> {
    v.iter().map(|(ip, p)| (ip.to_string(), *p)).collect()
}

async fn wait_endpoints(api: &Api<Endpoints>, name: &str, want: Seen) -> Endpoints {
    wait_for(&format!("endpoints {name} = {want:?}"), T, || async {
        let ep = api.get_opt(name).await.ok().flatten()?;
        (summarize(&ep) == want).then_some(ep)
    })
    .await
}

#[tokio::test]
async fn endpoints_track_ready_and_not_ready_pods_named_ports_and_selector_changes() {
    let cluster = Cluster::start(&["--controllers=serviceaccount,endpoint"]);
    let client = cluster.client().await;
    wait_default_sa(&client, "default").await;
    let svc = create_service(
        &client,
        "default",
        json!({"metadata": {"name": "web", "labels": {"team": "a"}}, "spec": {"selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}, {"name": "metrics", "port": 9100, "targetPort": 9100}]}}),
    )
    .await;
    let api: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    // No pods yet: an empty Endpoints object.
    let ep = wait_for("empty endpoints", T, || async {
        api.get_opt("web").await.ok().flatten()
    })
    .await;
    assert!(ep.subsets.as_ref().is_none_or(Vec::is_empty), "{ep:?}");
    assert_eq!(
        ep.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("team"))
            .map(String::as_str),
        Some("a")
    );

    create_pod(&client, "default", "a", json!({"app": "web"}), "n1", 8080).await;
    create_pod(&client, "default", "b", json!({"app": "web"}), "n2", 8081).await;
    create_pod(
        &client,
        "default",
        "other",
        json!({"app": "other"}),
        "n1",
        8080,
    )
    .await;
    set_pod_status(&client, "default", "a", "10.1.0.1", true).await;
    set_pod_status(&client, "default", "b", "10.1.0.2", false).await;
    set_pod_status(&client, "default", "other", "10.1.0.3", true).await;
    let ep = wait_endpoints(
        &api,
        "web",
        (
            pairs(&[("10.1.0.1", 8080), ("10.1.0.1", 9100)]),
            pairs(&[("10.1.0.2", 8081), ("10.1.0.2", 9100)]),
        ),
    )
    .await;
    // Ports are named as the service ports; addresses name their pod and node.
    let subset = ep
        .subsets
        .iter()
        .flatten()
        .find(|s| s.addresses.is_some())
        .expect("ready subset");
    let addr = &subset.addresses.as_ref().expect("addresses")[0];
    assert_eq!(addr.node_name.as_deref(), Some("n1"));
    let target = addr.target_ref.as_ref().expect("targetRef");
    assert_eq!(
        (
            target.kind.as_deref(),
            target.name.as_deref(),
            target.namespace.as_deref()
        ),
        (Some("Pod"), Some("a"), Some("default"))
    );
    let names: Vec<_> = ep
        .subsets
        .iter()
        .flatten()
        .flat_map(|s| s.ports.iter().flatten())
        .filter_map(|p| p.name.clone())
        .collect();
    assert!(
        names.contains(&"http".to_string()) && names.contains(&"metrics".to_string()),
        "{names:?}"
    );
    assert!(ep
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("endpoints.kubernetes.io/last-change-trigger-time")));

    // b becomes ready.
    set_pod_status(&client, "default", "b", "10.1.0.2", true).await;
    wait_endpoints(
        &api,
        "web",
        (
            pairs(&[
                ("10.1.0.1", 8080),
                ("10.1.0.1", 9100),
                ("10.1.0.2", 8081),
                ("10.1.0.2", 9100),
            ]),
            vec![],
        ),
    )
    .await;

    // Pod relabelled away: dropped.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.patch(
        "b",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"labels": {"app": "gone"}}})),
    )
    .await
    .expect("relabel");
    wait_endpoints(
        &api,
        "web",
        (pairs(&[("10.1.0.1", 8080), ("10.1.0.1", 9100)]), vec![]),
    )
    .await;

    // Service selector changed: now the other pod.
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    svcs.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"selector": {"app": "other"}}})),
    )
    .await
    .expect("reselect");
    wait_endpoints(
        &api,
        "web",
        (pairs(&[("10.1.0.3", 8080), ("10.1.0.3", 9100)]), vec![]),
    )
    .await;

    // A terminal pod drops out.
    pods.patch_status(
        "other",
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": {"phase": "Succeeded"}})),
    )
    .await
    .expect("terminal");
    wait_endpoints(&api, "web", (vec![], vec![])).await;

    // The service goes: so do its endpoints.
    svcs.delete("web", &DeleteParams::default())
        .await
        .expect("delete svc");
    wait_for("endpoints deleted", T, || async {
        api.get_opt("web")
            .await
            .ok()
            .and_then(|e| e.is_none().then_some(()))
    })
    .await;
    drop(svc);
}

#[tokio::test]
async fn endpoints_publish_not_ready_and_leave_selectorless_services_alone() {
    let cluster = Cluster::start(&["--controllers=serviceaccount,endpoint"]);
    let client = cluster.client().await;
    wait_default_sa(&client, "default").await;
    create_service(
        &client,
        "default",
        json!({"metadata": {"name": "all"}, "spec": {"selector": {"app": "db"}, "publishNotReadyAddresses": true,
            "ports": [{"port": 5432}]}}),
    )
    .await;
    create_service(
        &client,
        "default",
        json!({"metadata": {"name": "manual"}, "spec": {"ports": [{"port": 80}]}}),
    )
    .await;
    let api: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let manual: Endpoints = serde_json::from_value(json!({"metadata": {"name": "manual"},
        "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 80}]}]}))
    .expect("endpoints");
    api.create(&PostParams::default(), &manual)
        .await
        .expect("create manual endpoints");
    create_pod(&client, "default", "db", json!({"app": "db"}), "n1", 5432).await;
    set_pod_status(&client, "default", "db", "10.1.0.9", false).await;
    wait_endpoints(&api, "all", (pairs(&[("10.1.0.9", 5432)]), vec![])).await;
    // The hand-written endpoints of the selector-less service are untouched.
    let manual = api.get("manual").await.expect("manual");
    assert_eq!(summarize(&manual), (pairs(&[("192.0.2.10", 80)]), vec![]));
}
