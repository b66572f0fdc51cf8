//! Secure-port tests: real etcd + our apiserver with `--authorization-mode=Node,RBAC`,
//! client certificates and kubeconfigs from `kube-apiserver gen-certs`, service-account
//! tokens, driven by the real upstream kubectl.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use kube_apiserver::pki::{self, PkiConfig};
use test_support::{kubectl, kubectl_stdin, ApiServer, Etcd};

struct Secure {
    api: ApiServer,
    _etcd: Etcd,
    _pki_dir: tempfile::TempDir,
    dir: PathBuf,
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Secure {
    fn start() -> Secure {
        let pki_dir = tempfile::tempdir().expect("tempdir");
        let dir = pki_dir.path().to_path_buf();
        let cfg = PkiConfig {
            dir: dir.clone(),
            server: "https://127.0.0.1:SECURE_PORT".into(),
            hostnames: Vec::new(),
            ips: Vec::new(),
            nodes: vec!["n1".into(), "n2".into()],
            users: vec!["jane".into(), "dev:devs".into()],
        };
        pki::generate(&cfg).expect("pki");
        let p = |f: &str| dir.join("pki").join(f).display().to_string();
        let args = [
            format!("--client-ca-file={}", p("ca.crt")),
            format!("--tls-cert-file={}", p("apiserver.crt")),
            format!("--tls-private-key-file={}", p("apiserver.key")),
            "--authorization-mode=Node,RBAC".to_string(),
            "--enable-admission-plugins=NodeRestriction".to_string(),
            format!("--service-account-signing-key-file={}", p("sa.key")),
            format!("--service-account-key-file={}", p("sa.pub")),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_string(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let etcd = Etcd::start().expect("etcd");
        let api = ApiServer::start(Path::new(env!("CARGO_BIN_EXE_kube-apiserver")), &etcd, &args).expect("apiserver");
        for entry in std::fs::read_dir(&dir).expect("dir").flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "conf") {
                let text = std::fs::read_to_string(&path).expect("conf");
                std::fs::write(&path, text.replace("SECURE_PORT", &api.secure_port().to_string())).expect("rewrite conf");
            }
        }
        // The default ServiceAccount (the controller-manager would create it).
        kubectl_stdin(&api, &["apply", "-f", "-"], "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n  namespace: default\n").assert_success();
        Secure { api, _etcd: etcd, _pki_dir: pki_dir, dir }
    }

    /// The real kubectl with one of the generated kubeconfigs (`admin`, `user-jane`, ...).
    fn kubectl_as(&self, conf: &str, args: &[&str], stdin: Option<&str>) -> Out {
        let mut cmd = Command::new(test_support::KUBECTL);
        cmd.env_remove("KUBECONFIG")
            .env("KUBECACHEDIR", self.api.dir().join(format!("cache-{conf}")))
            .arg(format!("--kubeconfig={}", self.dir.join(format!("{conf}.conf")).display()))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("kubectl");
        if let Some(input) = stdin {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().expect("kubectl output");
        Out {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn ok(&self, conf: &str, args: &[&str]) -> String {
        let out = self.kubectl_as(conf, args, None);
        assert!(out.ok, "kubectl {args:?} as {conf} failed: {}\n{}", out.stderr, self.api.log());
        out.stdout
    }

    fn fails(&self, conf: &str, args: &[&str]) -> String {
        let out = self.kubectl_as(conf, args, None);
        assert!(!out.ok, "kubectl {args:?} as {conf} should fail: {}", out.stdout);
        out.stderr
    }

    /// kubectl with a bearer token and no client certificate (`""`: anonymous).
    fn kubectl_token(&self, token: &str, args: &[&str]) -> Out {
        let ca = std::fs::read(self.dir.join("pki/ca.crt")).expect("ca");
        let user = if token.is_empty() { "{}".to_string() } else { format!("{{token: {token}}}") };
        let conf = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority-data: {}\nusers:\n- name: u\n  user: {user}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u, namespace: default}}\ncurrent-context: c\n",
            self.api.secure_port(),
            base64_encode(&ca),
        );
        std::fs::write(self.dir.join("token.conf"), conf).expect("write token.conf");
        self.kubectl_as("token", args, None)
    }
}

fn base64_encode(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[test]
fn view_user_can_read_but_not_write_and_can_i_answers() {
    let c = Secure::start();
    c.ok("admin", &["create", "namespace", "team"]);
    c.ok("admin", &["create", "rolebinding", "jane-view", "--clusterrole=view", "--user=jane", "-n", "team"]);
    c.ok("admin", &["create", "secret", "generic", "s1", "--from-literal=a=b", "-n", "team"]);

    // Reads in the bound namespace work; writes, secrets and other namespaces do not.
    let out = c.kubectl_as("user-jane", &["get", "pods", "-n", "team"], None);
    assert!(out.ok, "{}", out.stderr);
    assert!(out.stderr.contains("No resources found in team namespace."), "{}", out.stderr);
    let err = c.fails("user-jane", &["run", "web", "--image=busybox", "-n", "team"]);
    assert!(
        err.contains("Error from server (Forbidden): pods is forbidden: User \"jane\" cannot create resource \"pods\" in API group \"\" in the namespace \"team\""),
        "{err}"
    );
    let err = c.fails("user-jane", &["get", "secret", "s1", "-n", "team"]);
    assert!(err.contains("secrets \"s1\" is forbidden: User \"jane\" cannot get resource \"secrets\" in API group \"\" in the namespace \"team\""), "{err}");
    let err = c.fails("user-jane", &["get", "pods", "-n", "default"]);
    assert!(err.contains("cannot list resource \"pods\" in API group \"\" in the namespace \"default\""), "{err}");
    let err = c.fails("user-jane", &["get", "namespaces"]);
    assert!(err.contains("cannot list resource \"namespaces\" in API group \"\" at the cluster scope"), "{err}");
    // Nothing was created.
    assert!(c.ok("admin", &["get", "pods", "-n", "team", "-o", "name"]).trim().is_empty());

    // kubectl auth can-i: as herself (SelfSubjectAccessReview) and impersonated by admin.
    assert_eq!(c.ok("user-jane", &["auth", "can-i", "list", "pods", "-n", "team"]).trim(), "yes");
    let no = c.kubectl_as("user-jane", &["auth", "can-i", "create", "pods", "-n", "team"], None);
    assert!(!no.ok);
    assert_eq!(no.stdout.trim(), "no");
    let no = c.kubectl_as("admin", &["auth", "can-i", "create", "pods", "-n", "team", "--as=jane"], None);
    assert_eq!(no.stdout.trim(), "no", "{}", no.stderr);
    assert_eq!(c.ok("admin", &["auth", "can-i", "get", "pods", "-n", "team", "--as=jane"]).trim(), "yes");
    assert_eq!(c.ok("admin", &["auth", "can-i", "*", "*"]).trim(), "yes");
    // Impersonation itself needs permission.
    let err = c.fails("user-jane", &["get", "pods", "-n", "team", "--as=admin"]);
    assert!(err.contains("users \"admin\" is forbidden: User \"jane\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"), "{err}");
    // kubectl auth whoami (SelfSubjectReview).
    let who = c.ok("user-jane", &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username} {.status.userInfo.groups}"]);
    assert_eq!(who, "jane [\"system:authenticated\"]");
}

#[test]
fn escalation_is_refused_and_groups_bind() {
    let c = Secure::start();
    c.ok("admin", &["create", "namespace", "team"]);
    // The `devs` group (O=devs in dev's certificate) administers `team`.
    c.ok("admin", &["create", "rolebinding", "devs-admin", "--clusterrole=admin", "--group=devs", "-n", "team"]);
    c.ok("user-dev", &["create", "role", "secret-reader", "--verb=get", "--resource=secrets", "-n", "team"]);
    c.ok("user-dev", &["create", "rolebinding", "jane-edit", "--clusterrole=edit", "--user=jane", "-n", "team"]);
    let err = c.fails("user-dev", &["create", "role", "node-reader", "--verb=list", "--resource=nodes", "-n", "team"]);
    assert!(err.contains("is attempting to grant RBAC permissions not currently held"), "{err}");
    let err = c.fails("user-dev", &["create", "rolebinding", "dev-root", "--clusterrole=cluster-admin", "--user=dev", "-n", "team"]);
    assert!(err.contains("error: failed to create rolebinding: rolebindings.rbac.authorization.k8s.io \"dev-root\" is forbidden: user \"dev\" (groups=[\"devs\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held"), "{err}");
    let err = c.fails("user-dev", &["create", "clusterrolebinding", "dev-root", "--clusterrole=cluster-admin", "--user=dev"]);
    assert!(err.contains("clusterrolebindings.rbac.authorization.k8s.io is forbidden: User \"dev\" cannot create resource \"clusterrolebindings\" in API group \"rbac.authorization.k8s.io\" at the cluster scope"), "{err}");
    assert!(c.fails("admin", &["get", "rolebinding", "dev-root", "-n", "team"]).contains("NotFound"));
    // Upstream bootstrap roles are present, aggregated.
    let rules = c.ok("admin", &["get", "clusterrole", "admin", "-o", "jsonpath={.rules[*].resources}"]);
    assert!(rules.contains("rolebindings") && rules.contains("secrets") && rules.contains("pods/log"), "{rules}");
}

#[test]
fn service_account_tokens_authenticate_and_anonymous_is_limited() {
    let c = Secure::start();
    let token = c.ok("admin", &["create", "token", "default"]).trim().to_string();
    assert_eq!(token.matches('.').count(), 2, "{token}");
    let who = c.kubectl_token(&token, &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username} {.status.userInfo.groups}"]);
    assert!(who.ok, "{}", who.stderr);
    assert_eq!(who.stdout, "system:serviceaccount:default:default [\"system:serviceaccounts\",\"system:serviceaccounts:default\",\"system:authenticated\"]");
    let denied = c.kubectl_token(&token, &["get", "pods"]);
    assert!(denied.stderr.contains("User \"system:serviceaccount:default:default\" cannot list resource \"pods\""), "{}", denied.stderr);
    c.ok("admin", &["create", "rolebinding", "sa-view", "--clusterrole=view", "--serviceaccount=default:default"]);
    let allowed = c.kubectl_token(&token, &["get", "pods"]);
    assert!(allowed.ok, "{}", allowed.stderr);

    // Tampered and truncated tokens are 401.
    let mut tampered = token.clone().into_bytes();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
    for bad in [String::from_utf8(tampered).expect("utf8"), token[..token.len() - 10].to_string()] {
        let out = c.kubectl_token(&bad, &["get", "pods"]);
        assert!(out.stderr.contains("You must be logged in to the server (Unauthorized)"), "{}", out.stderr);
    }
    // A deleted service account's token stops working.
    let review = format!("apiVersion: authentication.k8s.io/v1\nkind: TokenReview\nspec:\n  token: {token}\n");
    let reviewed = c.kubectl_as("admin", &["create", "--validate=false", "-f", "-", "-o", "jsonpath={.status.authenticated} {.status.user.username}"], Some(&review));
    assert!(reviewed.ok, "{}", reviewed.stderr);
    assert_eq!(reviewed.stdout, "true system:serviceaccount:default:default");
    c.ok("admin", &["delete", "serviceaccount", "default"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(c.kubectl_token(&token, &["get", "pods"]).stderr.contains("Unauthorized"));
    // A missing service account gets no token.
    let err = c.fails("admin", &["create", "token", "ghost"]);
    assert!(err.contains("serviceaccounts \"ghost\" not found"), "{err}");

    // Anonymous: public info only.
    let anon = test_support::http_get(&format!("http://127.0.0.1:{}/healthz", c.api.insecure_port())).expect("insecure healthz");
    assert_eq!(anon.status, 200);
    // (kubectl prompts for credentials when it has none, so anonymous uses curl.)
    let curl = |path: &str| {
        let out = Command::new("curl")
            .args(["-s", "-w", " %{http_code}", "--cacert", &c.dir.join("pki/ca.crt").display().to_string()])
            .arg(format!("https://127.0.0.1:{}{path}", c.api.secure_port()))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(curl("/version").ends_with(" 200"));
    assert!(curl("/healthz").ends_with("ok 200"));
    let pods = curl("/api/v1/namespaces/default/pods");
    assert!(pods.ends_with(" 403") && pods.contains("pods is forbidden: User \\\"system:anonymous\\\" cannot list resource \\\"pods\\\" in API group \\\"\\\" in the namespace \\\"default\\\""), "{pods}");
    // The insecure port keeps full access.
    kubectl(&c.api, &["get", "secrets", "-A"]).assert_success();
}

#[test]
fn kubelet_reads_only_its_pods_secrets() {
    let c = Secure::start();
    c.ok("admin", &["create", "secret", "generic", "mine", "--from-literal=a=b"]);
    c.ok("admin", &["create", "secret", "generic", "theirs", "--from-literal=a=b"]);
    let pod = |name: &str, node: &str, secret: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  nodeName: {node}\n  containers:\n  - name: c\n    image: busybox\n  volumes:\n  - name: s\n    secret:\n      secretName: {secret}\n")
    };
    for (name, node, secret) in [("p1", "n1", "mine"), ("p2", "n2", "theirs")] {
        let out = c.kubectl_as("admin", &["create", "-f", "-"], Some(&pod(name, node, secret)));
        assert!(out.ok, "{}", out.stderr);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    c.ok("kubelet-n1", &["get", "secret", "mine"]);
    let err = c.fails("kubelet-n1", &["get", "secret", "theirs"]);
    assert!(err.contains("User \"system:node:n1\" cannot get resource \"secrets\" in API group \"\" in the namespace \"default\": no relationship found between node 'n1' and this object"), "{err}");
    let err = c.fails("kubelet-n1", &["get", "secrets"]);
    assert!(err.contains("can only get individual resources of this type"), "{err}");
    c.ok("kubelet-n1", &["get", "pods", "-A"]);
    c.ok("kubelet-n1", &["get", "nodes"]);
    // A kubelet cannot do what system:node does not allow.
    assert!(c.fails("kubelet-n1", &["create", "namespace", "x"]).contains("Forbidden"));
}

#[test]
fn node_restriction_keeps_kubelets_to_their_own_node_and_pods() {
    let c = Secure::start();
    for (name, node) in [("p1", "n1"), ("p2", "n2")] {
        let pod = format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  nodeName: {node}\n  containers:\n  - name: c\n    image: busybox\n");
        let out = c.kubectl_as("admin", &["create", "-f", "-"], Some(&pod));
        assert!(out.ok, "{}", out.stderr);
    }
    for n in ["n1", "n2"] {
        let node = format!("apiVersion: v1\nkind: Node\nmetadata:\n  name: {n}\n");
        let out = c.kubectl_as("admin", &["create", "-f", "-"], Some(&node));
        assert!(out.ok, "{}", out.stderr);
    }
    // PUT pods/status as the kubelet of n1 (system:node may update pods/status, not get it).
    let put_status = |pod: &str| {
        let mut obj: serde_json::Value = serde_json::from_str(&c.ok("admin", &["get", "pod", pod, "-o", "json"])).expect("pod json");
        obj["status"]["phase"] = serde_json::json!("Running");
        let file = c.dir.join(format!("{pod}-status.json"));
        std::fs::write(&file, obj.to_string()).expect("write");
        c.kubectl_as("kubelet-n1", &["replace", "--raw", &format!("/api/v1/namespaces/default/pods/{pod}/status"), "-f", &file.display().to_string()], None)
    };
    let mine = put_status("p1");
    assert!(mine.ok, "{}", mine.stderr);
    let theirs = put_status("p2");
    assert!(!theirs.ok);
    assert!(theirs.stderr.contains("node \"n1\" can only update pod status for pods with spec.nodeName set to itself"), "{}", theirs.stderr);
    c.ok("kubelet-n1", &["label", "node", "n1", "example.com/ready=yes"]);
    let err = c.fails("kubelet-n1", &["label", "node", "n2", "example.com/ready=yes"]);
    assert!(err.contains("is not allowed to modify node \"n2\"") || err.contains("Forbidden"), "{err}");
}
