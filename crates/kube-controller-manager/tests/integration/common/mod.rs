//! A real etcd + our apiserver + this controller-manager, killed on drop.

#![allow(dead_code)]

use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kube::Client;
use test_support::{free_port, ApiServer, Etcd};

pub const APISERVER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../target/debug/kube-apiserver"
);

/// The apiserver binary: `KUBE_APISERVER_BIN` (the benchmark uses a release build) or the debug build.
pub fn apiserver_bin() -> std::path::PathBuf {
    std::env::var_os("KUBE_APISERVER_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| APISERVER.into())
}
pub const KCM: &str = env!("CARGO_BIN_EXE_kube-controller-manager");

/// A controller-manager process; killed on drop, log printed when a test panics.
pub struct ControllerManager {
    child: Child,
    log: std::path::PathBuf,
    pub port: u16,
}

impl ControllerManager {
    pub fn start(server: &ApiServer, extra: &[&str]) -> ControllerManager {
        let port = free_port();
        let log = server.dir().join(format!("kcm-{port}.log"));
        let out = File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(KCM)
            .arg(format!("--master={}", server.url()))
            .arg(format!("--secure-port={port}"))
            .arg("--bind-address=127.0.0.1")
            .args(extra)
            .env("RUST_LOG", "info,kube_controller_manager=debug")
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("start kube-controller-manager");
        ControllerManager { child, log, port }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ControllerManager {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log();
            let tail: String = log
                .lines()
                .rev()
                .take(80)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            eprintln!("--- kube-controller-manager log (tail) ---\n{tail}");
        }
    }
}

/// etcd + apiserver + controller-manager (no leader election unless asked).
pub struct Cluster {
    pub kcm: ControllerManager,
    pub server: ApiServer,
    pub etcd: Etcd,
}

impl Cluster {
    pub fn start(kcm_args: &[&str]) -> Cluster {
        let bin = apiserver_bin();
        assert!(
            bin.exists(),
            "build the apiserver first: cargo build -p kube-apiserver ({})",
            bin.display()
        );
        let etcd = Etcd::start().expect("etcd");
        let server = ApiServer::start(&bin, &etcd, &[]).expect("apiserver");
        let mut args = Vec::new();
        if !kcm_args.iter().any(|a| a.starts_with("--leader-elect=")) {
            args.push("--leader-elect=false");
        }
        args.extend_from_slice(kcm_args);
        let kcm = ControllerManager::start(&server, &args);
        Cluster { kcm, server, etcd }
    }

    pub async fn client(&self) -> Client {
        let config = kube::Config::new(self.server.url().parse().expect("url"));
        Client::try_from(config).expect("client")
    }

    pub fn kubectl(&self, args: &[&str]) -> test_support::KubectlOutput {
        test_support::kubectl(&self.server, args)
    }

    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> test_support::KubectlOutput {
        test_support::kubectl_stdin(&self.server, args, stdin)
    }
}

/// Polls `check` until it returns Some or the timeout passes.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates any object from JSON through the dynamic API.
pub async fn create_json(client: &Client, obj: serde_json::Value) -> serde_json::Value {
    let api_version = obj["apiVersion"].as_str().expect("apiVersion").to_string();
    let kind = obj["kind"].as_str().expect("kind").to_string();
    let ns = obj["metadata"]["namespace"].as_str().map(str::to_string);
    let info = api_types::registry::lookup_kind(&api_version, &kind).expect("known kind");
    let gvk = kube::core::GroupVersionKind::gvk(info.group, info.version, info.kind);
    let ar = kube::core::ApiResource::from_gvk_with_plural(&gvk, info.plural);
    let api: kube::Api<kube::core::DynamicObject> = match ns {
        Some(ns) => kube::Api::namespaced_with(client.clone(), &ns, &ar),
        None => kube::Api::all_with(client.clone(), &ar),
    };
    let dynobj: kube::core::DynamicObject = serde_json::from_value(obj).expect("object");
    let created = api
        .create(&Default::default(), &dynobj)
        .await
        .expect("create");
    serde_json::to_value(created).expect("json")
}

/// Marks a pod Running and Ready through `pods/status`, as a kubelet would; Ready
/// since `ready_since` seconds ago.
pub async fn mark_pod_ready(client: &Client, ns: &str, name: &str, ready_since: i64) {
    use k8s_openapi::api::core::v1::Pod;
    let api: kube::Api<Pod> = kube::Api::namespaced(client.clone(), ns);
    let now = k8s_openapi::jiff::Timestamp::now().as_second() - ready_since;
    let now = k8s_openapi::jiff::Timestamp::from_second(now)
        .expect("now")
        .to_string();
    let patch = serde_json::json!({
        "status": {
            "phase": "Running",
            "hostIP": "10.0.0.1",
            "podIP": "10.1.0.5",
            "podIPs": [{"ip": "10.1.0.5"}],
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                {"type": "Ready", "status": "True", "lastTransitionTime": now}
            ]
        }
    });
    api.patch_status(
        name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .expect("patch pod status");
}

/// Waits until the namespace's `default` ServiceAccount exists (pods need it).
pub async fn wait_default_sa(client: &Client, ns: &str) {
    use k8s_openapi::api::core::v1::ServiceAccount;
    let api: kube::Api<ServiceAccount> = kube::Api::namespaced(client.clone(), ns);
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

/// Pods in `ns` matching a label selector, not being deleted.
pub async fn live_pods(
    client: &Client,
    ns: &str,
    selector: &str,
) -> Vec<k8s_openapi::api::core::v1::Pod> {
    let api: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(client.clone(), ns);
    let list = api
        .list(&kube::api::ListParams::default().labels(selector))
        .await
        .expect("list pods");
    list.items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

/// A stand-in for kubelets: every pod in `ns` whose images do not contain
/// `never_ready` is marked Running/Ready. Stops when the returned handle drops.
pub fn spawn_fake_kubelet(client: Client, ns: &str, never_ready: &'static str) -> AbortOnDrop {
    let ns = ns.to_string();
    let handle = tokio::spawn(async move {
        let api: kube::Api<k8s_openapi::api::core::v1::Pod> =
            kube::Api::namespaced(client.clone(), &ns);
        loop {
            if let Ok(list) = api.list(&Default::default()).await {
                for pod in list.items {
                    let ready = pod
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| {
                            c.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                        });
                    let blocked = pod.spec.as_ref().is_some_and(|s| {
                        s.containers
                            .iter()
                            .any(|c| c.image.as_deref().unwrap_or("").contains(never_ready))
                    });
                    if !ready && !blocked && pod.metadata.deletion_timestamp.is_none() {
                        let name = pod.metadata.name.clone().unwrap_or_default();
                        let api2 = api.clone();
                        let now = k8s_openapi::jiff::Timestamp::now().as_second();
                        let now = k8s_openapi::jiff::Timestamp::from_second(now)
                            .expect("now")
                            .to_string();
                        let patch = serde_json::json!({"status": {"phase": "Running", "conditions": [
                            {"type": "Ready", "status": "True", "lastTransitionTime": now},
                            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now}]}});
                        let _ = api2
                            .patch_status(
                                &name,
                                &kube::api::PatchParams::default(),
                                &kube::api::Patch::Merge(&patch),
                            )
                            .await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    AbortOnDrop(handle)
}

pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let out = self.kubectl(&["get", "deploy,rs,pods", "-A", "-o", "wide", "--show-labels"]);
            eprintln!("--- cluster objects ---\n{}\n{}", out.stdout, out.stderr);
            let out = self.kubectl(&["get", "deploy,rs", "-A", "-o", "yaml"]);
            eprintln!(
                "{}",
                out.stdout
                    .lines()
                    .filter(|l| !l.contains("f:") && !l.contains("managedFields"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}

pub fn is_ready(pod: &k8s_openapi::api::core::v1::Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
