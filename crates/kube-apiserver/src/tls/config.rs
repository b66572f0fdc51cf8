//! The secure port's TLS configuration: the serving pair (given by flags or a
//! self-signed one in `--cert-dir`) and client-certificate verification.

use std::{
    io::BufReader,
    net::IpAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use rustls::{
    pki_types::{CertificateDer, PrivateKeyDer},
    server::WebPkiClientVerifier,
    RootCertStore, ServerConfig,
};

use crate::options::Options;

/// File names of the self-signed serving pair in `--cert-dir` (upstream's pair name "apiserver").
pub const SELF_SIGNED_CERT_FILE: &str = "apiserver.crt";
pub const SELF_SIGNED_KEY_FILE: &str = "apiserver.key";

/// Validity of the self-signed serving certificate (upstream: one year).
const SELF_SIGNED_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path:?}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {path:?}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no PEM certificates found in {path:?}")]
    NoCertificates { path: PathBuf },
    #[error("no PEM private key (RSA, PKCS#8 or EC) found in {path:?}")]
    NoPrivateKey { path: PathBuf },
    #[error("--tls-cert-file and --tls-private-key-file must be given together")]
    IncompletePair,
    #[error("invalid --service-cluster-ip-range {0:?}")]
    ServiceRange(String),
    #[error("generating the self-signed serving certificate")]
    Generate(#[source] rcgen::Error),
    #[error("invalid client CA certificate in {path:?}")]
    ClientCa {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("building the client certificate verifier")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
    #[error("building the TLS server config")]
    Config(#[source] rustls::Error),
}

/// The secure port's TLS configuration, from the flags.
pub fn server_config(opts: &Options) -> anyhow::Result<Arc<ServerConfig>> {
    let (certs, key) = match (&opts.tls_cert_file, &opts.tls_private_key_file) {
        (Some(cert), Some(key)) => (load_certs(cert)?, load_key(key)?),
        (None, None) => self_signed_pair(opts)?,
        _ => return Err(TlsError::IncompletePair.into()),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?;
    let builder = match &opts.client_ca_file {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in load_certs(path)? {
                roots.add(cert).map_err(|source| TlsError::ClientCa {
                    path: path.clone(),
                    source,
                })?;
            }
            // Optional but verified: requests without a certificate still go on to
            // bearer-token and anonymous authentication.
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(TlsError::Verifier)?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(TlsError::Config)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// All PEM certificates in `path`, in order.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(pem.as_slice()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificates {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The first PEM private key in `path` (PKCS#1 RSA, PKCS#8 or SEC1 EC).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })?;
    rustls_pemfile::private_key(&mut BufReader::new(pem.as_slice()))
        .map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })?
        .ok_or_else(|| TlsError::NoPrivateKey {
            path: path.to_owned(),
        })
}

/// The self-signed pair in `--cert-dir`, generated on first use and reused after, as
/// upstream's `MaybeDefaultWithSelfSignedCerts`.
fn self_signed_pair(
    opts: &Options,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let cert_path = opts.cert_dir.join(SELF_SIGNED_CERT_FILE);
    let key_path = opts.cert_dir.join(SELF_SIGNED_KEY_FILE);
    if !(cert_path.exists() && key_path.exists()) {
        let host = serving_host(opts);
        let (cert_pem, key_pem) = generate_self_signed(&host, &serving_alt_names(opts)?)?;
        std::fs::create_dir_all(&opts.cert_dir).map_err(|source| TlsError::Write {
            path: opts.cert_dir.clone(),
            source,
        })?;
        write_file(&cert_path, cert_pem.as_bytes(), 0o644)?;
        write_file(&key_path, key_pem.as_bytes(), 0o600)?;
        tracing::info!(cert = %cert_path.display(), key = %key_path.display(), "generated self-signed serving certificate");
    }
    Ok((load_certs(&cert_path)?, load_key(&key_path)?))
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(path)?;
        file.write_all(contents)
    };
    write().map_err(|source| TlsError::Write {
        path: path.to_owned(),
        source,
    })
}

/// The name in the self-signed certificates' CommonNames: the advertise address, else
/// the hostname.
fn serving_host(opts: &Options) -> String {
    match opts.advertise_address {
        Some(ip) => ip.to_string(),
        None => hostname().unwrap_or_else(|| "localhost".to_string()),
    }
}

fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// Subject alternative names of the self-signed serving certificate.
fn serving_alt_names(opts: &Options) -> Result<Vec<String>, TlsError> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into()];
    names.extend(hostname());
    names.extend(opts.advertise_address.map(|ip| ip.to_string()));
    names.extend(
        [
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ]
        .map(String::from),
    );
    names.push(first_service_ip(&opts.service_cluster_ip_range)?.to_string());
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    Ok(names)
}

/// The first address of the (primary) service range: the `kubernetes` service's IP.
pub fn first_service_ip(range: &str) -> Result<IpAddr, TlsError> {
    let invalid = || TlsError::ServiceRange(range.to_string());
    let primary = range.split(',').next().unwrap_or_default().trim();
    let (addr, prefix) = primary.split_once('/').ok_or_else(invalid)?;
    let addr: IpAddr = addr.parse().map_err(|_| invalid())?;
    let prefix: u32 = prefix.parse().map_err(|_| invalid())?;
    match addr {
        IpAddr::V4(v4) if prefix < 32 => {
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            Ok(IpAddr::V4(((u32::from(v4) & mask) + 1).into()))
        }
        IpAddr::V6(v6) if prefix < 128 => {
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            Ok(IpAddr::V6(((u128::from(v6) & mask) + 1).into()))
        }
        _ => Err(invalid()),
    }
}

/// A CA and a serving certificate signed by it, as upstream's
/// `GenerateSelfSignedCertKeyWithFixtures`: the certificate PEM holds the serving
/// certificate followed by the CA, so clients can pin the CA. Returns (cert PEM, key PEM).
fn generate_self_signed(host: &str, alt_names: &[String]) -> Result<(String, String), TlsError> {
    use chrono::{Datelike, Timelike};
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let now = chrono::Utc::now();
    // rcgen only exposes a date constructor for its `time` type; add the seconds.
    let from = now - chrono::Duration::hours(1);
    let valid_from = rcgen::date_time_ymd(from.year(), from.month() as u8, from.day() as u8)
        + Duration::from_secs(u64::from(from.num_seconds_from_midnight()));
    let valid_to = valid_from + SELF_SIGNED_VALIDITY;
    let stamp = now.timestamp();

    let ca_key = KeyPair::generate().map_err(TlsError::Generate)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(TlsError::Generate)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{host}-ca@{stamp}"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyCertSign,
    ];
    ca_params.not_before = valid_from;
    ca_params.not_after = valid_to;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(TlsError::Generate)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().map_err(TlsError::Generate)?;
    let mut params = CertificateParams::new(alt_names.to_vec()).map_err(TlsError::Generate)?;
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{host}@{stamp}"));
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = valid_from;
    params.not_after = valid_to;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(TlsError::Generate)?;
    Ok((
        format!("{}{}", cert.pem(), ca_cert.pem()),
        key.serialize_pem(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn self_signed_cert_has_sans_and_is_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = Options::try_parse_from([
            "kube-apiserver".to_string(),
            format!("--cert-dir={}", dir.path().display()),
            "--advertise-address=192.0.2.10".to_string(),
            "--service-cluster-ip-range=10.96.0.0/12".to_string(),
        ])
        .expect("flags");
        server_config(&opts).expect("config");
        let cert_path = dir.path().join(SELF_SIGNED_CERT_FILE);
        let first = std::fs::read(&cert_path).expect("cert written");
        let chain = load_certs(&cert_path).expect("chain");
        let (_, leaf) = x509_parser::parse_x509_certificate(chain[0].as_ref()).expect("parse");
        let san = leaf
            .subject_alternative_name()
            .expect("san ext")
            .expect("san present");
        use x509_parser::extensions::GeneralName;
        let sans: Vec<String> = san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some(d.to_string()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => <[u8; 4]>::try_from(*b)
                        .ok()
                        .map(|a| IpAddr::from(a).to_string()),
                    16 => <[u8; 16]>::try_from(*b)
                        .ok()
                        .map(|a| IpAddr::from(a).to_string()),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        for want in [
            "localhost",
            "127.0.0.1",
            "192.0.2.10",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "10.96.0.1",
        ] {
            assert!(
                sans.iter().any(|s| s == want),
                "missing SAN {want} in {sans:?}"
            );
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(SELF_SIGNED_KEY_FILE))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        server_config(&opts).expect("config again");
        assert_eq!(
            std::fs::read(&cert_path).expect("cert"),
            first,
            "existing pair is reused"
        );
    }

    #[test]
    fn explicit_cert_files_and_half_pairs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert_pem, key_pem) =
            generate_self_signed("example", &["example.test".to_string()]).expect("generate");
        let cert_path = dir.path().join("tls.crt");
        let key_path = dir.path().join("tls.key");
        std::fs::write(&cert_path, cert_pem).expect("write");
        std::fs::write(&key_path, key_pem).expect("write");
        let parse = |args: &[String]| {
            let mut all = vec![
                "kube-apiserver".to_string(),
                format!("--cert-dir={}", dir.path().join("gen").display()),
            ];
            all.extend_from_slice(args);
            Options::try_parse_from(all).expect("flags")
        };
        let both = parse(&[
            format!("--tls-cert-file={}", cert_path.display()),
            format!("--tls-private-key-file={}", key_path.display()),
        ]);
        let config = server_config(&both).expect("config from files");
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        assert!(
            !dir.path().join("gen").exists(),
            "no self-signed pair when files are given"
        );

        let half = parse(&[format!("--tls-cert-file={}", cert_path.display())]);
        assert!(server_config(&half).is_err());
        let swapped = parse(&[
            format!("--tls-cert-file={}", key_path.display()),
            format!("--tls-private-key-file={}", key_path.display()),
        ]);
        assert!(server_config(&swapped).is_err());
    }

    #[test]
    fn first_service_ips() {
        assert_eq!(
            first_service_ip("10.0.0.0/24").ok(),
            Some("10.0.0.1".parse().expect("ip"))
        );
        assert_eq!(
            first_service_ip("10.254.3.7/16").ok(),
            Some("10.254.0.1".parse().expect("ip"))
        );
        assert_eq!(
            first_service_ip("fd00::/108,10.0.0.0/24").ok(),
            Some("fd00::1".parse().expect("ip"))
        );
        assert!(first_service_ip("10.0.0.0").is_err());
        assert!(first_service_ip("10.0.0.1/32").is_err());
        assert!(first_service_ip("bogus/8").is_err());
    }
}
