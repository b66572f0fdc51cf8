//! The streaming verbs (`attach`, `port-forward`, `cp`, `exec -i`) of our kubectl
//! against our apiserver → our kubelet → a real containerd, with upstream
//! kubectl v1.32 doing the same where it can; and the legacy `rolling-update`
//! against our apiserver + controller-manager (pods marked Ready by a stand-in
//! kubelet: the updater only needs RC status and pod readiness).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kubelet::cri::{RemoteRuntime, RuntimeService};
use test_support::{kubectl_with, ApiServer, Etcd, KubectlOutput, KUBECTL};

const OURS: &str = env!("CARGO_BIN_EXE_kubectl");

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo_root().join("target"), PathBuf::from);
    let bin = target.join("debug").join(name);
    assert!(
        bin.exists(),
        "{} missing: run `cargo build -p {name} --bin {name}`",
        bin.display()
    );
    bin
}

fn can_run_containers() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    let tools = [
        "/usr/bin/containerd",
        "/usr/sbin/runc",
        "/usr/lib/cni/bridge",
    ]
    .iter()
    .all(|p| Path::new(p).exists());
    if !(root && tools) {
        eprintln!("skipping: needs root, containerd, runc and CNI plugins");
    }
    root && tools
}

/// Polls `check` every 100 ms until it gives a value or `timeout` passes.
fn wait_for<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process killed on drop; its output file printed when the test fails.
struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(name: &str, mut command: Command, log: PathBuf) -> Process {
        let file = File::create(&log).expect("log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Process {
            name: name.into(),
            child,
            log,
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let out = self.output();
            let tail: String = out
                .chars()
                .rev()
                .take(6000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            eprintln!("----- {} -----\n{tail}\n----- end -----", self.name);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A containerd of its own (scripts/containerd-node.sh) with the test images;
/// on drop its sandboxes are removed through CRI, then it is stopped.
struct Containerd {
    process: Option<Process>,
    dir: tempfile::TempDir,
}

impl Containerd {
    fn start() -> Containerd {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = std::process::id()
            .wrapping_mul(7919)
            .wrapping_add(COUNTER.fetch_add(1, Ordering::SeqCst));
        let pod_cidr = format!("10.{}.{}.0/24", 200 + (n / 256) % 40, n % 256);
        let dir = tempfile::Builder::new()
            .prefix("containerd-")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let status = Command::new(repo_root().join("scripts/containerd-node.sh"))
            .arg("--dir")
            .arg(dir.path())
            .args(["--pod-cidr", &pod_cidr, "--config-only"])
            .stdout(Stdio::null())
            .status()
            .expect("containerd-node.sh");
        assert!(status.success(), "containerd-node.sh --config-only failed");
        let mut command = Command::new("containerd");
        command.arg("--config").arg(dir.path().join("config.toml"));
        let process = Process::spawn("containerd", command, dir.path().join("containerd.log"));
        let node = Containerd {
            process: Some(process),
            dir,
        };
        wait_for(Duration::from_secs(30), "containerd socket", || {
            node.socket().exists().then_some(())
        });
        let out = Command::new(repo_root().join("scripts/build-images.sh"))
            .arg("--address")
            .arg(node.socket())
            .output()
            .expect("build-images.sh");
        assert!(
            out.status.success(),
            "build-images.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        node
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let endpoint = format!("unix://{}", self.socket().display());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let Ok(cri) = RemoteRuntime::connect(&endpoint).await else {
                    return;
                };
                for sandbox in cri.list_pod_sandbox(None).await.unwrap_or_default() {
                    let _ = cri.stop_pod_sandbox(&sandbox.id).await;
                    let _ = cri.remove_pod_sandbox(&sandbox.id).await;
                }
            });
        })
        .join();
        drop(self.process.take());
        let conf = std::fs::read_to_string(self.dir.path().join("net.d/10-bridge.conflist"))
            .unwrap_or_default();
        let bridge = serde_json::from_str::<serde_json::Value>(&conf)
            .ok()
            .and_then(|v| {
                v.pointer("/plugins/0/bridge")
                    .and_then(|b| b.as_str())
                    .map(str::to_string)
            });
        if let Some(bridge) = bridge {
            let _ = Command::new("ip")
                .args(["link", "del", &bridge])
                .stderr(Stdio::null())
                .status();
        }
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "grep -o ' {}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l",
                self.dir.path().display()
            ))
            .status();
    }
}

/// etcd + our apiserver + containerd + our kubelet, one node.
struct Node {
    // Drop order: kubelet, containerd (removes sandboxes), then the API.
    _kubelet: Process,
    _containerd: Containerd,
    server: ApiServer,
    _etcd: Etcd,
    name: String,
    dir: tempfile::TempDir,
}

impl Node {
    fn start() -> Node {
        let etcd = Etcd::start().expect("etcd");
        let server = ApiServer::start(
            &binary("kube-apiserver"),
            &etcd,
            &["--disable-admission-plugins=ServiceAccount"],
        )
        .expect("apiserver");
        let containerd = Containerd::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let name = format!("node-{}", std::process::id());
        let mut command = Command::new(binary("kubelet"));
        command
            .arg(format!("--api_servers={}", server.url()))
            .arg(format!("--hostname-override={name}"))
            .arg(format!(
                "--container-runtime-endpoint=unix://{}",
                containerd.socket().display()
            ))
            .arg("--address=127.0.0.1")
            .arg("--node-ip=127.0.0.1")
            .arg(format!("--port={}", test_support::free_port()))
            .arg(format!("--root-dir={}", dir.path().join("root").display()))
            .arg(format!(
                "--pod-logs-dir={}",
                dir.path().join("logs").display()
            ))
            .arg("--node-status-update-frequency=2s");
        let kubelet = Process::spawn("kubelet", command, dir.path().join("kubelet.log"));
        Node {
            _kubelet: kubelet,
            _containerd: containerd,
            server,
            _etcd: etcd,
            name,
            dir,
        }
    }

    fn run(&self, bin: &str, args: &[&str], stdin: Option<&str>) -> KubectlOutput {
        kubectl_with(Path::new(bin), &self.server, args, stdin)
    }

    /// A long-running kubectl (`attach`, `port-forward`), killed on drop.
    fn background(&self, bin: &str, name: &str, args: &[&str]) -> Process {
        let mut command = Command::new(bin);
        command
            .env_remove("KUBECONFIG")
            .env("KUBECACHEDIR", self.server.dir().join("kubectl-cache"))
            .arg(format!(
                "--kubeconfig={}",
                self.server.kubeconfig().display()
            ))
            .args(args);
        Process::spawn(name, command, self.dir.path().join(format!("{name}.out")))
    }

    fn wait_running(&self, pod: &str) {
        wait_for(
            Duration::from_secs(90),
            &format!("pod {pod} Running"),
            || {
                let out = self.run(
                    KUBECTL,
                    &["get", "pod", pod, "-o", "jsonpath={.status.phase}"],
                    None,
                );
                (out.stdout == "Running").then_some(())
            },
        );
    }
}

fn pods_yaml(node: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: web, labels: {{app: web}}}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 80 -h /www"]
    ports: [{{name: http, containerPort: 80}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: ticker}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 1; done"]
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 8080, targetPort: http}}]
"#
    )
}

/// `GET /` through a forwarded local port.
fn http_get_local(port: u16) -> String {
    let mut conn =
        std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the forwarded port");
    conn.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    conn.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")
        .expect("request");
    let mut response = String::new();
    conn.read_to_string(&mut response).expect("response");
    response
}

fn assert_port_forward(node: &Node, bin: &str, label: &str, target: &str, remote: &str) {
    let local = test_support::free_port();
    let forward = node.background(
        bin,
        label,
        &["port-forward", target, &format!("{local}:{remote}")],
    );
    let expected = format!("Forwarding from 127.0.0.1:{local} -> 80");
    wait_for(
        Duration::from_secs(20),
        &format!("{label}: {expected}"),
        || forward.output().contains(&expected).then_some(()),
    );
    // Several connections, one after the other and at once.
    for _ in 0..2 {
        let response = http_get_local(local);
        assert!(
            response.starts_with("HTTP/1.") && response.ends_with("hello-from-web\n"),
            "{label}: {response}"
        );
    }
    let parallel: Vec<_> = (0..3)
        .map(|_| std::thread::spawn(move || http_get_local(local)))
        .collect();
    for handle in parallel {
        let response = handle.join().expect("request thread");
        assert!(
            response.ends_with("hello-from-web\n"),
            "{label}: {response}"
        );
    }
    assert!(
        forward
            .output()
            .contains(&format!("Handling connection for {local}")),
        "{label}: {}",
        forward.output()
    );
}

#[test]
fn streaming_verbs_work_through_the_kubelet_and_containerd() {
    if !can_run_containers() {
        return;
    }
    let node = Node::start();
    node.run(
        KUBECTL,
        &["create", "-f", "-"],
        Some(&pods_yaml(&node.name)),
    )
    .assert_success();
    node.wait_running("web");
    node.wait_running("ticker");

    // attach: the output of the running process, with both kubectls.
    for (bin, who) in [(OURS, "ours"), (KUBECTL, "theirs")] {
        let attach = node.background(bin, &format!("attach-{who}"), &["attach", "ticker"]);
        wait_for(
            Duration::from_secs(20),
            &format!("{who}: attach output"),
            || {
                let out = attach.output();
                (out.matches("tick ").count() >= 2).then_some(())
            },
        );
    }

    // exec -i: stdin reaches the command.
    let out = node.run(
        OURS,
        &["exec", "-i", "web", "--", "head", "-c", "5"],
        Some("hello world"),
    );
    assert_eq!((out.status, out.stdout.as_str()), (0, "hello"), "{out}");
    // stdin EOF reaches the command (the CLOSE signal of v5.channel.k8s.io).
    let out = node.run(
        OURS,
        &["exec", "-i", "web", "--", "cat"],
        Some("all of stdin\n"),
    );
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (0, "all of stdin\n"),
        "{out}"
    );
    let out = node.run(OURS, &["exec", "web", "--", "sh", "-c", "exit 3"], None);
    assert_eq!(
        (out.status, out.stderr.as_str()),
        (3, "command terminated with exit code 3\n"),
        "{out}"
    );

    // port-forward: ours and upstream's, to a pod (by number and port name) and a service.
    assert_port_forward(&node, OURS, "ours-pod", "pod/web", "80");
    assert_port_forward(&node, OURS, "ours-named", "web", "http");
    assert_port_forward(&node, OURS, "ours-svc", "svc/web", "8080");
    assert_port_forward(&node, KUBECTL, "theirs-pod", "pod/web", "80");

    // cp: a binary file and a directory, up and down, cross-checked with upstream.
    let local = tempfile::tempdir().expect("tempdir");
    let payload: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let file = local.path().join("data.bin");
    std::fs::write(&file, &payload).expect("write payload");
    let tree = local.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).expect("mkdir");
    std::fs::write(tree.join("a.txt"), "alpha\n").expect("write");
    std::fs::write(tree.join("sub/b.txt"), "beta\n").expect("write");
    let path = |p: &Path| p.display().to_string();

    node.run(OURS, &["cp", &path(&file), "web:/tmp/data.bin"], None)
        .assert_success();
    node.run(OURS, &["cp", &path(&tree), "web:/tmp/tree"], None)
        .assert_success();
    let out = node.run(
        OURS,
        &["exec", "web", "--", "cat", "/tmp/tree/sub/b.txt"],
        None,
    );
    assert_eq!(out.stdout, "beta\n", "{out}");
    // Into an existing directory: the source keeps its name.
    node.run(OURS, &["cp", &path(&file), "web:/tmp"], None)
        .assert_success();
    let out = node.run(
        OURS,
        &["exec", "web", "--", "wc", "-c", "/tmp/data.bin"],
        None,
    );
    assert!(out.stdout.trim_start().starts_with("200000 "), "{out}");

    // What upstream uploads, ours downloads.
    node.run(KUBECTL, &["cp", &path(&file), "web:/tmp/theirs.bin"], None)
        .assert_success();
    let back = local.path().join("theirs-upload.bin");
    node.run(OURS, &["cp", "web:/tmp/theirs.bin", &path(&back)], None)
        .assert_success();
    assert!(
        std::fs::read(&back).expect("downloaded file") == payload,
        "upstream's upload round-trips"
    );
    for (bin, who) in [(OURS, "ours"), (KUBECTL, "theirs")] {
        let back = local.path().join(format!("{who}-data.bin"));
        let out = node.run(bin, &["cp", "web:/tmp/data.bin", &path(&back)], None);
        assert!(out.success(), "{who}: {out}");
        assert!(
            std::fs::read(&back).expect("downloaded file") == payload,
            "{who}: the file round-trips"
        );
        let tree_back = local.path().join(format!("{who}-tree"));
        let out = node.run(bin, &["cp", "web:/tmp/tree", &path(&tree_back)], None);
        assert!(out.success(), "{who}: {out}");
        assert_eq!(
            std::fs::read_to_string(tree_back.join("a.txt")).expect("a.txt"),
            "alpha\n",
            "{who}"
        );
        assert_eq!(
            std::fs::read_to_string(tree_back.join("sub/b.txt")).expect("b.txt"),
            "beta\n",
            "{who}"
        );
    }
    let out = node.run(OURS, &["cp", "/does/not/exist", "web:/tmp/x"], None);
    assert_eq!(
        (out.status, out.stderr.as_str()),
        (
            1,
            "error: /does/not/exist doesn't exist in local filesystem\n"
        )
    );
}

/// Marks every pod Running and Ready through `pods/status`, as a kubelet would.
struct FakeKubelet {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeKubelet {
    fn start(url: String) -> FakeKubelet {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let config = kube::Config::new(url.parse().expect("url"));
                let client = kube::Client::try_from(config).expect("client");
                let all: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::all(client.clone());
                while !flag.load(Ordering::Relaxed) {
                    for pod in all.list(&Default::default()).await.map(|l| l.items).unwrap_or_default() {
                        let ready = pod.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| {
                            c.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                        });
                        if ready || pod.metadata.deletion_timestamp.is_some() {
                            continue;
                        }
                        let ns = pod.metadata.namespace.clone().unwrap_or_default();
                        let name = pod.metadata.name.clone().unwrap_or_default();
                        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
                        let patch = serde_json::json!({"status": {"phase": "Running", "conditions": [
                            {"type": "Ready", "status": "True", "lastTransitionTime": now}]}});
                        let api: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(client.clone(), &ns);
                        let _ = api
                            .patch_status(&name, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch))
                            .await;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
        });
        FakeKubelet {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeKubelet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const OLD_RC: &str = "apiVersion: v1
kind: ReplicationController
metadata: {name: old-rc}
spec:
  replicas: 3
  selector: {app: web, version: v1}
  template:
    metadata: {labels: {app: web, version: v1}}
    spec:
      containers: [{name: c, image: busybox}]
";

const NEW_RC: &str = "apiVersion: v1
kind: ReplicationController
metadata: {name: new-rc}
spec:
  replicas: 3
  selector: {app: web, version: v2}
  template:
    metadata: {labels: {app: web, version: v2}}
    spec:
      containers: [{name: c, image: busybox:v2}]
";

/// `version image` of every pod not being deleted, sorted.
fn live_pods(server: &ApiServer) -> Vec<String> {
    let out = test_support::kubectl(server, &["get", "pods", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_default();
    let mut lines: Vec<String> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            format!(
                "{} {}",
                p["metadata"]["labels"]["version"]
                    .as_str()
                    .unwrap_or_default(),
                p["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap_or_default()
            )
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn rolling_update_replaces_every_pod_of_a_replication_controller() {
    let etcd = Etcd::start().expect("etcd");
    let server = ApiServer::start(&binary("kube-apiserver"), &etcd, &[]).expect("apiserver");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(binary("kube-controller-manager"));
    command
        .arg(format!("--master={}", server.url()))
        .arg("--leader-elect=false")
        .arg(format!("--secure-port={}", test_support::free_port()));
    let _kcm = Process::spawn(
        "kube-controller-manager",
        command,
        dir.path().join("kcm.log"),
    );
    let _kubelet = FakeKubelet::start(server.url());
    let run =
        |args: &[&str], stdin: Option<&str>| kubectl_with(Path::new(OURS), &server, args, stdin);
    test_support::kubectl_stdin(&server, &["create", "-f", "-"], OLD_RC).assert_success();
    wait_for(Duration::from_secs(30), "3 ready v1 pods", || {
        (live_pods(&server) == ["v1 busybox"; 3]).then_some(())
    });

    let fast = [
        "--update-period=200ms",
        "--poll-interval=100ms",
        "--timeout=60s",
    ];
    let mut args = vec!["rolling-update", "old-rc", "-f", "-"];
    args.extend(fast);
    let out = run(&args, Some(NEW_RC));
    assert!(out.success(), "{out}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.first().copied(), Some("Created new-rc"), "{out}");
    assert_eq!(
        lines.get(1).copied(),
        Some("Scaling up new-rc from 0 to 3, scaling down old-rc from 3 to 0 (keep 3 pods available, don't exceed 4 pods)"),
        "{out}"
    );
    assert!(
        lines.contains(&"Scaling new-rc up to 1") && lines.contains(&"Scaling old-rc down to 0"),
        "{out}"
    );
    assert_eq!(
        &lines[lines.len() - 2..],
        [
            "Update succeeded. Deleting old-rc",
            "replicationcontroller/old-rc rolling updated to \"new-rc\""
        ],
        "{out}"
    );
    let gone = test_support::kubectl(&server, &["get", "rc", "old-rc"]);
    assert!(gone.stderr.contains("NotFound"), "{gone}");
    wait_for(Duration::from_secs(30), "only v2 pods", || {
        (live_pods(&server) == ["v2 busybox:v2"; 3]).then_some(())
    });
    let annotations = test_support::kubectl(
        &server,
        &[
            "get",
            "rc",
            "new-rc",
            "-o",
            "jsonpath={.metadata.annotations}",
        ],
    );
    assert!(
        !annotations.stdout.contains("desired-replicas"),
        "update annotations are cleaned up: {annotations}"
    );

    // --image keeps the name: a hashed controller is rolled in, then renamed back.
    let mut args = vec!["rolling-update", "new-rc", "--image=busybox:v3"];
    args.extend(fast);
    let out = run(&args, None);
    assert!(out.success(), "{out}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    let created = lines
        .first()
        .and_then(|l| l.strip_prefix("Created new-rc-"))
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(created.len(), 32, "{out}");
    assert!(
        lines.contains(&"Update succeeded. Deleting old controller: new-rc"),
        "{out}"
    );
    assert!(
        lines.contains(&format!("Renaming new-rc-{created} to new-rc").as_str()),
        "{out}"
    );
    assert_eq!(
        lines.last().copied(),
        Some("replicationcontroller/new-rc rolling updated"),
        "{out}"
    );
    wait_for(Duration::from_secs(30), "only v3 pods", || {
        (live_pods(&server) == ["v2 busybox:v3"; 3]).then_some(())
    });
    let image = test_support::kubectl(&server, &["get", "rc", "new-rc", "-o", "jsonpath={.spec.template.spec.containers[0].image} {.spec.replicas} {.spec.selector.deployment}"]);
    assert_eq!(image.stdout, format!("busybox:v3 3 {created}"), "{image}");

    // --rollback of an update that was interrupted half-way.
    let mut args = vec![
        "rolling-update",
        "new-rc",
        "next-rc",
        "--image=busybox:v4",
        "--update-period=30s",
        "--poll-interval=100ms",
    ];
    args.push("--timeout=60s");
    let mut command = Command::new(OURS);
    command
        .env_remove("KUBECONFIG")
        .arg(format!("--kubeconfig={}", server.kubeconfig().display()))
        .args(&args);
    let interrupted = Process::spawn(
        "interrupted rolling-update",
        command,
        dir.path().join("interrupted.out"),
    );
    wait_for(Duration::from_secs(30), "the first scale-up", || {
        interrupted
            .output()
            .contains("Scaling next-rc up to 1")
            .then_some(())
    });
    drop(interrupted);
    let mut args = vec!["rolling-update", "new-rc", "next-rc", "--rollback"];
    args.extend(fast);
    let out = run(&args, None);
    assert!(out.success(), "{out}");
    assert!(out.stdout.starts_with("Setting \"new-rc\" replicas to 3\nContinuing update with existing controller new-rc.\n"), "{out}");
    assert!(
        out.stdout.contains("Update succeeded. Deleting next-rc\n"),
        "{out}"
    );
    wait_for(Duration::from_secs(30), "back to v3 pods", || {
        (live_pods(&server) == ["v2 busybox:v3"; 3]).then_some(())
    });
    let gone = test_support::kubectl(&server, &["get", "rc", "next-rc"]);
    assert!(gone.stderr.contains("NotFound"), "{gone}");
}
