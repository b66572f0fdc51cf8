//! TLS bootstrapping and per-controller credentials against a secure apiserver
//! (x509 + bootstrap tokens + ServiceAccount tokens, `Node,RBAC`): a node client CSR
//! created with a bootstrap token is auto-approved (csrapproving) and signed
//! (csrsigning), and the issued certificate authenticates as `system:node:<name>`;
//! with `--use-service-account-credentials` each controller works as its own
//! ServiceAccount holding exactly its `system:controller:*` role.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use test_support::{csr_manifest, csr_pem, Etcd, Identities, SecureApiServer};

use super::common::{apiserver_bin, KCM};

const TOKEN: &str = "abcdef.0123456789abcdef";

struct Secure {
    kcm: Option<Child>,
    kcm_log: PathBuf,
    api: SecureApiServer,
    _etcd: Etcd,
    dir: PathBuf,
}

impl Drop for Secure {
    fn drop(&mut self) {
        if let Some(mut c) = self.kcm.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.kcm_log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!(
                "--- kube-controller-manager log (tail) ---\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
            eprintln!("--- apiserver log ---\n{}", self.api.log());
        }
    }
}

impl Secure {
    /// The secured apiserver (gen-certs PKI, bootstrap tokens) and the
    /// controller-manager with its own kubeconfig and `kcm_args`.
    fn start(kcm_args: &[&str]) -> Secure {
        let etcd = Etcd::start().expect("etcd");
        let api = SecureApiServer::start(
            &apiserver_bin(),
            &etcd,
            Identities::default(),
            &["--enable-bootstrap-token-auth"],
        )
        .expect("apiserver");
        let dir = api.dir().to_path_buf();
        let kcm_log = dir.join("kcm.log");
        let out = File::create(&kcm_log).expect("log");
        let kcm = Command::new(KCM)
            .arg(format!(
                "--kubeconfig={}",
                api.kubeconfig_for("controller-manager").display()
            ))
            .arg("--secure-port=0")
            .arg("--leader-elect=false")
            .arg(format!(
                "--cluster-signing-cert-file={}",
                api.pki_file("ca.crt").display()
            ))
            .arg(format!(
                "--cluster-signing-key-file={}",
                api.pki_file("ca.key").display()
            ))
            .args(kcm_args)
            .env("RUST_LOG", "info,kube_controller_manager=debug")
            .stdout(Stdio::from(out.try_clone().expect("log")))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("kube-controller-manager");
        Secure {
            kcm: Some(kcm),
            kcm_log,
            api,
            _etcd: etcd,
            dir,
        }
    }

    fn kubectl_conf(
        &self,
        conf: &Path,
        args: &[&str],
        stdin: Option<&str>,
    ) -> (bool, String, String) {
        let out = self.api.kubectl_with_kubeconfig(conf, args, stdin);
        (out.success(), out.stdout, out.stderr)
    }

    fn admin(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, out, err) = self.kubectl_conf(&self.dir.join("admin.conf"), args, stdin);
        assert!(ok, "kubectl {args:?}: {err}");
        out
    }

    /// A kubeconfig for this apiserver with `user` (a YAML flow mapping).
    fn conf_with(&self, name: &str, user: &str) -> PathBuf {
        self.api
            .kubeconfig_with_user(name, user)
            .expect("kubeconfig")
    }

    /// `kubectl auth can-i` as `user`.
    fn can_i(&self, user: &str, args: &[&str]) -> bool {
        let mut all = vec!["auth", "can-i"];
        all.extend_from_slice(args);
        all.push("--as");
        all.push(user);
        let (_, out, _) = self.kubectl_conf(&self.dir.join("admin.conf"), &all, None);
        out.trim() == "yes"
    }
}

/// Polls `check` every 200 ms until it gives a value or `timeout` passes.
fn poll<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn bootstrap_secret() -> String {
    let (id, secret) = TOKEN.split_once('.').expect("token");
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: bootstrap-token-{id}\n  namespace: kube-system\ntype: bootstrap.kubernetes.io/token\nstringData:\n  token-id: {id}\n  token-secret: {secret}\n  usage-bootstrap-authentication: \"true\"\n"
    )
}

#[test]
fn bootstrap_token_node_csr_is_auto_approved_signed_and_authenticates() {
    let c = Secure::start(&[
        "--use-service-account-credentials",
        "--controllers=csrapproving,csrsigning",
    ]);
    c.admin(&["apply", "-f", "-"], Some(&bootstrap_secret()));
    let boot = c.conf_with("bootstrap", &format!("{{token: {TOKEN}}}"));

    // The kubelet side of TLS bootstrapping: a key, a CSR for system:node:boot1.
    let (request, key) = csr_pem("system:node:boot1", &["system:nodes"], &[]).expect("csr");
    let csr = csr_manifest(
        "node-csr-boot1",
        request.as_bytes(),
        "kubernetes.io/kube-apiserver-client-kubelet",
        "  expirationSeconds: 7200\n",
    );
    let (ok, _, err) = c.kubectl_conf(&boot, &["create", "-f", "-"], Some(&csr));
    assert!(ok, "bootstrap token creates the CSR: {err}");
    let requester = c.admin(
        &[
            "get",
            "csr",
            "node-csr-boot1",
            "-o",
            "jsonpath={.spec.username} {.spec.groups}",
        ],
        None,
    );
    assert_eq!(
        requester,
        "system:bootstrap:abcdef [\"system:bootstrappers\",\"system:authenticated\"]"
    );

    let cert_b64 = poll("the signed certificate", Duration::from_secs(60), || {
        let out = c.admin(
            &[
                "get",
                "csr",
                "node-csr-boot1",
                "-o",
                "jsonpath={.status.certificate}",
            ],
            None,
        );
        (!out.is_empty()).then_some(out)
    });
    let cond = c.admin(&["get", "csr", "node-csr-boot1", "-o", "jsonpath={.status.conditions[0].type}|{.status.conditions[0].reason}|{.status.conditions[0].message}"], None);
    assert_eq!(cond, "Approved|AutoApproved|Auto approving kubelet client certificate after SubjectAccessReview.");
    use base64::Engine;
    let cert = base64::engine::general_purpose::STANDARD
        .decode(cert_b64.trim())
        .expect("base64");
    let (_, pem) = x509_parser::pem::parse_x509_pem(&cert).expect("pem");
    let (_, x) = x509_parser::parse_x509_certificate(&pem.contents).expect("x509");
    let life = x.validity().not_after.timestamp() - x.validity().not_before.timestamp();
    assert_eq!(
        life,
        7200 + 300,
        "expirationSeconds plus the 5 minute backdate"
    );

    // The issued certificate authenticates as the node.
    let cert_file = c.dir.join("boot1.crt");
    let key_file = c.dir.join("boot1.key");
    std::fs::write(&cert_file, &cert).expect("cert");
    std::fs::write(&key_file, key.serialize_pem()).expect("key");
    let node = c.conf_with(
        "node",
        &format!(
            "{{client-certificate: {}, client-key: {}}}",
            cert_file.display(),
            key_file.display()
        ),
    );
    let (ok, who, err) = c.kubectl_conf(
        &node,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username} {.status.userInfo.groups}",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(
        who,
        "system:node:boot1 [\"system:nodes\",\"system:authenticated\"]"
    );

    // A CSR for someone else's name from the bootstrap token is not approved.
    let (other_req, _) = csr_pem("jane", &[], &[]).expect("csr");
    let csr2 = csr_manifest(
        "not-a-node",
        other_req.as_bytes(),
        "kubernetes.io/kube-apiserver-client-kubelet",
        "  expirationSeconds: 7200\n",
    );
    let (ok, _, err) = c.kubectl_conf(&boot, &["create", "-f", "-"], Some(&csr2));
    assert!(ok, "{err}");
    // Approved by hand, the kubelet signer refuses it (Failed, SignerValidationFailure).
    c.admin(&["certificate", "approve", "not-a-node"], None);
    let failed = poll("the signer's verdict", Duration::from_secs(60), || {
        let out = c.admin(&["get", "csr", "not-a-node", "-o", "jsonpath={.status.conditions[?(@.type==\"Failed\")].reason}|{.status.conditions[?(@.type==\"Failed\")].message}"], None);
        (out != "|").then_some(out)
    });
    assert_eq!(
        failed,
        "SignerValidationFailure|subject organization is not system:nodes"
    );
    let first = c.admin(
        &[
            "get",
            "csr",
            "not-a-node",
            "-o",
            "jsonpath={.status.conditions[0].reason}",
        ],
        None,
    );
    assert_eq!(first, "KubectlApprove", "csrapproving left it alone");
}

#[test]
fn controllers_run_as_their_service_accounts_with_exactly_their_roles() {
    // Every default controller runs as its own account (the replicaset one is probed).
    let mut c = Secure::start(&["--use-service-account-credentials"]);
    let rs = "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: web\n  namespace: default\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: busybox\n";
    // The controller-manager's own user may not create pods: only the controller's
    // ServiceAccount can have made them.
    assert!(!c.can_i(
        "system:kube-controller-manager",
        &["create", "pods", "-n", "default"]
    ));
    // The serviceaccount controller may create `default` between apply's GET and POST.
    let (ok, _, err) = c.kubectl_conf(
        &c.dir.join("admin.conf"),
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n  namespace: default\n"),
    );
    assert!(
        ok || err.contains("AlreadyExists"),
        "creating the default ServiceAccount: {err}"
    );
    c.admin(&["create", "-f", "-"], Some(rs));
    poll("two pods", Duration::from_secs(60), || {
        let out = c.admin(
            &[
                "get", "pods", "-n", "default", "-l", "app=web", "-o", "name",
            ],
            None,
        );
        (out.lines().count() == 2).then_some(())
    });
    let sa = c.admin(
        &[
            "get",
            "serviceaccount",
            "replicaset-controller",
            "-n",
            "kube-system",
            "-o",
            "name",
        ],
        None,
    );
    assert_eq!(sa.trim(), "serviceaccount/replicaset-controller");
    let binding = c.admin(&["get", "clusterrolebinding", "system:controller:replicaset-controller", "-o", "jsonpath={.roleRef.name} {.subjects[0].kind} {.subjects[0].namespace}/{.subjects[0].name}"], None);
    assert_eq!(
        binding,
        "system:controller:replicaset-controller ServiceAccount kube-system/replicaset-controller"
    );
    let me = "system:serviceaccount:kube-system:replicaset-controller";
    for (args, want) in [
        (&["create", "pods", "-n", "default"][..], true),
        (
            &["update", "replicasets.apps/status", "-n", "default"][..],
            true,
        ),
        (&["watch", "replicasets.apps", "-A"][..], true),
        (&["create", "deployments.apps", "-n", "default"][..], false),
        (&["get", "secrets", "-n", "default"][..], false),
        (&["delete", "replicasets.apps", "-n", "default"][..], false),
    ] {
        assert_eq!(c.can_i(me, args), want, "can-i {args:?}");
    }
    // No controller was refused anything it needs, and none gave up.
    let accounts = c.admin(
        &["get", "serviceaccounts", "-n", "kube-system", "-o", "name"],
        None,
    );
    for sa in [
        "endpoint-controller",
        "node-controller",
        "generic-garbage-collector",
        "namespace-controller",
        "certificate-controller",
        "service-account-controller",
    ] {
        assert!(
            accounts.contains(&format!("serviceaccount/{sa}\n")),
            "{sa} missing: {accounts}"
        );
    }
    let exited = c.kcm.as_mut().and_then(|k| k.try_wait().ok().flatten());
    assert!(exited.is_none(), "controller-manager exited: {exited:?}");
    let log = std::fs::read_to_string(&c.kcm_log).unwrap_or_default();
    let forbidden: Vec<&str> = log.lines().filter(|l| l.contains("forbidden")).collect();
    assert!(forbidden.is_empty(), "{forbidden:#?}");
}
