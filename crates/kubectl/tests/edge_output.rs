//! Output edge cases where our kubectl must match upstream kubectl v1.32
//! byte for byte: the `Found N pods` note of `logs`, `get -w --watch-only`,
//! attach/port-forward of a pod without a node, server-side apply conflicts
//! and go-templates.

mod common;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{mask_ages, rendered, with_ns, Cluster, OURS};
use test_support::KUBECTL;

/// `args` run by ours in `-n ours` and upstream in `-n theirs`, rendered
/// with the namespace (and any `masks`) made neutral.
fn both(cluster: &Cluster, args: &[&str], masks: &[&str]) -> (String, String) {
    let render = |bin: &str, ns: &str| {
        let all = with_ns(ns, args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let mut text = rendered(&cluster.run(bin, &refs, None)).replace(ns, "NS");
        for m in masks {
            text = text.replace(m, "MASKED");
        }
        text
    };
    (render(OURS, "ours"), render(KUBECTL, "theirs"))
}

fn assert_same(cluster: &Cluster, args: &[&str], masks: &[&str]) -> String {
    let (ours, theirs) = both(cluster, args, masks);
    assert_eq!(ours, theirs, "kubectl {}", args.join(" "));
    ours
}

const WEB_PODS: &str = "
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Pod, metadata: {name: web-a, labels: {app: web}}, spec: {containers: [{name: c, image: nginx}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: web-b, labels: {app: web}}, spec: {containers: [{name: c, image: nginx}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: web-c, labels: {app: web}}, spec: {containers: [{name: c, image: nginx, ports: [{containerPort: 80}]}]}}
- {apiVersion: v1, kind: ReplicationController, metadata: {name: web}, spec: {replicas: 0, selector: {app: web}, template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c, image: nginx}]}}}}
- {apiVersion: apps/v1, kind: Deployment, metadata: {name: web}, spec: {replicas: 0, selector: {matchLabels: {app: web}}, template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c, image: nginx}]}}}}
";

#[test]
fn logs_of_a_workload_with_several_pods_names_the_one_used() {
    let cluster = Cluster::start_with_namespaces();
    cluster.setup_both(&["apply", "-f", "-"], Some(WEB_PODS));
    // Which of the equal Pending pods is picked is unspecified upstream.
    let masks = ["web-a", "web-b", "web-c"];
    for target in ["deployment/web", "rc/web"] {
        let out = assert_same(&cluster, &["logs", target], &masks);
        assert!(out.contains("Found 3 pods, using pod/MASKED"), "{out}");
    }
}

#[test]
fn attach_and_port_forward_fail_at_once_on_a_pod_without_node() {
    let cluster = Cluster::start_with_namespaces();
    cluster.setup_both(&["apply", "-f", "-"], Some(WEB_PODS));
    let started = Instant::now();
    assert_same(&cluster, &["attach", "web-c"], &[]);
    let out = assert_same(&cluster, &["port-forward", "pod/web-c", "18080:80"], &[]);
    assert!(
        out.contains("pod is not running. Current status=Pending"),
        "{out}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn server_side_apply_conflict_prints_the_advice() {
    let cluster = Cluster::start_with_namespaces();
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {key: one}\n";
    let changed = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {key: two}\n";
    for ns in ["ours", "theirs"] {
        let args = with_ns(
            ns,
            &["apply", "--server-side", "--field-manager=first", "-f", "-"],
        );
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        cluster.setup(&refs, Some(cm));
    }
    let run = |bin: &str, ns: &str| {
        let args = with_ns(ns, &["apply", "--server-side", "-f", "-"]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        rendered(&cluster.run(bin, &refs, Some(changed))).replace(ns, "NS")
    };
    let theirs = run(KUBECTL, "theirs");
    assert!(
        theirs.contains("Please review the fields above"),
        "{theirs}"
    );
    assert_eq!(run(OURS, "ours"), theirs);
}

#[test]
fn go_templates_match_upstream() {
    let cluster = Cluster::start_with_namespaces();
    cluster.setup_both(&["apply", "-f", "-"], Some(WEB_PODS));
    let file = tempfile::NamedTempFile::new().expect("template file");
    std::fs::write(
        file.path(),
        "{{range .items}}{{.metadata.name}} {{len .spec.containers}}\n{{end}}",
    )
    .expect("write template");
    let file_arg = format!("-o=go-template-file={}", file.path().display());
    let commands: Vec<Vec<&str>> = vec![
        vec!["get", "pod", "web-a", "-o", "go-template={{.metadata.name}}"],
        vec!["get", "pods", "-o", "go-template={{range .items}}{{.metadata.name}},{{end}}"],
        vec!["get", "pod", "web-a", "web-b", "-o", "go-template={{.kind}} {{len .items}}"],
        vec![
            "get",
            "pods",
            "-o",
            "go-template={{range .items}}{{printf \"%s/%s\" .kind .metadata.name}} {{index .metadata.labels \"app\"}}\n{{end}}",
        ],
        vec!["get", "pod", "web-c", "--template", "{{(index .spec.containers 0).name}}"],
        vec!["get", "pods", "-o", "template={{.missing}}"],
        vec!["get", "pods", &file_arg],
        vec!["get", "pods", "-o", "go-template"],
    ];
    for args in &commands {
        assert_same(&cluster, args, &[]);
    }
}

/// A `get -w` left running, its stdout collected by a thread.
struct Watcher {
    child: Child,
    output: std::thread::JoinHandle<String>,
}

fn spawn_watch(cluster: &Cluster, bin: &str, ns: &str) -> Watcher {
    let mut child = Command::new(bin)
        .env_remove("KUBECONFIG")
        .env(
            "KUBECACHEDIR",
            cluster.server.dir().join(format!("watch-{ns}")),
        )
        .arg(format!(
            "--kubeconfig={}",
            cluster.server.kubeconfig().display()
        ))
        .args(["-n", ns, "get", "pods", "-w", "--watch-only"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kubectl");
    let mut stdout = child.stdout.take().expect("stdout");
    let output = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    Watcher { child, output }
}

impl Watcher {
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.output.join().expect("reader")
    }
}

#[test]
fn watch_only_prints_changes_only() {
    let cluster = Cluster::start_with_namespaces();
    cluster.setup_both(&["apply", "-f", "-"], Some(WEB_PODS));
    let ours = spawn_watch(&cluster, OURS, "ours");
    let theirs = spawn_watch(&cluster, KUBECTL, "theirs");
    // Let both finish their list and open the watch before the change.
    std::thread::sleep(Duration::from_secs(3));
    cluster.setup_both(&["label", "pod", "web-b", "changed=yes"], None);
    // Poll upstream's pod list for the label to be seen, then give the
    // watch events a moment to arrive at both.
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let out = cluster.theirs(&["-n", "theirs", "get", "pod", "web-b", "--show-labels"]);
        if out.stdout.contains("changed=yes") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    let ours = mask_ages(&ours.stop());
    let theirs = mask_ages(&theirs.stop());
    assert!(theirs.contains("web-b"), "{theirs}");
    assert!(!theirs.contains("web-a"), "{theirs}");
    assert_eq!(ours, theirs);
}
