//! Shared set-up for the scheduler's integration tests: real etcd + our apiserver,
//! our scheduler binary as a child process, and kube-rs helpers.

#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, ListParams, PostParams};
use serde_json::{json, Value};
use test_support::{ApiServer, Etcd};

pub const APISERVER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../target/debug/kube-apiserver"
);
pub const SCHEDULER: &str = env!("CARGO_BIN_EXE_kube-scheduler");

pub struct Cluster {
    pub apiserver: ApiServer,
    pub etcd: Etcd,
}

impl Cluster {
    pub fn start() -> Cluster {
        assert!(
            Path::new(APISERVER).exists(),
            "{APISERVER} is missing: run `cargo build -p kube-apiserver` first"
        );
        let etcd = Etcd::start().expect("etcd");
        let apiserver = ApiServer::start(
            Path::new(APISERVER),
            &etcd,
            &["--disable-admission-plugins=ServiceAccount"],
        )
        .expect("apiserver");
        Cluster { apiserver, etcd }
    }

    pub async fn client(&self) -> kube::Client {
        kube_common::client::build_client(Some(&self.apiserver.url()), None, "scheduler-test")
            .await
            .expect("client")
    }
}

/// Our scheduler binary; killed on drop, its log printed if the test panics.
pub struct SchedulerProcess {
    pub child: Child,
    pub log: PathBuf,
    pub health_port: u16,
    _dir: tempfile::TempDir,
}

impl SchedulerProcess {
    pub fn start(master: &str, extra: &[&str]) -> SchedulerProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("kube-scheduler.log");
        let out = File::create(&log).expect("log");
        let err = out.try_clone().expect("log");
        let health_port = test_support::free_port();
        let child = Command::new(SCHEDULER)
            .arg(format!("--master={master}"))
            .arg(format!("--secure-port={health_port}"))
            .arg("--pod-initial-backoff-seconds=1")
            .arg("--pod-max-backoff-seconds=2")
            .args(extra)
            .env("RUST_LOG", "info,kube_scheduler=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("start kube-scheduler");
        SchedulerProcess {
            child,
            log,
            health_port,
            _dir: dir,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SchedulerProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- kube-scheduler (pid {}) log ---\n{}",
                self.child.id(),
                self.log()
            );
        }
    }
}

pub fn node_json(name: &str, cpu: &str, labels: Value, taints: Value) -> Value {
    let mut labels = labels;
    labels["kubernetes.io/hostname"] = name.into();
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": taints},
        "status": {
            "capacity": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}]
        }
    })
}

pub async fn create_node(client: &kube::Client, node: Value) -> Node {
    let api: Api<Node> = Api::all(client.clone());
    let n: Node = serde_json::from_value(node).expect("node json");
    let created = api
        .create(&PostParams::default(), &n)
        .await
        .expect("create node");
    assert!(
        created
            .status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .is_some(),
        "the apiserver dropped node status on create"
    );
    created
}

pub fn pod_json(name: &str, spec: Value) -> Value {
    let mut spec = spec;
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "c", "image": "registry.k8s.io/pause:3.10"}]);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default", "labels": {"app": name}}, "spec": spec})
}

pub async fn create_pod(client: &kube::Client, pod: Value) -> Pod {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let p: Pod = serde_json::from_value(pod).expect("pod json");
    api.create(&PostParams::default(), &p)
        .await
        .expect("create pod")
}

pub async fn get_pod(client: &kube::Client, name: &str) -> Pod {
    Api::<Pod>::namespaced(client.clone(), "default")
        .get(name)
        .await
        .expect("get pod")
}

pub fn node_of(pod: &Pod) -> Option<String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .filter(|n| !n.is_empty())
}

/// Polls until `check` returns Some, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn wait_bound(client: &kube::Client, name: &str, timeout: Duration) -> String {
    eventually(timeout, &format!("pod {name} to be bound"), || async {
        node_of(&get_pod(client, name).await)
    })
    .await
}

/// Events in `default` about pod `name`.
pub async fn pod_events(client: &kube::Client, name: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(client.clone(), "default");
    let list = api.list(&ListParams::default()).await.expect("list events");
    list.items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .collect()
}
