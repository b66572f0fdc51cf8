//! The secure port: its TLS config (the given `--tls-cert-file` pair, else a
//! self-signed `kubelet.crt`/`kubelet.key` in `--cert-dir`, as upstream), optional
//! client-certificate verification against `--client-ca-file`, and the accept loop.
//! A connection whose first byte is not a TLS handshake is plain HTTP: served only
//! while the kubelet lets everyone in anyway (anonymous + AlwaysAllow, the classic
//! setup), otherwise answered as Go's HTTPS servers answer it.

use std::io::BufReader;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;
use tracing::debug;

use crate::auth::PeerCertificates;

/// File names of the self-signed serving pair in `--cert-dir`.
pub const SELF_SIGNED_CERT_FILE: &str = "kubelet.crt";
pub const SELF_SIGNED_KEY_FILE: &str = "kubelet.key";

/// The first byte of a TLS record carrying a handshake.
const TLS_HANDSHAKE: u8 = 0x16;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// What Go's `net/http` answers to plain HTTP on a TLS port.
const PLAIN_ON_TLS_PORT: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// `--tls-cert-file`/`--tls-private-key-file` (both or neither) and `--cert-dir`.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub pair: Option<(PathBuf, PathBuf)>,
    pub cert_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no PEM certificate in {0}")]
    NoCertificate(PathBuf),
    #[error("no PEM private key in {0}")]
    NoPrivateKey(PathBuf),
    #[error("invalid client CA in {path}: {source}")]
    ClientCa {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("building the client certificate verifier: {0}")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
    #[error("generating the self-signed serving certificate: {0}")]
    Generate(#[source] rcgen::Error),
    #[error("TLS config: {0}")]
    Config(#[source] rustls::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// All PEM certificates in `path`.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).map_err(|source| Error::Read {
        path: path.into(),
        source,
    })?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(pem.as_slice()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| Error::Read {
            path: path.into(),
            source,
        })?;
    if certs.is_empty() {
        return Err(Error::NoCertificate(path.into()));
    }
    Ok(certs)
}

/// The first PEM private key in `path`.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let pem = std::fs::read(path).map_err(|source| Error::Read {
        path: path.into(),
        source,
    })?;
    rustls_pemfile::private_key(&mut BufReader::new(pem.as_slice()))
        .map_err(|source| Error::Read {
            path: path.into(),
            source,
        })?
        .ok_or_else(|| Error::NoPrivateKey(path.into()))
}

/// Writes `contents` with `mode`, replacing the file atomically.
pub fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|source| Error::Write {
        path: path.into(),
        source,
    })
}

/// The self-signed serving pair in `cert_dir`, generated once and reused.
fn self_signed_pair(cert_dir: &Path, node_name: &str, node_ip: &str) -> Result<(PathBuf, PathBuf)> {
    let cert_path = cert_dir.join(SELF_SIGNED_CERT_FILE);
    let key_path = cert_dir.join(SELF_SIGNED_KEY_FILE);
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    let mut names = vec![
        node_name.to_string(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
    ];
    if !node_ip.is_empty() && !names.iter().any(|n| n == node_ip) {
        names.push(node_ip.to_string());
    }
    names.dedup();
    let mut params = rcgen::CertificateParams::new(names).map_err(Error::Generate)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{node_name}@{now}"));
    // Valid from yesterday for a year, as upstream's self-signed serving pair.
    let date_after_days = |days: i64| {
        use chrono::Datelike;
        let date = chrono::Utc::now().date_naive() + chrono::Duration::days(days);
        rcgen::date_time_ymd(date.year(), date.month() as u8, date.day() as u8)
    };
    params.not_before = date_after_days(-1);
    params.not_after = date_after_days(365);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    let key = rcgen::KeyPair::generate().map_err(Error::Generate)?;
    let cert = params.self_signed(&key).map_err(Error::Generate)?;
    write_file(&cert_path, cert.pem().as_bytes(), 0o644)?;
    write_file(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    tracing::info!(cert = %cert_path.display(), "generated a self-signed serving certificate");
    Ok((cert_path, key_path))
}

/// The secure port's TLS configuration.
pub fn server_config(
    settings: &TlsSettings,
    client_ca: Option<&Path>,
    node_name: &str,
    node_ip: &str,
) -> Result<Arc<ServerConfig>> {
    let (cert_path, key_path) = match &settings.pair {
        Some(pair) => pair.clone(),
        None => self_signed_pair(&settings.cert_dir, node_name, node_ip)?,
    };
    let certs = load_certs(&cert_path)?;
    let key = load_key(&key_path)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(Error::Config)?;
    let builder = match client_ca {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in load_certs(path)? {
                roots.add(cert).map_err(|source| Error::ClientCa {
                    path: path.into(),
                    source,
                })?;
            }
            // Requested and verified when sent; callers without one go on to
            // bearer-token and anonymous authentication.
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(Error::Verifier)?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(Error::Config)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `app` on `listener` until `shutdown`: TLS connections carry their peer
/// certificates into each request; plain HTTP is served when `plain_http` is set.
pub async fn serve(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    plain_http: bool,
    app: Router,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(err) => {
                    debug!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            if let Err(err) = serve_connection(tcp, remote, acceptor, plain_http, app).await {
                debug!(%remote, %err, "connection ended");
            }
        });
    }
}

async fn serve_connection(
    mut tcp: TcpStream,
    remote: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    plain_http: bool,
    app: Router,
) -> std::io::Result<()> {
    let _ = tcp.set_nodelay(true);
    let mut first = [0u8; 1];
    let n = tokio::time::timeout(HANDSHAKE_TIMEOUT, tcp.peek(&mut first))
        .await
        .map_err(|_| std::io::ErrorKind::TimedOut)??;
    if n == 0 {
        return Ok(());
    }
    if first[0] != TLS_HANDSHAKE {
        if !plain_http {
            tcp.write_all(PLAIN_ON_TLS_PORT).await?;
            return tcp.shutdown().await;
        }
        return http(TokioIo::new(tcp), PeerCertificates::default(), app).await;
    }
    let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
        .await
        .map_err(|_| std::io::ErrorKind::TimedOut)??;
    let peer: Arc<[CertificateDer<'static>]> = tls
        .get_ref()
        .1
        .peer_certificates()
        .map(Arc::from)
        .unwrap_or_else(|| Arc::from(Vec::new()));
    debug!(%remote, client_cert = !peer.is_empty(), "TLS connection");
    http(TokioIo::new(tls), PeerCertificates(peer), app).await
}

async fn http<I>(io: TokioIo<I>, peer: PeerCertificates, app: Router) -> std::io::Result<()>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(peer.clone());
        app.clone().oneshot(req.map(axum::body::Body::new))
    });
    hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection_with_upgrades(io, service)
        .await
        .map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_pair_is_generated_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = TlsSettings {
            pair: None,
            cert_dir: dir.path().join("pki"),
        };
        server_config(&settings, None, "node-a", "10.0.0.5").expect("config");
        let first = std::fs::read(dir.path().join("pki/kubelet.crt")).expect("cert");
        server_config(&settings, None, "node-a", "10.0.0.5").expect("config again");
        assert_eq!(
            std::fs::read(dir.path().join("pki/kubelet.crt")).expect("cert"),
            first
        );
        let der = load_certs(&dir.path().join("pki/kubelet.crt"))
            .expect("certs")
            .remove(0);
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).expect("parse");
        let sans = format!(
            "{:?}",
            cert.subject_alternative_name()
                .expect("ext")
                .expect("sans")
                .value
                .general_names
        );
        assert!(
            sans.contains("node-a") && sans.contains("localhost"),
            "{sans}"
        );
        assert!(matches!(
            load_key(&dir.path().join("missing")),
            Err(Error::Read { .. })
        ));
    }
}
