//! The signing CA (upstream `pkg/controller/certificates/authority`): issues a leaf
//! for a PKCS#10 request with the usages of the CSR object (not the ones the request
//! asks for), valid from 5 minutes ago (clock skew) for the requested duration, never
//! past the CA's own expiry.

use std::time::Duration;

use rcgen::{
    CertificateSigningRequestParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use time::OffsetDateTime;

/// How far certificates are backdated (upstream `policy.Backdate`).
const BACKDATE: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing the signing CA {what}: {source}")]
    Ca {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("parsing the certificate request: {0}")]
    Request(#[source] rcgen::Error),
    #[error("signing: {0}")]
    Sign(#[source] rcgen::Error),
}

pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate's notAfter; leaves never outlive it.
    not_after: OffsetDateTime,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Loads `--cluster-signing-cert-file` / `--cluster-signing-key-file`.
    pub fn load(cert_file: &str, key_file: &str) -> Result<Self, Error> {
        let read = |path: &str| {
            std::fs::read_to_string(path).map_err(|source| Error::Read {
                path: path.to_string(),
                source,
            })
        };
        Self::from_pem(&read(cert_file)?, &read(key_file)?)
    }

    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, Error> {
        let key = KeyPair::from_pem(key_pem).map_err(|source| Error::Ca {
            what: "key",
            source,
        })?;
        let der = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
            .map_err(|_| Error::Ca {
                what: "certificate",
                source: rcgen::Error::CouldNotParseCertificate,
            })?
            .1
            .contents;
        let not_after = x509_parser::parse_x509_certificate(&der)
            .map_err(|_| Error::Ca {
                what: "certificate",
                source: rcgen::Error::CouldNotParseCertificate,
            })?
            .1
            .validity()
            .not_after
            .to_datetime();
        let issuer = Issuer::from_ca_cert_der(&der.into(), key).map_err(|source| Error::Ca {
            what: "certificate",
            source,
        })?;
        Ok(CertificateAuthority { issuer, not_after })
    }

    /// Signs the DER request for `usages` (the CSR object's), valid for `ttl`.
    pub fn sign(
        &self,
        request_der: &[u8],
        usages: &[String],
        ttl: Duration,
    ) -> Result<String, Error> {
        let mut csr = CertificateSigningRequestParams::from_der(&request_der.into())
            .map_err(Error::Request)?;
        let params = &mut csr.params;
        let now = OffsetDateTime::now_utc();
        // Short certificates are backdated by at most half their life.
        let backdate = BACKDATE.min(ttl / 2);
        params.not_before = now - backdate;
        let not_after = now + ttl;
        params.not_after = if not_after > self.not_after {
            self.not_after
        } else {
            not_after
        };
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = key_usages(usages);
        params.extended_key_usages = extended_key_usages(usages);
        params.use_authority_key_identifier_extension = true;
        let serial: [u8; 16] = rand::random();
        let mut serial = serial.to_vec();
        serial[0] &= 0x7f; // positive
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let cert = csr.signed_by(&self.issuer).map_err(Error::Sign)?;
        Ok(cert.pem())
    }
}

fn key_usages(usages: &[String]) -> Vec<KeyUsagePurpose> {
    usages
        .iter()
        .filter_map(|u| match u.as_str() {
            "signing" | "digital signature" => Some(KeyUsagePurpose::DigitalSignature),
            "content commitment" => Some(KeyUsagePurpose::ContentCommitment),
            "key encipherment" => Some(KeyUsagePurpose::KeyEncipherment),
            "key agreement" => Some(KeyUsagePurpose::KeyAgreement),
            "data encipherment" => Some(KeyUsagePurpose::DataEncipherment),
            "cert sign" => Some(KeyUsagePurpose::KeyCertSign),
            "crl sign" => Some(KeyUsagePurpose::CrlSign),
            "encipher only" => Some(KeyUsagePurpose::EncipherOnly),
            "decipher only" => Some(KeyUsagePurpose::DecipherOnly),
            _ => None,
        })
        .collect()
}

fn extended_key_usages(usages: &[String]) -> Vec<ExtendedKeyUsagePurpose> {
    usages
        .iter()
        .filter_map(|u| match u.as_str() {
            "any" => Some(ExtendedKeyUsagePurpose::Any),
            "server auth" => Some(ExtendedKeyUsagePurpose::ServerAuth),
            "client auth" => Some(ExtendedKeyUsagePurpose::ClientAuth),
            "code signing" => Some(ExtendedKeyUsagePurpose::CodeSigning),
            "email protection" | "s/mime" => Some(ExtendedKeyUsagePurpose::EmailProtection),
            "timestamping" => Some(ExtendedKeyUsagePurpose::TimeStamping),
            "ocsp signing" => Some(ExtendedKeyUsagePurpose::OcspSigning),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> (String, String) {
        let key = KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "kubernetes");
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("ca");
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn signs_with_csr_usages_and_ttl() {
        let (cert, key) = ca();
        let authority = CertificateAuthority::from_pem(&cert, &key).expect("ca");
        let (pem, _) =
            super::super::tests::make_request("system:node:n1", Some("system:nodes"), &[]);
        let der = super::super::parse_request(pem.as_bytes())
            .expect("parse")
            .der;
        let usages = vec!["digital signature".to_string(), "client auth".to_string()];
        let leaf = authority
            .sign(&der, &usages, Duration::from_secs(3600))
            .expect("sign");
        let (_, p) = x509_parser::pem::parse_x509_pem(leaf.as_bytes()).expect("pem");
        let (_, x) = x509_parser::parse_x509_certificate(&p.contents).expect("cert");
        assert_eq!(
            x.subject()
                .iter_common_name()
                .next()
                .and_then(|c| c.as_str().ok()),
            Some("system:node:n1")
        );
        assert_eq!(
            x.issuer()
                .iter_common_name()
                .next()
                .and_then(|c| c.as_str().ok()),
            Some("kubernetes")
        );
        let life = x.validity().not_after.timestamp() - x.validity().not_before.timestamp();
        assert_eq!(life, 3600 + 300);
        let eku = x.extended_key_usage().expect("ok").expect("eku");
        assert!(eku.value.client_auth && !eku.value.server_auth);
        assert!(!x.is_ca());
    }
}
