//! Certificates for tests: a CA that signs client certificates for a user and
//! group (also already expired ones), and PKCS#10 requests for CSR tests.

use anyhow::{bail, Context};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// A certificate and its key, in PEM and DER (DER for rustls clients).
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: Vec<u8>,
    /// PKCS#8.
    pub key_der: Vec<u8>,
}

/// A certificate authority held in memory.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    cert_der: Vec<u8>,
}

/// How long a leaf is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// rcgen's default (1975 to 4096).
    Current,
    /// 2020-01-01 to 2021-01-01: refused by any verifier today.
    Expired,
}

impl Ca {
    /// A new self-signed CA named `common_name`.
    pub fn new(common_name: &str) -> anyhow::Result<Ca> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = subject(common_name, &[])?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key)?;
        Ok(Ca {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
        })
    }

    /// An existing CA (e.g. `pki/ca.crt` + `pki/ca.key` of `kube-apiserver gen-certs`).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> anyhow::Result<Ca> {
        let key = KeyPair::from_pem(key_pem).context("CA key")?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key).context("CA certificate")?;
        let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
            .map_err(|e| anyhow::anyhow!("CA certificate PEM: {e}"))?;
        Ok(Ca {
            issuer,
            cert_pem: cert_pem.to_string(),
            cert_der: pem.contents,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// A client certificate for `user` in `groups` (the apiserver reads CN as the
    /// user name and O as the groups).
    pub fn client_cert(
        &self,
        user: &str,
        groups: &[&str],
        validity: Validity,
    ) -> anyhow::Result<Issued> {
        self.sign(
            user,
            groups,
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
            validity,
        )
    }

    /// A serving certificate for `common_name` with these DNS names / IPs.
    pub fn server_cert(&self, common_name: &str, sans: &[&str]) -> anyhow::Result<Issued> {
        let sans = sans.iter().map(|s| s.to_string()).collect();
        self.sign(
            common_name,
            &[],
            sans,
            ExtendedKeyUsagePurpose::ServerAuth,
            Validity::Current,
        )
    }

    /// Signs a PEM PKCS#10 request as it asks (subject, SANs, key), as a CSR
    /// signer would; the certificate in PEM.
    pub fn sign_request(&self, request_pem: &str) -> anyhow::Result<String> {
        let request =
            rcgen::CertificateSigningRequestParams::from_pem(request_pem).context("CSR")?;
        Ok(request.signed_by(&self.issuer)?.pem())
    }

    fn sign(
        &self,
        common_name: &str,
        groups: &[&str],
        sans: Vec<String>,
        usage: ExtendedKeyUsagePurpose,
        validity: Validity,
    ) -> anyhow::Result<Issued> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(sans)?;
        params.distinguished_name = subject(common_name, groups)?;
        params.extended_key_usages = vec![usage];
        if validity == Validity::Expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        })
    }
}

/// CN `common_name`, O the group. rcgen holds one value per attribute type, so
/// at most one group.
fn subject(common_name: &str, groups: &[&str]) -> anyhow::Result<DistinguishedName> {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    match groups {
        [] => {}
        [group] => dn.push(DnType::OrganizationName, *group),
        _ => bail!("one group at most (rcgen keeps a single Organization), got {groups:?}"),
    }
    Ok(dn)
}

/// A PEM PKCS#10 request for CN `common_name`, O `groups` (at most one) and DNS
/// names `dns`, with its fresh key.
pub fn csr_pem(
    common_name: &str,
    groups: &[&str],
    dns: &[&str],
) -> anyhow::Result<(String, KeyPair)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(dns.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
    params.distinguished_name = subject(common_name, groups)?;
    let pem = params.serialize_request(&key)?.pem()?;
    Ok((pem, key))
}

/// A `certificates.k8s.io/v1` CertificateSigningRequest manifest (YAML) for
/// `request` (raw bytes, base64-encoded here) with client usages; `extra_spec`
/// is appended to `spec` (two-space indented lines).
pub fn csr_manifest(name: &str, request: &[u8], signer: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: {name}\nspec:\n  request: {}\n  signerName: {signer}\n  usages: [\"digital signature\", \"client auth\"]\n{extra_spec}",
        b64(request)
    )
}

/// Standard base64, as Kubernetes encodes `[]byte` fields.
pub fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(der: &[u8]) -> x509_parser::certificate::X509Certificate<'_> {
        x509_parser::parse_x509_certificate(der).expect("parse").1
    }

    #[test]
    fn client_certs_carry_user_and_group_and_chain_to_the_ca() {
        let ca = Ca::new("test-ca").expect("ca");
        let jane = ca
            .client_cert("jane", &["devs"], Validity::Current)
            .expect("jane");
        let cert = parse(&jane.cert_der);
        assert_eq!(cert.subject().to_string(), "CN=jane, O=devs");
        assert_eq!(cert.issuer().to_string(), "CN=test-ca");
        let ca_cert = parse(ca.cert_der());
        cert.verify_signature(Some(ca_cert.public_key()))
            .expect("signed by the CA");
        assert!(cert.validity().is_valid());

        let old = ca
            .client_cert("jane", &[], Validity::Expired)
            .expect("expired");
        assert!(!parse(&old.cert_der).validity().is_valid());
        assert!(ca.client_cert("x", &["a", "b"], Validity::Current).is_err());
    }

    #[test]
    fn a_loaded_ca_signs_like_the_original() {
        let original = Ca::new("kubernetes").expect("ca");
        let key_pem = original.issuer.key().serialize_pem();
        let loaded = Ca::from_pem(original.cert_pem(), &key_pem).expect("load");
        assert_eq!(loaded.cert_der(), original.cert_der());
        let leaf = loaded
            .client_cert("admin", &["system:masters"], Validity::Current)
            .expect("leaf");
        let cert = parse(&leaf.cert_der);
        cert.verify_signature(Some(parse(original.cert_der()).public_key()))
            .expect("verifies");
        assert!(Ca::from_pem("junk", &key_pem).is_err());
    }

    #[test]
    fn signs_a_request_with_its_subject() {
        let ca = Ca::new("kubernetes").expect("ca");
        let (request, _) = csr_pem("system:node:n1", &["system:nodes"], &[]).expect("csr");
        let pem = ca.sign_request(&request).expect("sign");
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("pem");
        let cert = parse(&pem.contents);
        assert_eq!(
            cert.subject().to_string(),
            "CN=system:node:n1, O=system:nodes"
        );
        cert.verify_signature(Some(parse(ca.cert_der()).public_key()))
            .expect("verifies");
        assert!(ca.sign_request("junk").is_err());
    }

    #[test]
    fn csr_manifest_embeds_a_parseable_request() {
        let (pem, _) = csr_pem("system:node:n1", &["system:nodes"], &["n1.example"]).expect("csr");
        assert!(
            pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"),
            "{pem}"
        );
        let yaml = csr_manifest(
            "c1",
            pem.as_bytes(),
            "example.com/s",
            "  expirationSeconds: 600\n",
        );
        assert!(
            yaml.contains(&format!("  request: {}\n", b64(pem.as_bytes()))),
            "{yaml}"
        );
        assert!(
            yaml.ends_with("client auth\"]\n  expirationSeconds: 600\n"),
            "{yaml}"
        );
    }
}
