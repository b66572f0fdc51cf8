//! Kubelet TLS bootstrap (upstream `pkg/kubelet/certificate/bootstrap`): when
//! `--kubeconfig` is missing or holds no valid client certificate, use the
//! `--bootstrap-kubeconfig` (a bootstrap token) to ask for one with a
//! `certificates.k8s.io/v1` CertificateSigningRequest (signer
//! `kubernetes.io/kube-apiserver-client-kubelet`, `CN=system:node:<name>`,
//! `O=system:nodes`), wait until it is issued, keep it with its key in
//! `--cert-dir/kubelet-client-current.pem` and write `--kubeconfig` pointing at it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kube::api::{Api, PostParams};
use kube::config::Kubeconfig;
use tracing::{info, warn};

/// The symlink to the newest issued client certificate + key.
pub const CURRENT_CLIENT_PEM: &str = "kubelet-client-current.pem";
pub const SIGNER_NAME: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// Usages of an ECDSA node client certificate request.
pub const USAGES: [&str; 2] = ["digital signature", "client auth"];
/// How long to wait for the certificate to be issued (upstream: one hour).
const ISSUE_TIMEOUT: Duration = Duration::from_secs(3600);
const POLL_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the bootstrap kubeconfig {path}: {source}")]
    BootstrapKubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("the bootstrap kubeconfig {0} has no current cluster")]
    NoCluster(PathBuf),
    #[error("building the bootstrap client: {0}")]
    Client(String),
    #[error("generating the key and certificate request: {0}")]
    Generate(#[source] rcgen::Error),
    #[error("creating the CertificateSigningRequest: {0}")]
    Create(#[source] kube::Error),
    #[error("certificate signing request {name} is {condition}: {reason} {message}")]
    Refused {
        name: String,
        condition: String,
        reason: String,
        message: String,
    },
    #[error("timed out waiting for certificate signing request {0} to be issued")]
    Timeout(String),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] crate::tls::Error),
    #[error("serializing the kubeconfig: {0}")]
    Serialize(#[source] serde_norway::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Makes sure `kubeconfig` holds a valid client certificate, bootstrapping one if not.
pub async fn ensure_client_certificate(
    bootstrap: &Path,
    kubeconfig: &Path,
    cert_dir: &Path,
    node_name: &str,
) -> Result<()> {
    if kubeconfig_has_valid_certificate(kubeconfig) {
        info!(kubeconfig = %kubeconfig.display(), "kubeconfig has a valid client certificate; no bootstrap");
        return Ok(());
    }
    let boot = Kubeconfig::read_from(bootstrap).map_err(|source| Error::BootstrapKubeconfig {
        path: bootstrap.into(),
        source,
    })?;
    let current = cert_dir.join(CURRENT_CLIENT_PEM);
    if pem_has_valid_certificate(&current) {
        info!(cert = %current.display(), "reusing the current client certificate");
    } else {
        info!(bootstrap = %bootstrap.display(), node = node_name, "requesting a client certificate (TLS bootstrap)");
        let config = kube_common::client::build_config(
            None,
            Some(bootstrap),
            &format!("kubelet/{}", crate::node::KUBELET_VERSION),
        )
        .await
        .map_err(|e| Error::Client(format!("{e:#}")))?;
        let client = kube::Client::try_from(config).map_err(|e| Error::Client(e.to_string()))?;
        let pem = request_client_certificate(&client, node_name, ISSUE_TIMEOUT).await?;
        store_client_pem(cert_dir, &pem)?;
        info!(cert = %current.display(), "client certificate issued");
    }
    write_kubeconfig(kubeconfig, &boot, bootstrap, &current)
}

/// Whether `path` is a kubeconfig whose current user has a client certificate that
/// is valid now (upstream `isClientConfigStillValid`).
pub fn kubeconfig_has_valid_certificate(path: &Path) -> bool {
    let Ok(kc) = Kubeconfig::read_from(path) else {
        return false;
    };
    let user = kc
        .current_context
        .as_deref()
        .and_then(|name| kc.contexts.iter().find(|c| c.name == name))
        .and_then(|c| c.context.as_ref())
        .and_then(|c| c.user.clone());
    let Some(auth) = kc
        .auth_infos
        .iter()
        .find(|a| Some(&a.name) == user.as_ref())
        .and_then(|a| a.auth_info.as_ref())
    else {
        return false;
    };
    let pem = match (&auth.client_certificate_data, &auth.client_certificate) {
        (Some(data), _) => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .ok()
        }
        (None, Some(file)) => std::fs::read(file).ok(),
        (None, None) => None,
    };
    pem.is_some_and(|pem| certificates_valid_now(&pem))
}

fn pem_has_valid_certificate(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|pem| certificates_valid_now(&pem))
}

/// At least one certificate in `pem`, and all of them valid now.
fn certificates_valid_now(pem: &[u8]) -> bool {
    let certs: Vec<_> = rustls_pemfile::certs(&mut &pem[..])
        .filter_map(|c| c.ok())
        .collect();
    !certs.is_empty()
        && certs.iter().all(|der| {
            x509_parser::parse_x509_certificate(der.as_ref())
                .is_ok_and(|(_, cert)| cert.validity().is_valid())
        })
}

/// Creates the CSR and waits until it carries a certificate; returns certificate + key PEM.
pub async fn request_client_certificate(
    client: &kube::Client,
    node_name: &str,
    timeout: Duration,
) -> Result<String> {
    let key = rcgen::KeyPair::generate().map_err(Error::Generate)?;
    let mut params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(Error::Generate)?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("system:node:{node_name}"),
    );
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:nodes");
    let request = params
        .serialize_request(&key)
        .map_err(Error::Generate)?
        .pem()
        .map_err(Error::Generate)?;
    let csr = CertificateSigningRequest {
        metadata: ObjectMeta {
            generate_name: Some("node-csr-".into()),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(request.into_bytes()),
            signer_name: SIGNER_NAME.into(),
            usages: Some(USAGES.iter().map(|u| u.to_string()).collect()),
            ..Default::default()
        },
        status: None,
    };
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let deadline = Instant::now() + timeout;
    // The apiserver may not be up yet: retry the create until the deadline.
    let created = loop {
        match api.create(&PostParams::default(), &csr).await {
            Ok(created) => break created,
            Err(err) if Instant::now() < deadline => {
                warn!(%err, "creating the certificate signing request; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(err) => return Err(Error::Create(err)),
        }
    };
    let name = created.metadata.name.unwrap_or_default();
    info!(csr = %name, "waiting for the certificate signing request to be approved and issued");
    loop {
        match api.get(&name).await {
            Ok(csr) => {
                let status = csr.status.unwrap_or_default();
                for c in status.conditions.iter().flatten() {
                    if (c.type_ == "Denied" || c.type_ == "Failed") && c.status == "True" {
                        return Err(Error::Refused {
                            name,
                            condition: c.type_.to_lowercase(),
                            reason: c.reason.clone().unwrap_or_default(),
                            message: c.message.clone().unwrap_or_default(),
                        });
                    }
                }
                if let Some(cert) = status.certificate.filter(|c| !c.0.is_empty()) {
                    let mut pem = String::from_utf8_lossy(&cert.0).into_owned();
                    if !pem.ends_with('\n') {
                        pem.push('\n');
                    }
                    pem.push_str(&key.serialize_pem());
                    return Ok(pem);
                }
            }
            Err(err) => warn!(%err, csr = %name, "reading the certificate signing request"),
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout(name));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Writes `kubelet-client-<time>.pem` and points `kubelet-client-current.pem` at it.
fn store_client_pem(cert_dir: &Path, pem: &str) -> Result<()> {
    let stamp = chrono::Utc::now().format("%Y-%m-%d-%H-%M-%S");
    let file = format!("kubelet-client-{stamp}.pem");
    crate::tls::write_file(&cert_dir.join(&file), pem.as_bytes(), 0o600)?;
    let link = cert_dir.join(CURRENT_CLIENT_PEM);
    let tmp = cert_dir.join(format!("{CURRENT_CLIENT_PEM}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let io = |source| Error::Write {
        path: link.clone(),
        source,
    };
    std::os::unix::fs::symlink(&file, &tmp).map_err(io)?;
    std::fs::rename(&tmp, &link).map_err(io)
}

/// The kubeconfig upstream writes after a bootstrap: the bootstrap kubeconfig's
/// cluster, and the current client certificate as user `default-auth`.
fn write_kubeconfig(
    path: &Path,
    boot: &Kubeconfig,
    boot_path: &Path,
    current: &Path,
) -> Result<()> {
    let cluster = boot
        .current_context
        .as_deref()
        .and_then(|name| boot.contexts.iter().find(|c| c.name == name))
        .and_then(|c| c.context.as_ref())
        .and_then(|ctx| boot.clusters.iter().find(|c| c.name == ctx.cluster))
        .or(boot.clusters.first())
        .and_then(|c| c.cluster.clone())
        .ok_or_else(|| Error::NoCluster(boot_path.into()))?;
    let mut cluster_yaml = serde_json::Map::new();
    cluster_yaml.insert(
        "server".into(),
        cluster.server.clone().unwrap_or_default().into(),
    );
    if let Some(data) = &cluster.certificate_authority_data {
        cluster_yaml.insert("certificate-authority-data".into(), data.clone().into());
    } else if let Some(file) = &cluster.certificate_authority {
        cluster_yaml.insert("certificate-authority".into(), file.clone().into());
    }
    if cluster.insecure_skip_tls_verify == Some(true) {
        cluster_yaml.insert("insecure-skip-tls-verify".into(), true.into());
    }
    let pem = current.display().to_string();
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "default-cluster", "cluster": cluster_yaml}],
        "users": [{"name": "default-auth", "user": {"client-certificate": pem, "client-key": pem}}],
        "contexts": [{"name": "default-context", "context": {"cluster": "default-cluster", "namespace": "default", "user": "default-auth"}}],
        "current-context": "default-context",
    });
    let text = serde_norway::to_string(&doc).map_err(Error::Serialize)?;
    crate::tls::write_file(path, text.as_bytes(), 0o600)?;
    info!(kubeconfig = %path.display(), "wrote the kubeconfig with the bootstrapped client certificate");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(days_valid: i64) -> String {
        use chrono::Datelike;
        let date = |days: i64| {
            let d = chrono::Utc::now().date_naive() + chrono::Duration::days(days);
            rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8)
        };
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.not_before = date(-10);
        params.not_after = date(days_valid);
        let key = rcgen::KeyPair::generate().expect("key");
        format!(
            "{}{}",
            params.self_signed(&key).expect("cert").pem(),
            key.serialize_pem()
        )
    }

    #[test]
    fn validity_of_kubeconfigs_and_pems() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(!kubeconfig_has_valid_certificate(
            &dir.path().join("missing")
        ));
        assert!(certificates_valid_now(self_signed(30).as_bytes()));
        assert!(!certificates_valid_now(self_signed(-2).as_bytes()));
        assert!(!certificates_valid_now(b"garbage"));

        store_client_pem(dir.path(), &self_signed(30)).expect("store");
        let current = dir.path().join(CURRENT_CLIENT_PEM);
        assert!(pem_has_valid_certificate(&current));
        let boot_path = dir.path().join("bootstrap.conf");
        std::fs::write(
            &boot_path,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: abcdef.0123456789abcdef\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n",
        )
        .expect("write");
        let boot = Kubeconfig::read_from(&boot_path).expect("read");
        assert!(
            !kubeconfig_has_valid_certificate(&boot_path),
            "a token is not a certificate"
        );
        let kubeconfig = dir.path().join("kubelet.conf");
        write_kubeconfig(&kubeconfig, &boot, &boot_path, &current).expect("kubeconfig");
        assert!(kubeconfig_has_valid_certificate(&kubeconfig));
        let written = Kubeconfig::read_from(&kubeconfig).expect("read back");
        assert_eq!(
            written.clusters[0]
                .cluster
                .as_ref()
                .and_then(|c| c.server.clone())
                .as_deref(),
            Some("https://127.0.0.1:6443")
        );

        store_client_pem(dir.path(), &self_signed(-2)).expect("store expired");
        assert!(!kubeconfig_has_valid_certificate(&kubeconfig));
    }
}
