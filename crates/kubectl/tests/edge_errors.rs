//! Error paths where our kubectl must print what upstream kubectl v1.32
//! prints (stdout, stderr, exit code): required flags, objects that are not
//! there, labels checked before the server is asked, one failure a node,
//! warnings that wait for the sources, and unmapped manifest kinds.

mod common;

use common::{assert_no_diffs, rendered, with_ns, Cluster, OURS};
use test_support::KUBECTL;

/// upstream's klog header (`E1122 15:40:48.820254   13425 `) changes with
/// the clock and the process id.
fn mask_klog(text: &str) -> String {
    text.lines()
        .map(|line| match line.find(" run.go:") {
            Some(at) if line.starts_with('E') => format!("E<klog>{}", &line[at..]),
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs `args` (with `{ns}`) in `-n ours` with ours and `-n theirs` upstream;
/// both renderings with `{ns}` for the namespace, klog headers masked.
fn both_in(cluster: &Cluster, args: &[&str]) -> (String, String) {
    let render = |bin: &str, ns: &str| {
        let all = with_ns(ns, args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        mask_klog(&rendered(&cluster.run(bin, &refs, None))).replace(ns, "{ns}")
    };
    (render(OURS, "ours"), render(KUBECTL, "theirs"))
}

/// Runs cluster-scoped `args` with both, one after the other.
fn both_global(cluster: &Cluster, args: &[&str]) -> (String, String) {
    let ours = mask_klog(&rendered(&cluster.ours(args)));
    let theirs = mask_klog(&rendered(&cluster.theirs(args)));
    (ours, theirs)
}

const RC: &str = r#"{"apiVersion": "v1", "kind": "ReplicationController",
 "metadata": {"name": "web", "namespace": "{ns}"},
 "spec": {"replicas": 1, "selector": {"app": "web"},
  "template": {"metadata": {"labels": {"app": "web"}},
   "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}"#;

#[test]
fn scale_errors_match_upstream() {
    let cluster = Cluster::start_with_namespaces();
    cluster.setup_both(&["apply", "-f", "-"], Some(RC));
    let commands: &[&[&str]] = &[
        &["scale", "rc"],
        &["scale", "rc", "web"],
        &["scale", "rc", "nosuch", "--replicas=3"],
        &["scale", "rc", "nosuch", "nosuch2", "--replicas=3"],
        &["scale", "rc", "nosuch", "web", "--replicas=2"],
        &["scale", "rc", "--replicas=3"],
        &["scale", "--replicas=3"],
        &["scale", "rc", "--all", "--replicas=1"],
        &["scale", "rc", "web", "--replicas=1", "--current-replicas=5"],
    ];
    assert_no_diffs(commands, |args| both_in(&cluster, args));
}

#[test]
fn label_arguments_are_checked_before_the_server() {
    let cluster = Cluster::start();
    cluster.setup(
        &["create", "-f", "-"],
        Some(r#"{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}"#),
    );
    let commands: &[&[&str]] = &[
        &["label", "nodes", "<node-name>", "<label-key>=<label-value>"],
        &["label"],
        &["label", "nodes"],
        &["label", "nodes", "n1"],
        &["label", "nodes", "n1", "a=b=c"],
        &["label", "nodes", "n1", "a=-x"],
        &["label", "nodes", "n1", "a=b", "x"],
        &["label", "nodes", "n1", "a=b", "a-"],
        &["label", "nodes", "<x>", "a=b"],
        &["annotate"],
        &["annotate", "nodes"],
        &["annotate", "nodes", "n1", "a=b", "x"],
    ];
    assert_no_diffs(commands, |args| both_global(&cluster, args));
}

#[test]
fn taint_reports_a_missing_taint_once_a_node() {
    let cluster = Cluster::start();
    for node in ["n1", "n2"] {
        cluster.setup(
            &["create", "-f", "-"],
            Some(&format!(
                r#"{{"apiVersion": "v1", "kind": "Node", "metadata": {{"name": "{node}"}}}}"#
            )),
        );
    }
    // Failing commands only: they change nothing, so both see the same nodes.
    let commands: &[&[&str]] = &[
        &["taint", "node", "--all", "node-role.kubernetes.io/master-"],
        &["taint", "node", "n1", "foo-"],
        &["taint", "node", "n1", "n2", "foo:NoSchedule-"],
        &["taint", "node", "nosuch", "n1", "foo-"],
    ];
    assert_no_diffs(commands, |args| both_global(&cluster, args));
}

#[test]
fn manifest_errors_match_upstream() {
    let cluster = Cluster::start_with_namespaces();
    let dir = tempfile::tempdir().expect("tempdir");
    let ext = dir.path().join("ext.yaml");
    std::fs::write(
        &ext,
        "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata:\n  name: nginx-deployment\nspec:\n  replicas: 1\n",
    )
    .expect("write ext.yaml");
    let ext = ext.display().to_string();
    let missing = dir.path().join("missing.yaml").display().to_string();
    let commands: &[&[&str]] = &[
        &["delete", "-f", &missing, "--force", "--grace-period=0"],
        &["delete", "pod", "--force"],
        &["delete", "-f", &ext, "--force"],
        &["delete", "pod", "nosuch", "--force"],
        &["create", "-f", &ext],
        &["apply", "-f", &ext],
    ];
    assert_no_diffs(commands, |args| both_in(&cluster, args));
}
