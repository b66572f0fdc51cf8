//! `--validate` (fieldValidation), resourceVersion clearing on create, the
//! 422 Invalid error format and the `create` generators: our kubectl against
//! upstream kubectl v1.32 on the same apiserver, ours writing in namespace
//! `ours`, upstream in `theirs`.

mod common;

use std::path::{Path, PathBuf};

use common::{rendered, with_ns, Cluster, OURS};
use test_support::KUBECTL;

/// Runs `args` (with `{ns}`, `{dir}` replaced) as ours in `ours` and as
/// upstream in `theirs`; both renderings with the namespace masked.
fn both(cluster: &Cluster, dir: &Path, args: &[&str]) -> (String, String) {
    let run = |bin: &str, ns: &str| {
        let args: Vec<String> = with_ns(ns, args)
            .into_iter()
            .map(|a| a.replace("{dir}", &dir.display().to_string()))
            .collect();
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = rendered(&cluster.run(bin, &refs, None));
        mask(&out, ns)
    };
    (run(OURS, "ours"), run(KUBECTL, "theirs"))
}

fn mask(text: &str, ns: &str) -> String {
    text.lines()
        .map(|l| {
            if l.trim_start().starts_with("uid:") {
                "uid: <masked>".to_string()
            } else {
                l.replace(ns, "{ns}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_same(cluster: &Cluster, dir: &Path, commands: &[&[&str]]) -> Vec<String> {
    let mut theirs_all = Vec::new();
    common::assert_no_diffs(commands, |args| {
        let (o, t) = both(cluster, dir, args);
        theirs_all.push(t.clone());
        (o, t)
    });
    theirs_all
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write manifest");
    path
}

fn typo_pod(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  label:\n    a: b\nspec:\n  containers:\n  - name: c\n    image: busybox\n    ports:\n    - containerPort: 80\n      containersPort: 81\n"
    )
}

#[test]
fn validate_flag_sets_field_validation() {
    let cluster = Cluster::start_with_namespaces();
    let dir = tempfile::tempdir().expect("tempdir");
    let modes = ["strict", "true", "warn", "ignore", "false", "bogus"];
    for mode in modes {
        write(
            dir.path(),
            &format!("typo-{mode}.yaml"),
            &typo_pod(&format!("typo-{mode}")),
        );
    }
    write(dir.path(), "typo-default.yaml", &typo_pod("typo-default"));
    write(dir.path(), "typo-apply.yaml", &typo_pod("typo-apply"));
    write(
        dir.path(),
        "typo-cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo-cm\ndataa:\n  k: v\n",
    );
    let args: Vec<Vec<String>> = modes
        .iter()
        .map(|m| {
            vec![
                "create".into(),
                "-f".into(),
                format!("{{dir}}/typo-{m}.yaml"),
                format!("--validate={m}"),
            ]
        })
        .collect();
    let mut commands: Vec<Vec<&str>> = args
        .iter()
        .map(|a| a.iter().map(String::as_str).collect())
        .collect();
    commands.push(vec!["create", "-f", "{dir}/typo-default.yaml"]);
    commands.push(vec!["apply", "-f", "{dir}/typo-apply.yaml"]);
    commands.push(vec![
        "apply",
        "-f",
        "{dir}/typo-apply.yaml",
        "--validate=warn",
    ]);
    // Replace a ConfigMap with a typo strictly, then leniently.
    let replaces: &[&[&str]] = &[
        &["create", "-f", "{dir}/typo-cm.yaml", "--validate=false"],
        &["replace", "-f", "{dir}/typo-cm.yaml"],
        &["replace", "-f", "{dir}/typo-cm.yaml", "--validate=warn"],
        &["replace", "-f", "{dir}/typo-cm.yaml", "--validate=ignore"],
    ];
    commands.extend(replaces.iter().map(|c| c.to_vec()));
    let refs: Vec<&[&str]> = commands.iter().map(Vec::as_slice).collect();
    let theirs = assert_same(&cluster, dir.path(), &refs);
    assert!(
        theirs[0].contains("strict decoding error: unknown field \"metadata.label\""),
        "{}",
        theirs[0]
    );
    assert!(
        theirs[2].contains("Warning: unknown field \"metadata.label\""),
        "{}",
        theirs[2]
    );
    assert!(
        theirs[3].contains("pod/typo-ignore created"),
        "{}",
        theirs[3]
    );
}

#[test]
fn create_clears_resource_version() {
    let cluster = Cluster::start_with_namespaces();
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["rv-create", "rv-apply"] {
        write(
            dir.path(),
            &format!("{name}.yaml"),
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  resourceVersion: \"1487\"\ndata:\n  k: v\n"),
        );
    }
    let theirs = assert_same(
        &cluster,
        dir.path(),
        &[
            &["create", "-f", "{dir}/rv-create.yaml"],
            &["apply", "-f", "{dir}/rv-apply.yaml"],
        ],
    );
    assert!(
        theirs[0].contains("configmap/rv-create created"),
        "{}",
        theirs[0]
    );
    assert!(
        theirs[1].contains("configmap/rv-apply created"),
        "{}",
        theirs[1]
    );
}

#[test]
fn invalid_objects_print_their_causes() {
    let cluster = Cluster::start_with_namespaces();
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "single.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: single\nspec:\n  containers:\n  - name: c\n",
    );
    write(
        dir.path(),
        "multi.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: multi\nspec:\n  restartPolicy: Sometimes\n  containers:\n  - name: c\n",
    );
    let theirs = assert_same(
        &cluster,
        dir.path(),
        &[
            &["create", "-f", "{dir}/single.yaml"],
            &["create", "-f", "{dir}/multi.yaml"],
            &["apply", "-f", "{dir}/multi.yaml"],
        ],
    );
    assert!(
        theirs[0]
            .contains("The Pod \"single\" is invalid: spec.containers[0].image: Required value"),
        "{}",
        theirs[0]
    );
    assert!(
        theirs[1].contains("The Pod \"multi\" is invalid: \n* "),
        "{}",
        theirs[1]
    );
}

#[test]
fn create_generators_match_upstream() {
    let cluster = Cluster::start_with_namespaces();
    cluster.setup_both(
        &[
            "create",
            "cronjob",
            "nightly",
            "--image=busybox",
            "--schedule=0 1 * * *",
        ],
        None,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut commands: Vec<Vec<&str>> = Vec::new();
    let generators: &[&[&str]] = &[
        &["create", "serviceaccount", "helm"],
        &["create", "sa", "helm2"],
        &[
            "create",
            "clusterrolebinding",
            "{ns}-crb",
            "--clusterrole=view",
            "--user=alice",
            "--group=devs",
            "--serviceaccount={ns}:helm",
        ],
        &["create", "rolebinding", "rb", "--role=reader", "--user=bob"],
        &[
            "create",
            "rolebinding",
            "rb2",
            "--clusterrole=edit",
            "--serviceaccount={ns}:helm",
        ],
        &[
            "create",
            "role",
            "reader",
            "--verb=get,list",
            "--resource=pods,deployments.apps,pods/log",
            "--resource-name=a",
        ],
        &[
            "create",
            "clusterrole",
            "{ns}-cr",
            "--verb=get",
            "--resource=nodes",
            "--non-resource-url=/healthz",
        ],
        &[
            "create",
            "job",
            "once",
            "--image=busybox",
            "--",
            "sleep",
            "1",
        ],
        &["create", "job", "manual", "--from=cronjob/nightly"],
        &[
            "create",
            "quota",
            "q",
            "--hard=pods=2,cpu=1000m",
            "--scopes=BestEffort",
        ],
    ];
    for g in generators {
        // Flags right after the generator's name (a job's command follows `--`).
        let mut dry = g[..3].to_vec();
        dry.extend(["-o", "yaml", "--dry-run=client"]);
        dry.extend(&g[3..]);
        commands.push(dry);
        let mut server = g[..3].to_vec();
        server.push("--dry-run=server");
        server.extend(&g[3..]);
        commands.push(server);
        commands.push(g.to_vec());
    }
    commands.push(vec![
        "create",
        "role",
        "bad",
        "--verb=fly",
        "--resource=pods",
    ]);
    commands.push(vec!["create", "rolebinding", "bad", "--user=x"]);
    commands.push(vec![
        "create",
        "clusterrolebinding",
        "{ns}-bad",
        "--clusterrole=view",
        "--serviceaccount=nocolon",
    ]);
    let refs: Vec<&[&str]> = commands.iter().map(Vec::as_slice).collect();
    let theirs = assert_same(&cluster, dir.path(), &refs);
    assert!(
        theirs[2].contains("serviceaccount/helm created"),
        "{}",
        theirs[2]
    );
    assert!(
        theirs[8].contains("clusterrolebinding.rbac.authorization.k8s.io/{ns}-crb created"),
        "{}",
        theirs[8]
    );
}
