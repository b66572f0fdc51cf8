//! `metrics.k8s.io/v1beta1` from kubelet summaries: a fake kubelet (its HTTP API
//! is the interface) registered as a Node's address serves `/stats/summary`; the
//! apiserver answers NodeMetrics/PodMetrics, and both kubectls' `top` work.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;

use serde_json::{json, Value};
use test_support::{kubectl, kubectl_stdin, KubectlOutput};

/// Serves `body` on every request to 127.0.0.1:`port` until the process ends.
fn fake_kubelet(port: u16, body: String) {
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind fake kubelet");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                // A TLS ClientHello (record type 22): this kubelet speaks plain
                // HTTP, so hang up and let the apiserver fall back to it.
                if buf.first() == Some(&0x16) {
                    break;
                }
            }
            if buf.first() == Some(&0x16) {
                continue;
            }
            let request = String::from_utf8_lossy(&buf);
            let (status, body) = if request.starts_with("GET /stats/summary") {
                ("200 OK", body.as_str())
            } else {
                ("404 Not Found", "404 page not found")
            };
            let _ = write!(stream, "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
    });
}

fn summary() -> Value {
    let t = "2026-01-01T10:00:00Z";
    let container = |name: &str, nano: u64, ws: u64| json!({"name": name, "startTime": "2026-01-01T09:00:00Z", "cpu": {"time": t, "usageNanoCores": nano, "usageCoreNanoSeconds": 1}, "memory": {"time": t, "workingSetBytes": ws}});
    json!({
        "node": {"nodeName": "n1", "cpu": {"time": t, "usageNanoCores": 250_000_000u64, "usageCoreNanoSeconds": 1}, "memory": {"time": t, "workingSetBytes": 2u64 << 30}},
        "pods": [
            {"podRef": {"name": "web-1", "namespace": "default", "uid": "x"}, "containers": [container("web", 100_000_000, 64 << 20)]},
            {"podRef": {"name": "dns-1", "namespace": "kube-system", "uid": "y"}, "containers": [container("dns", 5_000_000, 10 << 20), container("sidecar", 1_000_000, 1 << 20)]},
            {"podRef": {"name": "pending-1", "namespace": "default", "uid": "z"}, "containers": [container("web", 1, 1)]},
        ],
    })
}

fn raw(c: &common::Cluster, path: &str) -> Value {
    let out = kubectl(&c.api, &["get", "--raw", path]);
    out.assert_success();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{path}: {e}: {}", out.stdout))
}

fn apply(c: &common::Cluster, yaml: &str) {
    kubectl_stdin(&c.api, &["apply", "-f", "-"], yaml).assert_success();
}

fn patch_status(c: &common::Cluster, kind: &str, ns: Option<&str>, name: &str, status: Value) {
    let patch = json!({"status": status}).to_string();
    let mut args = vec![
        "patch",
        kind,
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        patch.as_str(),
    ];
    if let Some(ns) = ns {
        args.extend(["-n", ns]);
    }
    kubectl(&c.api, &args).assert_success();
}

fn pod_yaml(name: &str, ns: &str, containers: &[&str]) -> String {
    let containers: String = containers
        .iter()
        .map(|c| format!("  - name: {c}\n    image: busybox\n"))
        .collect();
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    app: {}\nspec:\n  nodeName: n1\n  containers:\n{containers}", name.trim_end_matches("-1"))
}

fn setup() -> common::Cluster {
    let c = common::start();
    let port = test_support::free_port();
    fake_kubelet(port, summary().to_string());
    apply(&c, "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n  namespace: kube-system\n");
    // Created with its status, as a kubelet registers (a later merge patch of
    // node status loses daemonEndpoints in our apiserver today).
    let node = json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {"zone": "a"}},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": "n1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        },
    });
    kubectl_stdin(&c.api, &["create", "-f", "-"], &node.to_string()).assert_success();
    apply(&c, &pod_yaml("web-1", "default", &["web"]));
    apply(&c, &pod_yaml("dns-1", "kube-system", &["dns", "sidecar"]));
    apply(&c, &pod_yaml("pending-1", "default", &["web"]));
    patch_status(
        &c,
        "pod",
        Some("default"),
        "web-1",
        json!({"phase": "Running"}),
    );
    patch_status(
        &c,
        "pod",
        Some("kube-system"),
        "dns-1",
        json!({"phase": "Running"}),
    );
    c
}

fn lines(out: &KubectlOutput) -> Vec<Vec<String>> {
    out.stdout
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[test]
fn node_and_pod_metrics_from_kubelet_summaries() {
    let c = setup();
    let groups = raw(&c, "/apis");
    assert!(groups["groups"].as_array().into_iter().flatten().any(|g| g["name"] == "metrics.k8s.io" && g["preferredVersion"]["version"] == "v1beta1"), "{groups}");
    let resources = raw(&c, "/apis/metrics.k8s.io/v1beta1");
    assert_eq!(resources["resources"][0]["kind"], "NodeMetrics");

    let nodes = raw(&c, "/apis/metrics.k8s.io/v1beta1/nodes");
    assert_eq!(nodes["kind"], "NodeMetricsList");
    let n1 = &nodes["items"][0];
    assert_eq!(
        (
            n1["metadata"]["name"].as_str(),
            n1["metadata"]["labels"]["zone"].as_str()
        ),
        (Some("n1"), Some("a"))
    );
    assert_eq!(n1["usage"], json!({"cpu": "250m", "memory": "2Gi"}));
    assert_eq!(
        (n1["timestamp"].as_str(), n1["window"].as_str()),
        (Some("2026-01-01T10:00:00Z"), Some("30s"))
    );
    assert_eq!(
        raw(&c, "/apis/metrics.k8s.io/v1beta1/nodes/n1")["kind"],
        "NodeMetrics"
    );
    assert_eq!(
        raw(
            &c,
            "/apis/metrics.k8s.io/v1beta1/nodes?labelSelector=zone%3Db"
        )["items"],
        json!([])
    );

    let web = raw(
        &c,
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web-1",
    );
    assert_eq!(web["kind"], "PodMetrics");
    assert_eq!(
        web["containers"],
        json!([{"name": "web", "usage": {"cpu": "100m", "memory": "64Mi"}}])
    );
    // Only running pods have metrics.
    let pending = kubectl(
        &c.api,
        &[
            "get",
            "--raw",
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/pending-1",
        ],
    );
    assert!(
        pending.stderr.contains("NotFound") || pending.stderr.contains("not found"),
        "{pending}"
    );
    let all = raw(&c, "/apis/metrics.k8s.io/v1beta1/pods");
    let names: Vec<&str> = all["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    // Sorted by namespace, then name.
    assert_eq!(names, ["web-1", "dns-1"]);
    let selected = raw(
        &c,
        "/apis/metrics.k8s.io/v1beta1/pods?labelSelector=app%3Ddns",
    );
    assert_eq!(selected["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(selected["items"][0]["metadata"]["labels"]["app"], "dns");
}

#[test]
fn upstream_kubectl_top_nodes_and_pods() {
    let c = setup();
    let out = kubectl(&c.api, &["top", "nodes"]);
    out.assert_success();
    let rows = lines(&out);
    assert_eq!(
        rows[0][..2],
        ["NAME".to_string(), "CPU(cores)".to_string()],
        "{out}"
    );
    assert_eq!(
        rows[1][..3],
        ["n1".to_string(), "250m".to_string(), "6%".to_string()],
        "{out}"
    );
    let out = kubectl(&c.api, &["top", "pods", "-A"]);
    out.assert_success();
    assert!(
        out.stdout.contains("kube-system")
            && out.stdout.contains("dns-1")
            && out.stdout.contains("6m"),
        "{out}"
    );
    let out = kubectl(&c.api, &["top", "pod", "web-1", "--containers"]);
    out.assert_success();
    assert!(
        out.stdout.contains("web-1") && out.stdout.contains("100m") && out.stdout.contains("64Mi"),
        "{out}"
    );
    let out = kubectl(
        &c.api,
        &["top", "pods", "-n", "kube-system", "-l", "app=dns"],
    );
    out.assert_success();
    assert_eq!(lines(&out).len(), 2, "{out}");
}
