//! `kubectl get --raw URI`: ours and upstream's against one apiserver, compared
//! byte for byte (stdout, stderr, exit code).

mod common;

use common::Cluster;

#[test]
fn get_raw_matches_upstream() {
    let cluster = Cluster::start();
    let cases: &[&[&str]] = &[
        &["get", "--raw", "/healthz"],
        &["get", "--raw", "/readyz?verbose"],
        &["get", "--raw", "/api/v1/namespaces/default"],
        &[
            "get",
            "--raw",
            "/api/v1/namespaces/default/pods/nothing-here",
        ],
        &["get", "--raw", "/no/such/path"],
        &["get", "pods", "--raw", "/healthz"],
        &["get", "--raw", "/healthz", "-o", "json"],
        &["get", "--raw", "/healthz", "-w"],
        &["get", "--raw", "/healthz", "-l", "a=b"],
        &["get", "--raw", "healthz"],
    ];
    let mut diffs = Vec::new();
    for args in cases {
        let (ours, theirs) = (cluster.ours(args), cluster.theirs(args));
        if ours != theirs {
            diffs.push(format!(
                "kubectl {}\n--- ours ---\n{ours:?}\n--- upstream ---\n{theirs:?}",
                args.join(" ")
            ));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n\n"));
    let ns = cluster.ours(&["get", "--raw", "/api/v1/namespaces/default"]);
    let parsed: serde_json::Value = serde_json::from_str(&ns.stdout).expect("JSON body");
    assert_eq!(parsed["metadata"]["name"], "default", "{ns}");
    assert_eq!(cluster.ours(&["get", "--raw", "/healthz"]).stdout, "ok");
}
