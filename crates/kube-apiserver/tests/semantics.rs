//! Object semantics through the real kubectl and raw HTTP: generator commands (protobuf
//! bodies), graceful deletion, finalizers, status/scale subresources, dryRun,
//! generateName, event TTL leases, TLS with tokens, metrics.

mod common;

use common::*;
use serde_json::{json, Value};
use test_support::{http_get, http_request, http_request_with};

fn get_json(c: &Cluster, path: &str) -> Value {
    let r = http_get(&format!("{}{}", c.api.url(), path)).expect("GET");
    serde_json::from_str(&r.body).unwrap_or(Value::Null)
}

fn send(c: &Cluster, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = http_request(
        method,
        &format!("{}{}", c.api.url(), path),
        Some(&body.to_string()),
    )
    .expect("request");
    (
        r.status,
        serde_json::from_str(&r.body).unwrap_or(Value::Null),
    )
}

#[test]
fn generator_commands_send_protobuf_and_work() {
    let c = start();
    let cases: &[(&[&str], &str)] = &[
        (
            &["create", "namespace", "team-a"],
            "namespace/team-a created",
        ),
        (
            &[
                "create",
                "configmap",
                "cfg",
                "--from-literal=a=1",
                "--from-literal=b=2",
            ],
            "configmap/cfg created",
        ),
        (
            &[
                "create",
                "secret",
                "generic",
                "pw",
                "--from-literal=password=s3cret",
            ],
            "secret/pw created",
        ),
        (
            &[
                "create",
                "deployment",
                "web",
                "--image=busybox",
                "--replicas=2",
            ],
            "deployment.apps/web created",
        ),
        (
            &["create", "service", "clusterip", "web", "--tcp=80:8080"],
            "service/web created",
        ),
        (
            &["create", "serviceaccount", "robot"],
            "serviceaccount/robot created",
        ),
        (
            &["create", "job", "once", "--image=busybox", "--", "true"],
            "job.batch/once created",
        ),
        (
            &["create", "role", "reader", "--verb=get", "--resource=pods"],
            "role.rbac.authorization.k8s.io/reader created",
        ),
        (
            &["run", "solo", "--image=busybox", "--restart=Never"],
            "pod/solo created",
        ),
    ];
    for (args, expected) in cases {
        let out = kubectl(&c.api, args);
        assert_eq!(out.stdout.trim(), *expected, "{args:?}: {out}");
    }
    let secret = get_json(&c, "/api/v1/namespaces/default/secrets/pw");
    assert_eq!(
        secret["data"]["password"], "czNjcmV0",
        "bytes arrive base64-encoded"
    );
    let dep = get_json(&c, "/apis/apps/v1/namespaces/default/deployments/web");
    assert_eq!(dep["spec"]["replicas"], 2);
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["image"],
        "busybox"
    );
    let svc = get_json(&c, "/api/v1/namespaces/default/services/web");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
    let job = get_json(&c, "/apis/batch/v1/namespaces/default/jobs/once");
    assert!(
        job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"].is_string(),
        "{job}"
    );
    let ns = kubectl(&c.api, &["get", "ns", "team-a", "--no-headers"]);
    assert!(ns.stdout.contains("Active"), "{ns}");
}

#[test]
fn graceful_pod_deletion_and_finalizers() {
    let c = start();
    kubectl_stdin(
        &c.api,
        &["create", "-f", "-"],
        &POD_YAML.replace("spec:\n", "spec:\n  nodeName: node-1\n"),
    )
    .assert_success();
    // A bound pod is only marked for deletion; the kubelet confirms with grace 0.
    let (code, pod) = send(
        &c,
        "DELETE",
        "/api/v1/namespaces/default/pods/web-1",
        &json!({"gracePeriodSeconds": 30}),
    );
    assert_eq!(code, 200, "{pod}");
    assert!(pod["metadata"]["deletionTimestamp"].is_string(), "{pod}");
    assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 30);
    assert!(c
        .etcd
        .get("/registry/pods/default/web-1")
        .expect("etcd")
        .is_some());
    let uid = pod["metadata"]["uid"].as_str().expect("uid").to_string();
    let (code, st) = send(
        &c,
        "DELETE",
        "/api/v1/namespaces/default/pods/web-1",
        &json!({"gracePeriodSeconds": 0, "preconditions": {"uid": "wrong"}}),
    );
    assert_eq!(code, 409, "{st}");
    let (code, _) = send(
        &c,
        "DELETE",
        "/api/v1/namespaces/default/pods/web-1",
        &json!({"gracePeriodSeconds": 0, "preconditions": {"uid": uid}}),
    );
    assert_eq!(code, 200);
    assert!(c
        .etcd
        .get("/registry/pods/default/web-1")
        .expect("etcd")
        .is_none());

    // --force --grace-period=0 removes at once.
    kubectl_stdin(
        &c.api,
        &["create", "-f", "-"],
        &POD_YAML.replace("spec:\n", "spec:\n  nodeName: node-1\n"),
    )
    .assert_success();
    let forced = kubectl(
        &c.api,
        &["delete", "pod", "web-1", "--force", "--grace-period=0"],
    );
    forced.assert_success();
    assert!(c
        .etcd
        .get("/registry/pods/default/web-1")
        .expect("etcd")
        .is_none());

    // Finalizers hold deletion until removed.
    let cm = json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}});
    assert_eq!(
        send(&c, "POST", "/api/v1/namespaces/default/configmaps", &cm).0,
        201
    );
    let (code, held) = send(
        &c,
        "DELETE",
        "/api/v1/namespaces/default/configmaps/held",
        &json!({}),
    );
    assert_eq!(code, 200);
    assert!(held["metadata"]["deletionTimestamp"].is_string());
    let (code, _) = send(
        &c,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        &json!({"metadata": {"name": "held"}}),
    );
    assert_eq!(code, 409, "still there while finalizing");
    let patched = kubectl(
        &c.api,
        &[
            "patch",
            "configmap",
            "held",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
        ],
    );
    patched.assert_success();
    assert!(
        c.etcd
            .get("/registry/configmaps/default/held")
            .expect("etcd")
            .is_none(),
        "last finalizer removed → gone"
    );
}

#[test]
fn status_scale_binding_dry_run_generate_name() {
    let c = start();
    kubectl_stdin(&c.api, &["create", "-f", "-"], DEPLOYMENT_YAML).assert_success();
    let dep = get_json(&c, "/apis/apps/v1/namespaces/default/deployments/web");
    assert_eq!(dep["metadata"]["generation"], 1);
    // The main resource ignores status; the status subresource ignores spec.
    let mut d = dep.clone();
    d["status"] = json!({"replicas": 7});
    d["spec"]["replicas"] = json!(3);
    let (code, out) = send(
        &c,
        "PUT",
        "/apis/apps/v1/namespaces/default/deployments/web",
        &d,
    );
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["metadata"]["generation"], 2);
    assert!(out["status"]["replicas"].is_null(), "{out}");
    let mut s = out.clone();
    s["status"] = json!({"replicas": 3, "observedGeneration": 2});
    s["spec"]["replicas"] = json!(9);
    let (code, out) = send(
        &c,
        "PUT",
        "/apis/apps/v1/namespaces/default/deployments/web/status",
        &s,
    );
    assert_eq!(code, 200, "{out}");
    assert_eq!(
        (
            out["spec"]["replicas"].as_i64(),
            out["status"]["replicas"].as_i64()
        ),
        (Some(3), Some(3))
    );
    assert_eq!(out["metadata"]["generation"], 2);

    let scale = get_json(&c, "/apis/apps/v1/namespaces/default/deployments/web/scale");
    assert_eq!(
        (
            scale["kind"].as_str(),
            scale["spec"]["replicas"].as_i64(),
            scale["status"]["selector"].as_str()
        ),
        (Some("Scale"), Some(3), Some("app=web"))
    );

    // Binding a pod, then binding it again.
    kubectl_stdin(&c.api, &["create", "-f", "-"], POD_YAML).assert_success();
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web-1"}, "target": {"kind": "Node", "name": "node-1"}});
    assert_eq!(
        send(
            &c,
            "POST",
            "/api/v1/namespaces/default/pods/web-1/binding",
            &binding
        )
        .0,
        201
    );
    let (code, st) = send(
        &c,
        "POST",
        "/api/v1/namespaces/default/pods/web-1/binding",
        &binding,
    );
    assert_eq!(code, 409, "{st}");
    let pod = get_json(&c, "/api/v1/namespaces/default/pods/web-1");
    assert_eq!(pod["spec"]["nodeName"], "node-1");
    assert_eq!(pod["status"]["conditions"][0]["type"], "PodScheduled");

    // dryRun=All validates and answers without storing.
    let (code, out) = send(
        &c,
        "POST",
        "/api/v1/namespaces/default/configmaps?dryRun=All",
        &json!({"metadata": {"name": "dry"}}),
    );
    assert_eq!(code, 201, "{out}");
    assert!(c
        .etcd
        .get("/registry/configmaps/default/dry")
        .expect("etcd")
        .is_none());
    let dry = kubectl(&c.api, &["delete", "deployment", "web", "--dry-run=server"]);
    dry.assert_success();
    assert!(c
        .etcd
        .get("/registry/deployments/default/web")
        .expect("etcd")
        .is_some());

    let (code, out) = send(
        &c,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        &json!({"metadata": {"generateName": "gen-"}}),
    );
    assert_eq!(code, 201);
    let name = out["metadata"]["name"].as_str().expect("name");
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
}

#[test]
fn events_expire_through_an_etcd_lease_and_namespace_lifecycle() {
    let c = start_with(&["--event-ttl=90s"]);
    let ev = json!({"metadata": {"name": "e1"}, "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default"},
        "reason": "Testing", "message": "hello", "type": "Normal"});
    assert_eq!(
        send(&c, "POST", "/api/v1/namespaces/default/events", &ev).0,
        201
    );
    let out = c
        .etcd
        .etcdctl(&["get", "/registry/events/default/e1", "-w", "json"])
        .expect("etcdctl");
    let v: Value = serde_json::from_str(&out).expect("etcdctl json");
    let lease = v["kvs"][0]["lease"]
        .as_i64()
        .expect("event stored with a lease");
    let ttl = c
        .etcd
        .etcdctl(&["lease", "timetolive", &format!("{lease:x}")])
        .expect("ttl");
    let secs: i64 = ttl
        .split("remaining(")
        .nth(1)
        .and_then(|s| s.split('s').next())
        .and_then(|s| s.parse().ok())
        .expect("remaining ttl");
    assert!(
        secs > 60 && secs <= 150,
        "ttl {secs} for --event-ttl=90s (+ lease reuse window)"
    );
    let listed = kubectl(
        &c.api,
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=web-1",
            "--no-headers",
        ],
    );
    assert!(listed.stdout.contains("Testing"), "{listed}");

    // No creates in a missing or terminating namespace; system namespaces stay.
    let none = kubectl_stdin(
        &c.api,
        &["create", "-n", "ghost", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
    );
    assert!(
        none.stderr.contains("namespaces \"ghost\" not found"),
        "{none}"
    );
    let protected = kubectl(&c.api, &["delete", "namespace", "default", "--wait=false"]);
    assert!(protected.stderr.contains("forbidden"), "{protected}");
    kubectl(&c.api, &["create", "namespace", "doomed"]).assert_success();
    kubectl(&c.api, &["delete", "namespace", "doomed", "--wait=false"]).assert_success();
    let ns = get_json(&c, "/api/v1/namespaces/doomed");
    assert_eq!(ns["status"]["phase"], "Terminating");
    let (code, st) = send(
        &c,
        "POST",
        "/api/v1/namespaces/doomed/configmaps",
        &json!({"metadata": {"name": "late"}}),
    );
    assert_eq!(code, 403, "{st}");
    assert!(st["message"]
        .as_str()
        .unwrap_or("")
        .contains("because it is being terminated"));
}

#[test]
fn tls_token_auth_metrics_and_health() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = write_file(
        dir.path(),
        "tokens.csv",
        "s3cret-token,admin,uid-1,\"system:masters\"\n",
    );
    let c = start_with(&[&format!("--token-auth-file={tokens}")]);
    let https = format!("https://127.0.0.1:{}", c.api.secure_port());
    let ok = std::process::Command::new(test_support::KUBECTL)
        .args([
            "--kubeconfig=/dev/null",
            "--server",
            &https,
            "--insecure-skip-tls-verify",
            "--token=s3cret-token",
            "get",
            "ns",
            "-o",
            "name",
        ])
        .output()
        .expect("kubectl");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("namespace/kube-system"));
    let bad = std::process::Command::new(test_support::KUBECTL)
        .args([
            "--kubeconfig=/dev/null",
            "--server",
            &https,
            "--insecure-skip-tls-verify",
            "--token=wrong",
            "get",
            "ns",
        ])
        .output()
        .expect("kubectl");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Unauthorized"));

    for p in ["/healthz", "/livez", "/readyz"] {
        let r = http_get(&format!("{}{p}", c.api.url())).expect("health");
        assert_eq!((r.status, r.body.as_str()), (200, "ok"), "{p}");
    }
    kubectl(&c.api, &["get", "pods"]).assert_success();
    let m = http_get(&format!("{}/metrics", c.api.url())).expect("metrics");
    assert!(
        m.body
            .contains("apiserver_request_total{verb=\"LIST\",resource=\"pods\",code=\"200\"}"),
        "{}",
        m.body
    );
    assert!(
        m.body.contains("apiserver_request_duration_seconds_bucket"),
        "{}",
        m.body
    );
    let v = get_json(&c, "/version");
    assert_eq!(
        (v["major"].as_str(), v["minor"].as_str()),
        (Some("1"), Some("32"))
    );
}

#[test]
fn services_get_cluster_ips_and_node_ports_and_the_kubernetes_service_exists() {
    let c = start();
    let k = get_json(&c, "/api/v1/namespaces/default/services/kubernetes");
    assert_eq!(k["spec"]["clusterIP"], "10.254.0.1", "{k}");
    let ep = get_json(&c, "/api/v1/namespaces/default/endpoints/kubernetes");
    assert_eq!(
        ep["subsets"][0]["ports"][0]["port"].as_u64(),
        Some(c.api.secure_port() as u64),
        "{ep}"
    );
    let svc = |name: &str, extra: Value| {
        let mut s = json!({"metadata": {"name": name}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}});
        if let (Some(spec), Some(e)) = (s["spec"].as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                spec.insert(k.clone(), v.clone());
            }
        }
        send(&c, "POST", "/api/v1/namespaces/default/services", &s)
    };
    let (code, a) = svc("a", json!({}));
    assert_eq!(code, 201, "{a}");
    let ip = a["spec"]["clusterIP"]
        .as_str()
        .expect("allocated")
        .to_string();
    assert!(ip.starts_with("10.254.") && ip != "10.254.0.1", "{ip}");
    let (code, st) = svc("b", json!({"clusterIP": ip}));
    assert_eq!(code, 422, "{st}");
    assert!(
        st["message"]
            .as_str()
            .unwrap_or("")
            .contains("provided IP is already allocated"),
        "{st}"
    );
    let (code, np) = svc(
        "np",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}),
    );
    assert_eq!(
        (code, np["spec"]["ports"][0]["nodePort"].as_u64()),
        (201, Some(30080)),
        "{np}"
    );
    let (code, st) = svc(
        "np2",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}),
    );
    assert_eq!(code, 422, "{st}");
    assert!(
        st["message"]
            .as_str()
            .unwrap_or("")
            .contains("provided port is already allocated"),
        "{st}"
    );
    // Deleting frees the IP and port for reuse.
    kubectl(&c.api, &["delete", "service", "a", "np"]).assert_success();
    let (code, again) = svc(
        "b",
        json!({"clusterIP": ip, "type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}),
    );
    assert_eq!(code, 201, "{again}");
    let table = kubectl(&c.api, &["get", "svc", "b", "--no-headers"]);
    assert!(
        table.stdout.contains("NodePort") && table.stdout.contains("80:30080/TCP"),
        "{table}"
    );
}

#[test]
fn events_k8s_io_serves_core_events_converted() {
    let c = start();
    let ev = json!({"metadata": {"name": "e2"}, "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default"},
        "reason": "Pulled", "message": "image pulled", "type": "Normal", "source": {"component": "kubelet"}});
    assert_eq!(
        send(&c, "POST", "/api/v1/namespaces/default/events", &ev).0,
        201
    );
    let e = get_json(&c, "/apis/events.k8s.io/v1/namespaces/default/events/e2");
    assert_eq!(
        (
            e["apiVersion"].as_str(),
            e["note"].as_str(),
            e["regarding"]["name"].as_str()
        ),
        (
            Some("events.k8s.io/v1"),
            Some("image pulled"),
            Some("web-1")
        ),
        "{e}"
    );
    let list = get_json(&c, "/apis/events.k8s.io/v1/namespaces/default/events");
    assert_eq!(
        list["items"][0]["deprecatedSource"]["component"], "kubelet",
        "{list}"
    );
    // Written through events.k8s.io, read through core.
    let v1 = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e3"}, "eventTime": "2026-11-22T00:00:00.000000Z",
        "reportingController": "example.com/ctl", "reportingInstance": "ctl-1", "action": "Sync", "reason": "Synced", "note": "done", "type": "Normal",
        "regarding": {"kind": "Pod", "name": "web-1", "namespace": "default"}});
    let (code, out) = send(
        &c,
        "POST",
        "/apis/events.k8s.io/v1/namespaces/default/events",
        &v1,
    );
    assert_eq!(code, 201, "{out}");
    let core = get_json(&c, "/api/v1/namespaces/default/events/e3");
    assert_eq!(
        (
            core["message"].as_str(),
            core["reportingComponent"].as_str()
        ),
        (Some("done"), Some("example.com/ctl")),
        "{core}"
    );
}

/// A create's managedFields entry is encoded straight into the written bytes (the
/// object never holds it); every read path must still serve the same entry the
/// general (Value) path builds, which `dryRun=All` takes.
#[test]
fn created_managed_fields_are_the_same_on_every_read_path() {
    let c = start();
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "mf", "labels": {"app": "mf"}, "annotations": {"note": "x\"y"}},
        "spec": {"automountServiceAccountToken": false, "containers": [{"name": "web", "image": "busybox", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            "ports": [{"containerPort": 80}]}]}});
    let path = "/api/v1/namespaces/default/pods?fieldManager=tester";
    let (code, dry) = send(&c, "POST", &format!("{path}&dryRun=All"), &pod);
    assert_eq!(code, 201, "{dry}");
    let (code, created) = send(&c, "POST", path, &pod);
    assert_eq!(code, 201, "{created}");
    let entry = |v: &Value| {
        let mut e = v["metadata"]["managedFields"].clone();
        assert_eq!(e.as_array().map(Vec::len), Some(1), "one entry: {v}");
        e[0]["time"] = Value::Null;
        e
    };
    let expected = entry(&dry);
    assert_eq!(expected[0]["manager"], "tester");
    assert!(
        expected[0]["fieldsV1"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:env"]
            ["k:{\"name\":\"B\"}"]
            .is_object(),
        "{expected}"
    );
    assert_eq!(entry(&created), expected, "create response");
    let from_etcd = get_json(&c, "/api/v1/namespaces/default/pods/mf");
    assert_eq!(entry(&from_etcd), expected, "GET from etcd");
    assert_eq!(
        from_etcd, created,
        "GET from etcd equals the create response"
    );
    let from_cache = get_json(&c, "/api/v1/namespaces/default/pods/mf?resourceVersion=0");
    assert_eq!(from_cache, created, "GET from the watch cache");
    let list = get_json(&c, "/api/v1/namespaces/default/pods?resourceVersion=0");
    assert_eq!(list["items"][0], created, "list from the watch cache");
    let watch = http_get(&format!(
        "{}/api/v1/namespaces/default/pods?watch=1&resourceVersion=0&timeoutSeconds=1",
        c.api.url()
    ))
    .expect("watch");
    let first: Value =
        serde_json::from_str(watch.body.lines().next().unwrap_or("")).unwrap_or(Value::Null);
    assert_eq!(first["object"], created, "watch event: {}", watch.body);
    // A later update by another manager keeps the created entry.
    kubectl(&c.api, &["label", "pod", "mf", "extra=1"]).assert_success();
    let labelled = get_json(&c, "/api/v1/namespaces/default/pods/mf");
    let managers: Vec<&str> = labelled["metadata"]["managedFields"]
        .as_array()
        .map(|l| l.iter().filter_map(|e| e["manager"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(managers, ["tester", "kubectl-label"], "{labelled}");
}

/// Without `fieldManager` the manager is the User-Agent's product name, as upstream's
/// `prefixFromUserAgent` takes it (text before the first `/`, unprintable characters
/// dropped); a client sending neither gets an entry with no `manager`, as upstream's
/// `omitempty` writes it.
#[test]
fn field_manager_defaults_to_the_user_agent_product() {
    let c = start();
    let cm = |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}});
    let post = |name: &str, headers: &[(&str, &str)]| {
        let r = http_request_with(
            "POST",
            &format!("{}/api/v1/namespaces/default/configmaps", c.api.url()),
            Some(&cm(name).to_string()),
            headers,
        )
        .expect("POST");
        assert_eq!(r.status, 201, "{}", r.body);
        let v: Value = serde_json::from_str(&r.body).expect("json");
        v["metadata"]["managedFields"][0].clone()
    };
    let e = post("with-agent", &[("User-Agent", "my-tool/1.2 (linux/amd64)")]);
    assert_eq!(e["manager"], "my-tool", "{e}");
    let e = post("with-tab", &[("User-Agent", "my\ttool/1.2")]);
    assert_eq!(e["manager"], "mytool", "{e}");
    let e = post("no-agent", &[]);
    assert!(e.get("manager").is_none(), "{e}");
    assert_eq!(e["operation"], "Update", "{e}");
    assert_eq!(
        e["fieldsV1"],
        json!({"f:data": {".": {}, "f:a": {}}}),
        "{e}"
    );
    // The entry without a manager is stored and served as created.
    let stored = get_json(&c, "/api/v1/namespaces/default/configmaps/no-agent");
    assert!(
        stored["metadata"]["managedFields"][0]
            .get("manager")
            .is_none(),
        "{stored}"
    );
    // A later update by a named manager adds its own entry next to it.
    kubectl(&c.api, &["label", "cm", "no-agent", "x=1"]).assert_success();
    let labelled = get_json(&c, "/api/v1/namespaces/default/configmaps/no-agent");
    let managers: Vec<Option<&str>> = labelled["metadata"]["managedFields"]
        .as_array()
        .map(|l| l.iter().map(|e| e["manager"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(managers, [None, Some("kubectl-label")], "{labelled}");
}
