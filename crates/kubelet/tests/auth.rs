//! The kubelet's secure port, as root with real etcd + our apiserver + containerd:
//! TLS on --port, authentication by client certificate / bearer token (TokenReview)
//! / anonymous, authorization by SubjectAccessReview on nodes/<subresource>; the
//! apiserver reaching it with its kubelet client certificate (`kubectl logs/exec`);
//! and TLS bootstrap of the node's client certificate through a CSR.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use common::cluster::{busybox, phase, pod, wait_pod};
use common::{apiserver_binary, wait_for, Containerd, Process};
use http_body_util::BodyExt;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

/// `kube-apiserver gen-certs` (what scripts/gen-certs.sh runs) into `dir`.
fn gen_certs(dir: &Path, node: &str) {
    let out = Command::new(apiserver_binary())
        .args(["gen-certs", "--dir"])
        .arg(dir)
        .args(["--node", node, "--user", "alice"])
        .output()
        .expect("gen-certs");
    assert!(out.status.success(), "gen-certs: {}", String::from_utf8_lossy(&out.stderr));
}

fn pki(dir: &Path, file: &str) -> String {
    dir.join("pki").join(file).display().to_string()
}

/// A kubeconfig written by gen-certs, pointed at the test apiserver's secure port.
fn retarget(conf: &Path, secure_port: u16) -> PathBuf {
    let text = std::fs::read_to_string(conf).expect("kubeconfig").replace("https://127.0.0.1:6443", &format!("https://127.0.0.1:{secure_port}"));
    std::fs::write(conf, text).expect("write kubeconfig");
    conf.to_path_buf()
}

/// The apiserver as a secured cluster runs it: TLS from the cluster CA, client
/// certificates, Node+RBAC, bootstrap tokens, and its kubelet client certificate.
fn secure_apiserver(etcd: &test_support::Etcd, dir: &Path) -> test_support::ApiServer {
    let args = [
        format!("--client-ca-file={}", pki(dir, "ca.crt")),
        format!("--tls-cert-file={}", pki(dir, "apiserver.crt")),
        format!("--tls-private-key-file={}", pki(dir, "apiserver.key")),
        format!("--kubelet-client-certificate={}", pki(dir, "apiserver-kubelet-client.crt")),
        format!("--kubelet-client-key={}", pki(dir, "apiserver-kubelet-client.key")),
        format!("--service-account-key-file={}", pki(dir, "sa.pub")),
        format!("--service-account-signing-key-file={}", pki(dir, "sa.key")),
        "--service-account-issuer=https://kubernetes.default.svc".to_string(),
        "--authorization-mode=Node,RBAC".to_string(),
        "--enable-bootstrap-token-auth".to_string(),
        "--disable-admission-plugins=ServiceAccount".to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    test_support::ApiServer::start(&apiserver_binary(), etcd, &args).expect("apiserver")
}

struct Kubelet {
    process: Process,
    port: u16,
}

fn start_kubelet(name: &str, containerd: &Containerd, dir: &Path, node: &str, extra: &[String]) -> Kubelet {
    let port = test_support::free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_kubelet"));
    command
        .arg(format!("--hostname-override={node}"))
        .arg(format!("--container-runtime-endpoint={}", containerd.endpoint()))
        .arg("--address=127.0.0.1")
        .arg("--node-ip=127.0.0.1")
        .arg(format!("--port={port}"))
        .arg(format!("--root-dir={}", dir.join("root").display()))
        .arg(format!("--pod-logs-dir={}", dir.join("logs").display()))
        .arg(format!("--cert-dir={}", dir.join("kubelet-pki").display()))
        .arg("--node-status-update-frequency=2s")
        .arg("--v=2")
        .args(extra);
    let process = Process::spawn(name, command, dir.join(format!("{name}.log"))).expect("kubelet");
    Kubelet { process, port }
}

/// A TLS client identity: certificate chain + key, PEM.
struct Identity {
    cert: PathBuf,
    key: PathBuf,
}

/// One HTTPS request to the kubelet (serving certificate not verified, as the
/// apiserver without --kubelet-certificate-authority); status and body.
async fn kubelet_https(port: u16, method: &str, path: &str, identity: Option<&Identity>, token: Option<&str>) -> (u16, String) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)));
    let config = match identity {
        Some(id) => {
            let certs = rustls_pemfile::certs(&mut std::fs::read(&id.cert).expect("cert").as_slice()).collect::<Result<Vec<_>, _>>().expect("certs");
            let key = rustls_pemfile::private_key(&mut std::fs::read(&id.key).expect("key").as_slice()).expect("key pem").expect("a key");
            builder.with_client_auth_cert(certs, key).expect("client auth")
        }
        None => builder.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("TLS handshake");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.expect("http handshake");
    tokio::spawn(conn);
    let mut req = hyper::Request::builder().method(method).uri(path).header("host", format!("127.0.0.1:{port}"));
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let resp = sender.send_request(req.body(http_body_util::Empty::<hyper::body::Bytes>::new()).expect("request")).await.expect("response");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[derive(Debug)]
struct AnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

async fn wait_node_ready(client: &kube::Client, node: &str) -> Node {
    let nodes: Api<Node> = Api::all(client.clone());
    wait_for(Duration::from_secs(60), "node Ready", || async {
        let node = nodes.get_opt(node).await.ok().flatten()?;
        let ready = node.status.as_ref()?.conditions.as_ref()?.iter().any(|c| c.type_ == "Ready" && c.status == "True");
        ready.then_some(node)
    })
    .await
}

#[tokio::test]
async fn secure_port_authenticates_authorizes_and_serves_the_apiserver() {
    if !common::can_run_containers() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let node = format!("secure-{}", std::process::id());
    gen_certs(dir.path(), &node);
    let etcd = test_support::Etcd::start().expect("etcd");
    let apiserver = secure_apiserver(&etcd, dir.path());
    let containerd = Containerd::start().expect("containerd");
    let admin = kube_common::client::build_client(Some(&apiserver.url()), None, "auth-test").await.expect("client");
    // The kubelet's own identity: its node client certificate (Node authorizer).
    let kubeconfig = retarget(&dir.path().join(format!("kubelet-{node}.conf")), apiserver.secure_port());
    let read_only_port = test_support::free_port();
    let kubelet = start_kubelet(
        "kubelet",
        &containerd,
        dir.path(),
        &node,
        &[
            format!("--kubeconfig={}", kubeconfig.display()),
            format!("--client-ca-file={}", pki(dir.path(), "ca.crt")),
            "--anonymous-auth=false".into(),
            "--authentication-token-webhook".into(),
            "--authorization-mode=Webhook".into(),
            format!("--read-only-port={read_only_port}"),
        ],
    );
    wait_node_ready(&admin, &node).await;
    let port = kubelet.port;

    // The read-only port: plain HTTP, no authentication, no debugging handlers.
    let read_only = |path: &str| test_support::http_get(&format!("http://127.0.0.1:{read_only_port}{path}")).expect("read-only GET");
    assert_eq!(read_only("/healthz").status, 200);
    assert!(read_only("/pods").body.contains("PodList"));
    assert_eq!(read_only("/containerLogs/default/x/y").status, 404);

    // No credentials: 401; plain HTTP is refused on the secured port.
    assert_eq!(kubelet_https(port, "GET", "/pods", None, None).await, (401, "Unauthorized".to_string()));
    let plain = test_support::http_get(&format!("http://127.0.0.1:{port}/pods")).expect("plain GET");
    assert_eq!((plain.status, plain.body.as_str()), (400, "Client sent an HTTP request to an HTTPS server.\n"));
    // A client certificate of a user without nodes/* permissions: 403 as upstream.
    let alice = Identity { cert: dir.path().join("pki/user-alice.crt"), key: dir.path().join("pki/user-alice.key") };
    assert_eq!(
        kubelet_https(port, "GET", "/pods", Some(&alice), None).await,
        (403, "Forbidden (user=alice, verb=get, resource=nodes, subresource(s)=[proxy])\n".to_string())
    );
    let (code, body) = kubelet_https(port, "GET", "/stats/summary", Some(&alice), None).await;
    assert_eq!((code, body.contains("subresource(s)=[stats]")), (403, true), "{body}");
    let (code, body) = kubelet_https(port, "POST", "/exec/default/x/y?command=true", Some(&alice), None).await;
    assert_eq!((code, body.contains("verb=create")), (403, true), "{body}");
    // The admin (system:masters): allowed.
    let root = Identity { cert: dir.path().join("pki/admin.crt"), key: dir.path().join("pki/admin.key") };
    let (code, body) = kubelet_https(port, "GET", "/pods", Some(&root), None).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"kind\":\"PodList\""), "{body}");
    assert_eq!(kubelet_https(port, "GET", "/healthz", Some(&root), None).await.0, 200);

    // A ServiceAccount token, bound to nodes/proxy only: TokenReview + SubjectAccessReview.
    let sa_setup = concat!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: node-reader, namespace: default}\n---\n",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: node-proxy}\n",
        "rules:\n- apiGroups: [\"\"]\n  resources: [nodes/proxy]\n  verbs: [get]\n---\n",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: node-reader}\n",
        "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: node-proxy}\n",
        "subjects:\n- {kind: ServiceAccount, name: node-reader, namespace: default}\n",
    );
    test_support::kubectl_stdin(&apiserver, &["apply", "-f", "-"], sa_setup).assert_success();
    let token = test_support::kubectl(&apiserver, &["create", "token", "node-reader"]).assert_success().stdout.trim().to_string();
    let (code, body) = kubelet_https(port, "GET", "/pods", None, Some(&token)).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = kubelet_https(port, "GET", "/stats/summary", None, Some(&token)).await;
    assert_eq!(
        (code, body.as_str()),
        (403, "Forbidden (user=system:serviceaccount:default:node-reader, verb=get, resource=nodes, subresource(s)=[stats])\n")
    );
    let mut tampered = token.clone();
    tampered.pop();
    assert_eq!(kubelet_https(port, "GET", "/pods", None, Some(&tampered)).await.0, 401);

    // The apiserver reaches the kubelet over TLS with its kubelet client certificate.
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    pods.create(&PostParams::default(), &pod("talker", &node, "Always", json!([busybox("main", "echo hello-tls; exec sleep 3600")])))
        .await
        .expect("create pod");
    wait_pod(&pods, "talker", "talker Running", |p| phase(p) == "Running").await;
    let logs = wait_for(Duration::from_secs(20), "logs through the apiserver", || async {
        let out = test_support::kubectl(&apiserver, &["logs", "talker"]);
        (out.success() && out.stdout == "hello-tls\n").then_some(out.stdout)
    })
    .await;
    assert_eq!(logs, "hello-tls\n");
    assert_eq!(test_support::kubectl(&apiserver, &["exec", "talker", "--", "echo", "via-tls"]).assert_success().stdout, "via-tls\n");
    assert!(!kubelet.process.log().contains("panicked at"), "{}", kubelet.process.log());
}

/// Signs node client CSRs as the controller-manager's csrapproving + csrsigning
/// controllers will (approve `kubernetes.io/kube-apiserver-client-kubelet`, issue from
/// the cluster CA). Until those controllers land this test plays their part; to
/// switch, start kube-controller-manager with `--cluster-signing-cert-file` /
/// `--cluster-signing-key-file` instead of spawning this.
async fn sign_node_client_csrs(client: kube::Client, ca_cert_pem: String, ca_key_pem: String) {
    let api: Api<CertificateSigningRequest> = Api::all(client);
    let Ok(ca_key) = rcgen::KeyPair::from_pem(&ca_key_pem) else { return };
    let Ok(issuer) = rcgen::Issuer::from_ca_cert_pem(&ca_cert_pem, ca_key) else { return };
    loop {
        for csr in api.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default() {
            let name = csr.metadata.name.clone().unwrap_or_default();
            let issued = csr.status.as_ref().and_then(|s| s.certificate.as_ref()).is_some_and(|c| !c.0.is_empty());
            if issued || csr.spec.signer_name != "kubernetes.io/kube-apiserver-client-kubelet" {
                continue;
            }
            let Ok(request) = rcgen::CertificateSigningRequestParams::from_pem(&String::from_utf8_lossy(&csr.spec.request.0)) else { continue };
            let Ok(cert) = request.signed_by(&issuer) else { continue };
            let approved = json!({"status": {"conditions": [{"type": "Approved", "status": "True", "reason": "AutoApproved", "message": "test signer"}]}});
            let _ = api.patch_subresource("approval", &name, &PatchParams::default(), &Patch::Merge(&approved)).await;
            let mut status = approved.clone();
            status["status"]["certificate"] = json!(base64::engine::general_purpose::STANDARD.encode(cert.pem()));
            let _ = api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn tls_bootstrap_gets_a_node_client_certificate_and_registers_with_it() {
    if !common::can_run_containers() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let node = format!("bootstrap-{}", std::process::id());
    gen_certs(dir.path(), "unused");
    let etcd = test_support::Etcd::start().expect("etcd");
    let apiserver = secure_apiserver(&etcd, dir.path());
    let containerd = Containerd::start().expect("containerd");
    let admin = kube_common::client::build_client(Some(&apiserver.url()), None, "bootstrap-test").await.expect("client");

    // A bootstrap token, as `kubeadm token create` stores it.
    let secret = concat!(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: bootstrap-token-abcdef, namespace: kube-system}\n",
        "type: bootstrap.kubernetes.io/token\nstringData:\n",
        "  token-id: abcdef\n  token-secret: 0123456789abcdef\n",
        "  usage-bootstrap-authentication: \"true\"\n  usage-bootstrap-signing: \"true\"\n",
        "  auth-extra-groups: system:bootstrappers:kubeadm:default-node-token\n",
    );
    test_support::kubectl_stdin(&apiserver, &["apply", "-f", "-"], secret).assert_success();
    let ca_pem = std::fs::read_to_string(dir.path().join("pki/ca.crt")).expect("ca");
    let bootstrap = dir.path().join("bootstrap-kubelet.conf");
    std::fs::write(
        &bootstrap,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority-data: {}\n\
users:\n- name: tls-bootstrap-token-user\n  user:\n    token: abcdef.0123456789abcdef\ncontexts:\n- name: b\n  context: {{cluster: k, user: tls-bootstrap-token-user}}\ncurrent-context: b\n",
            apiserver.secure_port(),
            base64::engine::general_purpose::STANDARD.encode(&ca_pem)
        ),
    )
    .expect("bootstrap kubeconfig");
    let ca_key = std::fs::read_to_string(dir.path().join("pki/ca.key")).expect("ca key");
    let signer = tokio::spawn(sign_node_client_csrs(admin.clone(), ca_pem, ca_key));

    let kubeconfig = dir.path().join("kubelet.conf");
    let kubelet = start_kubelet(
        "kubelet-bootstrap",
        &containerd,
        dir.path(),
        &node,
        &[format!("--bootstrap-kubeconfig={}", bootstrap.display()), format!("--kubeconfig={}", kubeconfig.display())],
    );
    // The node registers (with the issued certificate: the bootstrap token may only create CSRs).
    wait_node_ready(&admin, &node).await;
    signer.abort();

    let current = dir.path().join("kubelet-pki/kubelet-client-current.pem");
    let pem = std::fs::read(&current).expect("kubelet-client-current.pem");
    let der = rustls_pemfile::certs(&mut pem.as_slice()).next().expect("a certificate").expect("pem");
    let user = kubelet::auth::user_from_certificate(&[der]).expect("user");
    assert_eq!((user.name, user.groups), (format!("system:node:{node}"), vec!["system:nodes".to_string()]));
    let written = std::fs::read_to_string(&kubeconfig).expect("kubeconfig written");
    assert!(written.contains(&current.display().to_string()), "{written}");
    let csrs = Api::<CertificateSigningRequest>::all(admin.clone()).list(&ListParams::default()).await.expect("csrs").items;
    assert_eq!(csrs.len(), 1, "{csrs:?}");
    let spec = &csrs[0].spec;
    assert_eq!(spec.usages.clone().unwrap_or_default(), ["digital signature", "client auth"]);
    assert!(csrs[0].metadata.name.as_deref().is_some_and(|n| n.starts_with("node-csr-")));
    assert!(!kubelet.process.log().contains("panicked at"), "{}", kubelet.process.log());

    // A restart keeps the certificate: no second CSR.
    drop(kubelet);
    let again = start_kubelet(
        "kubelet-bootstrap-2",
        &containerd,
        dir.path(),
        &node,
        &[format!("--bootstrap-kubeconfig={}", bootstrap.display()), format!("--kubeconfig={}", kubeconfig.display())],
    );
    wait_for(Duration::from_secs(30), "restarted kubelet serving", || async {
        again.process.log().contains("no bootstrap").then_some(())
    })
    .await;
    let csrs = Api::<CertificateSigningRequest>::all(admin).list(&ListParams::default()).await.expect("csrs").items;
    assert_eq!(csrs.len(), 1);
}
