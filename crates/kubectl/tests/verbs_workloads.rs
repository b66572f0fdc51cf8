//! `rollout`, `set` and `describe` of our kubectl against upstream kubectl v1.32 on
//! the same real etcd + apiserver (+ controller-manager and a fake kubelet that
//! marks pods Ready, so deployments really roll out). Our binary works in
//! namespace `ours`, upstream's in `theirs`; outputs must match once the
//! namespace names, ages and timestamps are masked.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{binary, mask_ages_in_line, rendered, OURS};
use test_support::{kubectl_with, ApiServer, Etcd, KubectlOutput, KUBECTL};

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
                let api: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::all(client.clone());
                while !flag.load(Ordering::Relaxed) {
                    if let Ok(list) = api.list(&Default::default()).await {
                        for pod in list.items {
                            let ready = pod.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(
                                |c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"),
                            );
                            if ready || pod.metadata.deletion_timestamp.is_some() {
                                continue;
                            }
                            let ns = pod.metadata.namespace.clone().unwrap_or_default();
                            let name = pod.metadata.name.clone().unwrap_or_default();
                            let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
                            let patch = serde_json::json!({"status": {"phase": "Running", "conditions": [
                                {"type": "Ready", "status": "True", "lastTransitionTime": now},
                                {"type": "ContainersReady", "status": "True", "lastTransitionTime": now}]}});
                            let namespaced: kube::Api<k8s_openapi::api::core::v1::Pod> =
                                kube::Api::namespaced(client.clone(), &ns);
                            let _ = namespaced
                                .patch_status(&name, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch))
                                .await;
                        }
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

struct Cluster {
    _kubelet: Option<FakeKubelet>,
    _kcm: Option<Killed>,
    server: ApiServer,
    _etcd: Etcd,
}

impl Cluster {
    fn start(with_controllers: bool) -> Cluster {
        let etcd = Etcd::start().expect("etcd");
        let server = ApiServer::start(&binary("kube-apiserver"), &etcd, &[]).expect("apiserver");
        let (kcm, kubelet) = if with_controllers {
            let log = std::fs::File::create(server.dir().join("kcm.log")).expect("log");
            let child = Command::new(binary("kube-controller-manager"))
                .arg(format!("--master={}", server.url()))
                .arg("--leader-elect=false")
                .arg(format!("--secure-port={}", test_support::free_port()))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("kube-controller-manager");
            (Some(Killed(child)), Some(FakeKubelet::start(server.url())))
        } else {
            (None, None)
        };
        let cluster = Cluster {
            _kubelet: kubelet,
            _kcm: kcm,
            server,
            _etcd: etcd,
        };
        for ns in ["ours", "theirs"] {
            cluster
                .theirs(&["create", "namespace", ns])
                .assert_success();
            if !with_controllers {
                cluster
                    .theirs(&["-n", ns, "create", "serviceaccount", "default"])
                    .assert_success();
            }
        }
        cluster
    }

    fn run(&self, bin: &str, args: &[&str], stdin: Option<&str>) -> KubectlOutput {
        kubectl_with(Path::new(bin), &self.server, args, stdin)
    }

    fn theirs(&self, args: &[&str]) -> KubectlOutput {
        self.run(KUBECTL, args, None)
    }

    /// Upstream kubectl in both namespaces, asserting success (to set the scene).
    fn setup(&self, args: &[&str], stdin: Option<&str>) {
        for ns in ["ours", "theirs"] {
            let mut a = vec!["-n", ns];
            a.extend_from_slice(args);
            self.run(KUBECTL, &a, stdin).assert_success();
        }
    }

    /// Runs `args` with our binary in `ours` and upstream's in `theirs`.
    fn both(&self, args: &[&str]) -> (String, String) {
        let run = |bin: &str, ns: &str| {
            let mut a = vec!["-n", ns];
            a.extend_from_slice(args);
            render(&self.run(bin, &a, None), ns)
        };
        (run(OURS, "ours"), run(KUBECTL, "theirs"))
    }

    fn assert_same(&self, args: &[&str]) {
        let (ours, theirs) = self.both(args);
        assert_eq!(
            map_order_free(&ours),
            map_order_free(&theirs),
            "kubectl {}",
            args.join(" ")
        );
    }

    /// Waits (with our binary in `ours`, upstream's in `theirs`) until the
    /// rollout is complete; both must end with the same success line.
    fn wait_rolled_out(&self, target: &str) {
        for (bin, ns) in [(OURS, "ours"), (KUBECTL, "theirs")] {
            let out = self.run(
                bin,
                &["-n", ns, "rollout", "status", target, "--timeout=90s"],
                None,
            );
            if out.status != 0 {
                let log =
                    std::fs::read_to_string(self.server.dir().join("kcm.log")).unwrap_or_default();
                let tail: String = log
                    .chars()
                    .rev()
                    .take(3000)
                    .collect::<String>()
                    .chars()
                    .rev()
                    .collect();
                panic!("{bin} rollout status: {out:?}\nkube-controller-manager log tail:\n{tail}");
            }
            let last = out.stdout.lines().last().unwrap_or_default().to_string();
            assert_eq!(
                last, "deployment \"app\" successfully rolled out",
                "{bin}: {out:?}"
            );
        }
    }
}

/// An age, also in parentheses (`(5s ago)` style columns).
fn is_age(token: &str) -> bool {
    common::is_age(token.trim_matches(|c| c == '(' || c == ')'))
}

/// Output with the namespace, ages and timestamps masked (and whitespace runs
/// collapsed on lines that had any).
fn render(out: &KubectlOutput, ns: &str) -> String {
    let text = rendered(out).replace(ns, "<ns>");
    // the service-account volume has a random suffix
    let text = match text.find("kube-api-access-") {
        Some(i) => {
            let suffix = &text[i + 16..(i + 21).min(text.len())];
            text.replace(&format!("kube-api-access-{suffix}"), "kube-api-access-<x>")
        }
        None => text,
    };
    text.lines()
        .map(|line| {
            // times, cluster IPs and node ports differ between the two objects
            for key in ["CreationTimestamp:", "IP:", "IPs:", "NodePort:"] {
                if line.starts_with(key) {
                    return format!("{key} <masked>");
                }
            }
            // controller events name pods with random suffixes
            let line = match line.rfind(" pod: ") {
                Some(i) if line.len() > i + 6 && line[i + 6..].rfind('-').is_some() => {
                    let name = &line[i + 6..];
                    let dash = name.rfind('-').unwrap_or(0);
                    format!("{}{}-<x>", &line[..i + 6], &name[..dash])
                }
                _ => line.to_string(),
            };
            mask_ages_in_line(&line, is_age)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn rollout_verbs_match_upstream() {
    let cluster = Cluster::start(true);
    cluster.setup(
        &[
            "create",
            "deployment",
            "app",
            "--image=nginx:1",
            "--replicas=2",
        ],
        None,
    );
    cluster.wait_rolled_out("deployment/app");
    cluster.assert_same(&["rollout", "history", "deployment/app"]);
    cluster.assert_same(&["rollout", "undo", "deployment/app"]);
    cluster.assert_same(&["set", "image", "deployment/app", "nginx=nginx:2"]);
    cluster.assert_same(&["set", "image", "deployment/app", "nginx=nginx:2"]);
    cluster.assert_same(&["set", "image", "deployment/app", "nope=x"]);
    cluster.wait_rolled_out("deployment/app");
    cluster.setup(
        &[
            "annotate",
            "deploy",
            "app",
            "kubernetes.io/change-cause=to v2",
        ],
        None,
    );
    for args in [
        &["rollout", "history", "deploy/app"][..],
        &["rollout", "history", "deploy", "app", "--revision=1"],
        &["rollout", "history", "deploy/app", "--revision=7"],
        &["rollout", "status", "deploy/app", "--watch=false"],
        &["rollout", "status", "deploy/app", "--revision=1"],
        &["rollout", "status", "deploy/nope"],
        &["rollout", "undo", "deploy/app", "--to-revision=7"],
        &["rollout", "undo", "deploy/app", "--to-revision=2"],
        &["rollout", "resume", "deploy/app"],
        &["describe", "deployment", "app"],
        &["describe", "rs"],
    ] {
        cluster.assert_same(args);
    }
    cluster.assert_same(&["rollout", "undo", "deploy/app"]);
    cluster.wait_rolled_out("deploy/app");
    cluster.assert_same(&["rollout", "history", "deploy/app"]);
    cluster.assert_same(&["describe", "deploy", "ap"]);
    for args in [
        &["rollout", "pause", "deploy/app"][..],
        &["rollout", "pause", "deploy/app"],
        &["rollout", "restart", "deploy/app"],
        &["rollout", "undo", "deploy/app"],
        &["rollout", "resume", "deploy/app"],
        &["rollout", "resume", "deploy/app"],
        &["rollout", "restart", "deploy/app"],
    ] {
        cluster.assert_same(args);
    }
    cluster.wait_rolled_out("deploy/app");
    for ns in ["ours", "theirs"] {
        let out = cluster.theirs(&[
            "-n",
            ns,
            "get",
            "deploy",
            "app",
            "-o",
            "jsonpath={.spec.template.metadata.annotations}",
        ]);
        assert!(
            out.stdout.contains("kubectl.kubernetes.io/restartedAt"),
            "{out:?}"
        );
    }
    cluster.assert_same(&["rollout", "status", "deploy/app"]);
}

#[test]
fn rollout_status_waits_and_times_out_as_upstream() {
    let cluster = Cluster::start(true);
    cluster.setup(&["create", "configmap", "cm"], None);
    cluster.assert_same(&["rollout", "status", "cm/cm"]);
    cluster.assert_same(&["rollout", "history", "cm/cm"]);
    cluster.assert_same(&["rollout", "restart", "cm/cm"]);
    cluster.assert_same(&["rollout", "pause", "cm/cm"]);
    cluster.assert_same(&["rollout", "status"]);
    // A paused deployment never rolls out: the wait ends with the timeout.
    cluster.setup(
        &[
            "create",
            "deployment",
            "app",
            "--image=nginx:1",
            "--replicas=1",
        ],
        None,
    );
    cluster.wait_rolled_out("deploy/app");
    cluster.setup(&["rollout", "pause", "deploy/app"], None);
    cluster.setup(&["set", "image", "deploy/app", "nginx=nginx:2"], None);
    // the controller observes the paused spec without creating a new ReplicaSet
    for ns in ["ours", "theirs"] {
        wait_for("observed generation", || {
            let out = cluster.theirs(&[
                "-n",
                ns,
                "get",
                "deploy",
                "app",
                "-o",
                "jsonpath={.metadata.generation} {.status.observedGeneration}",
            ]);
            let parts: Vec<&str> = out.stdout.split(' ').collect();
            parts.len() == 2 && parts[0] == parts[1]
        });
    }
    cluster.assert_same(&["rollout", "status", "deploy/app", "--watch=false"]);
    cluster.assert_same(&["rollout", "status", "deploy/app", "--timeout=2s"]);
}

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web, tier: frontend}
  annotations: {note: hello}
spec:
  initContainers:
  - name: init
    image: busybox
    command: [sh, -c, 'echo init']
  containers:
  - name: main
    image: busybox
    args: ['sleep', '3600']
    ports: [{containerPort: 80, name: http}, {containerPort: 53, protocol: UDP}]
    env:
    - {name: GREETING, value: \"hello\\nworld\"}
    - {name: FROM_CM, valueFrom: {configMapKeyRef: {name: settings, key: mode}}}
    - {name: FROM_SECRET, valueFrom: {secretKeyRef: {name: s, key: k, optional: true}}}
    envFrom: [{configMapRef: {name: settings}}, {prefix: P_, secretRef: {name: s}}]
    resources: {limits: {cpu: 200m, memory: 64Mi}, requests: {cpu: 100m}}
    volumeMounts: [{name: data, mountPath: /data}, {name: cfg, mountPath: /etc/cfg, readOnly: true, subPath: x}]
  - name: side
    image: nginx
  volumes:
  - {name: data, emptyDir: {sizeLimit: 1Gi}}
  - {name: cfg, configMap: {name: settings}}
  - {name: sec, secret: {secretName: s, optional: true}}
  - {name: host, hostPath: {path: /var/log, type: Directory}}
  nodeSelector: {disk: ssd}
  tolerations: [{key: b, operator: Exists, effect: NoSchedule}, {key: a, operator: Equal, value: v, tolerationSeconds: 30, effect: NoExecute}]
";

const OBJECTS: &str = "apiVersion: v1
kind: ConfigMap
metadata: {name: settings, labels: {app: web}}
data: {mode: 'on', script: \"echo one\\necho two\\n\", log.level: debug}
binaryData: {blob: aGVsbG8=}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: envsrc}
data: {log.level: debug}
---
apiVersion: v1
kind: ReplicationController
metadata: {name: rc1, labels: {app: rc1}}
spec:
  replicas: 0
  selector: {run: rc1}
  template:
    metadata: {labels: {run: rc1}}
    spec:
      containers: [{name: c, image: busybox}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: dep, annotations: {long: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'}}
spec:
  replicas: 0
  selector: {matchLabels: {app: dep}, matchExpressions: [{key: tier, operator: In, values: [b, a]}]}
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata: {labels: {app: dep, tier: a}}
    spec:
      containers: [{name: c, image: busybox, command: [sleep, '1']}]
";

#[test]
fn set_and_describe_match_upstream() {
    let cluster = Cluster::start(false);
    cluster.setup(&["create", "-f", "-"], Some(POD));
    cluster.setup(&["create", "-f", "-"], Some(OBJECTS));
    cluster.setup(
        &[
            "create",
            "service",
            "clusterip",
            "web",
            "--tcp=80:8080",
            "--tcp=443:8443",
        ],
        None,
    );
    cluster.setup(
        &["create", "service", "nodeport", "np", "--tcp=80:8080"],
        None,
    );
    for args in [
        &["describe", "pod", "web"][..],
        &["describe", "pods"],
        &["describe", "po", "we"],
        &["describe", "pod", "zz"],
        &["describe", "pod/web", "--show-events=false"],
        &["describe", "cm", "settings"],
        &["describe", "rc", "rc1"],
        &["describe", "deploy", "dep"],
        &["describe", "svc"],
        &["describe", "services", "-l", "app=np"],
        &["describe", "svc", "-l", "app=none"],
        &["describe"],
        &["set", "image", "pod/web", "side=nginx:2"],
        &["set", "image", "deploy", "dep", "*=busybox:2"],
        &["set", "image", "deploy/dep"],
        &["set", "image", "cm/settings", "a=b"],
        &["set", "image", "deploy/none", "a=b"],
        &["set", "env", "deploy/dep", "A=1", "B=two"],
        &["set", "env", "deploy/dep", "A=1"],
        &["set", "env", "deploy/dep", "--list"],
        &["set", "env", "deploy/dep", "A-"],
        &["set", "env", "deploy/dep", "-c", "nope", "X=1"],
        &[
            "set",
            "env",
            "deploy/dep",
            "--from=configmap/envsrc",
            "--prefix=CFG_",
        ],
        &["set", "env", "deploy/dep", "--list"],
        &["set", "env", "rc/rc1", "C"],
        &[
            "set",
            "resources",
            "deploy/dep",
            "--limits=cpu=0.5,memory=512Mi",
            "--requests=cpu=100m",
        ],
        &[
            "set",
            "resources",
            "deploy/dep",
            "--limits=cpu=0.5,memory=512Mi",
        ],
        &["set", "resources", "deploy/dep"],
        &["set", "resources", "deploy/dep", "--limits=cpu=abc"],
        &["set", "resources", "rc/rc1", "-c", "nope", "--limits=cpu=1"],
        &["describe", "deploy", "dep"],
        &["describe", "rc", "rc1"],
    ] {
        cluster.assert_same(args);
    }
    // the objects themselves ended up the same
    let spec = |ns: &str| {
        cluster
            .theirs(&[
                "-n",
                ns,
                "get",
                "deploy",
                "dep",
                "-o",
                "jsonpath={.spec.template}",
            ])
            .stdout
    };
    assert_eq!(spec("ours"), spec("theirs"));
    // events of the object are listed
    for ns in ["ours", "theirs"] {
        let uid = cluster
            .theirs(&[
                "-n",
                ns,
                "get",
                "pod",
                "web",
                "-o",
                "jsonpath={.metadata.uid}",
            ])
            .stdout;
        let event = format!(
            "{{\"apiVersion\":\"v1\",\"kind\":\"Event\",\"metadata\":{{\"name\":\"e1\"}},\"involvedObject\":{{\"kind\":\"Pod\",\"name\":\"web\",\"namespace\":\"{ns}\",\"uid\":\"{uid}\"}},\"reason\":\"Pulled\",\"message\":\"image pulled \",\"type\":\"Normal\",\"source\":{{\"component\":\"kubelet\"}},\"firstTimestamp\":\"2020-01-01T00:00:00Z\",\"lastTimestamp\":\"2020-01-01T00:05:00Z\",\"count\":4}}"
        );
        cluster
            .run(KUBECTL, &["-n", ns, "create", "-f", "-"], Some(&event))
            .assert_success();
    }
    cluster.assert_same(&["describe", "pod", "web"]);
    cluster.assert_same(&["describe", "ns", "default", "kube-system"]);
}

/// Upstream's `describe` prints ConfigMap/Secret `Data` by ranging over a Go
/// map, so its key order changes from run to run. This puts the `key:` /
/// `----` blocks of every `Data` / `BinaryData` section in sorted order so
/// the comparison checks content, not Go's map iteration order.
fn map_order_free(text: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let is_section =
            (lines[i] == "Data" || lines[i] == "BinaryData") && lines.get(i + 1) == Some(&"====");
        if !is_section {
            out.push(lines[i].to_string());
            i += 1;
            continue;
        }
        out.push(lines[i].to_string());
        out.push(lines[i + 1].to_string());
        i += 2;
        // blocks run until the next section header or the Events line
        let mut blocks: Vec<String> = Vec::new();
        let mut current: Option<String> = None;
        let mut tail: Vec<String> = Vec::new();
        while i < lines.len() {
            let line = lines[i];
            let next_is_section =
                (line == "BinaryData" || line == "Data") && lines.get(i + 1) == Some(&"====");
            if next_is_section || line.starts_with("Events:") {
                break;
            }
            if lines.get(i + 1) == Some(&"----") && line.ends_with(':') {
                blocks.extend(current.take());
                current = Some(String::new());
            }
            match current.as_mut() {
                Some(block) => {
                    block.push_str(line);
                    block.push('\n');
                }
                None => tail.push(line.to_string()),
            }
            i += 1;
        }
        blocks.extend(current.take());
        // a block's trailing blank lines depend on its position; compare trimmed
        let mut trimmed: Vec<String> = blocks
            .iter()
            .map(|b| b.trim_end_matches('\n').to_string())
            .collect();
        trimmed.sort();
        out.extend(tail);
        out.extend(trimmed);
    }
    out.join("\n")
}

#[test]
fn map_order_free_sorts_data_blocks_only() {
    let a = "Name: x\n\nData\n====\nb:\n----\ntwo\n\na:\n----\none\nline\n\n\nBinaryData\n====\n\nEvents:  <none>";
    let b = "Name: x\n\nData\n====\na:\n----\none\nline\n\nb:\n----\ntwo\n\n\nBinaryData\n====\n\nEvents:  <none>";
    assert_eq!(map_order_free(a), map_order_free(b));
    let c = "Name: x\n\nData\n====\na:\n----\nONE\nline\n\nb:\n----\ntwo\n\n\nBinaryData\n====\n\nEvents:  <none>";
    assert_ne!(map_order_free(a), map_order_free(c));
}
