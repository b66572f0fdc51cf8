//! edit, autoscale, explain, completion and `describe node`: our kubectl against
//! upstream kubectl v1.32 on the same real apiserver + etcd. Writes run in
//! namespaces (and on nodes) named `ours` and `theirs`; the name is masked
//! before comparing, as are ages, temp file names and object identities.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{assert_no_diffs, is_age, mask_ages_in_line, rendered, with_ns, Cluster, OURS};
use test_support::{KubectlOutput, KUBECTL};

impl Cluster {
    /// Runs `bin` with extra environment (the editor), stdin closed.
    fn run_env(&self, bin: &str, args: &[String], env: &[(&str, &str)]) -> KubectlOutput {
        let out = Command::new(bin)
            .env_remove("KUBECONFIG")
            .env_remove("KUBE_EDITOR")
            .env("KUBECACHEDIR", self.server.dir().join("kubectl-cache"))
            .envs(env.iter().copied())
            .arg(format!(
                "--kubeconfig={}",
                self.server.kubeconfig().display()
            ))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
        KubectlOutput {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Both binaries in their own namespace; returns both renderings, masked.
    fn both_env(&self, args: &[&str], env: &[(&str, &str)]) -> (String, String) {
        let go = |bin: &str, ns: &str| render(&self.run_env(bin, &with_ns(ns, args), env), ns);
        (go(OURS, "ours"), go(KUBECTL, "theirs"))
    }

    fn assert_all_same(&self, commands: &[&[&str]]) {
        assert_no_diffs(commands, |args| self.both_env(args, &[]));
    }
}

/// Masks the namespace, ages (and the padding around them), temp file names,
/// RFC 1123 creation times and uids.
fn render(out: &KubectlOutput, ns: &str) -> String {
    let text = rendered(out).replace(ns, "<ns>");
    text.lines()
        .map(|line| {
            if line.contains("kubectl-edit-") {
                return "<copy stored>".to_string();
            }
            if line.starts_with("CreationTimestamp:") {
                return "CreationTimestamp: <time>".to_string();
            }
            mask_ages_in_line(line, is_age)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const DEPLOY: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: busybox}]}
";

/// Writes an editor script that keeps a copy of every file it is given in
/// `dir/seen-N` and then runs `change` (a shell snippet on `$1`).
fn editor(dir: &Path, name: &str, change: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    let seen = dir.join(format!("{name}-seen"));
    std::fs::create_dir_all(&seen).expect("seen dir");
    let script = format!(
        "#!/bin/sh\nn=$(ls {seen} | wc -l)\ncp \"$1\" {seen}/$n\n{change}\n",
        seen = seen.display()
    );
    std::fs::write(&path, script).expect("write editor");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path.display().to_string()
}

/// The files an editor script was shown, in order.
fn seen(dir: &Path, name: &str) -> Vec<String> {
    let seen = dir.join(format!("{name}-seen"));
    let mut files: Vec<(usize, PathBuf)> = std::fs::read_dir(&seen)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .map(|(_, p)| std::fs::read_to_string(p).unwrap_or_default())
        .collect()
}

fn comment_lines(text: &str) -> String {
    text.lines()
        .filter(|l| l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn edit_matches_upstream() {
    let cluster = Cluster::start_with_namespaces();
    cluster.setup_both(&["create", "-f", "-"], Some(DEPLOY));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut diffs = Vec::new();
    let mut check = |what: &str, (ours, theirs): (String, String)| {
        if ours != theirs {
            diffs.push(format!("{what}\n  ours:   {ours:?}\n  theirs: {theirs:?}"));
        }
    };
    // Unchanged: cancelled. EDITOR is used when KUBE_EDITOR is unset.
    let cat = editor(dir.path(), "cat", "true");
    check(
        "unchanged",
        cluster.both_env(&["edit", "deploy", "web"], &[("EDITOR", &cat)]),
    );
    let shown = seen(dir.path(), "cat");
    assert_eq!(shown.len(), 2, "one editor run each");
    assert!(shown[0].starts_with("# Please edit the object below. Lines beginning with a '#' will be ignored,\n# and an empty file will abort the edit. If an error occurs while saving this file will be\n# reopened with the relevant failures.\n#\napiVersion: apps/v1\nkind: Deployment\n"), "{}", shown[0]);
    assert_eq!(
        shown[0]
            .replace("ours", "<ns>")
            .lines()
            .filter(|l| !l.contains("uid:")
                && !l.contains("creationTimestamp")
                && !l.contains("resourceVersion"))
            .collect::<Vec<_>>(),
        shown[1]
            .replace("theirs", "<ns>")
            .lines()
            .filter(|l| !l.contains("uid:")
                && !l.contains("creationTimestamp")
                && !l.contains("resourceVersion"))
            .collect::<Vec<_>>(),
        "the same file is shown"
    );
    // JSON: no header.
    let json = editor(dir.path(), "json", "true");
    check(
        "json unchanged",
        cluster.both_env(&["edit", "deploy/web", "-o", "json"], &[("EDITOR", &json)]),
    );
    assert!(seen(dir.path(), "json")
        .iter()
        .all(|f| f.starts_with("{\n    \"apiVersion\": \"apps/v1\",")));
    // A change: patched; KUBE_EDITOR wins over EDITOR.
    let scale = editor(
        dir.path(),
        "scale",
        "sed -i 's/replicas: 1$/replicas: 2/' \"$1\"",
    );
    check(
        "edited",
        cluster.both_env(
            &["edit", "deployment", "web"],
            &[("KUBE_EDITOR", &scale), ("EDITOR", "/bin/false")],
        ),
    );
    check(
        "after edit",
        cluster.both_env(
            &["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"],
            &[],
        ),
    );
    // Invalid for the server (422): re-opened with the reasons, then an
    // unchanged save gives up and keeps a copy.
    let bad = editor(
        dir.path(),
        "bad",
        "grep -q '^# \\*' \"$1\" || sed -i 's/replicas: [0-9]*$/replicas: -1/' \"$1\"",
    );
    check(
        "invalid",
        cluster.both_env(&["edit", "deploy", "web"], &[("EDITOR", &bad)]),
    );
    let shown = seen(dir.path(), "bad");
    assert_eq!(shown.len(), 4, "each binary opens the editor twice");
    assert_eq!(
        comment_lines(&shown[1]),
        comment_lines(&shown[3]),
        "the re-opened files carry the same reasons"
    );
    assert!(
        shown[1].contains("# deployments.apps \"web\" was not valid:\n# * spec.replicas: Invalid value: -1: must be greater than or equal to 0\n#\n"),
        "{}",
        shown[1]
    );
    // Unparsable YAML: re-opened with the syntax error.
    let yaml = editor(
        dir.path(),
        "yaml",
        "grep -q '^  bad:' \"$1\" || echo '  bad: [unclosed' >> \"$1\"",
    );
    check(
        "syntax error",
        cluster.both_env(&["edit", "deploy", "web"], &[("EDITOR", &yaml)]),
    );
    let shown = seen(dir.path(), "yaml");
    assert_eq!(shown.len(), 4);
    assert_eq!(comment_lines(&shown[1]), comment_lines(&shown[3]));
    // Several objects: one List, only the changed ones patched.
    cluster.setup_both(&["create", "deployment", "other", "--image=busybox"], None);
    let list = editor(
        dir.path(),
        "list",
        "sed -i 's/replicas: 1$/replicas: 3/' \"$1\"",
    );
    check(
        "list",
        cluster.both_env(&["edit", "deploy"], &[("EDITOR", &list)]),
    );
    let shown = seen(dir.path(), "list");
    assert!(
        shown[0].contains("\napiVersion: v1\nitems:\n- apiVersion: apps/v1\n"),
        "{}",
        shown[0]
    );
    assert!(
        shown[0].ends_with("kind: List\nmetadata: {}\n"),
        "{}",
        shown[0]
    );
    // Errors before any editing.
    check(
        "missing",
        cluster.both_env(&["edit", "deploy", "nope"], &[("EDITOR", &cat)]),
    );
    check("no args", cluster.both_env(&["edit"], &[("EDITOR", &cat)]));
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

#[test]
fn autoscale_creates_hpa() {
    let cluster = Cluster::start_with_namespaces();
    cluster.setup_both(&["create", "-f", "-"], Some(DEPLOY));
    cluster.setup_both(&["run", "lonely", "--image=busybox"], None);
    // Validation, lookups and client dry runs print as upstream's.
    cluster.assert_all_same(&[
        &["autoscale", "deployment", "web", "--max=0"][..],
        &["autoscale", "deployment", "web", "--min=3", "--max=2"],
        &["autoscale", "deployment", "nope", "--max=3"],
        &["autoscale", "pod", "lonely", "--max=3"],
        &["autoscale", "deploy/web", "--max=3", "--dry-run=client"],
        &[
            "autoscale",
            "deploy",
            "web",
            "--max=3",
            "--name=other",
            "--dry-run=client",
            "-o",
            "name",
        ],
    ]);
    // Upstream 1.32 posts an autoscaling/v1 object, which our apiserver does not
    // serve; ours creates the same HPA in its autoscaling/v2 form.
    let run = |args: &[&str]| cluster.run_env(OURS, &with_ns("ours", args), &[]);
    let out = run(&[
        "autoscale",
        "deployment",
        "web",
        "--min=2",
        "--max=5",
        "--cpu-percent=80",
    ]);
    assert!(out.success(), "{out:?}");
    assert_eq!(
        out.stdout,
        "horizontalpodautoscaler.autoscaling/web autoscaled\n"
    );
    let out = run(&["get", "hpa", "web", "-o", "jsonpath={.spec}"]);
    let spec: serde_json::Value = serde_json::from_str(&out.stdout).expect("spec json");
    assert_eq!(
        spec,
        serde_json::json!({
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2,
            "maxReplicas": 5,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}}]
        })
    );
    let out = run(&["autoscale", "deployment", "web", "--max=5"]);
    assert_eq!(out.status, 1);
    assert_eq!(
        out.stderr,
        "Error from server (AlreadyExists): horizontalpodautoscalers.autoscaling \"web\" already exists\n"
    );
    let out = run(&[
        "autoscale",
        "deployment",
        "web",
        "--max=4",
        "--name=srv",
        "--dry-run=server",
    ]);
    assert_eq!(
        out.stdout,
        "horizontalpodautoscaler.autoscaling/srv autoscaled (server dry run)\n"
    );
    let out = run(&["get", "hpa", "srv"]);
    assert_eq!(out.status, 1, "server dry run stores nothing");
    let out = run(&[
        "autoscale",
        "deployment",
        "web",
        "--max=3",
        "--dry-run=client",
        "-o",
        "yaml",
    ]);
    assert!(
        out.stdout
            .starts_with("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn explain_matches_upstream() {
    let cluster = Cluster::start_with_namespaces();
    cluster.assert_all_same(&[
        &["explain", "pods"][..],
        &["explain", "pods.spec.containers"],
        &["explain", "pods.spec.containers.name"],
        &["explain", "pods.spec.containers.resources"],
        &["explain", "pods.metadata.creationTimestamp"],
        &["explain", "deployments.apps.spec.strategy"],
        &["explain", "deploy.spec", "--recursive"],
        &["explain", "svc.spec.ports"],
        &["explain", "hpa", "--api-version=autoscaling/v2"],
        &["explain", "csr"],
        &["explain", "pods.spec.nope"],
        &["explain", "nothing"],
        &["explain"],
    ]);
}

#[test]
fn completion_scripts_are_valid() {
    let cluster = Cluster::start_with_namespaces();
    cluster.assert_all_same(&[
        &["completion"][..],
        &["completion", "tcsh"],
        &["completion", "bash", "zsh"],
    ]);
    let out = cluster.run_env(OURS, &["completion".into(), "bash".into()], &[]);
    assert!(out.success(), "{out:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("kubectl.bash");
    std::fs::write(&script, &out.stdout).expect("write");
    let check = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .expect("bash -n");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let sourced = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p kubectl",
            script.display()
        ))
        .output()
        .expect("bash");
    let text = String::from_utf8_lossy(&sourced.stdout);
    assert!(
        sourced.status.success()
            && text.starts_with("complete ")
            && text.trim_end().ends_with(" kubectl"),
        "{text} {}",
        String::from_utf8_lossy(&sourced.stderr)
    );
    let out = cluster.run_env(OURS, &["completion".into(), "zsh".into()], &[]);
    assert!(out.stdout.starts_with("#compdef kubectl"), "{}", out.stdout);
}

fn node(name: &str) -> String {
    format!(
        "apiVersion: v1
kind: Node
metadata:
  name: {name}
  labels: {{kubernetes.io/hostname: {name}, node-role.kubernetes.io/control-plane: '', kubernetes.io/role: master}}
  annotations: {{node.alpha.kubernetes.io/ttl: '0'}}
spec:
  podCIDR: 10.244.0.0/24
  podCIDRs: [10.244.0.0/24]
  taints: [{{key: a, value: b, effect: NoSchedule}}, {{key: c, effect: PreferNoSchedule}}]
status:
  capacity: {{cpu: '4', memory: 8Gi, pods: '110', ephemeral-storage: 100Gi, hugepages-2Mi: '0', example.com/gpu: '2'}}
  allocatable: {{cpu: 3500m, memory: 7Gi, pods: '110', ephemeral-storage: 90Gi, hugepages-2Mi: '0', example.com/gpu: '2'}}
  addresses: [{{type: InternalIP, address: 10.0.0.5}}, {{type: Hostname, address: {name}}}]
  conditions:
  - {{type: Ready, status: 'True', lastHeartbeatTime: '2024-01-01T00:00:00Z', lastTransitionTime: '2024-01-01T00:00:00Z', reason: KubeletReady, message: kubelet is posting ready status}}
  nodeInfo: {{machineID: m1, systemUUID: u1, bootID: b1, kernelVersion: 6.1.0, osImage: Debian, operatingSystem: linux, architecture: amd64, containerRuntimeVersion: containerd://1.7, kubeletVersion: v1.32.0, kubeProxyVersion: v1.32.0}}
"
    )
}

const NODE_PODS: &str = "apiVersion: v1
kind: Pod
metadata: {name: big}
spec:
  nodeName: {ns}
  containers:
  - name: a
    image: busybox
    resources: {requests: {cpu: 250m, memory: 64Mi}, limits: {cpu: 500m, memory: 128Mi, example.com/gpu: '1'}}
  - name: b
    image: busybox
    resources: {requests: {cpu: '1', memory: 1Gi, ephemeral-storage: 1Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: small}
spec:
  nodeName: {ns}
  containers: [{name: a, image: busybox}]
";

#[test]
fn describe_node_matches_upstream() {
    let cluster = Cluster::start_with_namespaces();
    // (the apiserver creates kube-node-lease itself)
    for n in ["ours", "theirs"] {
        cluster.setup(&["create", "-f", "-"], Some(&node(n)));
    }
    cluster.setup_both(&["create", "-f", "-"], Some(NODE_PODS));
    // a Lease for one node, the other has none; an event for each
    cluster.setup(
        &["create", "-f", "-"],
        Some("apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: ours, namespace: kube-node-lease}\nspec: {holderIdentity: ours, leaseDurationSeconds: 40, renewTime: '2024-01-01T00:00:00.000000Z'}\n"),
    );
    cluster.setup(
        &["create", "-f", "-"],
        Some("apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: theirs, namespace: kube-node-lease}\nspec: {holderIdentity: theirs, leaseDurationSeconds: 40, renewTime: '2024-01-01T00:00:00.000000Z'}\n"),
    );
    for n in ["ours", "theirs"] {
        cluster.setup(
            &["create", "-f", "-"],
            Some(&format!("apiVersion: v1\nkind: Event\nmetadata: {{name: {n}.1, namespace: default}}\ninvolvedObject: {{kind: Node, name: {n}, uid: {n}}}\nreason: NodeReady\nmessage: Node {n} status is now NodeReady\ntype: Normal\nsource: {{component: kubelet, host: {n}}}\nfirstTimestamp: '2024-01-01T00:00:00Z'\nlastTimestamp: '2024-01-01T00:00:00Z'\ncount: 1\n")),
        );
    }
    cluster.setup(
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: Node\nmetadata: {name: bare}\n"),
    );
    cluster.assert_all_same(&[
        &["describe", "node", "{ns}"][..],
        &["describe", "node/{ns}", "--show-events=false"],
        &["describe", "node", "bare"],
        &["describe", "node", "missing"],
    ]);
}
