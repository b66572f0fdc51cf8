//! Encryption at rest (upstream `apiserver/pkg/storage/value`): values of the
//! configured resources are transformed on their way to etcd and back. Encrypted
//! values carry the prefix `k8s:enc:<provider>:v1:<key name>:`; the first provider
//! (first key) encrypts, every provider and key is tried by prefix on read, and
//! unprefixed values are read as they are only when `identity` is configured.
//!
//! Wire formats, as upstream: `aescbc` = prefix + 16-byte IV + AES-CBC/PKCS#7;
//! `aesgcm` = prefix + 12-byte nonce + AES-GCM (authenticated data: the etcd key);
//! `secretbox` = prefix + 24-byte nonce + XSalsa20-Poly1305.

pub mod config;

use std::{borrow::Cow, collections::HashMap, path::Path, sync::Arc};

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use aes_gcm::{
    aead::{Aead, KeyInit, Payload},
    AesGcm,
};
use rand::Rng;

#[derive(Debug, thiserror::Error)]
pub enum EncryptionError {
    #[error("{0}")]
    Config(String),
    #[error("no matching prefix found")]
    NoMatchingPrefix,
    #[error("{0}")]
    Decrypt(String),
    #[error("{0}")]
    Encrypt(String),
}

/// One key of one provider.
#[derive(Clone)]
pub enum Cipher {
    Identity,
    AesCbc { name: String, key: Vec<u8> },
    AesGcm { name: String, key: Vec<u8> },
    Secretbox { name: String, key: Vec<u8> },
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        match self.prefix() {
            Some(p) => write!(f, "Cipher({})", String::from_utf8_lossy(&p)),
            None => write!(f, "Cipher(identity)"),
        }
    }
}

type Aes192Gcm = AesGcm<aes::Aes192, aes_gcm::aead::consts::U12>;

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rng().fill(&mut b[..]);
    b
}

fn cbc_encrypt(key: &[u8], plain: &[u8]) -> Result<Vec<u8>, EncryptionError> {
    let iv: [u8; 16] = random();
    let bad = |e: aes::cipher::InvalidLength| EncryptionError::Encrypt(e.to_string());
    let ct = match key.len() {
        16 => cbc::Encryptor::<aes::Aes128>::new_from_slices(key, &iv)
            .map_err(bad)?
            .encrypt_padded_vec_mut::<Pkcs7>(plain),
        24 => cbc::Encryptor::<aes::Aes192>::new_from_slices(key, &iv)
            .map_err(bad)?
            .encrypt_padded_vec_mut::<Pkcs7>(plain),
        _ => cbc::Encryptor::<aes::Aes256>::new_from_slices(key, &iv)
            .map_err(bad)?
            .encrypt_padded_vec_mut::<Pkcs7>(plain),
    };
    let mut out = iv.to_vec();
    out.extend(ct);
    Ok(out)
}

fn cbc_decrypt(key: &[u8], data: &[u8]) -> Result<Vec<u8>, EncryptionError> {
    if data.len() < 16 {
        return Err(EncryptionError::Decrypt(
            "the stored data was shorter than the required size".into(),
        ));
    }
    let (iv, ct) = data.split_at(16);
    if ct.len() % 16 != 0 {
        return Err(EncryptionError::Decrypt("invalid block size".into()));
    }
    let bad = |e: aes::cipher::InvalidLength| EncryptionError::Decrypt(e.to_string());
    let unpad = |_| EncryptionError::Decrypt("invalid padding on input".into());
    match key.len() {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(bad)?
            .decrypt_padded_vec_mut::<Pkcs7>(ct)
            .map_err(unpad),
        24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv)
            .map_err(bad)?
            .decrypt_padded_vec_mut::<Pkcs7>(ct)
            .map_err(unpad),
        _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(bad)?
            .decrypt_padded_vec_mut::<Pkcs7>(ct)
            .map_err(unpad),
    }
}

fn aead_seal<A: KeyInit + Aead>(
    key: &[u8],
    nonce: &[u8],
    plain: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, EncryptionError> {
    let c = A::new_from_slice(key).map_err(|e| EncryptionError::Encrypt(e.to_string()))?;
    c.encrypt(
        aes_gcm::aead::generic_array::GenericArray::from_slice(nonce),
        Payload { msg: plain, aad },
    )
    .map_err(|_| EncryptionError::Encrypt("encryption failed".into()))
}

fn aead_open<A: KeyInit + Aead>(
    key: &[u8],
    nonce: &[u8],
    ct: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, EncryptionError> {
    let c = A::new_from_slice(key).map_err(|e| EncryptionError::Decrypt(e.to_string()))?;
    c.decrypt(
        aes_gcm::aead::generic_array::GenericArray::from_slice(nonce),
        Payload { msg: ct, aad },
    )
    .map_err(|_| EncryptionError::Decrypt("cipher: message authentication failed".into()))
}

fn gcm_seal(key: &[u8], plain: &[u8], aad: &[u8]) -> Result<Vec<u8>, EncryptionError> {
    let nonce: [u8; 12] = random();
    let ct = match key.len() {
        16 => aead_seal::<aes_gcm::Aes128Gcm>(key, &nonce, plain, aad)?,
        24 => aead_seal::<Aes192Gcm>(key, &nonce, plain, aad)?,
        _ => aead_seal::<aes_gcm::Aes256Gcm>(key, &nonce, plain, aad)?,
    };
    let mut out = nonce.to_vec();
    out.extend(ct);
    Ok(out)
}

fn gcm_open(key: &[u8], data: &[u8], aad: &[u8]) -> Result<Vec<u8>, EncryptionError> {
    if data.len() < 12 + 16 {
        return Err(EncryptionError::Decrypt(
            "the stored data was shorter than the required size".into(),
        ));
    }
    let (nonce, ct) = data.split_at(12);
    match key.len() {
        16 => aead_open::<aes_gcm::Aes128Gcm>(key, nonce, ct, aad),
        24 => aead_open::<Aes192Gcm>(key, nonce, ct, aad),
        _ => aead_open::<aes_gcm::Aes256Gcm>(key, nonce, ct, aad),
    }
}

fn secretbox_seal(key: &[u8], plain: &[u8]) -> Result<Vec<u8>, EncryptionError> {
    let nonce: [u8; 24] = random();
    let ct = aead_seal::<crypto_secretbox::XSalsa20Poly1305>(key, &nonce, plain, &[])?;
    let mut out = nonce.to_vec();
    out.extend(ct);
    Ok(out)
}

fn secretbox_open(key: &[u8], data: &[u8]) -> Result<Vec<u8>, EncryptionError> {
    if data.len() < 24 + 16 {
        return Err(EncryptionError::Decrypt(
            "the stored data was shorter than the required size".into(),
        ));
    }
    let (nonce, ct) = data.split_at(24);
    aead_open::<crypto_secretbox::XSalsa20Poly1305>(key, nonce, ct, &[])
        .map_err(|_| EncryptionError::Decrypt("output array too small".into()))
}

impl Cipher {
    /// `k8s:enc:<provider>:v1:<key name>:` (None for identity).
    pub fn prefix(&self) -> Option<Vec<u8>> {
        let (kind, name) = match self {
            Cipher::Identity => return None,
            Cipher::AesCbc { name, .. } => ("aescbc", name),
            Cipher::AesGcm { name, .. } => ("aesgcm", name),
            Cipher::Secretbox { name, .. } => ("secretbox", name),
        };
        Some(format!("k8s:enc:{kind}:v1:{name}:").into_bytes())
    }

    fn seal(&self, plain: &[u8], aad: &[u8]) -> Result<Vec<u8>, EncryptionError> {
        let body = match self {
            Cipher::Identity => return Ok(plain.to_vec()),
            Cipher::AesCbc { key, .. } => cbc_encrypt(key, plain)?,
            Cipher::AesGcm { key, .. } => gcm_seal(key, plain, aad)?,
            Cipher::Secretbox { key, .. } => secretbox_seal(key, plain)?,
        };
        let mut out = self.prefix().unwrap_or_default();
        out.extend(body);
        Ok(out)
    }

    fn open(&self, body: &[u8], aad: &[u8]) -> Result<Vec<u8>, EncryptionError> {
        match self {
            Cipher::Identity => Ok(body.to_vec()),
            Cipher::AesCbc { key, .. } => cbc_decrypt(key, body),
            Cipher::AesGcm { key, .. } => gcm_open(key, body, aad),
            Cipher::Secretbox { key, .. } => secretbox_open(key, body),
        }
    }
}

/// The providers of one resource rule: the first encrypts, all decrypt.
#[derive(Debug)]
pub struct Transformer {
    ciphers: Vec<Cipher>,
}

impl Transformer {
    pub fn new(ciphers: Vec<Cipher>) -> Transformer {
        Transformer { ciphers }
    }

    /// The value as written to etcd under `key`.
    pub fn seal(&self, key: &str, plain: &[u8]) -> Result<Vec<u8>, EncryptionError> {
        match self.ciphers.first() {
            Some(c) => c.seal(plain, key.as_bytes()),
            None => Ok(plain.to_vec()),
        }
    }

    /// The plaintext of a value read from etcd under `key`.
    pub fn open<'a>(&self, key: &str, stored: &'a [u8]) -> Result<Cow<'a, [u8]>, EncryptionError> {
        let mut last_error = None;
        for c in &self.ciphers {
            let Some(prefix) = c.prefix() else { continue };
            if let Some(body) = stored.strip_prefix(prefix.as_slice()) {
                match c.open(body, key.as_bytes()) {
                    Ok(p) => return Ok(Cow::Owned(p)),
                    Err(e) => last_error = Some(e),
                }
            }
        }
        if let Some(e) = last_error {
            return Err(e);
        }
        if self.ciphers.iter().any(|c| matches!(c, Cipher::Identity))
            && !stored.starts_with(b"k8s:enc:")
        {
            return Ok(Cow::Borrowed(stored));
        }
        Err(EncryptionError::NoMatchingPrefix)
    }
}

/// Every configured transformer, by etcd resource prefix (`/registry/<plural>/`).
#[derive(Debug, Default)]
pub struct Encryption {
    by_plural: HashMap<String, Arc<Transformer>>,
}

/// Whether a config resource (`secrets`, `deployments.apps`, `*.apps`, `*.*`) covers
/// a registry resource.
fn covers(pattern: &str, plural: &str, group: &str) -> bool {
    let (p, g) = pattern.split_once('.').unwrap_or((pattern, ""));
    (p == "*" || p == plural) && (g == "*" || g == group)
}

impl Encryption {
    /// From `--encryption-provider-config`; fails with a clear message on any unknown
    /// provider, bad key or unknown resource.
    pub fn load(path: &Path) -> Result<Encryption, EncryptionError> {
        Self::from_rules(config::load(path)?)
    }

    pub fn from_rules(rules: Vec<config::Rule>) -> Result<Encryption, EncryptionError> {
        let mut by_plural = HashMap::new();
        for rule in rules {
            for pattern in &rule.resources {
                let mut matched = false;
                for info in api_types::registry::RESOURCES {
                    if covers(pattern, info.plural, info.group) {
                        matched = true;
                        // The first rule naming a resource wins, as upstream.
                        by_plural
                            .entry(info.plural.to_string())
                            .or_insert_with(|| rule.transformer.clone());
                    }
                }
                if !matched && !pattern.contains('*') {
                    tracing::warn!(resource = %pattern, "encryption configuration names a resource this apiserver does not serve");
                }
            }
        }
        for plural in by_plural.keys() {
            tracing::info!(resource = %plural, "encryption at rest configured");
        }
        Ok(Encryption { by_plural })
    }

    fn for_key(&self, key: &str) -> Option<&Transformer> {
        let plural = key.strip_prefix("/registry/")?.split('/').next()?;
        self.by_plural.get(plural).map(Arc::as_ref)
    }

    /// The bytes to store under `key`.
    pub fn seal(&self, key: &str, plain: Vec<u8>) -> Result<Vec<u8>, EncryptionError> {
        match self.for_key(key) {
            Some(t) => t.seal(key, &plain),
            None => Ok(plain),
        }
    }

    /// The plaintext of the bytes stored under `key`.
    pub fn open<'a>(&self, key: &str, stored: &'a [u8]) -> Result<Cow<'a, [u8]>, EncryptionError> {
        match self.for_key(key) {
            Some(t) => t.open(key, stored),
            None => Ok(Cow::Borrowed(stored)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY32: &str = "c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluayBzbyBzbz8="; // 32 bytes
    const KEY16: &str = "MTIzNDU2Nzg5MDEyMzQ1Ng=="; // 16 bytes

    fn cfg(providers: &str) -> Encryption {
        let text = format!("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n{providers}");
        Encryption::from_rules(config::parse(&text).expect("config parses")).expect("rules")
    }

    #[test]
    fn every_provider_round_trips_with_its_prefix() {
        for (kind, key) in [
            ("aescbc", KEY32),
            ("aescbc", KEY16),
            ("aesgcm", KEY32),
            ("aesgcm", KEY16),
            ("secretbox", KEY32),
        ] {
            let e = cfg(&format!(
                "  - {kind}:\n      keys:\n      - name: k1\n        secret: {key}\n"
            ));
            let sealed = e
                .seal("/registry/secrets/default/s", b"{\"a\":1}".to_vec())
                .expect("seal");
            assert!(
                sealed.starts_with(format!("k8s:enc:{kind}:v1:k1:").as_bytes()),
                "{kind}"
            );
            assert!(!sealed.windows(7).any(|w| w == b"{\"a\":1}"));
            assert_eq!(
                e.open("/registry/secrets/default/s", &sealed)
                    .expect("open")
                    .as_ref(),
                b"{\"a\":1}"
            );
            // Other resources are untouched.
            assert_eq!(
                e.seal("/registry/configmaps/default/c", b"x".to_vec())
                    .expect("seal"),
                b"x"
            );
        }
    }

    #[test]
    fn gcm_binds_the_etcd_key() {
        let e = cfg(&format!(
            "  - aesgcm:\n      keys:\n      - name: k1\n        secret: {KEY32}\n"
        ));
        let sealed = e
            .seal("/registry/secrets/default/a", b"v".to_vec())
            .expect("seal");
        assert!(e.open("/registry/secrets/default/b", &sealed).is_err());
    }

    #[test]
    fn identity_reads_plain_only_when_listed() {
        let without = cfg(&format!(
            "  - aescbc:\n      keys:\n      - name: k1\n        secret: {KEY32}\n"
        ));
        assert!(matches!(
            without.open("/registry/secrets/a/b", b"{}"),
            Err(EncryptionError::NoMatchingPrefix)
        ));
        let with = cfg(&format!("  - aescbc:\n      keys:\n      - name: k1\n        secret: {KEY32}\n  - identity: {{}}\n"));
        assert_eq!(
            with.open("/registry/secrets/a/b", b"{}")
                .expect("plain")
                .as_ref(),
            b"{}"
        );
    }

    #[test]
    fn rotation_reads_old_keys() {
        let old = cfg(&format!(
            "  - secretbox:\n      keys:\n      - name: old\n        secret: {KEY32}\n"
        ));
        let sealed = old
            .seal("/registry/secrets/a/b", b"v".to_vec())
            .expect("seal");
        let new = cfg(&format!(
            "  - aescbc:\n      keys:\n      - name: new\n        secret: {KEY16}\n  - secretbox:\n      keys:\n      - name: old\n        secret: {KEY32}\n"
        ));
        assert_eq!(
            new.open("/registry/secrets/a/b", &sealed)
                .expect("old key")
                .as_ref(),
            b"v"
        );
        assert!(new
            .seal("/registry/secrets/a/b", b"v".to_vec())
            .expect("seal")
            .starts_with(b"k8s:enc:aescbc:v1:new:"));
    }

    #[test]
    fn bad_configs_are_rejected() {
        let bad = [
            "  - foo: {}\n".to_string(),
            "  - aescbc:\n      keys:\n      - name: k\n        secret: c2hvcnQ=\n".to_string(),
            "  - secretbox:\n      keys:\n      - name: k\n        secret: MTIzNDU2Nzg5MDEyMzQ1Ng==\n".to_string(),
            format!("  - aescbc:\n      keys:\n      - name: a:b\n        secret: {KEY32}\n"),
        ];
        for providers in bad {
            let text = format!("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n{providers}");
            assert!(config::parse(&text).is_err(), "{providers}");
        }
        let legacy = "kind: EncryptionConfig\napiVersion: v1\nresources:\n- resources: [secrets]\n  providers:\n  - identity: {}\n";
        assert!(config::parse(legacy).is_ok());
    }

    #[test]
    fn resource_patterns() {
        assert!(covers("secrets", "secrets", ""));
        assert!(covers("*.*", "deployments", "apps"));
        assert!(covers("*.apps", "deployments", "apps"));
        assert!(!covers("*.apps", "secrets", ""));
        assert!(covers("deployments.apps", "deployments", "apps"));
    }
}
