//! Service-account token keys: the signing key of `--service-account-signing-key-file`
//! (RSA PKCS#1/PKCS#8 → RS256, ECDSA P-256 PKCS#8 → ES256) and the verification keys
//! of `--service-account-key-file` (PEM public keys, or private keys whose public half
//! is used, as upstream accepts both).

use std::path::{Path, PathBuf};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use ring::{
    rand::SystemRandom,
    signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair},
};
use rustls_pemfile::Item;
use x509_parser::prelude::FromDer;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no usable key (want an RSA or ECDSA P-256 key in PEM: PUBLIC KEY, PRIVATE KEY or RSA PRIVATE KEY)")]
    NoKey { path: PathBuf },
    #[error("signing: {0}")]
    Sign(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Rs256,
    Es256,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Es256 => "ES256",
        }
    }
}

/// A public key tokens are verified with.
#[derive(Debug, Clone)]
pub struct VerifyingKey {
    pub alg: Algorithm,
    /// RSA: DER `RSAPublicKey`; EC: the uncompressed point.
    pub public: Vec<u8>,
    pub kid: String,
}

fn kid_of(public: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, public))
}

impl VerifyingKey {
    fn new(alg: Algorithm, public: Vec<u8>) -> Self {
        let kid = kid_of(&public);
        VerifyingKey { alg, public, kid }
    }

    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        let alg: &dyn signature::VerificationAlgorithm = match self.alg {
            Algorithm::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Algorithm::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
        };
        signature::UnparsedPublicKey::new(alg, &self.public)
            .verify(message, sig)
            .is_ok()
    }
}

enum Private {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// The key tokens are signed with.
pub struct SigningKey {
    key: Private,
    pub verifying: VerifyingKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.verifying.alg)
            .field("kid", &self.verifying.kid)
            .finish()
    }
}

impl SigningKey {
    pub fn alg(&self) -> Algorithm {
        self.verifying.alg
    }

    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.key {
            Private::Rsa(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
                    .map_err(|e| KeyError::Sign(e.to_string()))?;
                Ok(sig)
            }
            Private::Ec(k) => Ok(k
                .sign(&self.rng, message)
                .map_err(|e| KeyError::Sign(e.to_string()))?
                .as_ref()
                .to_vec()),
        }
    }

    /// Parses the first private key in PEM text.
    pub fn from_pem(pem: &[u8]) -> Option<SigningKey> {
        let rng = SystemRandom::new();
        for item in rustls_pemfile::read_all(&mut &pem[..]).flatten() {
            let key = match item {
                Item::Pkcs1Key(k) => RsaKeyPair::from_der(k.secret_pkcs1_der())
                    .ok()
                    .map(Private::Rsa),
                Item::Pkcs8Key(k) => {
                    let der = k.secret_pkcs8_der();
                    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
                        .ok()
                        .map(Private::Ec)
                        .or_else(|| RsaKeyPair::from_pkcs8(der).ok().map(Private::Rsa))
                }
                _ => None,
            };
            if let Some(key) = key {
                let verifying = match &key {
                    Private::Rsa(k) => {
                        VerifyingKey::new(Algorithm::Rs256, k.public().as_ref().to_vec())
                    }
                    Private::Ec(k) => {
                        VerifyingKey::new(Algorithm::Es256, k.public_key().as_ref().to_vec())
                    }
                };
                return Some(SigningKey {
                    key,
                    verifying,
                    rng,
                });
            }
        }
        None
    }

    pub fn load(path: &Path) -> Result<SigningKey, KeyError> {
        let pem = std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_pem(&pem).ok_or_else(|| KeyError::NoKey {
            path: path.to_path_buf(),
        })
    }

    /// A fresh ECDSA P-256 key as PKCS#8 PEM (what `gen-certs` and the self-generated
    /// fallback write).
    pub fn generate_pem() -> Result<String, KeyError> {
        let key = rcgen::KeyPair::generate().map_err(|e| KeyError::Sign(e.to_string()))?;
        Ok(key.serialize_pem())
    }
}

const RSA_OID: &str = "1.2.840.113549.1.1.1";
const EC_OID: &str = "1.2.840.10045.2.1";

/// Every verification key in a PEM file: public keys, and the public half of private keys.
pub fn verifying_keys_from_pem(pem: &[u8]) -> Vec<VerifyingKey> {
    let mut out = Vec::new();
    for item in rustls_pemfile::read_all(&mut &pem[..]).flatten() {
        match item {
            Item::SubjectPublicKeyInfo(spki) => {
                let Ok((_, info)) =
                    x509_parser::x509::SubjectPublicKeyInfo::from_der(spki.as_ref())
                else {
                    continue;
                };
                let alg = match info.algorithm.algorithm.to_id_string().as_str() {
                    RSA_OID => Algorithm::Rs256,
                    EC_OID => Algorithm::Es256,
                    _ => continue,
                };
                out.push(VerifyingKey::new(
                    alg,
                    info.subject_public_key.data.to_vec(),
                ));
            }
            Item::X509Certificate(cert) => {
                let Ok((_, c)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
                    continue;
                };
                let info = c.public_key();
                let alg = match info.algorithm.algorithm.to_id_string().as_str() {
                    RSA_OID => Algorithm::Rs256,
                    EC_OID => Algorithm::Es256,
                    _ => continue,
                };
                out.push(VerifyingKey::new(
                    alg,
                    info.subject_public_key.data.to_vec(),
                ));
            }
            _ => {}
        }
    }
    if let Some(k) = SigningKey::from_pem(pem) {
        out.push(k.verifying);
    }
    out
}

pub fn load_verifying_keys(path: &Path) -> Result<Vec<VerifyingKey>, KeyError> {
    let pem = std::fs::read(path).map_err(|source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let keys = verifying_keys_from_pem(&pem);
    if keys.is_empty() {
        return Err(KeyError::NoKey {
            path: path.to_path_buf(),
        });
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_sign_verify_and_public_pem() {
        let pem = SigningKey::generate_pem().expect("gen");
        let key = SigningKey::from_pem(pem.as_bytes()).expect("parse");
        assert_eq!(key.alg(), Algorithm::Es256);
        let sig = key.sign(b"hello").expect("sign");
        assert!(key.verifying.verify(b"hello", &sig));
        assert!(!key.verifying.verify(b"hellO", &sig));
        // The public key in SPKI PEM verifies too, with the same kid.
        let kp = rcgen::KeyPair::from_pem(&pem).expect("rcgen");
        let public = verifying_keys_from_pem(kp.public_key_pem().as_bytes());
        assert_eq!(public.len(), 1);
        assert_eq!(public[0].kid, key.verifying.kid);
        assert!(public[0].verify(b"hello", &sig));
        assert!(verifying_keys_from_pem(b"garbage").is_empty());
    }
}
