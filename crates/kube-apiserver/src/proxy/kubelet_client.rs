//! How the apiserver reaches kubelets (upstream `KubeletClientConfig`): HTTPS to the
//! node's kubelet port, presenting `--kubelet-client-certificate`/`--kubelet-client-key`
//! and verifying the kubelet's serving certificate with `--kubelet-certificate-authority`
//! (not verified without it, as upstream). With no CA configured, a kubelet that does
//! not speak TLS is reached over plain HTTP (the classic kubelets of the RPM era).

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::options::Options;

/// A connection to a kubelet, TLS or plain.
pub trait KubeletIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> KubeletIo for T {}

/// The kubelet client settings in effect.
pub struct KubeletClientConfig {
    tls: Arc<ClientConfig>,
    /// Whether the kubelet's serving certificate is verified (a CA was given).
    verify: bool,
    /// `--kubelet-preferred-address-types`, in order.
    pub address_types: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--kubelet-client-certificate and --kubelet-client-key must be given together")]
    IncompletePair,
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("invalid --kubelet-certificate-authority {path:?}: {source}")]
    Ca {
        path: std::path::PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("kubelet client TLS config: {0}")]
    Config(#[source] rustls::Error),
    #[error("the kubelet client was already configured")]
    AlreadyConfigured,
}

static CONFIG: OnceLock<KubeletClientConfig> = OnceLock::new();

/// Sets the kubelet client from the flags; call once at start-up, before serving.
pub fn configure(opts: &Options) -> Result<(), Error> {
    let config = KubeletClientConfig::from_options(opts)?;
    tracing::info!(
        client_cert = opts.kubelet_client_certificate.is_some(),
        verify = config.verify,
        address_types = ?config.address_types,
        "kubelet client configured"
    );
    CONFIG.set(config).map_err(|_| Error::AlreadyConfigured)
}

/// The configured kubelet client; if [`configure`] was not called, the one this
/// process's own flags describe (or the defaults when they cannot be read).
pub fn config() -> &'static KubeletClientConfig {
    CONFIG.get_or_init(|| {
        let argv = kube_common::flags::normalize_args(std::env::args(), false);
        let from_flags = <Options as clap::Parser>::try_parse_from(argv)
            .ok()
            .and_then(|o| KubeletClientConfig::from_options(&o).ok());
        from_flags.unwrap_or_else(KubeletClientConfig::insecure_default)
    })
}

impl KubeletClientConfig {
    pub fn from_options(opts: &Options) -> Result<KubeletClientConfig, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(Error::Config)?;
        let (builder, verify) = match &opts.kubelet_certificate_authority {
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for cert in crate::tls::load_certs(path)? {
                    roots.add(cert).map_err(|source| Error::Ca {
                        path: path.clone(),
                        source,
                    })?;
                }
                (builder.with_root_certificates(roots), true)
            }
            None => (
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(SkipVerification(provider))),
                false,
            ),
        };
        let mut tls = match (&opts.kubelet_client_certificate, &opts.kubelet_client_key) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(crate::tls::load_certs(cert)?, crate::tls::load_key(key)?)
                .map_err(Error::Config)?,
            (None, None) => builder.with_no_client_auth(),
            _ => return Err(Error::IncompletePair),
        };
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(KubeletClientConfig {
            tls: Arc::new(tls),
            verify,
            address_types: opts.kubelet_preferred_address_types.clone(),
        })
    }

    fn insecure_default() -> KubeletClientConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SkipVerification(provider)))
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        KubeletClientConfig {
            tls: Arc::new(tls),
            verify: false,
            address_types: crate::options::DEFAULT_KUBELET_ADDRESS_TYPES
                .split(',')
                .map(str::to_string)
                .collect(),
        }
    }

    /// Connects to the kubelet at `addr` (`host:port`, IPv6 in brackets): TLS, or plain
    /// HTTP when the kubelet does not speak TLS and no CA pins it.
    pub async fn connect(&self, addr: &str) -> Result<Box<dyn KubeletIo>, String> {
        let host = addr
            .rsplit_once(':')
            .map_or(addr, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| format!("invalid kubelet host {host:?}: {e}"))?;
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        match tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
        {
            Ok(tls) => Ok(Box::new(tls)),
            Err(err) if !self.verify => {
                tracing::debug!(%addr, %err, "TLS to the kubelet failed; trying plain HTTP");
                let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
                Ok(Box::new(tcp))
            }
            Err(err) => Err(format!("TLS handshake with the kubelet at {addr}: {err}")),
        }
    }
}

/// No `--kubelet-certificate-authority`: any serving certificate is accepted, but
/// handshake signatures are still checked.
#[derive(Debug)]
struct SkipVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for SkipVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn opts(extra: &[&str]) -> Options {
        Options::try_parse_from(std::iter::once("kube-apiserver").chain(extra.iter().copied()))
            .expect("flags")
    }

    #[test]
    fn flags_build_the_kubelet_client() {
        let c = KubeletClientConfig::from_options(&opts(&[])).expect("default");
        assert_eq!(
            c.address_types,
            [
                "InternalIP",
                "ExternalIP",
                "Hostname",
                "InternalDNS",
                "ExternalDNS"
            ]
        );
        assert!(!c.verify);
        let c = KubeletClientConfig::from_options(&opts(&[
            "--kubelet-preferred-address-types=Hostname,InternalIP",
        ]))
        .expect("types");
        assert_eq!(c.address_types, ["Hostname", "InternalIP"]);
        assert!(matches!(
            KubeletClientConfig::from_options(&opts(&["--kubelet-client-certificate=/x"])),
            Err(Error::IncompletePair)
        ));
        assert!(KubeletClientConfig::from_options(&opts(&[
            "--kubelet-certificate-authority=/nonexistent"
        ]))
        .is_err());
    }

    #[tokio::test]
    async fn plain_kubelets_are_reached_without_a_ca() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        // A plain HTTP "kubelet": closes the TLS attempt, then answers on the second connection.
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut first, _) = listener.accept().await.expect("accept");
            let _ = first.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n").await;
            drop(first);
            let (mut second, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 4];
            let _ = second.read_exact(&mut buf).await;
            let _ = second.write_all(&buf).await;
        });
        let config = KubeletClientConfig::from_options(&opts(&[])).expect("config");
        let mut io = config.connect(&addr).await.expect("plain fallback");
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        io.write_all(b"ping").await.expect("write");
        let mut back = [0u8; 4];
        io.read_exact(&mut back).await.expect("read");
        assert_eq!(&back, b"ping");
    }
}
