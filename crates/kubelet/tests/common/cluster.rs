//! A one-node cluster for kubelet tests: real etcd + our apiserver + a
//! containerd + the kubelet binary (restartable), with helpers to wait on pods.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::Api;
use serde_json::json;

use super::{apiserver_binary, wait_for, Containerd, Process};

pub struct Cluster {
    // Drop order: kubelet first, then containerd (cleans sandboxes), then the API.
    kubelet: Option<Process>,
    pub containerd: Containerd,
    pub apiserver: test_support::ApiServer,
    _etcd: test_support::Etcd,
    pub client: kube::Client,
    pub node: String,
    pub kubelet_port: u16,
    pub manifests: PathBuf,
    kubelet_runs: u32,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts everything; `static_pods` adds `--pod-manifest-path` (see `manifests`).
    pub async fn start(static_pods: bool) -> Cluster {
        let etcd = test_support::Etcd::start().expect("etcd");
        let apiserver = test_support::ApiServer::start(
            &apiserver_binary(),
            &etcd,
            &["--disable-admission-plugins=ServiceAccount"],
        )
        .expect("apiserver");
        let containerd = Containerd::start().expect("containerd");
        let dir = tempfile::tempdir().expect("tempdir");
        let manifests = dir.path().join("manifests");
        std::fs::create_dir(&manifests).expect("manifest dir");
        let client =
            kube_common::client::build_client(Some(&apiserver.url()), None, "kubelet-test")
                .await
                .expect("client");
        let mut cluster = Cluster {
            kubelet: None,
            containerd,
            apiserver,
            _etcd: etcd,
            client,
            node: format!("node-{}-{}", std::process::id(), u8::from(static_pods)),
            kubelet_port: test_support::free_port(),
            manifests: if static_pods {
                manifests
            } else {
                PathBuf::new()
            },
            kubelet_runs: 0,
            dir,
        };
        cluster.start_kubelet();
        cluster
    }

    fn start_kubelet(&mut self) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kubelet"));
        command
            .arg(format!("--api_servers={}", self.apiserver.url()))
            .arg(format!("--hostname-override={}", self.node))
            .arg(format!(
                "--container-runtime-endpoint={}",
                self.containerd.endpoint()
            ))
            .arg("--address=127.0.0.1")
            // The apiserver reaches the kubelet (logs, exec) at the node's InternalIP.
            .arg("--node-ip=127.0.0.1")
            .arg(format!("--port={}", self.kubelet_port))
            .arg(format!(
                "--root-dir={}",
                self.dir.path().join("root").display()
            ))
            .arg(format!(
                "--pod-logs-dir={}",
                self.dir.path().join("logs").display()
            ))
            .arg("--node-status-update-frequency=2s")
            .arg("--v=2");
        if !self.manifests.as_os_str().is_empty() {
            command.arg(format!("--pod-manifest-path={}", self.manifests.display()));
        }
        self.kubelet_runs += 1;
        let log = self
            .dir
            .path()
            .join(format!("kubelet-{}.log", self.kubelet_runs));
        self.kubelet = Some(Process::spawn("kubelet", command, log).expect("kubelet"));
    }

    /// Fails the test if the kubelet panicked anywhere (a panicking task can
    /// leave it half-alive, e.g. with a dead API client).
    pub fn assert_kubelet_healthy(&self) {
        let log = self.kubelet.as_ref().map(Process::log).unwrap_or_default();
        assert!(!log.contains("panicked at"), "the kubelet panicked:\n{log}");
    }

    /// The kubelet's `--root-dir` (pods' volumes are under `pods/<uid>/volumes`).
    pub fn root_dir(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn kubelet_pid(&self) -> Option<u32> {
        self.kubelet.as_ref().map(Process::pid)
    }

    /// Kills the kubelet (containers keep running) and starts it again.
    pub fn restart_kubelet(&mut self) {
        self.kubelet = None;
        self.start_kubelet();
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    pub async fn wait_node_ready(&self) -> Node {
        let nodes: Api<Node> = Api::all(self.client.clone());
        wait_for(Duration::from_secs(30), "node Ready", || async {
            let node = nodes.get_opt(&self.node).await.ok().flatten()?;
            let ready = node
                .status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            ready.then_some(node)
        })
        .await
    }

    /// `GET http://127.0.0.1:<kubelet port><path>`.
    pub fn kubelet_get(&self, path: &str) -> test_support::HttpResponse {
        test_support::http_get(&format!("http://127.0.0.1:{}{path}", self.kubelet_port))
            .expect("GET from the kubelet")
    }

    /// `/usr/bin/kubectl` against this cluster.
    pub fn kubectl(&self, args: &[&str]) -> test_support::KubectlOutput {
        test_support::kubectl(&self.apiserver, args)
    }

    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> test_support::KubectlOutput {
        test_support::kubectl_stdin(&self.apiserver, args, stdin)
    }

    /// A long-running kubectl (`logs -f`, `port-forward`), killed on drop.
    pub fn kubectl_background(&self, name: &str, args: &[&str]) -> (Process, PathBuf) {
        let mut command = Command::new(test_support::KUBECTL);
        command
            .env_remove("KUBECONFIG")
            .arg(format!(
                "--kubeconfig={}",
                self.apiserver.kubeconfig().display()
            ))
            .args(args);
        let log = self.dir.path().join(format!("{name}.out"));
        (
            Process::spawn(name, command, log.clone()).expect("kubectl"),
            log,
        )
    }
}

pub fn pod(name: &str, node: &str, restart_policy: &str, containers: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": node, "restartPolicy": restart_policy, "terminationGracePeriodSeconds": 5, "containers": containers},
    }))
    .expect("pod")
}

pub fn busybox(name: &str, script: &str) -> serde_json::Value {
    json!({"name": name, "image": "busybox", "imagePullPolicy": "IfNotPresent", "command": ["sh", "-c", script]})
}

pub async fn wait_pod(api: &Api<Pod>, name: &str, what: &str, check: impl Fn(&Pod) -> bool) -> Pod {
    wait_for(Duration::from_secs(60), what, || async {
        let pod = api.get_opt(name).await.ok().flatten()?;
        check(&pod).then_some(pod)
    })
    .await
}

pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

pub fn container_status(
    pod: &Pod,
    name: &str,
) -> Option<k8s_openapi::api::core::v1::ContainerStatus> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|s| s.name == name)
        .cloned()
}

pub fn container_id(pod: &Pod, name: &str) -> String {
    let id = container_status(pod, name)
        .and_then(|s| s.container_id)
        .expect("container id");
    id.strip_prefix("containerd://")
        .expect("containerd:// prefix")
        .to_string()
}

pub fn waiting_reason(pod: &Pod, name: &str) -> Option<String> {
    container_status(pod, name)?.state?.waiting?.reason
}

pub fn condition(pod: &Pod, type_: &str) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}
