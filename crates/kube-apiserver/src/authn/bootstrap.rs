//! Bootstrap tokens (upstream `plugin/pkg/auth/authenticator/token/bootstrap`): a token
//! `<id>.<secret>` (`[a-z0-9]{6}.[a-z0-9]{16}`) matching the `kube-system` Secret
//! `bootstrap-token-<id>` of type `bootstrap.kubernetes.io/token` with
//! `usage-bootstrap-authentication: "true"` and no past `expiration` authenticates as
//! `system:bootstrap:<id>` in `system:bootstrappers` plus its `auth-extra-groups`.

use std::sync::Arc;

use base64::{engine::general_purpose::STANDARD, Engine};
use serde_json::Value;

use super::{TokenAuthenticator, UserInfo};
use crate::cache::WatchCache;

pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
pub const BOOTSTRAPPERS_GROUP: &str = "system:bootstrappers";

/// Splits a well-formed bootstrap token into (id, secret).
pub fn parse_token(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let ok = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (ok(id, 6) && ok(secret, 16)).then_some((id, secret))
}

fn data(secret: &Value, key: &str) -> Option<String> {
    let raw = secret
        .pointer(&format!("/data/{key}"))
        .and_then(Value::as_str)?;
    String::from_utf8(STANDARD.decode(raw).ok()?).ok()
}

/// The user a bootstrap token Secret grants for `(id, secret)`, checked at `now`.
pub fn user_from_secret(
    secret_obj: &Value,
    id: &str,
    token_secret: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<UserInfo> {
    if secret_obj.get("type").and_then(Value::as_str) != Some(SECRET_TYPE)
        || api_types::meta::deletion_timestamp(secret_obj).is_some()
    {
        return None;
    }
    if data(secret_obj, "token-id").as_deref() != Some(id) {
        return None;
    }
    let stored = data(secret_obj, "token-secret")?;
    // Constant-time comparison of the secret part.
    if stored.len() != token_secret.len()
        || stored
            .bytes()
            .zip(token_secret.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            != 0
    {
        return None;
    }
    if data(secret_obj, "usage-bootstrap-authentication").as_deref() != Some("true") {
        return None;
    }
    if let Some(exp) = data(secret_obj, "expiration") {
        let exp = chrono::DateTime::parse_from_rfc3339(&exp).ok()?;
        if exp < now {
            return None;
        }
    }
    let mut groups = vec![BOOTSTRAPPERS_GROUP.to_string()];
    if let Some(extra) = data(secret_obj, "auth-extra-groups") {
        for g in extra.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            // Only `system:bootstrappers:*` groups may be added (upstream validation).
            if g.starts_with("system:bootstrappers:") && !groups.iter().any(|x| x == g) {
                groups.push(g.to_string());
            }
        }
    }
    Some(UserInfo {
        name: format!("system:bootstrap:{id}"),
        uid: String::new(),
        groups,
    })
}

pub struct BootstrapTokenAuthenticator {
    cache: Arc<WatchCache>,
}

impl BootstrapTokenAuthenticator {
    pub fn new(cache: Arc<WatchCache>) -> Self {
        BootstrapTokenAuthenticator { cache }
    }
}

impl TokenAuthenticator for BootstrapTokenAuthenticator {
    fn name(&self) -> &'static str {
        "bootstrap-token"
    }

    fn authenticate_token(&self, token: &str) -> Option<UserInfo> {
        let (id, secret) = parse_token(token)?;
        let info = api_types::registry::lookup("", "v1", "secrets")?;
        let obj = self
            .cache
            .resource(info)?
            .get(&info.key(Some("kube-system"), &format!("bootstrap-token-{id}")))?;
        user_from_secret(&obj.selectable, id, secret, chrono::Utc::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(extra: &[(&str, &str)]) -> Value {
        let mut data = serde_json::Map::new();
        for (k, v) in [
            ("token-id", "abcdef"),
            ("token-secret", "0123456789abcdef"),
            ("usage-bootstrap-authentication", "true"),
        ]
        .iter()
        .chain(extra)
        {
            data.insert((*k).into(), json!(STANDARD.encode(v)));
        }
        json!({"type": SECRET_TYPE, "metadata": {"name": "bootstrap-token-abcdef", "namespace": "kube-system"}, "data": data})
    }

    #[test]
    fn valid_expired_and_wrong_tokens() {
        assert_eq!(
            parse_token("abcdef.0123456789abcdef"),
            Some(("abcdef", "0123456789abcdef"))
        );
        assert_eq!(parse_token("ABCDEF.0123456789abcdef"), None);
        assert_eq!(parse_token("abcdef.0123456789abcde"), None);
        let now = chrono::Utc::now();
        let user = user_from_secret(
            &secret(&[(
                "auth-extra-groups",
                "system:bootstrappers:kubeadm:default-node-token,system:masters",
            )]),
            "abcdef",
            "0123456789abcdef",
            now,
        )
        .expect("user");
        assert_eq!(user.name, "system:bootstrap:abcdef");
        assert_eq!(
            user.groups,
            vec![
                "system:bootstrappers",
                "system:bootstrappers:kubeadm:default-node-token"
            ]
        );
        assert!(user_from_secret(&secret(&[]), "abcdef", "0123456789abcdee", now).is_none());
        assert!(user_from_secret(
            &secret(&[("expiration", "2000-01-01T00:00:00Z")]),
            "abcdef",
            "0123456789abcdef",
            now
        )
        .is_none());
        let mut no_usage = secret(&[]);
        no_usage["data"]["usage-bootstrap-authentication"] = json!(STANDARD.encode("false"));
        assert!(user_from_secret(&no_usage, "abcdef", "0123456789abcdef", now).is_none());
    }
}
