//! CertificateSigningRequests against real etcd + our apiserver with RBAC: the
//! requester's identity is recorded, requests are validated, `kubectl certificate
//! approve|deny` (upstream kubectl) uses `/approval`, and approving / issuing need
//! `approve` / `sign` on the signer.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use kube_apiserver::pki::{self, PkiConfig};
use test_support::{ApiServer, Etcd};

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
            nodes: vec!["n1".into()],
            users: vec!["jane".into()],
        };
        pki::generate(&cfg).expect("pki");
        let p = |f: &str| dir.join("pki").join(f).display().to_string();
        let args = [
            format!("--client-ca-file={}", p("ca.crt")),
            format!("--tls-cert-file={}", p("apiserver.crt")),
            format!("--tls-private-key-file={}", p("apiserver.key")),
            "--authorization-mode=Node,RBAC".to_string(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let etcd = Etcd::start().expect("etcd");
        let api = ApiServer::start(
            Path::new(env!("CARGO_BIN_EXE_kube-apiserver")),
            &etcd,
            &args,
        )
        .expect("apiserver");
        for entry in std::fs::read_dir(&dir).expect("dir").flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "conf") {
                let text = std::fs::read_to_string(&path).expect("conf");
                std::fs::write(
                    &path,
                    text.replace("SECURE_PORT", &api.secure_port().to_string()),
                )
                .expect("rewrite conf");
            }
        }
        Secure {
            api,
            _etcd: etcd,
            _pki_dir: pki_dir,
            dir,
        }
    }

    fn kubectl_as(&self, conf: &str, args: &[&str], stdin: Option<&str>) -> Out {
        let mut cmd = Command::new(test_support::KUBECTL);
        cmd.env_remove("KUBECONFIG")
            .env("KUBECACHEDIR", self.api.dir().join(format!("cache-{conf}")))
            .arg(format!(
                "--kubeconfig={}",
                self.dir.join(format!("{conf}.conf")).display()
            ))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("kubectl");
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
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
        assert!(
            out.ok,
            "kubectl {args:?} as {conf} failed: {}\n{}",
            out.stderr,
            self.api.log()
        );
        out.stdout
    }

    fn apply(&self, conf: &str, yaml: &str) -> Out {
        self.kubectl_as(conf, &["create", "-f", "-"], Some(yaml))
    }
}

fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// A PEM PKCS#10 request for CN `cn` (and O `org`).
fn request_pem(cn: &str, org: Option<&str>) -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    if let Some(o) = org {
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, o);
    }
    params
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem")
}

fn csr_yaml(name: &str, request_b64: &str, signer: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: {name}\nspec:\n  request: {request_b64}\n  signerName: {signer}\n  usages: [\"digital signature\", \"client auth\"]\n{extra_spec}"
    )
}

#[test]
fn create_records_the_requester_and_validates_the_request() {
    let c = Secure::start();
    c.ok(
        "admin",
        &[
            "create",
            "clusterrole",
            "csr-creator",
            "--verb=create,get,list",
            "--resource=certificatesigningrequests.certificates.k8s.io",
        ],
    );
    c.ok(
        "admin",
        &[
            "create",
            "clusterrolebinding",
            "jane-csr",
            "--clusterrole=csr-creator",
            "--user=jane",
        ],
    );

    // Client-supplied identity is replaced by the requester's.
    let forged = "  username: admin\n  groups: [\"system:masters\"]\n  uid: forged\n";
    let yaml = csr_yaml(
        "jane-1",
        &b64(request_pem("jane", None).as_bytes()),
        "example.com/signer",
        forged,
    );
    let out = c.apply("user-jane", &yaml);
    assert!(out.ok, "{}", out.stderr);
    let who = c.ok(
        "admin",
        &[
            "get",
            "csr",
            "jane-1",
            "-o",
            "jsonpath={.spec.username}|{.spec.groups}|{.spec.uid}|{.status}",
        ],
    );
    assert_eq!(who, "jane|[\"system:authenticated\"]||{}", "{who}");

    // A request that is not a PEM CSR, and a missing signerName: 422 naming the fields.
    let yaml = csr_yaml("bad-1", &b64(b"not a csr"), "example.com/signer", "");
    let err = c.apply("admin", &yaml).stderr;
    assert!(
        err.contains("The CertificateSigningRequest \"bad-1\" is invalid"),
        "{err}"
    );
    assert!(
        err.contains("spec.request: Invalid value")
            && err.contains("PEM block type must be CERTIFICATE REQUEST"),
        "{err}"
    );
    let yaml = csr_yaml("bad-2", &b64(request_pem("x", None).as_bytes()), "\"\"", "");
    let err = c.apply("admin", &yaml).stderr;
    assert!(err.contains("spec.signerName: Required value"), "{err}");
    let yaml = csr_yaml(
        "bad-3",
        &b64(request_pem("x", None).as_bytes()),
        "no-slash",
        "",
    )
    .replace("\"client auth\"]", "\"client auth\", \"flying\"]");
    let err = c.apply("admin", &yaml).stderr;
    assert!(
        err.contains("spec.signerName: Invalid value: \"no-slash\""),
        "{err}"
    );
    assert!(
        err.contains("spec.usages[2]: Unsupported value: \"flying\""),
        "{err}"
    );
    let yaml = csr_yaml(
        "bad-4",
        &b64(request_pem("x", None).as_bytes()),
        "example.com/s",
        "  expirationSeconds: 10\n",
    );
    let err = c.apply("admin", &yaml).stderr;
    assert!(
        err.contains("may not specify a duration less than 600 seconds (10 minutes)"),
        "{err}"
    );

    // CertificateSubjectRestriction: no system:masters from kube-apiserver-client.
    let yaml = csr_yaml(
        "masters",
        &b64(request_pem("evil", Some("system:masters")).as_bytes()),
        "kubernetes.io/kube-apiserver-client",
        "",
    );
    let err = c.apply("admin", &yaml).stderr;
    assert!(err.contains("use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed"), "{err}");
    let names = c.ok("admin", &["get", "csr", "-o", "name"]);
    assert_eq!(
        names.trim(),
        "certificatesigningrequest.certificates.k8s.io/jane-1",
        "{names}"
    );
}

#[test]
fn kubectl_certificate_approve_and_deny_need_the_signer() {
    let c = Secure::start();
    for name in ["a1", "d1", "w1"] {
        let signer = if name == "w1" {
            "example.com/widgets"
        } else {
            "kubernetes.io/kube-apiserver-client"
        };
        let out = c.apply(
            "admin",
            &csr_yaml(name, &b64(request_pem(name, None).as_bytes()), signer, ""),
        );
        assert!(out.ok, "{}", out.stderr);
    }
    // Upstream kubectl reads the CSR and PUTs `/approval`.
    let out = c.ok("admin", &["certificate", "approve", "a1"]);
    assert!(
        out.contains("certificatesigningrequest.certificates.k8s.io/a1 approved"),
        "{out}"
    );
    let cond = c.ok("admin", &["get", "csr", "a1", "-o", "jsonpath={.status.conditions[0].type} {.status.conditions[0].reason} {.status.conditions[0].status}"]);
    assert_eq!(cond, "Approved KubectlApprove True");
    c.ok("admin", &["certificate", "deny", "d1"]);
    let cond = c.ok(
        "admin",
        &[
            "get",
            "csr",
            "d1",
            "-o",
            "jsonpath={.status.conditions[0].type}",
        ],
    );
    assert_eq!(cond, "Denied");
    // Approved and Denied are mutually exclusive, also when the client tries.
    let both = r#"{"status":{"conditions":[{"type":"Approved","status":"True","reason":"KubectlApprove"},{"type":"Denied","status":"True"}]}}"#;
    let out = c.kubectl_as(
        "admin",
        &[
            "patch",
            "csr",
            "a1",
            "--subresource=approval",
            "--type=merge",
            "-p",
            both,
        ],
        None,
    );
    assert!(
        !out.ok
            && out
                .stderr
                .contains("Approved and Denied conditions are mutually exclusive"),
        "{}",
        out.stderr
    );

    // jane may update /approval but holds no `approve` on the signer: 403.
    c.ok("admin", &["create", "clusterrole", "csr-approver", "--verb=get,list,update", "--resource=certificatesigningrequests.certificates.k8s.io,certificatesigningrequests.certificates.k8s.io/approval"]);
    c.ok(
        "admin",
        &[
            "create",
            "clusterrolebinding",
            "jane-approver",
            "--clusterrole=csr-approver",
            "--user=jane",
        ],
    );
    let out = c.kubectl_as("user-jane", &["certificate", "approve", "w1"], None);
    assert!(!out.ok);
    assert!(
        out.stderr.contains("certificatesigningrequests.certificates.k8s.io \"w1\" is forbidden: user not permitted to approve requests with signerName \"example.com/widgets\""),
        "{}",
        out.stderr
    );
    // `approve` on the `example.com/*` signers suffices.
    let role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: widget-approver\nrules:\n- apiGroups: [certificates.k8s.io]\n  resources: [signers]\n  resourceNames: [\"example.com/*\"]\n  verbs: [approve]\n";
    assert!(c.apply("admin", role).ok);
    c.ok(
        "admin",
        &[
            "create",
            "clusterrolebinding",
            "jane-widgets",
            "--clusterrole=widget-approver",
            "--user=jane",
        ],
    );
    let out = c.ok("user-jane", &["certificate", "approve", "w1"]);
    assert!(out.contains("approved"), "{out}");
}

#[test]
fn status_certificate_needs_sign_and_is_set_once() {
    let c = Secure::start();
    assert!(
        c.apply(
            "admin",
            &csr_yaml(
                "s1",
                &b64(request_pem("s1", None).as_bytes()),
                "example.com/widgets",
                ""
            )
        )
        .ok
    );
    let ca = std::fs::read(c.dir.join("pki/ca.crt")).expect("ca");
    let patch = format!("{{\"status\":{{\"certificate\":\"{}\"}}}}", b64(&ca));
    c.ok("admin", &["create", "clusterrole", "csr-status", "--verb=get,update,patch", "--resource=certificatesigningrequests.certificates.k8s.io,certificatesigningrequests.certificates.k8s.io/status"]);
    c.ok(
        "admin",
        &[
            "create",
            "clusterrolebinding",
            "jane-status",
            "--clusterrole=csr-status",
            "--user=jane",
        ],
    );
    let out = c.kubectl_as(
        "user-jane",
        &[
            "patch",
            "csr",
            "s1",
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch,
        ],
        None,
    );
    assert!(
        !out.ok
            && out.stderr.contains(
                "user not permitted to sign requests with signerName \"example.com/widgets\""
            ),
        "{}",
        out.stderr
    );
    // The main resource cannot carry a certificate in; /status can, once.
    c.ok(
        "admin",
        &["patch", "csr", "s1", "--type=merge", "-p", &patch],
    );
    let cert = c.ok(
        "admin",
        &["get", "csr", "s1", "-o", "jsonpath={.status.certificate}"],
    );
    assert!(cert.is_empty(), "main resource wrote status: {cert}");
    c.ok(
        "admin",
        &[
            "patch",
            "csr",
            "s1",
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch,
        ],
    );
    let cert = c.ok(
        "admin",
        &["get", "csr", "s1", "-o", "jsonpath={.status.certificate}"],
    );
    assert_eq!(cert, b64(&ca));
    let twice = format!(
        "{{\"status\":{{\"certificate\":\"{}\"}}}}",
        b64(&[ca.clone(), ca].concat())
    );
    let out = c.kubectl_as(
        "admin",
        &[
            "patch",
            "csr",
            "s1",
            "--subresource=status",
            "--type=merge",
            "-p",
            &twice,
        ],
        None,
    );
    assert!(
        !out.ok
            && out
                .stderr
                .contains("updates may not modify existing certificate content"),
        "{}",
        out.stderr
    );
    let garbage = format!("{{\"status\":{{\"certificate\":\"{}\"}}}}", b64(b"junk"));
    assert!(
        c.apply(
            "admin",
            &csr_yaml(
                "s2",
                &b64(request_pem("s2", None).as_bytes()),
                "example.com/widgets",
                ""
            )
        )
        .ok
    );
    let out = c.kubectl_as(
        "admin",
        &[
            "patch",
            "csr",
            "s2",
            "--subresource=status",
            "--type=merge",
            "-p",
            &garbage,
        ],
        None,
    );
    assert!(
        !out.ok && out.stderr.contains("status.certificate: Invalid value"),
        "{}",
        out.stderr
    );
}
