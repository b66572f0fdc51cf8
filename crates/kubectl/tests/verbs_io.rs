//! The workload and node verbs (expose, run, wait, cordon/uncordon/drain, taint,
//! top) and the error paths of exec/logs: our kubectl against upstream kubectl
//! v1.32 on the same real apiserver + etcd. Writes run in namespaces (and on
//! nodes) named `ours` and `theirs`; the name is masked before comparing.

mod common;

use common::{assert_no_diffs, rendered, with_ns, Cluster, OURS};
use test_support::{kubectl_with, KubectlOutput, KUBECTL};

impl Cluster {
    /// Both binaries on their own namespace (`-n ours` / `-n theirs`; `{ns}` in
    /// an argument is replaced too); returns both renderings, masked.
    fn both(&self, args: &[&str], stdin: Option<&str>) -> (String, String) {
        let go = |bin: &str, ns: &str| {
            let all = with_ns(ns, args);
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            let input = stdin.map(|s| s.replace("{ns}", ns));
            render(&self.run(bin, &refs, input.as_deref()), ns)
        };
        (go(OURS, "ours"), go(KUBECTL, "theirs"))
    }

    /// Runs every command with both binaries; fails listing all differences.
    fn assert_all_same(&self, commands: &[&[&str]]) {
        assert_no_diffs(commands, |args| self.both(args, None));
    }
}

fn render(out: &KubectlOutput, ns: &str) -> String {
    mask_ids(&rendered(out).replace(ns, "<ns>"))
}

/// Container and exec ids (64 hex digits) differ between runs.
fn mask_ids(text: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for ch in text.chars() {
        if ch.is_ascii_hexdigit() {
            run.push(ch);
            continue;
        }
        out.push_str(if run.len() == 64 { "<id>" } else { &run });
        run.clear();
        out.push(ch);
    }
    out.push_str(if run.len() == 64 { "<id>" } else { &run });
    out
}

const DEPLOY: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, team: a}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: c
        image: busybox
        ports: [{containerPort: 80}, {containerPort: 53, protocol: UDP}]
";

const PLAIN_POD: &str = "apiVersion: v1
kind: Pod
metadata: {name: lonely, labels: {run: lonely}}
spec:
  containers: [{name: a, image: busybox}, {name: b, image: busybox}]
";

#[test]
fn expose_creates_services_as_upstream() {
    let cluster = Cluster::start_with_namespaces();
    cluster.setup_both(&["create", "-f", "-"], Some(DEPLOY));
    cluster.setup_both(&["create", "-f", "-"], Some(PLAIN_POD));
    let spec = "jsonpath={.metadata.labels} {.spec.selector} {.spec.ports} {.spec.type}";
    cluster.assert_all_same(&[
        &["expose", "deployment", "web"][..],
        &["get", "svc", "web", "-o", spec],
        &["expose", "deploy/web", "--port=8080", "--target-port=http", "--name=web2", "--type=NodePort"],
        &["get", "svc", "web2", "-o", "jsonpath={.spec.selector} {.spec.ports[0].port} {.spec.ports[0].targetPort} {.spec.type}"],
        &["expose", "svc", "web", "--name=web3", "--port=90"],
        &["get", "svc", "web3", "-o", spec],
        &["expose", "pod", "lonely", "--port=81", "--protocol=UDP", "--selector=x=y"],
        &["get", "svc", "lonely", "-o", spec],
        &["expose", "deployment", "web"],
        &["expose", "deployment", "missing", "--port=80"],
        &["expose", "cm", "x", "--port=80"],
        &["expose", "svc", "kubernetes", "-n", "default", "--name=k2", "--port=1"],
    ]);
}

#[test]
fn run_creates_pods_as_upstream() {
    let cluster = Cluster::start_with_namespaces();
    let spec = "jsonpath={.metadata.labels} {.spec.containers[0].name} {.spec.containers[0].image} {.spec.containers[0].args} {.spec.containers[0].command} {.spec.containers[0].env} {.spec.containers[0].ports} {.spec.containers[0].imagePullPolicy} {.spec.restartPolicy} {.spec.dnsPolicy}";
    cluster.assert_all_same(&[
        &["run", "one", "--image=busybox"][..],
        &["get", "pod", "one", "-o", spec],
        &[
            "run",
            "two",
            "--image=busybox",
            "--port=80",
            "--env=A=1",
            "--env=B=2",
            "--labels=app=x,tier=y",
            "--restart=Never",
            "--image-pull-policy=IfNotPresent",
            "--",
            "sleep",
            "10",
        ],
        &["get", "pod", "two", "-o", spec],
        &[
            "run",
            "three",
            "--image=busybox",
            "--command",
            "--",
            "sh",
            "-c",
            "true",
        ],
        &["get", "pod", "three", "-o", spec],
        &[
            "run",
            "four",
            "--image=busybox",
            "--dry-run=client",
            "-o",
            "yaml",
        ],
        &["run", "one", "--image=busybox"],
        &["run", "six", "--image=busybox", "--restart=Sometimes"],
    ]);
}

#[test]
fn wait_reports_conditions_as_upstream() {
    let cluster = Cluster::start_with_namespaces();
    cluster.setup_both(&["create", "-f", "-"], Some(PLAIN_POD));
    cluster.assert_all_same(&[
        &[
            "wait",
            "--for=jsonpath={.spec.restartPolicy}=Always",
            "pod/lonely",
        ][..],
        &[
            "wait",
            "--for=jsonpath={.metadata.labels.run}=lonely",
            "pod",
            "lonely",
        ],
        &[
            "wait",
            "--for=condition=Ready",
            "pod/lonely",
            "--timeout=1s",
        ],
        &["wait", "--for=delete", "pod/missing", "--timeout=1s"],
        &[
            "wait",
            "--for=condition=Ready",
            "pod/missing",
            "--timeout=1s",
        ],
        &["wait", "--for=create", "pod/lonely", "--timeout=1s"],
        &["wait", "--for=bogus", "pod/lonely"],
        &["wait", "pod/lonely"],
    ]);
    // A pod that goes away while waited on: a finalizer holds it until the
    // waiter runs.
    cluster.setup(
        &[
            "-n",
            "ours",
            "patch",
            "pod",
            "lonely",
            "-p",
            r#"{"metadata":{"finalizers":["test/hold"]}}"#,
        ],
        None,
    );
    cluster.setup(
        &["-n", "ours", "delete", "pod", "lonely", "--wait=false"],
        None,
    );
    let waiter = std::process::Command::new(OURS)
        .args(["--kubeconfig"])
        .arg(cluster.server.kubeconfig())
        .args([
            "-n",
            "ours",
            "wait",
            "--for=delete",
            "pod/lonely",
            "--timeout=30s",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn wait");
    // let the waiter see the pod still there (its first GET) before the finalizer
    // goes; a pod already gone at the first GET ends the wait silently
    std::thread::sleep(std::time::Duration::from_secs(2));
    cluster.setup(
        &[
            "-n",
            "ours",
            "patch",
            "pod",
            "lonely",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
        ],
        None,
    );
    let out = waiter.wait_with_output().expect("wait output");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "pod/lonely condition met\n"
    );
}

fn node(name: &str) -> String {
    format!("apiVersion: v1\nkind: Node\nmetadata: {{name: {name}, labels: {{kubernetes.io/hostname: {name}}}}}\n")
}

fn bound_pod(name: &str, node: &str, owner: Option<&str>) -> String {
    let owner = owner.map_or(String::new(), |kind| {
        format!("  ownerReferences: [{{apiVersion: apps/v1, kind: {kind}, name: x, uid: 00000000-0000-0000-0000-000000000001, controller: true}}]\n")
    });
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n{owner}spec:\n  nodeName: {node}\n  containers: [{{name: c, image: busybox}}]\n")
}

#[test]
fn node_verbs_print_as_upstream() {
    let cluster = Cluster::start_with_namespaces();
    for n in ["ours", "theirs"] {
        cluster.setup(&["create", "-f", "-"], Some(&node(n)));
    }
    cluster.assert_all_same(&[
        &["cordon", "{ns}"][..],
        &["cordon", "{ns}"],
        &[
            "get",
            "node",
            "{ns}",
            "-o",
            "jsonpath={.spec.unschedulable}",
        ],
        &["uncordon", "node/{ns}"],
        &["uncordon", "{ns}"],
        &["cordon", "missing"],
        &["taint", "nodes", "{ns}", "dedicated=gpu:NoSchedule"],
        &["taint", "nodes", "{ns}", "dedicated=gpu:NoSchedule"],
        &[
            "taint",
            "nodes",
            "{ns}",
            "dedicated=cpu:NoSchedule",
            "--overwrite",
        ],
        &["taint", "nodes", "{ns}", "other:PreferNoSchedule"],
        &["get", "node", "{ns}", "-o", "jsonpath={.spec.taints}"],
        &["taint", "nodes", "{ns}", "dedicated-"],
        &["taint", "nodes", "{ns}", "other:PreferNoSchedule-"],
        &["taint", "nodes", "{ns}", "nothere-"],
        &["get", "node", "{ns}", "-o", "jsonpath={.spec.taints}"],
        &["taint", "nodes", "{ns}", "a=b:Sometimes"],
        &["taint", "pods", "x", "a=b:NoSchedule"],
        &["taint", "nodes", "{ns}"],
        &["top", "pods"],
        &["top", "nodes"],
    ]);
}

const DAEMON_SET: &str = "apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ds}
spec:
  selector: {matchLabels: {app: ds}}
  template:
    metadata: {labels: {app: ds}}
    spec: {containers: [{name: c, image: busybox}]}
";

/// Stdout lines and the parts of the `Warning:` line sorted: upstream evicts
/// (and reports) pods concurrently and groups warnings in a Go map.
fn sorted_lines(text: &str) -> String {
    let (out, rest) = text.split_once("\n--- stderr ---").unwrap_or((text, ""));
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    let rest: Vec<String> = rest
        .lines()
        .map(|l| match l.strip_prefix("Warning: ") {
            Some(w) => {
                let mut parts: Vec<&str> = w.split("; ").collect();
                parts.sort_unstable();
                format!("Warning: {}", parts.join("; "))
            }
            None => l.to_string(),
        })
        .collect();
    format!("{}\n--- stderr ---{}", lines.join("\n"), rest.join("\n"))
}

#[test]
fn drain_evicts_pods_as_upstream() {
    let cluster = Cluster::start_with_namespaces();
    for n in ["ours", "theirs"] {
        cluster.setup(&["create", "-f", "-"], Some(&node(n)));
    }
    cluster.setup_both(&["create", "-f", "-"], Some(DAEMON_SET));
    cluster.setup_both(
        &["create", "-f", "-"],
        Some(&bound_pod("managed", "{ns}", Some("ReplicaSet"))),
    );
    cluster.setup_both(
        &["create", "-f", "-"],
        Some(&bound_pod("daemon", "{ns}", Some("DaemonSet")).replace("name: x", "name: ds")),
    );
    cluster.assert_all_same(&[
        &["drain", "{ns}"],
        &[
            "get",
            "node",
            "{ns}",
            "-o",
            "jsonpath={.spec.unschedulable}",
        ],
        &["uncordon", "{ns}"],
    ]);
    cluster.setup_both(
        &["create", "-f", "-"],
        Some(&bound_pod("bare", "{ns}", None)),
    );
    cluster.assert_all_same(&[
        &["drain", "{ns}", "--ignore-daemonsets"],
        &["uncordon", "{ns}"],
    ]);
    let (ours, theirs) = cluster.both(
        &[
            "drain",
            "{ns}",
            "--ignore-daemonsets",
            "--force",
            "--grace-period=0",
            "--timeout=60s",
        ],
        None,
    );
    assert_eq!(sorted_lines(&ours), sorted_lines(&theirs));
    assert!(ours.contains("node/<ns> drained"), "{ours}");
    cluster.assert_all_same(&[&["get", "pods", "-o", "name"]]);
}

#[test]
fn exec_and_logs_errors_as_upstream() {
    let cluster = Cluster::start_with_namespaces();
    cluster.setup_both(&["create", "-f", "-"], Some(PLAIN_POD));
    cluster.assert_all_same(&[
        &["exec", "missing", "--", "ls"][..],
        &["exec", "lonely", "ls"],
        &["exec", "lonely"],
        &["exec"],
        &["exec", "lonely", "-c", "nope", "--", "ls"],
        &["logs"],
        &["logs", "missing"],
        &["logs", "lonely", "-c", "nope"],
        &["logs", "-l", "app=none"],
    ]);
}

/// A one-node cluster with running containers: the apiserver + etcd of
/// [`Cluster`], a containerd (scripts/containerd-node.sh) and our kubelet
/// (target/debug/kubelet). Needs root; pods are deleted before teardown so the
/// kubelet releases their sandboxes.
mod node {
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use super::Cluster;

    pub struct Node {
        kubelet: Option<Child>,
        containerd: Option<Child>,
        dir: tempfile::TempDir,
        pub cluster: Cluster,
        pub name: String,
    }

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// Whether containers can run here (root, containerd, runc, CNI, the kubelet binary).
    pub fn available() -> bool {
        let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        });
        let tools = [
            "/usr/bin/containerd",
            "/usr/sbin/runc",
            "/usr/lib/cni/bridge",
        ]
        .iter()
        .all(|p| Path::new(p).exists())
            && repo().join("target/debug/kubelet").exists();
        if !(root && tools) {
            eprintln!("skipping: needs root, containerd, runc, CNI plugins and target/debug/kubelet (cargo build -p kubelet --bin kubelet)");
        }
        root && tools
    }

    impl Node {
        pub fn start() -> Node {
            let cluster = Cluster::start_with_namespaces();
            let dir = tempfile::Builder::new()
                .prefix("kubectl-node-")
                .tempdir_in("/tmp")
                .expect("tempdir");
            let n = std::process::id().wrapping_mul(7919);
            let cidr = format!("10.{}.{}.0/24", 240 + (n / 256) % 10, n % 256);
            let status = Command::new(repo().join("scripts/containerd-node.sh"))
                .arg("--dir")
                .arg(dir.path())
                .args(["--pod-cidr", &cidr, "--config-only"])
                .stdout(Stdio::null())
                .status()
                .expect("containerd-node.sh");
            assert!(status.success(), "containerd-node.sh --config-only failed");
            let log = std::fs::File::create(dir.path().join("containerd.log")).expect("log");
            let containerd = Command::new("containerd")
                .arg("--config")
                .arg(dir.path().join("config.toml"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("containerd");
            let socket = dir.path().join("containerd.sock");
            let deadline = Instant::now() + Duration::from_secs(30);
            while !socket.exists() {
                assert!(
                    Instant::now() < deadline,
                    "containerd socket did not appear"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            let out = Command::new(repo().join("scripts/build-images.sh"))
                .arg("--address")
                .arg(&socket)
                .output()
                .expect("build-images.sh");
            assert!(
                out.status.success(),
                "build-images.sh: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let name = format!("kubectl-node-{}", std::process::id());
            let log = std::fs::File::create(dir.path().join("kubelet.log")).expect("log");
            let kubelet = Command::new(repo().join("target/debug/kubelet"))
                .arg(format!("--api_servers={}", cluster.server.url()))
                .arg(format!("--hostname-override={name}"))
                .arg(format!(
                    "--container-runtime-endpoint=unix://{}",
                    socket.display()
                ))
                .arg("--address=127.0.0.1")
                .arg("--node-ip=127.0.0.1")
                .arg(format!("--port={}", test_support::free_port()))
                .arg(format!("--root-dir={}", dir.path().join("kroot").display()))
                .arg(format!(
                    "--pod-logs-dir={}",
                    dir.path().join("logs").display()
                ))
                .arg("--node-status-update-frequency=2s")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("kubelet");
            Node {
                kubelet: Some(kubelet),
                containerd: Some(containerd),
                dir,
                cluster,
                name,
            }
        }

        /// Creates a busybox pod on this node in both namespaces and waits until it runs.
        pub fn run_pod(&self, name: &str, script: &str) {
            let manifest = format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: {name}}}}}\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {{name: main, image: busybox, imagePullPolicy: IfNotPresent, command: [sh, -c, {script:?}]}}\n  - {{name: side, image: busybox, imagePullPolicy: IfNotPresent, command: [sleep, '3600']}}\n",
                node = self.name
            );
            self.cluster
                .setup_both(&["create", "-f", "-"], Some(&manifest));
            for ns in ["ours", "theirs"] {
                self.cluster.setup(
                    &[
                        "-n",
                        ns,
                        "wait",
                        "--for=jsonpath={.status.phase}=Running",
                        &format!("pod/{name}"),
                        "--timeout=90s",
                    ],
                    None,
                );
            }
        }
    }

    impl Drop for Node {
        fn drop(&mut self) {
            if std::thread::panicking() {
                for f in ["kubelet.log", "containerd.log"] {
                    let log = std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
                    let mut start = log.len().saturating_sub(6000);
                    while !log.is_char_boundary(start) {
                        start += 1;
                    }
                    eprintln!("----- {f} -----\n{}\n----- end -----", &log[start..]);
                }
            }
            for ns in ["ours", "theirs"] {
                let _ = super::kubectl_with(
                    Path::new(super::KUBECTL),
                    &self.cluster.server,
                    &["-n", ns, "delete", "pods", "--all", "--timeout=60s"],
                    None,
                );
            }
            for child in [self.kubelet.take(), self.containerd.take()]
                .into_iter()
                .flatten()
            {
                let mut child = child;
                let _ = Command::new("kill").arg(child.id().to_string()).status();
                let deadline = Instant::now() + Duration::from_secs(5);
                while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
            let conf = std::fs::read_to_string(self.dir.path().join("net.d/10-bridge.conflist"))
                .unwrap_or_default();
            if let Some(bridge) = serde_json::from_str::<serde_json::Value>(&conf)
                .ok()
                .and_then(|v| {
                    v.pointer("/plugins/0/bridge")
                        .and_then(|b| b.as_str())
                        .map(str::to_string)
                })
            {
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
}

#[test]
fn exec_and_logs_stream_from_running_containers() {
    if !node::available() {
        return;
    }
    let node = node::Node::start();
    node.run_pod(
        "talker",
        "echo one; sleep 0.2; echo two >&2; sleep 0.2; echo three; sleep 3600",
    );
    let c = &node.cluster;
    c.assert_all_same(&[
        &["exec", "talker", "--", "echo", "hello"],
        &[
            "exec",
            "talker",
            "-c",
            "side",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2",
        ],
        &["exec", "talker", "--", "sh", "-c", "exit 3"],
        &["exec", "talker", "-c", "main", "--", "nonexistent-binary"],
        &["exec", "talker", "-c", "nope", "--", "ls"],
        &["exec", "pod/talker", "-c", "main", "-t", "--", "echo", "t"],
        &["logs", "talker"],
        &["logs", "talker", "-c", "main", "--tail=1"],
        &["logs", "talker", "-c", "main", "--prefix"],
        &["logs", "-l", "app=talker", "--all-containers"],
        &["logs", "talker", "-c", "main", "--previous"],
    ]);
    // stdin is passed with -i (head ends the command once it has its input: the
    // v4 WebSocket protocol cannot close stdin).
    let (ours, theirs) = c.both(
        &[
            "exec", "-i", "talker", "-c", "main", "--", "head", "-n", "1",
        ],
        Some("piped\n"),
    );
    assert_eq!(ours, theirs);
    assert!(ours.starts_with("piped\n"), "{ours}");
    let (ours, theirs) = c.both(
        &[
            "exec", "-it", "talker", "-c", "main", "--", "head", "-n", "1",
        ],
        Some("x\n"),
    );
    assert_eq!(ours, theirs);
}
