//! Cluster PKI in pure Rust (rcgen), laid out as kubeadm's `/etc/kubernetes/pki`:
//! a cluster CA, the apiserver serving cert (SANs: the `kubernetes` service names and
//! IP, localhost, given hostnames and IPs), the apiserver's kubelet client cert, client
//! certs for admin (`O=system:masters`), controller-manager, scheduler, kube-proxy and
//! each node's kubelet (`CN=system:node:<name>, O=system:nodes`), the service-account
//! key pair, a kubeconfig per client, and etcd's own CA with etcd's serving cert and
//! the apiserver's and flanneld's etcd client certs. Run as `kube-apiserver gen-certs`
//! (`scripts/gen-certs.sh` wraps it).

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
};

use base64::{engine::general_purpose::STANDARD, Engine};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("generating {what}: {source}")]
    Generate {
        what: String,
        #[source]
        source: rcgen::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct PkiConfig {
    pub dir: PathBuf,
    /// URL clients put in their kubeconfigs, e.g. `https://10.0.0.1:6443`.
    pub server: String,
    /// Extra DNS names of the apiserver.
    pub hostnames: Vec<String>,
    /// Extra IPs of the apiserver (node IPs, the service IP).
    pub ips: Vec<IpAddr>,
    pub nodes: Vec<String>,
    /// Extra users as `name` or `name:group` (file `user-<name>.conf`).
    pub users: Vec<String>,
}

/// A generated certificate and key in PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

fn gen_err(what: &str) -> impl FnOnce(rcgen::Error) -> PkiError + '_ {
    move |source| PkiError::Generate {
        what: what.to_string(),
        source,
    }
}

/// The cluster CA.
pub struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pub issued: Issued,
}

impl Ca {
    pub fn generate(common_name: &str) -> Result<Ca, PkiError> {
        let key = KeyPair::generate().map_err(gen_err("CA key"))?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err("CA"))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).map_err(gen_err("CA"))?;
        let issued = Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        Ok(Ca {
            params,
            key,
            issued,
        })
    }

    /// Signs a leaf: `groups` become Organizations (rcgen keeps one: the first).
    pub fn issue(
        &self,
        common_name: &str,
        groups: &[&str],
        sans: Vec<String>,
        server: bool,
        client: bool,
    ) -> Result<Issued, PkiError> {
        let key = KeyPair::generate().map_err(gen_err(common_name))?;
        let mut params = CertificateParams::new(sans).map_err(gen_err(common_name))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        if let Some(org) = groups.first() {
            dn.push(DnType::OrganizationName, *org);
        }
        params.distinguished_name = dn;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        if server {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if client {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        params.use_authority_key_identifier_extension = true;
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(gen_err(common_name))?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A kubeconfig with embedded credentials.
pub fn kubeconfig(server: &str, ca_pem: &str, user: &str, client: &Issued) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: kubernetes
  cluster:
    certificate-authority-data: {ca}
    server: {server}
users:
- name: {user}
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: {user}@kubernetes
  context:
    cluster: kubernetes
    user: {user}
current-context: {user}@kubernetes
",
        ca = STANDARD.encode(ca_pem),
        cert = STANDARD.encode(&client.cert_pem),
        key = STANDARD.encode(&client.key_pem),
    )
}

fn write(dir: &Path, name: &str, content: &str, private: bool) -> Result<(), PkiError> {
    let path = dir.join(name);
    std::fs::write(&path, content).map_err(|source| PkiError::Write {
        path: path.clone(),
        source,
    })?;
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|source| PkiError::Write { path, source })?;
    }
    Ok(())
}

fn write_pair(dir: &Path, base: &str, issued: &Issued) -> Result<(), PkiError> {
    write(dir, &format!("{base}.crt"), &issued.cert_pem, false)?;
    write(dir, &format!("{base}.key"), &issued.key_pem, true)
}

/// Writes the whole PKI under `cfg.dir` (`pki/` for certs and keys, kubeconfigs at
/// the top, as `/etc/kubernetes`). Returns the files written.
pub fn generate(cfg: &PkiConfig) -> Result<Vec<PathBuf>, PkiError> {
    let pki = cfg.dir.join("pki");
    std::fs::create_dir_all(&pki).map_err(|source| PkiError::Write {
        path: pki.clone(),
        source,
    })?;
    let ca = Ca::generate("kubernetes")?;
    write_pair(&pki, "ca", &ca.issued)?;

    let mut sans: Vec<String> = [
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
        "127.0.0.1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    sans.extend(cfg.hostnames.iter().cloned());
    sans.extend(cfg.ips.iter().map(IpAddr::to_string));
    sans.dedup();
    write_pair(
        &pki,
        "apiserver",
        &ca.issue("kube-apiserver", &[], sans, true, false)?,
    )?;
    write_pair(
        &pki,
        "apiserver-kubelet-client",
        &ca.issue(
            "kube-apiserver-kubelet-client",
            &["system:masters"],
            Vec::new(),
            false,
            true,
        )?,
    )?;

    // etcd's own CA, as kubeadm lays it out: the server cert etcd serves with
    // (localhost + the master's names and addresses), and the client certs the
    // apiserver and flanneld present with --etcd-certfile/--etcd-keyfile.
    let etcd_dir = pki.join("etcd");
    std::fs::create_dir_all(&etcd_dir).map_err(|source| PkiError::Write {
        path: etcd_dir.clone(),
        source,
    })?;
    let etcd_ca = Ca::generate("etcd-ca")?;
    write_pair(&etcd_dir, "ca", &etcd_ca.issued)?;
    let mut etcd_sans: Vec<String> = vec!["localhost".into(), "127.0.0.1".into()];
    etcd_sans.extend(cfg.hostnames.iter().cloned());
    etcd_sans.extend(cfg.ips.iter().map(IpAddr::to_string));
    etcd_sans.dedup();
    write_pair(
        &etcd_dir,
        "server",
        &etcd_ca.issue("etcd-server", &[], etcd_sans, true, true)?,
    )?;
    write_pair(
        &pki,
        "apiserver-etcd-client",
        &etcd_ca.issue("kube-apiserver-etcd-client", &[], Vec::new(), false, true)?,
    )?;
    write_pair(
        &pki,
        "flanneld-etcd-client",
        &etcd_ca.issue("flanneld-etcd-client", &[], Vec::new(), false, true)?,
    )?;

    let sa = crate::serviceaccount::SigningKey::generate_pem()
        .map_err(|e| PkiError::Usage(e.to_string()))?;
    write(&pki, "sa.key", &sa, true)?;
    let sa_pub = KeyPair::from_pem(&sa)
        .map_err(gen_err("sa.pub"))?
        .public_key_pem();
    write(&pki, "sa.pub", &sa_pub, false)?;

    let mut clients: Vec<(String, String, Vec<&str>)> = vec![
        (
            "admin".into(),
            "kubernetes-admin".into(),
            vec!["system:masters"],
        ),
        (
            "controller-manager".into(),
            "system:kube-controller-manager".into(),
            vec![],
        ),
        ("scheduler".into(), "system:kube-scheduler".into(), vec![]),
        ("kube-proxy".into(), "system:kube-proxy".into(), vec![]),
    ];
    for node in &cfg.nodes {
        clients.push((
            format!("kubelet-{node}"),
            format!("system:node:{node}"),
            vec!["system:nodes"],
        ));
    }
    for user in &cfg.users {
        let (name, group) = user
            .split_once(':')
            .map(|(n, g)| (n, Some(g)))
            .unwrap_or((user.as_str(), None));
        clients.push((
            format!("user-{name}"),
            name.to_string(),
            group.into_iter().collect(),
        ));
    }
    for (file, cn, groups) in &clients {
        let issued = ca.issue(cn, groups, Vec::new(), false, true)?;
        write_pair(&pki, file, &issued)?;
        write(
            &cfg.dir,
            &format!("{file}.conf"),
            &kubeconfig(&cfg.server, &ca.issued.cert_pem, cn, &issued),
            true,
        )?;
    }
    let mut files = vec![
        pki.join("ca.crt"),
        pki.join("apiserver.crt"),
        pki.join("sa.key"),
        pki.join("sa.pub"),
    ];
    files.extend(
        clients
            .iter()
            .map(|(f, _, _)| cfg.dir.join(format!("{f}.conf"))),
    );
    Ok(files)
}

const USAGE: &str = "usage: kube-apiserver gen-certs --dir DIR [--server URL] [--hostname NAME]... [--ip IP]... [--node NAME]... [--user NAME[:GROUP]]...";

/// `kube-apiserver gen-certs ...`: parses the subcommand's flags (`--flag=value` or
/// `--flag value`).
pub fn parse_args(args: &[String]) -> Result<PkiConfig, PkiError> {
    let mut cfg = PkiConfig {
        dir: PathBuf::new(),
        server: "https://127.0.0.1:6443".into(),
        hostnames: Vec::new(),
        ips: Vec::new(),
        nodes: Vec::new(),
        users: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f, Some(v.to_string())),
            None => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| PkiError::Usage(format!("{flag} needs a value\n{USAGE}")))
        };
        match flag {
            "--dir" => cfg.dir = PathBuf::from(value()?),
            "--server" => cfg.server = value()?,
            "--hostname" => cfg.hostnames.push(value()?),
            "--ip" => {
                let v = value()?;
                cfg.ips.push(
                    v.parse()
                        .map_err(|_| PkiError::Usage(format!("invalid --ip {v:?}")))?,
                );
            }
            "--node" => cfg.nodes.push(value()?),
            "--user" => cfg.users.push(value()?),
            "-h" | "--help" => return Err(PkiError::Usage(USAGE.into())),
            other => return Err(PkiError::Usage(format!("unknown flag {other}\n{USAGE}"))),
        }
    }
    if cfg.dir.as_os_str().is_empty() {
        return Err(PkiError::Usage(USAGE.into()));
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_verifiable_pki() {
        let dir = tempfile::tempdir().expect("tempdir");
        let args: Vec<String> = [
            "--dir",
            &dir.path().display().to_string(),
            "--node=n1",
            "--ip",
            "10.254.0.1",
            "--hostname",
            "master",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let cfg = parse_args(&args).expect("args");
        generate(&cfg).expect("generate");
        let node_pem = std::fs::read(dir.path().join("pki/kubelet-n1.crt")).expect("node cert");
        let der = rustls_pemfile::certs(&mut &node_pem[..])
            .next()
            .expect("one")
            .expect("pem");
        let user = crate::authn::x509::user_from_chain(&[der]).expect("user");
        assert_eq!(user.name, "system:node:n1");
        assert_eq!(user.groups, vec!["system:nodes".to_string()]);
        // The serving cert chains to the CA with the service IP in its SANs.
        let server_pem = std::fs::read(dir.path().join("pki/apiserver.crt")).expect("server cert");
        let der = rustls_pemfile::certs(&mut &server_pem[..])
            .next()
            .expect("one")
            .expect("pem");
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
            sans.contains("10.254.0.1") || sans.contains("[10, 254, 0, 1]"),
            "{sans}"
        );
        assert!(sans.contains("kubernetes.default.svc"), "{sans}");
        let conf = std::fs::read_to_string(dir.path().join("admin.conf")).expect("admin.conf");
        assert!(
            conf.contains("client-certificate-data")
                && conf.contains("server: https://127.0.0.1:6443")
        );
        assert!(
            crate::serviceaccount::keys::load_verifying_keys(&dir.path().join("pki/sa.pub"))
                .is_ok()
        );
        assert!(parse_args(&["--bogus".to_string()]).is_err());
        for file in [
            "pki/etcd/ca.crt",
            "pki/etcd/server.crt",
            "pki/etcd/server.key",
            "pki/apiserver-etcd-client.key",
            "pki/flanneld-etcd-client.crt",
        ] {
            assert!(dir.path().join(file).exists(), "{file} missing");
        }
    }
}
