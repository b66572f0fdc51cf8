//! Flag-parse errors of our kubectl against upstream kubectl v1.32: unknown
//! flags, flags missing their value and values the flag's type refuses print
//! pflag's `Error: ...` and `See 'kubectl <command> --help' for usage.` with
//! the same exit code.

mod common;

use common::{Cluster, OURS};
use test_support::KUBECTL;

#[test]
fn flag_errors_match_upstream() {
    let cluster = Cluster::start();
    cluster.setup(&["create", "serviceaccount", "default"], None);
    cluster.setup(&["run", "web", "--image=busybox"], None);
    cluster.setup(&["create", "deployment", "d1", "--image=busybox"], None);
    let cases: &[&[&str]] = &[
        &["get", "--foo"],
        &["get", "pods", "-z"],
        &["get", "pods", "-n"],
        &["get", "--output"],
        &["get", "pods", "-o"],
        &["scale", "--replicas=abc", "deployment", "d1"],
        &["scale", "--replicas", "abc", "deployment/d1"],
        &["scale", "--replicas=99999999999999999999", "deployment/d1"],
        &["logs", "web", "--tail=x"],
        &["logs", "web", "--since=abc"],
        &["logs", "web", "--since=5"],
        &["drain", "n1", "--timeout=abc"],
        &["wait", "--timeout=abc", "--for=delete", "pod/web"],
        &["get", "--chunk-size=x"],
        &["delete", "pod", "web", "--grace-period=x"],
        &["get", "pods", "--watch=maybe"],
        &["get", "pods", "-w=maybe"],
        &["config", "view", "--foo"],
        &["rollout", "status", "--foo", "deployment/d1"],
        // Boolean flags take Go's bool spellings.
        &["get", "pods", "--show-labels=false"],
        &["get", "pods", "--show-labels=1", "--no-headers=true"],
    ];
    let mut failures = Vec::new();
    for args in cases {
        let theirs = cluster.run(KUBECTL, args, None);
        let ours = cluster.run(OURS, args, None);
        let mask = |s: &str| {
            s.split_whitespace()
                .filter(|w| !w.ends_with('s') || !w.starts_with(char::is_numeric))
                .collect::<Vec<_>>()
                .join(" ")
        };
        if (ours.status, &ours.stderr, mask(&ours.stdout))
            != (theirs.status, &theirs.stderr, mask(&theirs.stdout))
        {
            failures.push(format!(
                "{args:?}\n--- ours ({})\n{}{}--- upstream ({})\n{}{}",
                ours.status, ours.stdout, ours.stderr, theirs.status, theirs.stdout, theirs.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
