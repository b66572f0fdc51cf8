//! CertificateSigningRequests against real etcd + our apiserver with RBAC: the
//! requester's identity is recorded, requests are validated, `kubectl certificate
//! approve|deny` (upstream kubectl) uses `/approval`, and approving / issuing need
//! `approve` / `sign` on the signer.

use std::path::Path;

use test_support::{b64, csr_pem, Identities, KubectlOutput, SecureApiServer};

fn start() -> SecureApiServer {
    SecureApiServer::start_with_etcd(
        Path::new(env!("CARGO_BIN_EXE_kube-apiserver")),
        Identities {
            nodes: &["n1"],
            users: &["jane"],
        },
        &[],
    )
    .expect("apiserver")
}

/// `kubectl create -f -` as `conf`.
fn create(c: &SecureApiServer, conf: &str, yaml: &str) -> KubectlOutput {
    c.kubectl_as(conf, &["create", "-f", "-"], Some(yaml))
}

/// A PEM PKCS#10 request for CN `cn` (and O `org`).
fn request_pem(cn: &str, org: Option<&str>) -> String {
    let groups: Vec<&str> = org.into_iter().collect();
    csr_pem(cn, &groups, &[]).expect("csr").0
}

fn csr_yaml(name: &str, request: &str, signer: &str, extra_spec: &str) -> String {
    test_support::csr_manifest(name, request.as_bytes(), signer, extra_spec)
}

#[test]
fn create_records_the_requester_and_validates_the_request() {
    let c = start();
    c.kubectl_ok(
        "admin",
        &[
            "create",
            "clusterrole",
            "csr-creator",
            "--verb=create,get,list",
            "--resource=certificatesigningrequests.certificates.k8s.io",
        ],
    );
    c.kubectl_ok(
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
        &request_pem("jane", None),
        "example.com/signer",
        forged,
    );
    let out = create(&c, "user-jane", &yaml);
    assert!(out.success(), "{}", out.stderr);
    let who = c.kubectl_ok(
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
    // Upstream kubectl prints the server's CSR table columns.
    let table = c.kubectl_ok("admin", &["get", "csr"]);
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        [
            "NAME",
            "AGE",
            "SIGNERNAME",
            "REQUESTOR",
            "REQUESTEDDURATION",
            "CONDITION"
        ],
        "{table}"
    );
    assert_eq!(lines[1][0], "jane-1", "{table}");
    assert_eq!(
        lines[1][2..],
        ["example.com/signer", "jane", "<none>", "Pending"],
        "{table}"
    );

    // A request that is not a PEM CSR, and a missing signerName: 422 naming the fields.
    let yaml = csr_yaml("bad-1", "not a csr", "example.com/signer", "");
    let err = create(&c, "admin", &yaml).stderr;
    assert!(
        err.contains("The CertificateSigningRequest \"bad-1\" is invalid"),
        "{err}"
    );
    assert!(
        err.contains("spec.request: Invalid value")
            && err.contains("PEM block type must be CERTIFICATE REQUEST"),
        "{err}"
    );
    let yaml = csr_yaml("bad-2", &request_pem("x", None), "\"\"", "");
    let err = create(&c, "admin", &yaml).stderr;
    assert!(err.contains("spec.signerName: Required value"), "{err}");
    let yaml = csr_yaml("bad-3", &request_pem("x", None), "no-slash", "")
        .replace("\"client auth\"]", "\"client auth\", \"flying\"]");
    let err = create(&c, "admin", &yaml).stderr;
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
        &request_pem("x", None),
        "example.com/s",
        "  expirationSeconds: 10\n",
    );
    let err = create(&c, "admin", &yaml).stderr;
    assert!(
        err.contains("may not specify a duration less than 600 seconds (10 minutes)"),
        "{err}"
    );

    // CertificateSubjectRestriction: no system:masters from kube-apiserver-client.
    let yaml = csr_yaml(
        "masters",
        &request_pem("evil", Some("system:masters")),
        "kubernetes.io/kube-apiserver-client",
        "",
    );
    let err = create(&c, "admin", &yaml).stderr;
    assert!(err.contains("use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed"), "{err}");
    let names = c.kubectl_ok("admin", &["get", "csr", "-o", "name"]);
    assert_eq!(
        names.trim(),
        "certificatesigningrequest.certificates.k8s.io/jane-1",
        "{names}"
    );
}

#[test]
fn kubectl_certificate_approve_and_deny_need_the_signer() {
    let c = start();
    for name in ["a1", "d1", "w1"] {
        let signer = if name == "w1" {
            "example.com/widgets"
        } else {
            "kubernetes.io/kube-apiserver-client"
        };
        let out = create(
            &c,
            "admin",
            &csr_yaml(name, &request_pem(name, None), signer, ""),
        );
        assert!(out.success(), "{}", out.stderr);
    }
    // Upstream kubectl reads the CSR and PUTs `/approval`.
    let out = c.kubectl_ok("admin", &["certificate", "approve", "a1"]);
    assert!(
        out.contains("certificatesigningrequest.certificates.k8s.io/a1 approved"),
        "{out}"
    );
    let cond = c.kubectl_ok("admin", &["get", "csr", "a1", "-o", "jsonpath={.status.conditions[0].type} {.status.conditions[0].reason} {.status.conditions[0].status}"]);
    assert_eq!(cond, "Approved KubectlApprove True");
    let table = c.kubectl_ok("admin", &["get", "csr", "a1", "d1", "--no-headers"]);
    let conditions: Vec<&str> = table
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    assert_eq!(conditions, ["Approved", "Pending"], "{table}");
    c.kubectl_ok("admin", &["certificate", "deny", "d1"]);
    let cond = c.kubectl_ok(
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
        !out.success()
            && out
                .stderr
                .contains("Approved and Denied conditions are mutually exclusive"),
        "{}",
        out.stderr
    );

    // jane may update /approval but holds no `approve` on the signer: 403.
    c.kubectl_ok("admin", &["create", "clusterrole", "csr-approver", "--verb=get,list,update", "--resource=certificatesigningrequests.certificates.k8s.io,certificatesigningrequests.certificates.k8s.io/approval"]);
    c.kubectl_ok(
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
    assert!(!out.success());
    assert!(
        out.stderr.contains("certificatesigningrequests.certificates.k8s.io \"w1\" is forbidden: user not permitted to approve requests with signerName \"example.com/widgets\""),
        "{}",
        out.stderr
    );
    // `approve` on the `example.com/*` signers suffices.
    let role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: widget-approver\nrules:\n- apiGroups: [certificates.k8s.io]\n  resources: [signers]\n  resourceNames: [\"example.com/*\"]\n  verbs: [approve]\n";
    assert!(create(&c, "admin", role).success());
    c.kubectl_ok(
        "admin",
        &[
            "create",
            "clusterrolebinding",
            "jane-widgets",
            "--clusterrole=widget-approver",
            "--user=jane",
        ],
    );
    let out = c.kubectl_ok("user-jane", &["certificate", "approve", "w1"]);
    assert!(out.contains("approved"), "{out}");
}

#[test]
fn status_certificate_needs_sign_and_is_set_once() {
    let c = start();
    assert!(create(
        &c,
        "admin",
        &csr_yaml("s1", &request_pem("s1", None), "example.com/widgets", "")
    )
    .success());
    let ca = std::fs::read(c.pki_file("ca.crt")).expect("ca");
    let patch = format!("{{\"status\":{{\"certificate\":\"{}\"}}}}", b64(&ca));
    c.kubectl_ok("admin", &["create", "clusterrole", "csr-status", "--verb=get,update,patch", "--resource=certificatesigningrequests.certificates.k8s.io,certificatesigningrequests.certificates.k8s.io/status"]);
    c.kubectl_ok(
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
        !out.success()
            && out.stderr.contains(
                "user not permitted to sign requests with signerName \"example.com/widgets\""
            ),
        "{}",
        out.stderr
    );
    // The main resource cannot carry a certificate in; /status can, once.
    c.kubectl_ok(
        "admin",
        &["patch", "csr", "s1", "--type=merge", "-p", &patch],
    );
    let cert = c.kubectl_ok(
        "admin",
        &["get", "csr", "s1", "-o", "jsonpath={.status.certificate}"],
    );
    assert!(cert.is_empty(), "main resource wrote status: {cert}");
    c.kubectl_ok(
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
    let cert = c.kubectl_ok(
        "admin",
        &["get", "csr", "s1", "-o", "jsonpath={.status.certificate}"],
    );
    assert_eq!(cert, b64(&ca));
    let row = c.kubectl_ok("admin", &["get", "csr", "s1", "--no-headers"]);
    assert_eq!(
        row.split_whitespace().last(),
        Some("Pending,Issued"),
        "{row}"
    );
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
        !out.success()
            && out
                .stderr
                .contains("updates may not modify existing certificate content"),
        "{}",
        out.stderr
    );
    let garbage = format!("{{\"status\":{{\"certificate\":\"{}\"}}}}", b64(b"junk"));
    assert!(create(
        &c,
        "admin",
        &csr_yaml("s2", &request_pem("s2", None), "example.com/widgets", "")
    )
    .success());
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
        !out.success() && out.stderr.contains("status.certificate: Invalid value"),
        "{}",
        out.stderr
    );
}
