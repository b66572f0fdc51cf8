//! Secure-port tests: real etcd + our apiserver with `--authorization-mode=Node,RBAC`,
//! client certificates and kubeconfigs from `kube-apiserver gen-certs`, service-account
//! tokens, driven by the real upstream kubectl.

use std::path::Path;
use std::process::Command;

use test_support::{kubectl, kubectl_stdin, Identities, KubectlOutput, SecureApiServer};

fn start() -> SecureApiServer {
    let api = SecureApiServer::start_with_etcd(
        Path::new(env!("CARGO_BIN_EXE_kube-apiserver")),
        Identities {
            nodes: &["n1", "n2"],
            users: &["jane", "dev:devs"],
        },
        &["--enable-admission-plugins=NodeRestriction"],
    )
    .expect("apiserver");
    // The default ServiceAccount (the controller-manager would create it).
    kubectl_stdin(
        &api,
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n  namespace: default\n",
    )
    .assert_success();
    api
}

/// kubectl as `conf` that must fail: its stderr.
fn fails(c: &SecureApiServer, conf: &str, args: &[&str]) -> String {
    let out = c.kubectl_as(conf, args, None);
    assert!(
        !out.success(),
        "kubectl {args:?} as {conf} should fail: {}",
        out.stdout
    );
    out.stderr
}

/// kubectl with a bearer token and no client certificate (`""`: anonymous).
fn kubectl_token(c: &SecureApiServer, token: &str, args: &[&str]) -> KubectlOutput {
    let user = if token.is_empty() {
        "{}".to_string()
    } else {
        format!("{{token: {token}}}")
    };
    let conf = c
        .kubeconfig_with_user("token", &user)
        .expect("token kubeconfig");
    c.kubectl_with_kubeconfig(&conf, args, None)
}

#[test]
fn view_user_can_read_but_not_write_and_can_i_answers() {
    let c = start();
    c.kubectl_ok("admin", &["create", "namespace", "team"]);
    c.kubectl_ok(
        "admin",
        &[
            "create",
            "rolebinding",
            "jane-view",
            "--clusterrole=view",
            "--user=jane",
            "-n",
            "team",
        ],
    );
    c.kubectl_ok(
        "admin",
        &[
            "create",
            "secret",
            "generic",
            "s1",
            "--from-literal=a=b",
            "-n",
            "team",
        ],
    );

    // Reads in the bound namespace work; writes, secrets and other namespaces do not.
    let out = c.kubectl_as("user-jane", &["get", "pods", "-n", "team"], None);
    assert!(out.success(), "{}", out.stderr);
    assert!(
        out.stderr.contains("No resources found in team namespace."),
        "{}",
        out.stderr
    );
    let err = fails(
        &c,
        "user-jane",
        &["run", "web", "--image=busybox", "-n", "team"],
    );
    assert!(
        err.contains("Error from server (Forbidden): pods is forbidden: User \"jane\" cannot create resource \"pods\" in API group \"\" in the namespace \"team\""),
        "{err}"
    );
    let err = fails(&c, "user-jane", &["get", "secret", "s1", "-n", "team"]);
    assert!(err.contains("secrets \"s1\" is forbidden: User \"jane\" cannot get resource \"secrets\" in API group \"\" in the namespace \"team\""), "{err}");
    let err = fails(&c, "user-jane", &["get", "pods", "-n", "default"]);
    assert!(
        err.contains(
            "cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        ),
        "{err}"
    );
    let err = fails(&c, "user-jane", &["get", "namespaces"]);
    assert!(
        err.contains("cannot list resource \"namespaces\" in API group \"\" at the cluster scope"),
        "{err}"
    );
    // Nothing was created.
    assert!(c
        .kubectl_ok("admin", &["get", "pods", "-n", "team", "-o", "name"])
        .trim()
        .is_empty());

    // kubectl auth can-i: as herself (SelfSubjectAccessReview) and impersonated by admin.
    assert_eq!(
        c.kubectl_ok(
            "user-jane",
            &["auth", "can-i", "list", "pods", "-n", "team"]
        )
        .trim(),
        "yes"
    );
    let no = c.kubectl_as(
        "user-jane",
        &["auth", "can-i", "create", "pods", "-n", "team"],
        None,
    );
    assert!(!no.success());
    assert_eq!(no.stdout.trim(), "no");
    let no = c.kubectl_as(
        "admin",
        &["auth", "can-i", "create", "pods", "-n", "team", "--as=jane"],
        None,
    );
    assert_eq!(no.stdout.trim(), "no", "{}", no.stderr);
    assert_eq!(
        c.kubectl_ok(
            "admin",
            &["auth", "can-i", "get", "pods", "-n", "team", "--as=jane"]
        )
        .trim(),
        "yes"
    );
    assert_eq!(
        c.kubectl_ok("admin", &["auth", "can-i", "*", "*"]).trim(),
        "yes"
    );
    // Impersonation itself needs permission.
    let err = fails(
        &c,
        "user-jane",
        &["get", "pods", "-n", "team", "--as=admin"],
    );
    assert!(err.contains("users \"admin\" is forbidden: User \"jane\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"), "{err}");
    // kubectl auth whoami (SelfSubjectReview).
    let who = c.kubectl_ok(
        "user-jane",
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username} {.status.userInfo.groups}",
        ],
    );
    assert_eq!(who, "jane [\"system:authenticated\"]");
}

#[test]
fn escalation_is_refused_and_groups_bind() {
    let c = start();
    c.kubectl_ok("admin", &["create", "namespace", "team"]);
    // The `devs` group (O=devs in dev's certificate) administers `team`.
    c.kubectl_ok(
        "admin",
        &[
            "create",
            "rolebinding",
            "devs-admin",
            "--clusterrole=admin",
            "--group=devs",
            "-n",
            "team",
        ],
    );
    c.kubectl_ok(
        "user-dev",
        &[
            "create",
            "role",
            "secret-reader",
            "--verb=get",
            "--resource=secrets",
            "-n",
            "team",
        ],
    );
    c.kubectl_ok(
        "user-dev",
        &[
            "create",
            "rolebinding",
            "jane-edit",
            "--clusterrole=edit",
            "--user=jane",
            "-n",
            "team",
        ],
    );
    let err = fails(
        &c,
        "user-dev",
        &[
            "create",
            "role",
            "node-reader",
            "--verb=list",
            "--resource=nodes",
            "-n",
            "team",
        ],
    );
    assert!(
        err.contains("is attempting to grant RBAC permissions not currently held"),
        "{err}"
    );
    let err = fails(
        &c,
        "user-dev",
        &[
            "create",
            "rolebinding",
            "dev-root",
            "--clusterrole=cluster-admin",
            "--user=dev",
            "-n",
            "team",
        ],
    );
    assert!(err.contains("error: failed to create rolebinding: rolebindings.rbac.authorization.k8s.io \"dev-root\" is forbidden: user \"dev\" (groups=[\"devs\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held"), "{err}");
    let err = fails(
        &c,
        "user-dev",
        &[
            "create",
            "clusterrolebinding",
            "dev-root",
            "--clusterrole=cluster-admin",
            "--user=dev",
        ],
    );
    assert!(err.contains("clusterrolebindings.rbac.authorization.k8s.io is forbidden: User \"dev\" cannot create resource \"clusterrolebindings\" in API group \"rbac.authorization.k8s.io\" at the cluster scope"), "{err}");
    assert!(fails(
        &c,
        "admin",
        &["get", "rolebinding", "dev-root", "-n", "team"]
    )
    .contains("NotFound"));
    // Upstream bootstrap roles are present, aggregated.
    let rules = c.kubectl_ok(
        "admin",
        &[
            "get",
            "clusterrole",
            "admin",
            "-o",
            "jsonpath={.rules[*].resources}",
        ],
    );
    assert!(
        rules.contains("rolebindings") && rules.contains("secrets") && rules.contains("pods/log"),
        "{rules}"
    );
}

#[test]
fn service_account_tokens_authenticate_and_anonymous_is_limited() {
    let c = start();
    let token = c
        .kubectl_ok("admin", &["create", "token", "default"])
        .trim()
        .to_string();
    assert_eq!(token.matches('.').count(), 2, "{token}");
    let who = kubectl_token(
        &c,
        &token,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username} {.status.userInfo.groups}",
        ],
    );
    assert!(who.success(), "{}", who.stderr);
    assert_eq!(who.stdout, "system:serviceaccount:default:default [\"system:serviceaccounts\",\"system:serviceaccounts:default\",\"system:authenticated\"]");
    let denied = kubectl_token(&c, &token, &["get", "pods"]);
    assert!(
        denied.stderr.contains(
            "User \"system:serviceaccount:default:default\" cannot list resource \"pods\""
        ),
        "{}",
        denied.stderr
    );
    c.kubectl_ok(
        "admin",
        &[
            "create",
            "rolebinding",
            "sa-view",
            "--clusterrole=view",
            "--serviceaccount=default:default",
        ],
    );
    let allowed = kubectl_token(&c, &token, &["get", "pods"]);
    assert!(allowed.success(), "{}", allowed.stderr);

    // Tampered and truncated tokens are 401.
    let mut tampered = token.clone().into_bytes();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
    for bad in [
        String::from_utf8(tampered).expect("utf8"),
        token[..token.len() - 10].to_string(),
    ] {
        let out = kubectl_token(&c, &bad, &["get", "pods"]);
        assert!(
            out.stderr
                .contains("You must be logged in to the server (Unauthorized)"),
            "{}",
            out.stderr
        );
    }
    // A pod-bound token works while its pod lives and stops once the pod is deleting
    // (the cache keeps a pod's uid and deletionTimestamp for this check).
    c.kubectl_ok(
        "admin",
        &["run", "bound", "--image=busybox", "--restart=Never"],
    );
    let bound = c
        .kubectl_ok(
            "admin",
            &[
                "create",
                "token",
                "default",
                "--bound-object-kind=Pod",
                "--bound-object-name=bound",
            ],
        )
        .trim()
        .to_string();
    let review_of = |t: &str| {
        let review = format!(
            "apiVersion: authentication.k8s.io/v1\nkind: TokenReview\nspec:\n  token: {t}\n"
        );
        let out = c.kubectl_as(
            "admin",
            &[
                "create",
                "--validate=false",
                "-f",
                "-",
                "-o",
                "jsonpath={.status.authenticated}",
            ],
            Some(&review),
        );
        assert!(out.success(), "{}", out.stderr);
        out.stdout
    };
    assert_eq!(review_of(&bound), "true");
    // A finalizer keeps the deleting pod (with its deletionTimestamp) in place.
    c.kubectl_ok(
        "admin",
        &[
            "patch",
            "pod",
            "bound",
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
        ],
    );
    assert_eq!(review_of(&bound), "true");
    c.kubectl_ok("admin", &["delete", "pod", "bound", "--wait=false"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while review_of(&bound) == "true" {
        assert!(
            std::time::Instant::now() < deadline,
            "a token bound to a deleting pod still authenticates"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(kubectl_token(&c, &bound, &["get", "pods"])
        .stderr
        .contains("Unauthorized"));
    // A deleted service account's token stops working.
    let review = format!(
        "apiVersion: authentication.k8s.io/v1\nkind: TokenReview\nspec:\n  token: {token}\n"
    );
    let reviewed = c.kubectl_as(
        "admin",
        &[
            "create",
            "--validate=false",
            "-f",
            "-",
            "-o",
            "jsonpath={.status.authenticated} {.status.user.username}",
        ],
        Some(&review),
    );
    assert!(reviewed.success(), "{}", reviewed.stderr);
    assert_eq!(
        reviewed.stdout,
        "true system:serviceaccount:default:default"
    );
    c.kubectl_ok("admin", &["delete", "serviceaccount", "default"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(kubectl_token(&c, &token, &["get", "pods"])
        .stderr
        .contains("Unauthorized"));
    // A missing service account gets no token.
    let err = fails(&c, "admin", &["create", "token", "ghost"]);
    assert!(err.contains("serviceaccounts \"ghost\" not found"), "{err}");

    // Anonymous: public info only.
    let anon = test_support::http_get(&format!("http://127.0.0.1:{}/healthz", c.insecure_port()))
        .expect("insecure healthz");
    assert_eq!(anon.status, 200);
    // (kubectl prompts for credentials when it has none, so anonymous uses curl.)
    let curl = |path: &str| {
        let out = Command::new("curl")
            .args([
                "-s",
                "-w",
                " %{http_code}",
                "--cacert",
                &c.dir().join("pki/ca.crt").display().to_string(),
            ])
            .arg(format!("https://127.0.0.1:{}{path}", c.secure_port()))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(curl("/version").ends_with(" 200"));
    assert!(curl("/healthz").ends_with("ok 200"));
    let pods = curl("/api/v1/namespaces/default/pods");
    assert!(pods.ends_with(" 403") && pods.contains("pods is forbidden: User \\\"system:anonymous\\\" cannot list resource \\\"pods\\\" in API group \\\"\\\" in the namespace \\\"default\\\""), "{pods}");
    // The insecure port keeps full access.
    kubectl(&c, &["get", "secrets", "-A"]).assert_success();
}

#[test]
fn kubelet_reads_only_its_pods_secrets() {
    let c = start();
    c.kubectl_ok(
        "admin",
        &["create", "secret", "generic", "mine", "--from-literal=a=b"],
    );
    c.kubectl_ok(
        "admin",
        &[
            "create",
            "secret",
            "generic",
            "theirs",
            "--from-literal=a=b",
        ],
    );
    let pod = |name: &str, node: &str, secret: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  nodeName: {node}\n  containers:\n  - name: c\n    image: busybox\n  volumes:\n  - name: s\n    secret:\n      secretName: {secret}\n")
    };
    for (name, node, secret) in [("p1", "n1", "mine"), ("p2", "n2", "theirs")] {
        let out = c.kubectl_as(
            "admin",
            &["create", "-f", "-"],
            Some(&pod(name, node, secret)),
        );
        assert!(out.success(), "{}", out.stderr);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    c.kubectl_ok("kubelet-n1", &["get", "secret", "mine"]);
    let err = fails(&c, "kubelet-n1", &["get", "secret", "theirs"]);
    assert!(err.contains("User \"system:node:n1\" cannot get resource \"secrets\" in API group \"\" in the namespace \"default\": no relationship found between node 'n1' and this object"), "{err}");
    let err = fails(&c, "kubelet-n1", &["get", "secrets"]);
    assert!(
        err.contains("can only get individual resources of this type"),
        "{err}"
    );
    c.kubectl_ok("kubelet-n1", &["get", "pods", "-A"]);
    c.kubectl_ok("kubelet-n1", &["get", "nodes"]);
    // A kubelet cannot do what system:node does not allow.
    assert!(fails(&c, "kubelet-n1", &["create", "namespace", "x"]).contains("Forbidden"));
}

#[test]
fn node_restriction_keeps_kubelets_to_their_own_node_and_pods() {
    let c = start();
    for (name, node) in [("p1", "n1"), ("p2", "n2")] {
        let pod = format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  nodeName: {node}\n  containers:\n  - name: c\n    image: busybox\n");
        let out = c.kubectl_as("admin", &["create", "-f", "-"], Some(&pod));
        assert!(out.success(), "{}", out.stderr);
    }
    for n in ["n1", "n2"] {
        let node = format!("apiVersion: v1\nkind: Node\nmetadata:\n  name: {n}\n");
        let out = c.kubectl_as("admin", &["create", "-f", "-"], Some(&node));
        assert!(out.success(), "{}", out.stderr);
    }
    // PUT pods/status as the kubelet of n1 (system:node may update pods/status, not get it).
    let put_status = |pod: &str| {
        let mut obj: serde_json::Value =
            serde_json::from_str(&c.kubectl_ok("admin", &["get", "pod", pod, "-o", "json"]))
                .expect("pod json");
        obj["status"]["phase"] = serde_json::json!("Running");
        let file = c.dir().join(format!("{pod}-status.json"));
        std::fs::write(&file, obj.to_string()).expect("write");
        c.kubectl_as(
            "kubelet-n1",
            &[
                "replace",
                "--raw",
                &format!("/api/v1/namespaces/default/pods/{pod}/status"),
                "-f",
                &file.display().to_string(),
            ],
            None,
        )
    };
    let mine = put_status("p1");
    assert!(mine.success(), "{}", mine.stderr);
    let theirs = put_status("p2");
    assert!(!theirs.success());
    assert!(
        theirs.stderr.contains(
            "node \"n1\" can only update pod status for pods with spec.nodeName set to itself"
        ),
        "{}",
        theirs.stderr
    );
    c.kubectl_ok(
        "kubelet-n1",
        &["label", "node", "n1", "example.com/ready=yes"],
    );
    let err = fails(
        &c,
        "kubelet-n1",
        &["label", "node", "n2", "example.com/ready=yes"],
    );
    assert!(
        err.contains("is not allowed to modify node \"n2\"") || err.contains("Forbidden"),
        "{err}"
    );
}
