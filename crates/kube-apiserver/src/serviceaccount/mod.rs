//! Service-account tokens (upstream `pkg/serviceaccount`): compact JWS tokens signed
//! with `--service-account-signing-key-file`, issued through the
//! `serviceaccounts/token` TokenRequest subresource, and verified with
//! `--service-account-key-file` keys. Claims are upstream's bound-token claims:
//! `iss`, `sub` = `system:serviceaccount:<ns>:<name>`, `aud`, `exp`, `iat`, `nbf`,
//! `jti`, and `kubernetes.io.{namespace, serviceaccount{name,uid}, pod?, secret?, node?}`.

pub mod keys;
pub mod token_request;

use std::path::Path;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde_json::{json, Value};

pub use keys::{KeyError, SigningKey, VerifyingKey};

/// Upstream's default audience/issuer of in-cluster tokens.
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// The issuer of legacy secret-based tokens.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";
/// Clock skew tolerated on `exp`/`nbf` (upstream's jwt default leeway).
const LEEWAY_SECONDS: i64 = 60;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token is not a JWS compact serialization")]
    Malformed,
    #[error("unsupported signing algorithm")]
    Algorithm,
    #[error("invalid signature")]
    Signature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token issuer is not accepted")]
    Issuer,
    #[error("token audiences do not match the API audiences")]
    Audience,
    #[error("signing failed: {0}")]
    Sign(String),
}

/// What a verified token says about its subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountClaims {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// `(kind, name, uid)` of a bound pod or secret.
    pub bound: Option<(String, String, String)>,
    pub node: Option<String>,
    pub audiences: Vec<String>,
    pub expires: i64,
    pub jti: String,
}

/// Signs and verifies service-account tokens.
pub struct TokenKeys {
    signing: Option<SigningKey>,
    verifying: Vec<VerifyingKey>,
    /// The first one issues; all are accepted.
    pub issuers: Vec<String>,
    /// Accepted audiences (`--api-audiences`, default the issuers).
    pub audiences: Vec<String>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("signing", &self.signing)
            .field("verifying", &self.verifying.len())
            .field("issuers", &self.issuers)
            .finish()
    }
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default())
}

impl TokenKeys {
    pub fn new(
        signing: Option<SigningKey>,
        mut verifying: Vec<VerifyingKey>,
        issuers: Vec<String>,
        audiences: Vec<String>,
    ) -> Self {
        if let Some(s) = &signing {
            if !verifying.iter().any(|v| v.public == s.verifying.public) {
                verifying.push(s.verifying.clone());
            }
        }
        let issuers = if issuers.is_empty() {
            vec![DEFAULT_ISSUER.to_string()]
        } else {
            issuers
        };
        let audiences = if audiences.is_empty() {
            issuers.clone()
        } else {
            audiences
        };
        TokenKeys {
            signing,
            verifying,
            issuers,
            audiences,
        }
    }

    /// Loads the flag files; `None` when neither is given.
    pub fn from_files(
        signing: Option<&Path>,
        verifying: &[std::path::PathBuf],
        issuers: Vec<String>,
        audiences: Vec<String>,
    ) -> Result<Option<TokenKeys>, KeyError> {
        if signing.is_none() && verifying.is_empty() {
            return Ok(None);
        }
        let signing = signing.map(SigningKey::load).transpose()?;
        let mut keys = Vec::new();
        for p in verifying {
            keys.extend(keys::load_verifying_keys(p)?);
        }
        Ok(Some(TokenKeys::new(signing, keys, issuers, audiences)))
    }

    pub fn can_sign(&self) -> bool {
        self.signing.is_some()
    }

    /// Signs `claims` as a compact JWS.
    pub fn sign(&self, claims: &Value) -> Result<String, TokenError> {
        let key = self
            .signing
            .as_ref()
            .ok_or_else(|| TokenError::Sign("no --service-account-signing-key-file".into()))?;
        let header = json!({"alg": key.alg().name(), "kid": key.verifying.kid});
        let signing_input = format!("{}.{}", b64(&header), b64(claims));
        let sig = key
            .sign(signing_input.as_bytes())
            .map_err(|e| TokenError::Sign(e.to_string()))?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }

    /// The claims of a bound token for `namespace/name` (uid `uid`), valid from `now`
    /// for `expiration_seconds`.
    #[allow(clippy::too_many_arguments)]
    pub fn claims(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        audiences: &[String],
        now: i64,
        expiration_seconds: i64,
        bound: Option<(&str, &str, &str)>,
        node: Option<(&str, &str)>,
    ) -> Value {
        let mut k8s = json!({"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}});
        if let Some((kind, bname, buid)) = bound {
            k8s[kind.to_ascii_lowercase()] = json!({"name": bname, "uid": buid});
        }
        if let Some((nname, nuid)) = node {
            k8s["node"] = json!({"name": nname, "uid": nuid});
        }
        json!({
            "aud": audiences,
            "exp": now + expiration_seconds,
            "iat": now,
            "iss": self.issuers.first().map(String::as_str).unwrap_or(DEFAULT_ISSUER),
            "jti": uuid::Uuid::new_v4().to_string(),
            "kubernetes.io": k8s,
            "nbf": now,
            "sub": format!("system:serviceaccount:{namespace}:{name}"),
        })
    }

    /// Verifies signature, issuer, audience and time window.
    pub fn verify(&self, token: &str, now: i64) -> Result<ServiceAccountClaims, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let decode = |p: &str| URL_SAFE_NO_PAD.decode(p).map_err(|_| TokenError::Malformed);
        let header: Value =
            serde_json::from_slice(&decode(h)?).map_err(|_| TokenError::Malformed)?;
        let claims: Value =
            serde_json::from_slice(&decode(c)?).map_err(|_| TokenError::Malformed)?;
        let sig = decode(s)?;
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
        let kid = header.get("kid").and_then(Value::as_str);
        let message = format!("{h}.{c}");
        let candidates: Vec<&VerifyingKey> = self
            .verifying
            .iter()
            .filter(|k| k.alg.name() == alg)
            .collect();
        if candidates.is_empty() {
            return Err(TokenError::Algorithm);
        }
        // Prefer the key named by `kid`, but accept any configured key (upstream too).
        let ok = candidates
            .iter()
            .filter(|k| kid == Some(k.kid.as_str()))
            .any(|k| k.verify(message.as_bytes(), &sig))
            || candidates
                .iter()
                .any(|k| k.verify(message.as_bytes(), &sig));
        if !ok {
            return Err(TokenError::Signature);
        }
        let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
        if iss == LEGACY_ISSUER {
            return legacy_claims(&claims);
        }
        if !self.issuers.iter().any(|i| i == iss) {
            return Err(TokenError::Issuer);
        }
        let audiences: Vec<String> = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        if !audiences.iter().any(|a| self.audiences.contains(a)) {
            return Err(TokenError::Audience);
        }
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or(TokenError::Malformed)?;
        if now > exp + LEEWAY_SECONDS {
            return Err(TokenError::Expired);
        }
        if claims
            .get("nbf")
            .and_then(Value::as_i64)
            .is_some_and(|nbf| now + LEEWAY_SECONDS < nbf)
        {
            return Err(TokenError::NotYetValid);
        }
        let k8s = claims.get("kubernetes.io").ok_or(TokenError::Malformed)?;
        let str_at = |p: &str| k8s.pointer(p).and_then(Value::as_str).map(str::to_string);
        let namespace = str_at("/namespace").ok_or(TokenError::Malformed)?;
        let name = str_at("/serviceaccount/name").ok_or(TokenError::Malformed)?;
        let bound = ["pod", "secret"].iter().find_map(|kind| {
            Some((
                kind.to_string(),
                str_at(&format!("/{kind}/name"))?,
                str_at(&format!("/{kind}/uid")).unwrap_or_default(),
            ))
        });
        let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("");
        if sub != format!("system:serviceaccount:{namespace}:{name}") {
            return Err(TokenError::Malformed);
        }
        Ok(ServiceAccountClaims {
            namespace,
            name,
            uid: str_at("/serviceaccount/uid").unwrap_or_default(),
            bound,
            node: str_at("/node/name"),
            audiences,
            expires: exp,
            jti: claims
                .get("jti")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        })
    }
}

/// The file the apiserver signs tokens with when no key flag is given (as old
/// apiservers defaulted to a key of their own).
pub const SELF_GENERATED_KEY_FILE: &str = "service-account.key";

/// The token keys of the flags. Without `--service-account-signing-key-file` and
/// `--service-account-key-file`, a key is generated once in `--cert-dir` (so
/// `kubectl create token` works on a plain single apiserver); if that fails, tokens
/// are off.
pub fn from_options(
    opts: &crate::options::Options,
) -> anyhow::Result<Option<std::sync::Arc<TokenKeys>>> {
    use anyhow::Context;
    let issuers = opts.service_account_issuer.clone();
    let audiences = opts.api_audiences.clone();
    if let Some(keys) = TokenKeys::from_files(
        opts.service_account_signing_key_file.as_deref(),
        &opts.service_account_key_file,
        issuers.clone(),
        audiences.clone(),
    )
    .context("loading service account keys")?
    {
        return Ok(Some(std::sync::Arc::new(keys)));
    }
    let path = opts.cert_dir.join(SELF_GENERATED_KEY_FILE);
    let pem = match std::fs::read(&path) {
        Ok(pem) => pem,
        Err(_) => {
            let generated = SigningKey::generate_pem().map_err(|e| anyhow::anyhow!(e))?;
            let written = std::fs::create_dir_all(&opts.cert_dir)
                .and_then(|_| std::fs::write(&path, &generated));
            if let Err(err) = written {
                tracing::warn!(path = %path.display(), %err, "cannot write a service account key; service account tokens are disabled");
                return Ok(None);
            }
            tracing::info!(path = %path.display(), "generated a service account signing key");
            generated.into_bytes()
        }
    };
    let key =
        SigningKey::from_pem(&pem).with_context(|| format!("{}: no usable key", path.display()))?;
    Ok(Some(std::sync::Arc::new(TokenKeys::new(
        Some(key),
        Vec::new(),
        issuers,
        audiences,
    ))))
}

/// Legacy (secret-based, non-expiring) token claims.
fn legacy_claims(claims: &Value) -> Result<ServiceAccountClaims, TokenError> {
    let s = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(ServiceAccountClaims {
        namespace: s("kubernetes.io/serviceaccount/namespace").ok_or(TokenError::Malformed)?,
        name: s("kubernetes.io/serviceaccount/service-account.name")
            .ok_or(TokenError::Malformed)?,
        uid: s("kubernetes.io/serviceaccount/service-account.uid").unwrap_or_default(),
        bound: s("kubernetes.io/serviceaccount/secret.name")
            .map(|n| ("secret".to_string(), n, String::new())),
        node: None,
        audiences: Vec::new(),
        expires: 0,
        jti: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        let pem = SigningKey::generate_pem().expect("gen");
        TokenKeys::new(
            SigningKey::from_pem(pem.as_bytes()),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        )
    }

    #[test]
    fn issue_and_verify_round_trip() {
        let k = keys();
        let claims = k.claims(
            "ns1",
            "bot",
            "u-1",
            &[DEFAULT_ISSUER.to_string()],
            1000,
            3600,
            Some(("Pod", "p", "pu")),
            None,
        );
        let token = k.sign(&claims).expect("sign");
        let c = k.verify(&token, 1000).expect("valid");
        assert_eq!(
            (c.namespace.as_str(), c.name.as_str(), c.uid.as_str()),
            ("ns1", "bot", "u-1")
        );
        assert_eq!(c.bound, Some(("pod".into(), "p".into(), "pu".into())));
        assert_eq!(c.expires, 4600);
        assert_eq!(
            k.verify(&token, 4600 + LEEWAY_SECONDS + 1),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn tampered_truncated_and_foreign_tokens_fail() {
        let k = keys();
        let token = k
            .sign(&k.claims(
                "ns1",
                "bot",
                "u",
                &[DEFAULT_ISSUER.into()],
                0,
                3600,
                None,
                None,
            ))
            .expect("sign");
        let (head, rest) = token.split_once('.').expect("dots");
        let (payload, sig) = rest.split_once('.').expect("dots");
        let forged_claims = k.claims(
            "kube-system",
            "admin",
            "u",
            &[DEFAULT_ISSUER.into()],
            0,
            3600,
            None,
            None,
        );
        let forged = format!("{head}.{}.{sig}", b64(&forged_claims));
        assert_eq!(k.verify(&forged, 0), Err(TokenError::Signature));
        assert_eq!(
            k.verify(&format!("{head}.{payload}"), 0),
            Err(TokenError::Malformed)
        );
        for cut in 1..6 {
            let truncated = k.verify(&token[..token.len() - cut], 0);
            assert!(
                matches!(
                    truncated,
                    Err(TokenError::Signature | TokenError::Malformed)
                ),
                "{truncated:?}"
            );
        }
        assert_eq!(k.verify("not-a-jwt", 0), Err(TokenError::Malformed));
        // Another key's token is rejected; so is a foreign audience.
        assert_eq!(keys().verify(&token, 0), Err(TokenError::Signature));
        let other_aud = k
            .sign(&k.claims("a", "b", "u", &["vault".into()], 0, 3600, None, None))
            .expect("sign");
        assert_eq!(k.verify(&other_aud, 0), Err(TokenError::Audience));
    }
}
