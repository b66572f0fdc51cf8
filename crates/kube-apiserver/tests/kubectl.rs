//! The real upstream kubectl against our apiserver on a real etcd.

mod common;

use common::*;
use serde_json::Value;

fn json_of(out: &test_support::KubectlOutput) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

#[test]
fn create_get_describe_delete_pods_with_upstream_messages() {
    let c = start();
    let dir = tempfile::tempdir().expect("tempdir");
    let pod = write_file(dir.path(), "pod.yaml", POD_YAML);

    let out = kubectl(&c.api, &["create", "-f", &pod]);
    out.assert_success();
    assert_eq!(out.stdout.trim(), "pod/web-1 created");

    let again = kubectl(&c.api, &["create", "-f", &pod]);
    again.assert_failure();
    assert!(
        again.stderr.contains(&format!("Error from server (AlreadyExists): error when creating \"{pod}\": pods \"web-1\" already exists")),
        "{again}"
    );

    let missing = kubectl(&c.api, &["get", "pod", "x"]);
    missing.assert_failure();
    assert_eq!(
        missing.stderr.trim(),
        "Error from server (NotFound): pods \"x\" not found"
    );

    let table = kubectl(&c.api, &["get", "pods"]);
    table.assert_success();
    let mut lines = table.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    let row: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(&row[..4], ["web-1", "0/1", "Pending", "0"], "{table}");

    let wide = kubectl(&c.api, &["get", "pods", "-o", "wide"]);
    wide.assert_success();
    assert!(
        wide.stdout
            .lines()
            .next()
            .unwrap_or("")
            .contains("NOMINATED NODE"),
        "{wide}"
    );

    let yaml = kubectl(&c.api, &["get", "pod", "web-1", "-o", "yaml"]);
    yaml.assert_success();
    assert!(
        yaml.stdout.contains("imagePullPolicy: Always"),
        "defaulted: {yaml}"
    );
    assert!(
        yaml.stdout.contains("serviceAccountName: default"),
        "service account admission: {yaml}"
    );
    assert!(yaml.stdout.contains("qosClass: BestEffort"), "{yaml}");

    let jp = kubectl(
        &c.api,
        &[
            "get",
            "pod",
            "web-1",
            "-o",
            "jsonpath={.spec.containers[0].image}",
        ],
    );
    assert_eq!(jp.stdout, "busybox");

    let obj = json_of(&kubectl(&c.api, &["get", "pod", "web-1", "-o", "json"]));
    assert_eq!(obj["metadata"]["namespace"], "default");
    assert!(obj["metadata"]["uid"]
        .as_str()
        .is_some_and(|u| u.len() == 36));
    let rv: i64 = obj["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("numeric RV");
    assert!(rv > 0);

    let described = kubectl(&c.api, &["describe", "pod", "web-1"]);
    described.assert_success();
    assert!(
        described.stdout.contains("Name:") && described.stdout.contains("web-1"),
        "{described}"
    );

    let labeled = kubectl(&c.api, &["label", "pod", "web-1", "tier=front"]);
    assert_eq!(labeled.stdout.trim(), "pod/web-1 labeled", "{labeled}");
    let annotated = kubectl(&c.api, &["annotate", "pod", "web-1", "owner=team-a"]);
    assert_eq!(
        annotated.stdout.trim(),
        "pod/web-1 annotated",
        "{annotated}"
    );
    let sel = kubectl(&c.api, &["get", "pods", "-l", "tier=front", "-o", "name"]);
    assert_eq!(sel.stdout.trim(), "pod/web-1");
    let none = kubectl(&c.api, &["get", "pods", "-l", "tier=back", "-o", "name"]);
    assert_eq!(none.stdout.trim(), "");
    let fs = kubectl(
        &c.api,
        &[
            "get",
            "pods",
            "--field-selector",
            "status.phase=Pending",
            "-o",
            "name",
        ],
    );
    assert_eq!(fs.stdout.trim(), "pod/web-1", "{fs}");
    let fs2 = kubectl(
        &c.api,
        &[
            "get",
            "pods",
            "--field-selector",
            "metadata.name!=web-1",
            "-o",
            "name",
        ],
    );
    assert_eq!(fs2.stdout.trim(), "");
    let all = kubectl(&c.api, &["get", "pods", "-A"]);
    assert!(
        all.stdout
            .lines()
            .next()
            .unwrap_or("")
            .starts_with("NAMESPACE"),
        "{all}"
    );

    let patched = kubectl(
        &c.api,
        &[
            "patch",
            "pod",
            "web-1",
            "-p",
            r#"{"spec":{"containers":[{"name":"web","image":"busybox:1.36"}]}}"#,
        ],
    );
    assert_eq!(patched.stdout.trim(), "pod/web-1 patched", "{patched}");
    let img = kubectl(
        &c.api,
        &[
            "get",
            "pod",
            "web-1",
            "-o",
            "jsonpath={.spec.containers[0].image} {.spec.containers[0].command[0]}",
        ],
    );
    assert_eq!(
        img.stdout, "busybox:1.36 sh",
        "strategic merge keeps the other fields"
    );

    // kubectl's default --validate=strict asks the server (fieldValidation=Strict).
    let typo = kubectl_stdin(
        &c.api,
        &["create", "-f", "-"],
        &POD_YAML.replace("web-1", "web-2").replace(
            "    image: busybox\n",
            "    image: busybox\n    imagePullPolicyy: Always\n",
        ),
    );
    typo.assert_failure();
    assert!(
        typo.stderr
            .contains("unknown field \"spec.containers[0].imagePullPolicyy\""),
        "{typo}"
    );
    let all = kubectl(&c.api, &["get", "all", "-o", "name"]);
    assert!(
        all.stdout.lines().any(|l| l == "pod/web-1")
            && all.stdout.lines().any(|l| l == "service/kubernetes"),
        "{all}"
    );

    let deleted = kubectl(&c.api, &["delete", "pod", "web-1"]);
    assert_eq!(deleted.stdout.trim(), "pod \"web-1\" deleted", "{deleted}");
    assert!(c
        .etcd
        .get("/registry/pods/default/web-1")
        .expect("etcd get")
        .is_none());
}

#[test]
fn apply_client_and_server_side_replace_scale_edit() {
    let c = start();
    let dir = tempfile::tempdir().expect("tempdir");
    let dep = write_file(dir.path(), "dep.yaml", DEPLOYMENT_YAML);

    let out = kubectl(&c.api, &["apply", "-f", &dep]);
    assert_eq!(out.stdout.trim(), "deployment.apps/web created", "{out}");
    let same = kubectl(&c.api, &["apply", "-f", &dep]);
    assert_eq!(
        same.stdout.trim(),
        "deployment.apps/web unchanged",
        "{same}"
    );
    let changed = write_file(
        dir.path(),
        "dep2.yaml",
        &DEPLOYMENT_YAML.replace("replicas: 2", "replicas: 3"),
    );
    let conf = kubectl(&c.api, &["apply", "-f", &changed]);
    assert_eq!(
        conf.stdout.trim(),
        "deployment.apps/web configured",
        "{conf}"
    );
    let replicas_and_generation = || {
        kubectl(
            &c.api,
            &[
                "get",
                "deploy",
                "web",
                "-o",
                "jsonpath={.spec.replicas} {.metadata.generation}",
            ],
        )
        .stdout
    };
    assert_eq!(replicas_and_generation(), "3 2");

    let scaled = kubectl(&c.api, &["scale", "deployment", "web", "--replicas=5"]);
    assert_eq!(
        scaled.stdout.trim(),
        "deployment.apps/web scaled",
        "{scaled}"
    );
    assert_eq!(replicas_and_generation(), "5 3");
    // The scale write is recorded as upstream records it: an Update entry of the
    // subresource, owning the parent's `spec.replicas`.
    let entries = managed_fields(&c, "deploy", "web");
    let scale: Vec<&Value> = entries
        .iter()
        .filter(|e| e["subresource"] == "scale")
        .collect();
    assert_eq!(scale.len(), 1, "{entries:?}");
    assert_eq!(scale[0]["operation"], "Update", "{entries:?}");
    assert_eq!(
        scale[0]["fieldsV1"],
        serde_json::json!({"f:spec": {"f:replicas": {}}}),
        "{entries:?}"
    );

    let table = kubectl(&c.api, &["get", "deployments"]);
    let header: Vec<&str> = table
        .stdout
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        "{table}"
    );

    // Edit through $EDITOR: a script that rewrites the image.
    let editor = write_file(
        dir.path(),
        "editor.sh",
        "#!/bin/sh\nsed -i 's/busybox:1.36/busybox:1.37/' \"$1\"\n",
    );
    std::process::Command::new("chmod")
        .args(["+x", &editor])
        .status()
        .expect("chmod");
    let edited = test_support::kubectl_env(
        &c.api,
        &["edit", "deployment", "web"],
        &[("EDITOR", editor.as_str())],
    );
    assert_eq!(
        edited.stdout.trim(),
        "deployment.apps/web edited",
        "{edited}"
    );
    let img = kubectl(
        &c.api,
        &[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ],
    );
    assert_eq!(img.stdout, "busybox:1.37");

    // replace with a stale resourceVersion is a conflict; a fresh one works.
    let mut obj = json_of(&kubectl(&c.api, &["get", "deploy", "web", "-o", "json"]));
    obj["spec"]["replicas"] = serde_json::json!(1);
    let fresh = write_file(dir.path(), "fresh.json", &obj.to_string());
    let replaced = kubectl(&c.api, &["replace", "-f", &fresh]);
    assert_eq!(
        replaced.stdout.trim(),
        "deployment.apps/web replaced",
        "{replaced}"
    );
    let stale = kubectl(&c.api, &["replace", "-f", &fresh]);
    stale.assert_failure();
    assert!(
        stale.stderr.contains("Error from server (Conflict)")
            && stale.stderr.contains("the object has been modified"),
        "{stale}"
    );

    // Server-side apply by another manager conflicts on a field kubectl owns.
    let ssa = write_file(
        dir.path(),
        "ssa.yaml",
        &DEPLOYMENT_YAML.replace("replicas: 2", "replicas: 4"),
    );
    let conflict = kubectl(
        &c.api,
        &[
            "apply",
            "--server-side",
            "--field-manager=other",
            "-f",
            &ssa,
        ],
    );
    conflict.assert_failure();
    assert!(conflict.stderr.contains("conflict"), "{conflict}");
    let forced = kubectl(
        &c.api,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=other",
            "-f",
            &ssa,
        ],
    );
    assert_eq!(
        forced.stdout.trim(),
        "deployment.apps/web serverside-applied",
        "{forced}"
    );
    let r = kubectl(
        &c.api,
        &["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"],
    );
    assert_eq!(r.stdout, "4");

    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: \"1\"\n";
    let ssa_new = kubectl_stdin(&c.api, &["apply", "--server-side", "-f", "-"], cm);
    assert_eq!(
        ssa_new.stdout.trim(),
        "configmap/settings serverside-applied",
        "{ssa_new}"
    );
    let mf = kubectl(
        &c.api,
        &[
            "get",
            "cm",
            "settings",
            "-o",
            "jsonpath={.metadata.managedFields[0].manager}",
            "--show-managed-fields",
        ],
    );
    assert_eq!(mf.stdout, "kubectl");
}

/// The `managedFields` of `kind/name`.
fn managed_fields(c: &Cluster, kind: &str, name: &str) -> Vec<Value> {
    let out = kubectl(
        &c.api,
        &["get", kind, name, "-o", "json", "--show-managed-fields"],
    );
    let obj = json_of(&out);
    obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no managedFields:\n{out}"))
}

/// As upstream: an apply that creates records one `Apply` entry owning just what its
/// configuration sets, so the same manager applying a changed configuration again
/// meets no conflict; a plain create owns the defaulted fields too, but not what
/// admission (default tolerations) or the server (a Service's cluster IP) fills in.
#[test]
fn field_ownership_of_created_objects() {
    let c = start();
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owned\ndata:\n  a: \"1\"\n";
    kubectl_stdin(&c.api, &["apply", "--server-side", "-f", "-"], cm).assert_success();
    let entries = managed_fields(&c, "cm", "owned");
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["manager"], "kubectl");
    assert_eq!(entries[0]["operation"], "Apply");
    assert_eq!(
        entries[0]["fieldsV1"],
        // An Apply entry lists what the configuration sets; the map itself is not a
        // member (upstream's documented example: `f:data: {f:key: {}}`).
        serde_json::json!({"f:data": {"f:a": {}}})
    );
    let again = kubectl_stdin(
        &c.api,
        &["apply", "--server-side", "-f", "-"],
        &cm.replace("\"1\"", "\"2\""),
    );
    assert_eq!(
        again.stdout.trim(),
        "configmap/owned serverside-applied",
        "{again}"
    );
    let r = kubectl(&c.api, &["get", "cm", "owned", "-o", "jsonpath={.data.a}"]);
    assert_eq!(r.stdout, "2");
    let entries = managed_fields(&c, "cm", "owned");
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["operation"], "Apply", "{entries:?}");
    // And a third time: still its own field.
    kubectl_stdin(
        &c.api,
        &["apply", "--server-side", "-f", "-"],
        &cm.replace("\"1\"", "\"3\""),
    )
    .assert_success();

    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: NAME\nspec:\n  containers:\n  - name: c\n    image: busybox\n";
    kubectl_stdin(
        &c.api,
        &["apply", "--server-side", "-f", "-"],
        &pod.replace("NAME", "applied"),
    )
    .assert_success();
    let applied = managed_fields(&c, "pod", "applied");
    assert_eq!(applied.len(), 1, "{applied:?}");
    assert_eq!(applied[0]["operation"], "Apply");
    assert_eq!(
        applied[0]["fieldsV1"],
        serde_json::json!({"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {
            ".": {}, "f:image": {}, "f:name": {}
        }}}})
    );
    kubectl_stdin(
        &c.api,
        &["create", "-f", "-"],
        &pod.replace("NAME", "created"),
    )
    .assert_success();
    let created = managed_fields(&c, "pod", "created");
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0]["operation"], "Update");
    let spec = &created[0]["fieldsV1"]["f:spec"];
    assert!(spec.get("f:dnsPolicy").is_some(), "{spec}");
    assert!(spec.get("f:tolerations").is_none(), "{spec}");
    // The tolerations are there all the same, added by DefaultTolerationSeconds.
    let r = kubectl(
        &c.api,
        &[
            "get",
            "pod",
            "created",
            "-o",
            "jsonpath={.spec.tolerations[*].key}",
        ],
    );
    assert!(r.stdout.contains("node.kubernetes.io/not-ready"), "{r}");

    // Re-applying without a label and an env item removes both, the item whole.
    let deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  labels: {a: \"1\", b: \"2\"}\nspec:\n  selector:\n    matchLabels: {app: d}\n  template:\n    metadata:\n      labels: {app: d}\n    spec:\n      containers:\n      - name: c\n        image: busybox\n        env:\n        - {name: \"X\", value: \"1\"}\n        - {name: \"Y\", value: \"2\"}\n";
    kubectl_stdin(&c.api, &["apply", "--server-side", "-f", "-"], deploy).assert_success();
    let fewer = deploy
        .replace(", b: \"2\"", "")
        .replace("        - {name: \"Y\", value: \"2\"}\n", "");
    kubectl_stdin(&c.api, &["apply", "--server-side", "-f", "-"], &fewer).assert_success();
    let r = kubectl(
        &c.api,
        &[
            "get",
            "deploy",
            "d",
            "-o",
            "jsonpath={.metadata.labels} {.spec.template.spec.containers[0].env}",
        ],
    );
    assert_eq!(r.stdout, r#"{"a":"1"} [{"name":"X","value":"1"}]"#, "{r}");

    kubectl(
        &c.api,
        &["create", "service", "clusterip", "web", "--tcp=80:8080"],
    )
    .assert_success();
    let svc = managed_fields(&c, "svc", "web");
    let spec = &svc[0]["fieldsV1"]["f:spec"];
    assert!(spec.get("f:ports").is_some(), "{spec}");
    assert!(spec.get("f:clusterIP").is_none(), "{spec}");
    assert!(spec.get("f:clusterIPs").is_none(), "{spec}");
}

/// Switching from client-side to server-side apply, as upstream allows it: kubectl's
/// server-side apply takes over what its client-side applies set (no conflict with
/// `kubectl-client-side-apply`), the last-applied annotation follows along so a later
/// client-side apply still works, and kubectl's rewrite of `managedFields` (a JSON
/// patch of nothing else) is kept, not dropped as a no-op.
#[test]
fn client_side_apply_moves_to_server_side_apply() {
    let c = start();
    let deploy = |image: &str, replicas: u32| {
        format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: mig\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: mig}}\n  template:\n    metadata:\n      labels: {{app: mig}}\n    spec:\n      containers:\n      - name: c\n        image: {image}\n")
    };
    let get = |c: &Cluster| {
        kubectl(
            &c.api,
            &[
                "get",
                "deploy",
                "mig",
                "-o",
                "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image}",
            ],
        )
        .stdout
    };
    kubectl_stdin(&c.api, &["apply", "-f", "-"], &deploy("busybox:1", 1)).assert_success();
    let ssa = kubectl_stdin(
        &c.api,
        &["apply", "--server-side", "-f", "-"],
        &deploy("busybox:2", 1),
    );
    assert_eq!(
        ssa.stdout.trim(),
        "deployment.apps/mig serverside-applied",
        "{ssa}"
    );
    assert_eq!(get(&c), "1 busybox:2");
    let entries = managed_fields(&c, "deploy", "mig");
    let applier = entries
        .iter()
        .find(|e| e["manager"] == "kubectl" && e["operation"] == "Apply")
        .unwrap_or_else(|| panic!("no kubectl Apply entry: {entries:?}"));
    let container = &applier["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
        ["k:{\"name\":\"c\"}"];
    assert!(container.get("f:image").is_some(), "{entries:?}");
    kubectl_stdin(
        &c.api,
        &["apply", "--server-side", "-f", "-"],
        &deploy("busybox:3", 2),
    )
    .assert_success();
    assert_eq!(get(&c), "2 busybox:3");
    // And back: the annotation kept up, so a client-side apply diffs against it.
    kubectl_stdin(&c.api, &["apply", "-f", "-"], &deploy("busybox:4", 2)).assert_success();
    assert_eq!(get(&c), "2 busybox:4");

    // A JSON patch of managedFields alone is written.
    kubectl(&c.api, &["create", "cm", "mf", "--from-literal=a=1"]).assert_success();
    let patch = r#"[{"op":"replace","path":"/metadata/managedFields","value":[{"manager":"someone","operation":"Apply","apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:a":{}}}}]}]"#;
    kubectl(&c.api, &["patch", "cm", "mf", "--type=json", "-p", patch]).assert_success();
    let entries = managed_fields(&c, "cm", "mf");
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["manager"], "someone");
}

/// As upstream's `omitempty`: removing the last label or annotation leaves no empty
/// map behind, and a create sending empty ones stores none.
#[test]
fn removing_the_last_label_or_annotation_leaves_no_empty_map() {
    let c = start();
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tidy\n  labels: {}\n  annotations: {}\n";
    kubectl_stdin(&c.api, &["create", "-f", "-"], cm).assert_success();
    let meta = |c: &Cluster| {
        json_of(&kubectl(&c.api, &["get", "cm", "tidy", "-o", "json"]))["metadata"].clone()
    };
    let m = meta(&c);
    assert!(
        m.get("labels").is_none() && m.get("annotations").is_none(),
        "{m}"
    );
    kubectl(&c.api, &["label", "cm", "tidy", "app=web"]).assert_success();
    kubectl(&c.api, &["annotate", "cm", "tidy", "note=hi"]).assert_success();
    assert_eq!(meta(&c)["labels"]["app"], "web");
    kubectl(&c.api, &["label", "cm", "tidy", "app-"]).assert_success();
    kubectl(&c.api, &["annotate", "cm", "tidy", "note-"]).assert_success();
    let m = meta(&c);
    assert!(
        m.get("labels").is_none() && m.get("annotations").is_none(),
        "{m}"
    );
}

#[test]
fn discovery_explain_api_resources_and_watch() {
    let c = start();
    let res = kubectl(&c.api, &["api-resources"]);
    res.assert_success();
    let pods_line = res
        .stdout
        .lines()
        .find(|l| l.starts_with("pods "))
        .unwrap_or("");
    let cols: Vec<&str> = pods_line.split_whitespace().collect();
    assert_eq!(cols, ["pods", "po", "v1", "true", "Pod"], "{res}");
    assert!(
        res.stdout
            .lines()
            .any(|l| l.starts_with("deployments ") && l.contains("apps/v1")),
        "{res}"
    );

    let versions = kubectl(&c.api, &["api-versions"]);
    assert!(
        versions.stdout.lines().any(|l| l == "apps/v1")
            && versions.stdout.lines().any(|l| l == "v1"),
        "{versions}"
    );

    let explain = kubectl(&c.api, &["explain", "pod.spec.containers"]);
    explain.assert_success();
    assert!(explain.stdout.contains("FIELD: containers"), "{explain}");
    assert!(explain.stdout.contains("DESCRIPTION:"), "{explain}");

    // get -w prints the existing object, then a change.
    let mut child = std::process::Command::new(test_support::KUBECTL)
        .args([
            "--kubeconfig",
            &c.api.kubeconfig().display().to_string(),
            "get",
            "configmaps",
            "-w",
            "--no-headers",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn kubectl -w");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    kubectl_stdin(
        &c.api,
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: watched\ndata:\n  k: v\n",
    )
    .assert_success();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let _ = child.kill();
    let out = child.wait_with_output().expect("kubectl -w output");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.starts_with("watched ")),
        "watch output: {text}"
    );
}

#[test]
fn versioned_kubectls_work() {
    let c = start();
    let kubectls = test_support::versioned_kubectls();
    assert!(
        kubectls.len() >= 7,
        "kubectl 1.27..1.33 expected, found {kubectls:?}"
    );
    for (version, bin) in kubectls {
        let out =
            test_support::kubectl_with(&bin, &c.api, &["get", "namespaces", "-o", "name"], None);
        assert!(out.success(), "{version}: {out}");
        for ns in [
            "namespace/default",
            "namespace/kube-system",
            "namespace/kube-public",
            "namespace/kube-node-lease",
        ] {
            assert!(out.stdout.lines().any(|l| l == ns), "{version}: {out}");
        }
        let created = test_support::kubectl_with(
            &bin,
            &c.api,
            &["create", "-f", "-"],
            Some(&format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-{}\n",
                version.replace('.', "-")
            )),
        );
        assert!(created.success(), "{version}: {created}");
    }
}
