//! `--encryption-provider-config`: the `apiserver.config.k8s.io/v1`
//! `EncryptionConfiguration` (and the older `kind: EncryptionConfig` spelling), in
//! YAML or JSON.

use std::{collections::HashSet, path::Path};

use base64::Engine;
use serde::Deserialize;

use super::{Cipher, EncryptionError, Transformer};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileConfig {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    resources: Vec<ResourceConfig>,
}

#[derive(Debug, Deserialize)]
struct ResourceConfig {
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    providers: Vec<ProviderConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProviderConfig {
    aescbc: Option<KeysConfig>,
    aesgcm: Option<KeysConfig>,
    secretbox: Option<KeysConfig>,
    identity: Option<serde_json::Value>,
    kms: Option<serde_json::Value>,
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct KeysConfig {
    #[serde(default)]
    keys: Vec<KeyConfig>,
}

#[derive(Debug, Deserialize)]
struct KeyConfig {
    #[serde(default)]
    name: String,
    #[serde(default)]
    secret: String,
}

/// One `resources:` entry: which resources it covers and how they are transformed.
#[derive(Debug)]
pub struct Rule {
    /// `secrets`, `deployments.apps`, `*.apps`, `*.*` (the group part of a core
    /// resource is empty: `secrets` or `secrets.`).
    pub resources: Vec<String>,
    pub transformer: std::sync::Arc<Transformer>,
}

/// Parses the file's text (YAML is a superset of JSON).
pub fn parse(text: &str) -> Result<Vec<Rule>, EncryptionError> {
    let cfg: FileConfig = serde_norway::from_str(text).map_err(|e| {
        EncryptionError::Config(format!(
            "error decoding encryption provider configuration: {e}"
        ))
    })?;
    match (cfg.kind.as_str(), cfg.api_version.as_str()) {
        ("EncryptionConfiguration", "apiserver.config.k8s.io/v1") | ("EncryptionConfig", "v1") | ("EncryptionConfig", "apiserver.config.k8s.io/v1") => {}
        (k, v) => {
            return Err(EncryptionError::Config(format!(
                "unsupported encryption configuration kind {k:?} / apiVersion {v:?} (want EncryptionConfiguration, apiserver.config.k8s.io/v1)"
            )))
        }
    }
    if cfg.resources.is_empty() {
        return Err(EncryptionError::Config(
            "resources: Required value: at least one resource must be specified".into(),
        ));
    }
    let mut seen = HashSet::new();
    let mut rules = Vec::new();
    for (i, r) in cfg.resources.iter().enumerate() {
        if r.resources.is_empty() {
            return Err(EncryptionError::Config(format!(
                "resources[{i}].resources: Required value: at least one resource must be specified"
            )));
        }
        if r.providers.is_empty() {
            return Err(EncryptionError::Config(format!(
                "resources[{i}].providers: Required value: at least one provider must be specified"
            )));
        }
        for res in &r.resources {
            if !seen.insert(res.clone()) {
                return Err(EncryptionError::Config(format!(
                    "resources[{i}].resources: Duplicate value: {res:?}"
                )));
            }
        }
        let mut ciphers = Vec::new();
        for (j, p) in r.providers.iter().enumerate() {
            ciphers.extend(provider(p, &format!("resources[{i}].providers[{j}]"))?);
        }
        rules.push(Rule {
            resources: r.resources.clone(),
            transformer: std::sync::Arc::new(Transformer::new(ciphers)),
        });
    }
    Ok(rules)
}

pub fn load(path: &Path) -> Result<Vec<Rule>, EncryptionError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| EncryptionError::Config(format!("reading {}: {e}", path.display())))?;
    parse(&text)
}

/// The ciphers of one provider entry, in key order.
fn provider(p: &ProviderConfig, field: &str) -> Result<Vec<Cipher>, EncryptionError> {
    let mut kinds = Vec::new();
    if let Some(k) = &p.aescbc {
        kinds.push(("aescbc", Some(k)));
    }
    if let Some(k) = &p.aesgcm {
        kinds.push(("aesgcm", Some(k)));
    }
    if let Some(k) = &p.secretbox {
        kinds.push(("secretbox", Some(k)));
    }
    if p.identity.is_some() {
        kinds.push(("identity", None));
    }
    if p.kms.is_some() {
        return Err(EncryptionError::Config(format!(
            "{field}.kms: Unsupported value: the kms provider is not supported by this apiserver"
        )));
    }
    if let Some(other) = p.other.keys().next() {
        return Err(EncryptionError::Config(format!("{field}: Unsupported value: unknown provider {other:?} (supported: aescbc, aesgcm, secretbox, identity)")));
    }
    let [(kind, keys)] = kinds.as_slice() else {
        return Err(EncryptionError::Config(format!(
            "{field}: Invalid value: exactly one provider must be configured per entry, found {}",
            kinds.len()
        )));
    };
    let Some(keys) = keys else {
        return Ok(vec![Cipher::Identity]);
    };
    if keys.keys.is_empty() {
        return Err(EncryptionError::Config(format!(
            "{field}.{kind}.keys: Required value: at least one key must be specified"
        )));
    }
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (k, key) in keys.keys.iter().enumerate() {
        let kf = format!("{field}.{kind}.keys[{k}]");
        if key.name.is_empty() {
            return Err(EncryptionError::Config(format!(
                "{kf}.name: Required value: key name is required"
            )));
        }
        if key.name.contains(':') {
            return Err(EncryptionError::Config(format!(
                "{kf}.name: Invalid value: {:?}: key name must not contain ':'",
                key.name
            )));
        }
        if !names.insert(key.name.clone()) {
            return Err(EncryptionError::Config(format!(
                "{kf}.name: Duplicate value: {:?}",
                key.name
            )));
        }
        let secret = base64::engine::general_purpose::STANDARD
            .decode(key.secret.trim())
            .map_err(|e| {
                EncryptionError::Config(format!(
                    "{kf}.secret: Invalid value: REDACTED: secrets must be base64 encoded: {e}"
                ))
            })?;
        let allowed: &[usize] = if *kind == "secretbox" {
            &[32]
        } else {
            &[16, 24, 32]
        };
        if !allowed.contains(&secret.len()) {
            return Err(EncryptionError::Config(format!(
                "{kf}.secret: Invalid value: REDACTED: secret is not of the expected length, got {}, expected one of {allowed:?}",
                secret.len()
            )));
        }
        out.push(match *kind {
            "aescbc" => Cipher::AesCbc {
                name: key.name.clone(),
                key: secret,
            },
            "aesgcm" => Cipher::AesGcm {
                name: key.name.clone(),
                key: secret,
            },
            _ => Cipher::Secretbox {
                name: key.name.clone(),
                key: secret,
            },
        });
    }
    Ok(out)
}
