//! `kubectl __complete` (cobra's dynamic completion protocol) of our kubectl
//! against upstream kubectl v1.32 on the same real apiserver + etcd, and the
//! bash script of `kubectl completion bash` driving our binary.

mod common;

use std::process::Command;

use common::{Cluster, OURS};
use test_support::{KubectlOutput, KUBECTL};

/// Candidates sorted where upstream's order is Go map order (kubeconfig names).
fn normalized(out: &KubectlOutput, sort: bool) -> Vec<String> {
    let mut lines: Vec<String> = out.stdout.lines().map(str::to_string).collect();
    if sort {
        if let Some(directive) = lines.pop() {
            lines.sort();
            lines.push(directive);
        }
    }
    lines
}

#[test]
fn complete_lists_the_same_candidates_as_upstream() {
    let cluster = Cluster::start();
    let server = &cluster.server;
    let setup = |args: &[&str]| cluster.setup(args, None);
    setup(&["create", "namespace", "demo"]);
    setup(&["create", "serviceaccount", "default"]);
    setup(&["create", "configmap", "cm1", "--from-literal=a=b"]);
    setup(&["create", "configmap", "cm2", "--from-literal=a=b"]);
    setup(&["create", "deployment", "d1", "--image=busybox"]);
    setup(&["run", "web", "--image=busybox"]);
    setup(&["run", "db", "--image=busybox"]);
    setup(&["-n", "demo", "create", "configmap", "other"]);

    let cases: &[(&[&str], bool)] = &[
        (&["__complete", "g"], false),
        // (`ro` would also offer our legacy `rolling-update`, which upstream v1.32 lacks.)
        (&["__complete", "rollo"], false),
        (&["__complete", "rollout", ""], false),
        (&["__complete", "get", ""], false),
        (&["__complete", "get", "dep"], false),
        (&["__complete", "get", "pods,se"], false),
        (&["__complete", "get", "po", ""], false),
        (&["__complete", "get", "pods", "w"], false),
        (&["__complete", "get", "pods", "web", ""], false),
        (&["__complete", "get", "pod/"], false),
        (&["__complete", "get", "deploy,pods", ""], false),
        (&["__complete", "get", "-n", "demo", "cm", ""], false),
        (&["__complete", "get", "nodes", ""], false),
        (&["__complete", "describe", "configmaps", "cm"], false),
        (&["__complete", "delete", "cm", ""], false),
        (&["__complete", "edit", "pods", ""], false),
        (&["__complete", "label", "pods", ""], false),
        (&["__complete", "label", "pods/web", ""], false),
        (&["__complete", "annotate", "cm", "cm1", ""], false),
        (&["__complete", "get", "-n", ""], false),
        (&["__complete", "get", "--namespace=d"], false),
        (&["__complete", "get", "pods", "-o", ""], false),
        (&["__complete", "get", "--na"], false),
        (&["__complete", "get", "pods", "-n"], false),
        (&["__complete", "--context", ""], true),
        (&["__complete", "get", "--context=k"], true),
        (&["__complete", "logs", ""], false),
        (&["__complete", "logs", "po"], false),
        (&["__complete", "logs", "deployments/"], false),
        (&["__complete", "logs", "web", ""], false),
        (&["__complete", "exec", "d"], false),
        (&["__complete", "scale", ""], false),
        (&["__complete", "scale", "deployment", ""], false),
        (
            &["__complete", "scale", "--replicas=2", "deployment", ""],
            false,
        ),
        (&["__complete", "rollout", "status", ""], false),
        (&["__complete", "rollout", "pause", ""], false),
        (&["__completeNoDesc", "g"], false),
        (&["__completeNoDesc", "get", "po", ""], false),
    ];
    let mut failures = Vec::new();
    for (args, sort) in cases {
        let theirs = cluster.run(KUBECTL, args, None);
        let ours = cluster.run(OURS, args, None);
        assert!(theirs.success(), "upstream {args:?}: {theirs:?}");
        if (normalized(&ours, *sort), ours.status) != (normalized(&theirs, *sort), theirs.status) {
            failures.push(format!(
                "{args:?}\n--- ours\n{}--- upstream\n{}",
                ours.stdout, theirs.stdout
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The bash script asks our binary on TAB.
    let script = cluster.run(OURS, &["completion", "bash"], None);
    assert!(script.success(), "{script:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    let bin_dir = dir.path().join("bin");
    std::fs::create_dir(&bin_dir).expect("bin dir");
    std::os::unix::fs::symlink(OURS, bin_dir.join("kubectl")).expect("symlink");
    let script_path = dir.path().join("kubectl.bash");
    std::fs::write(&script_path, &script.stdout).expect("script");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let complete = |words: &str, cword: usize| -> String {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {}; COMP_WORDS=({words}); COMP_CWORD={cword}; __kubectl_complete; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                script_path.display()
            ))
            .env("PATH", &path)
            .env("KUBECONFIG", server.kubeconfig())
            .output()
            .expect("bash");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(complete("kubectl get pods ''", 3), "db\nweb\n");
    assert_eq!(complete("kubectl get -n de", 3), "default\ndemo\n");
    assert_eq!(complete("kubectl sca", 1), "scale\n");
}
