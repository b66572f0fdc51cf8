//! Service IP and node port allocation against a real etcd: two allocators (two
//! "apiservers") sharing one etcd must never hand out the same value.

use std::{collections::BTreeSet, sync::Arc};

use base64::Engine;
use kube_apiserver::{
    allocator::{ServiceAllocator, SERVICE_IPS_KEY, SERVICE_NODE_PORTS_KEY},
    storage::{EtcdTls, Storage},
};
use serde_json::{json, Value};
use test_support::Etcd;

const CIDR: &str = "10.254.0.0/24";
const PORTS: &str = "30000-30199";

async fn storage(etcd: &Etcd) -> Arc<Storage> {
    Arc::new(
        Storage::connect(&[etcd.endpoint()], &EtcdTls::default())
            .await
            .expect("etcd connects"),
    )
}

/// Two allocators with their own etcd connections, like two apiservers.
async fn two_apiservers(etcd: &Etcd) -> (Arc<ServiceAllocator>, Arc<ServiceAllocator>) {
    let a = ServiceAllocator::new(storage(etcd).await, CIDR, PORTS).expect("valid ranges");
    let b = ServiceAllocator::new(storage(etcd).await, CIDR, PORTS).expect("valid ranges");
    (Arc::new(a), Arc::new(b))
}

fn service(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

fn cluster_ip(svc: &Value) -> String {
    svc["spec"]["clusterIP"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn node_port(svc: &Value, i: usize) -> i64 {
    svc["spec"]["ports"][i]["nodePort"].as_i64().unwrap_or(0)
}

/// How many values the stored bitmap marks allocated.
async fn stored_count(storage: &Storage, key: &str) -> u32 {
    let stored = storage
        .get(key)
        .await
        .expect("etcd get")
        .expect("bitmap stored");
    let v: Value = serde_json::from_slice(&stored.value).expect("json");
    assert_eq!(v["kind"], "RangeAllocation");
    let data = base64::engine::general_purpose::STANDARD
        .decode(v["data"].as_str().unwrap_or_default())
        .expect("base64");
    data.iter().map(|b| b.count_ones()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_allocations_from_two_apiservers_never_collide() {
    let etcd = Etcd::start().expect("etcd starts");
    let (a, b) = two_apiservers(&etcd).await;
    let mut tasks = Vec::new();
    for i in 0..100 {
        let alloc = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut svc = service(
                &format!("s{i}"),
                json!({"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP"}]}),
            );
            alloc.allocate(&mut svc, false).await.map(|()| svc)
        }));
    }
    let mut ips = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for t in tasks {
        let svc = t
            .await
            .expect("task")
            .unwrap_or_else(|e| panic!("allocation failed: {}", e.message));
        let ip = cluster_ip(&svc);
        assert!(
            ip.starts_with("10.254.0.") && ip != "10.254.0.0" && ip != "10.254.0.255",
            "{ip}"
        );
        assert_ne!(
            ip, "10.254.0.1",
            "the kubernetes service IP is never handed out at random"
        );
        assert_eq!(svc["spec"]["clusterIPs"], json!([ip]));
        assert!(ips.insert(ip.clone()), "IP {ip} handed out twice");
        let port = node_port(&svc, 0);
        assert!((30000..=30199).contains(&port), "{port}");
        assert!(ports.insert(port), "node port {port} handed out twice");
    }
    assert_eq!(ips.len(), 100);
    let s = storage(&etcd).await;
    assert_eq!(stored_count(&s, SERVICE_IPS_KEY).await, 100);
    assert_eq!(stored_count(&s, SERVICE_NODE_PORTS_KEY).await, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requested_ips_are_checked_and_released() {
    let etcd = Etcd::start().expect("etcd starts");
    let (a, b) = two_apiservers(&etcd).await;

    let mut first = service(
        "first",
        json!({"type": "ClusterIP", "clusterIP": "10.254.0.10", "clusterIPs": ["10.254.0.10"], "ports": [{"port": 80}]}),
    );
    a.allocate(&mut first, false).await.expect("free IP");
    assert_eq!(cluster_ip(&first), "10.254.0.10");
    assert_eq!(first["spec"]["ipFamilies"], json!(["IPv4"]));

    let mut second = service(
        "second",
        json!({"type": "ClusterIP", "clusterIP": "10.254.0.10", "clusterIPs": ["10.254.0.10"], "ports": [{"port": 80}]}),
    );
    let err = b
        .allocate(&mut second, false)
        .await
        .expect_err("taken by the other apiserver");
    assert_eq!(err.code, 422);
    assert_eq!(
        err.message,
        "Service \"second\" is invalid: spec.clusterIPs: Invalid value: []string{\"10.254.0.10\"}: failed to allocate IP 10.254.0.10: provided IP is already allocated"
    );

    let mut outside = service(
        "outside",
        json!({"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"], "ports": [{"port": 80}]}),
    );
    let err = a
        .allocate(&mut outside, false)
        .await
        .expect_err("not in range");
    assert_eq!(
        err.message,
        "Service \"outside\" is invalid: spec.clusterIPs: Invalid value: []string{\"10.0.0.1\"}: failed to allocate IP 10.0.0.1: the provided IP (10.0.0.1) is not in the valid range. The range of valid IPs is 10.254.0.0/24"
    );
    let mut broadcast = service(
        "bc",
        json!({"clusterIP": "10.254.0.255", "clusterIPs": ["10.254.0.255"], "ports": [{"port": 80}]}),
    );
    assert_eq!(
        a.allocate(&mut broadcast, false).await.map_err(|e| e.code),
        Err(422)
    );

    // A dry run checks but persists nothing.
    let mut dry = service(
        "dry",
        json!({"clusterIP": "10.254.0.20", "clusterIPs": ["10.254.0.20"], "ports": [{"port": 80}]}),
    );
    a.allocate(&mut dry, true).await.expect("dry run");
    let mut real = service(
        "real",
        json!({"clusterIP": "10.254.0.20", "clusterIPs": ["10.254.0.20"], "ports": [{"port": 80}]}),
    );
    b.allocate(&mut real, false)
        .await
        .expect("the dry run reserved nothing");

    // Headless and ExternalName services get no IP.
    let mut headless = service("h", json!({"clusterIP": "None", "ports": [{"port": 80}]}));
    a.allocate(&mut headless, false).await.expect("headless");
    assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
    let mut ext = service(
        "e",
        json!({"type": "ExternalName", "externalName": "example.com"}),
    );
    a.allocate(&mut ext, false).await.expect("external name");
    assert!(ext["spec"].get("clusterIP").is_none());

    // Release on one apiserver, re-allocate on the other.
    a.release(&first).await;
    b.allocate(&mut second, false)
        .await
        .expect("released IP is free again");
    assert_eq!(cluster_ip(&second), "10.254.0.10");

    // The kubernetes service IP is allocated only on request.
    let kip = a.reserve_kubernetes_service_ip().await.expect("first IP");
    assert_eq!(kip, "10.254.0.1");
    let mut kubernetes = service(
        "kubernetes",
        json!({"clusterIP": kip, "clusterIPs": [kip], "ports": [{"port": 443}]}),
    );
    b.allocate(&mut kubernetes, false)
        .await
        .expect("explicitly requested");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ports_are_checked_updated_and_released() {
    let etcd = Etcd::start().expect("etcd starts");
    let (a, b) = two_apiservers(&etcd).await;
    let spec = |np: i64| json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": np}]});

    let mut first = service("first", spec(30080));
    a.allocate(&mut first, false).await.expect("free port");
    let mut second = service("second", spec(30080));
    let err = b
        .allocate(&mut second, false)
        .await
        .expect_err("port taken");
    assert_eq!(
        err.message,
        "Service \"second\" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
    );
    // The failed create gave back the cluster IP it had taken.
    let ips_after_failure = stored_count(&*storage(&etcd).await, SERVICE_IPS_KEY).await;
    assert_eq!(ips_after_failure, 1);

    let mut low = service("low", spec(80));
    let err = a.allocate(&mut low, false).await.expect_err("out of range");
    assert_eq!(
        err.message,
        "Service \"low\" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-30199"
    );

    // NodePort -> ClusterIP frees the port; the other apiserver can take it.
    let mut as_cluster_ip = first.clone();
    as_cluster_ip["spec"]["type"] = json!("ClusterIP");
    as_cluster_ip["spec"]["ports"][0]
        .as_object_mut()
        .map(|p| p.remove("nodePort"));
    a.update(&mut as_cluster_ip, &first, false)
        .await
        .expect("type change");
    assert_eq!(
        cluster_ip(&as_cluster_ip),
        cluster_ip(&first),
        "the IP stays"
    );
    let mut second = service("second", spec(30080));
    b.allocate(&mut second, false)
        .await
        .expect("freed by the type change");

    // ClusterIP -> NodePort allocates a port; a resent object keeps it.
    let mut back = as_cluster_ip.clone();
    back["spec"]["type"] = json!("NodePort");
    a.update(&mut back, &as_cluster_ip, false)
        .await
        .expect("type change");
    let port = node_port(&back, 0);
    assert!((30000..=30199).contains(&port) && port != 30080, "{port}");
    let mut resent = back.clone();
    resent["spec"]["ports"][0]
        .as_object_mut()
        .map(|p| p.remove("nodePort"));
    b.update(&mut resent, &back, false)
        .await
        .expect("no-op update");
    assert_eq!(node_port(&resent, 0), port);

    // Delete releases IP and ports.
    a.release(&back).await;
    a.release(&second).await;
    let s = storage(&etcd).await;
    assert_eq!(stored_count(&s, SERVICE_NODE_PORTS_KEY).await, 0);
    assert_eq!(stored_count(&s, SERVICE_IPS_KEY).await, 0);
    let mut again = service("again", spec(30080));
    b.allocate(&mut again, false)
        .await
        .expect("released port is free");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_restores_a_lost_bitmap() {
    let etcd = Etcd::start().expect("etcd starts");
    let (a, b) = two_apiservers(&etcd).await;
    let mut svc = service(
        "web",
        json!({"type": "NodePort", "clusterIP": "10.254.0.50", "clusterIPs": ["10.254.0.50"], "ports": [{"port": 80, "nodePort": 30050}]}),
    );
    a.allocate(&mut svc, false).await.expect("allocated");

    // The bitmaps vanish (etcd restored from an old backup, say).
    let s = storage(&etcd).await;
    let mut kv = s.client().kv_client();
    kv.delete(SERVICE_IPS_KEY, None).await.expect("delete");
    kv.delete(SERVICE_NODE_PORTS_KEY, None)
        .await
        .expect("delete");

    b.repair(std::slice::from_ref(&svc)).await;
    let mut clash = service(
        "clash",
        json!({"type": "NodePort", "clusterIP": "10.254.0.50", "clusterIPs": ["10.254.0.50"], "ports": [{"port": 80}]}),
    );
    assert_eq!(
        a.allocate(&mut clash, false).await.map_err(|e| e.code),
        Err(422),
        "IP re-marked"
    );
    let mut clash = service(
        "clash",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30050}]}),
    );
    assert_eq!(
        a.allocate(&mut clash, false).await.map_err(|e| e.code),
        Err(422),
        "port re-marked"
    );
}
