//! Audit logging: a short kubectl session against real etcd + our apiserver, checked
//! request by request in the JSON-lines audit log at the policy's levels.

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    time::{Duration, Instant},
};

use serde_json::Value;
use test_support::{kubectl, kubectl_stdin, ApiServer, Etcd};

const POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  nonResourceURLs: [\"/readyz*\", \"/healthz*\", \"/livez*\"]
- level: None
  resources:
  - group: \"\"
    resources: [\"events\"]
- level: RequestResponse
  resources:
  - group: \"\"
    resources: [\"configmaps\"]
- level: Request
  verbs: [\"create\", \"update\", \"patch\"]
  resources:
  - group: \"apps\"
- level: Metadata
  omitStages: [\"RequestReceived\"]
  resources:
  - group: \"\"
    resources: [\"secrets\"]
- level: Metadata
";

fn events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line is not JSON ({e}): {l}"))
        })
        .collect()
}

/// Polls the log until `pred` holds for some event (the writer is asynchronous).
fn wait_for(path: &Path, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(e) = events(path).into_iter().find(|e| pred(e)) {
            return e;
        }
        assert!(
            Instant::now() < deadline,
            "no audit event for {what} in:\n{}",
            std::fs::read_to_string(path).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn is(e: &Value, verb: &str, resource: &str, name: Option<&str>, stage: &str) -> bool {
    e["verb"] == verb
        && e.pointer("/objectRef/resource").and_then(Value::as_str) == Some(resource)
        && name.is_none_or(|n| e.pointer("/objectRef/name").and_then(Value::as_str) == Some(n))
        && e["stage"] == stage
}

/// A raw GET on the insecure port: (status line, Audit-Id header).
fn raw_get(port: u16, path: &str) -> (String, Option<String>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: audit-test/1.0\r\nConnection: close\r\n\r\n").expect("write");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let status = text.lines().next().unwrap_or("").to_string();
    let id = text.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        l.split_once(':')
            .filter(|(k, _)| k.eq_ignore_ascii_case("audit-id"))
            .map(|(_, v)| v.trim().to_string())
    });
    (status, id)
}

#[test]
fn kubectl_session_is_audited_per_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, POLICY).expect("policy");
    let log = dir.path().join("audit").join("audit.log");
    let etcd = Etcd::start().expect("etcd");
    let args = [
        format!("--audit-policy-file={}", policy.display()),
        format!("--audit-log-path={}", log.display()),
        "--audit-log-maxsize=100".to_string(),
        "--audit-log-maxbackup=3".to_string(),
        "--audit-log-maxage=7".to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let api = ApiServer::start(
        Path::new(env!("CARGO_BIN_EXE_kube-apiserver")),
        &etcd,
        &args,
    )
    .expect("apiserver");

    kubectl(&api, &["create", "configmap", "c1", "--from-literal=k=v1"]).assert_success();
    kubectl(&api, &["get", "configmap", "c1", "-o", "json"]).assert_success();
    kubectl(
        &api,
        &[
            "create",
            "secret",
            "generic",
            "s1",
            "--from-literal=password=hunter2",
        ],
    )
    .assert_success();
    kubectl(&api, &["get", "pods"]).assert_success();
    kubectl(&api, &["create", "deployment", "web", "--image=nginx"]).assert_success();
    kubectl(&api, &["delete", "configmap", "c1"]).assert_success();
    kubectl(&api, &["get", "secret", "missing"]).assert_failure();
    kubectl_stdin(&api, &["apply", "-f", "-"], "apiVersion: v1\nkind: Event\nmetadata:\n  name: e1\ninvolvedObject:\n  kind: Pod\n  name: p\nreason: R\nmessage: m\n")
        .assert_success();
    // PodSecurity's audit mode annotates the event.
    kubectl_stdin(
        &api,
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: audited\n  labels:\n    pod-security.kubernetes.io/audit: restricted\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n  namespace: audited\n",
    )
    .assert_success();
    kubectl(&api, &["run", "p1", "-n", "audited", "--image=busybox"]).assert_success();
    // A watch that ends after a second.
    kubectl(
        &api,
        &["get", "configmaps", "--watch", "--request-timeout=1s"],
    );

    // RequestResponse: both objects, both stages.
    let created = wait_for(&log, "configmap create", |e| {
        is(e, "create", "configmaps", Some("c1"), "ResponseComplete")
    });
    assert_eq!(created["kind"], "Event");
    assert_eq!(created["apiVersion"], "audit.k8s.io/v1");
    assert_eq!(created["level"], "RequestResponse");
    assert_eq!(
        created["requestURI"],
        "/api/v1/namespaces/default/configmaps?fieldManager=kubectl-create&fieldValidation=Strict"
    );
    assert_eq!(created["user"]["username"], "system:unsecured");
    assert_eq!(created["sourceIPs"][0], "127.0.0.1");
    assert!(
        created["userAgent"]
            .as_str()
            .is_some_and(|ua| ua.starts_with("kubectl/")),
        "{created}"
    );
    assert_eq!(created["objectRef"]["namespace"], "default");
    assert_eq!(created["objectRef"]["apiVersion"], "v1");
    assert_eq!(created["responseStatus"]["code"], 201);
    assert_eq!(created["requestObject"]["data"]["k"], "v1");
    assert!(
        created["responseObject"]["metadata"]["uid"].is_string(),
        "{created}"
    );
    assert_eq!(
        created["annotations"]["authorization.k8s.io/decision"],
        "allow"
    );
    let ts = created["stageTimestamp"].as_str().expect("stageTimestamp");
    assert!(
        chrono::DateTime::parse_from_rfc3339(ts).is_ok()
            && ts.len() == "2024-01-01T00:00:00.000000Z".len(),
        "{ts}"
    );
    let id = created["auditID"].as_str().expect("auditID");
    let received = wait_for(&log, "configmap create RequestReceived", |e| {
        e["auditID"] == id && e["stage"] == "RequestReceived"
    });
    assert!(received.get("responseStatus").is_none() && received.get("responseObject").is_none());
    wait_for(&log, "configmap get", |e| {
        is(e, "get", "configmaps", Some("c1"), "ResponseComplete")
            && e["responseObject"]["data"]["k"] == "v1"
    });
    wait_for(&log, "configmap delete", |e| {
        is(e, "delete", "configmaps", Some("c1"), "ResponseComplete")
    });

    // Metadata (secrets): no objects, and RequestReceived omitted.
    let secret = wait_for(&log, "secret create", |e| {
        is(e, "create", "secrets", Some("s1"), "ResponseComplete")
    });
    assert_eq!(secret["level"], "Metadata");
    assert!(
        secret.get("requestObject").is_none() && secret.get("responseObject").is_none(),
        "{secret}"
    );
    assert!(!std::fs::read_to_string(&log)
        .expect("log")
        .contains("hunter2"));
    let sid = secret["auditID"].clone();
    assert!(!events(&log)
        .iter()
        .any(|e| e["auditID"] == sid && e["stage"] == "RequestReceived"));
    let missing = wait_for(&log, "missing secret", |e| {
        is(e, "get", "secrets", Some("missing"), "ResponseComplete")
    });
    assert_eq!(missing["responseStatus"]["code"], 404);
    assert_eq!(missing["responseStatus"]["reason"], "NotFound");

    // Request level for apps writes; Metadata for other reads.
    let deploy = wait_for(&log, "deployment create", |e| {
        is(e, "create", "deployments", Some("web"), "ResponseComplete")
    });
    assert_eq!(deploy["level"], "Request");
    assert_eq!(deploy["objectRef"]["apiGroup"], "apps");
    assert!(
        deploy["requestObject"]["spec"].is_object() && deploy.get("responseObject").is_none(),
        "{deploy}"
    );
    let list = wait_for(&log, "pod list", |e| {
        e["verb"] == "list"
            && e["objectRef"]["resource"] == "pods"
            && e["stage"] == "ResponseComplete"
    });
    assert_eq!(list["level"], "Metadata");

    // Watches: ResponseStarted, then ResponseComplete when the stream ends.
    let watch = wait_for(&log, "watch started", |e| {
        e["verb"] == "watch" && e["stage"] == "ResponseStarted"
    });
    let wid = watch["auditID"].clone();
    wait_for(&log, "watch complete", |e| {
        e["auditID"] == wid && e["stage"] == "ResponseComplete"
    });

    let pod = wait_for(&log, "pod create", |e| {
        is(e, "create", "pods", Some("p1"), "ResponseComplete")
    });
    assert_eq!(
        pod["annotations"]["pod-security.kubernetes.io/enforce-policy"],
        "privileged:latest"
    );
    assert!(
        pod["annotations"]["pod-security.kubernetes.io/audit-violations"]
            .as_str()
            .is_some_and(|v| v.starts_with("would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false")),
        "{pod}"
    );

    // The Audit-Id response header names the request's events.
    let (status, header_id) = raw_get(
        api.insecure_port(),
        "/api/v1/namespaces/default/configmaps?limit=1",
    );
    assert!(status.contains("200"), "{status}");
    let header_id = header_id.expect("Audit-Id header");
    let e = wait_for(&log, "raw list", |e| {
        e["auditID"] == header_id.as_str() && e["stage"] == "ResponseComplete"
    });
    assert_eq!(e["userAgent"], "audit-test/1.0");
    assert_eq!(
        e["requestURI"],
        "/api/v1/namespaces/default/configmaps?limit=1"
    );

    // None rules: no events for health checks or events.
    let all = events(&log);
    assert!(!all.iter().any(|e| e["requestURI"]
        .as_str()
        .is_some_and(|u| u.starts_with("/readyz"))));
    assert!(!all.iter().any(|e| e["objectRef"]["resource"] == "events"));
    // Every event is well-formed.
    for e in &all {
        assert!(
            e["auditID"].is_string()
                && e["requestReceivedTimestamp"].is_string()
                && e["user"]["username"].is_string(),
            "{e}"
        );
    }
}
