//! `kubectl auth can-i` and impersonation (`--as`, `--as-group`): ours and
//! upstream's against one secured apiserver (x509 users, RBAC), compared line
//! for line, exit codes included.

mod common;

use std::path::Path;

use common::{binary, OURS};
use test_support::{
    kubectl_binary_kubeconfig, Etcd, Identities, KubectlOutput, SecureApiServer, KUBECTL,
};

const RBAC: &str = r#"apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: default}
rules:
- apiGroups: [""]
  resources: [pods, pods/log]
  verbs: [get, list]
- apiGroups: ["apps"]
  resources: [deployments]
  resourceNames: [web]
  verbs: [update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: jane-reads-pods, namespace: default}
subjects:
- {kind: User, name: jane, apiGroup: rbac.authorization.k8s.io}
roleRef: {kind: Role, name: pod-reader, apiGroup: rbac.authorization.k8s.io}
"#;

fn run(bin: &str, server: &SecureApiServer, user: &str, args: &[&str]) -> KubectlOutput {
    let conf = server.kubeconfig_for(user);
    let cache = server.dir().join(format!(
        "cache-{user}-{}",
        if bin == OURS { "ours" } else { "theirs" }
    ));
    kubectl_binary_kubeconfig(Path::new(bin), &conf, &cache, args, None)
}

#[test]
fn can_i_answers_as_upstream() {
    let etcd = Etcd::start().expect("etcd");
    let server = SecureApiServer::start(
        &binary("kube-apiserver"),
        &etcd,
        Identities {
            nodes: &[],
            users: &["jane"],
        },
        &[],
    )
    .expect("secure apiserver");
    let applied = server.kubectl_with_kubeconfig(
        &server.kubeconfig_for("admin"),
        &["apply", "-f", "-"],
        Some(RBAC),
    );
    assert!(applied.success(), "{applied}");
    let cases: &[(&str, &[&str])] = &[
        ("user-jane", &["auth", "can-i", "get", "pods"]),
        (
            "user-jane",
            &["auth", "can-i", "list", "pods", "-n", "default"],
        ),
        (
            "user-jane",
            &["auth", "can-i", "get", "pods", "-n", "kube-system"],
        ),
        ("user-jane", &["auth", "can-i", "delete", "pods"]),
        ("user-jane", &["auth", "can-i", "get", "po"]),
        (
            "user-jane",
            &["auth", "can-i", "get", "pods", "--subresource=log"],
        ),
        (
            "user-jane",
            &["auth", "can-i", "update", "deployments.apps/web"],
        ),
        ("user-jane", &["auth", "can-i", "update", "deploy/other"]),
        ("user-jane", &["auth", "can-i", "list", "pods", "-A"]),
        ("user-jane", &["auth", "can-i", "get", "nodes"]),
        ("user-jane", &["auth", "can-i", "get", "widgets"]),
        ("user-jane", &["auth", "can-i", "frobnicate", "pods"]),
        ("user-jane", &["auth", "can-i", "get", "/healthz"]),
        ("user-jane", &["auth", "can-i", "get", "/logs"]),
        ("user-jane", &["auth", "can-i", "get", "pods", "-q"]),
        ("user-jane", &["auth", "can-i", "delete", "pods", "--quiet"]),
        ("user-jane", &["auth", "can-i", "get"]),
        (
            "user-jane",
            &["auth", "can-i", "get", "/healthz", "--subresource=x"],
        ),
        ("admin", &["auth", "can-i", "*", "*"]),
        // Impersonation (`--as`, `--as-group`) through the same client.
        ("admin", &["--as=jane", "auth", "can-i", "get", "pods"]),
        ("admin", &["--as=jane", "auth", "can-i", "delete", "pods"]),
        ("admin", &["--as=jane", "get", "pods", "-n", "kube-system"]),
        (
            "admin",
            &[
                "--as=jane",
                "--as-group=system:masters",
                "get",
                "pods",
                "-n",
                "kube-system",
            ],
        ),
        ("admin", &["--as-group=system:masters", "get", "pods"]),
        ("user-jane", &["--as=bob", "get", "pods"]),
        ("admin", &["auth", "can-i", "create", "clusterroles", "-A"]),
    ];
    let mut diffs = Vec::new();
    for (user, args) in cases {
        let ours = run(OURS, &server, user, args);
        let theirs = run(KUBECTL, &server, user, args);
        if ours != theirs {
            diffs.push(format!(
                "{user}: kubectl {}\n--- ours ---\n{ours:?}\n--- upstream ---\n{theirs:?}",
                args.join(" ")
            ));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n\n"));
    // The answers themselves, so that agreeing on a wrong answer cannot pass.
    assert_eq!(
        run(
            OURS,
            &server,
            "user-jane",
            &["auth", "can-i", "get", "pods"]
        )
        .stdout,
        "yes\n"
    );
    let no = run(
        OURS,
        &server,
        "user-jane",
        &["auth", "can-i", "delete", "pods"],
    );
    assert_eq!((no.status, no.stdout.starts_with("no")), (1, true), "{no}");
    assert_eq!(
        run(
            OURS,
            &server,
            "user-jane",
            &["auth", "can-i", "update", "deployments/web"]
        )
        .status,
        0
    );
    assert_eq!(
        run(
            OURS,
            &server,
            "user-jane",
            &["auth", "can-i", "update", "deployments/other"]
        )
        .status,
        1
    );
}
