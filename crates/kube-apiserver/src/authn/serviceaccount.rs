//! The service-account token authenticator (upstream `pkg/serviceaccount/jwt.go` +
//! `lookup.go`): a JWT signed by one of the `--service-account-key-file` keys, from an
//! accepted issuer and audience, whose service account (and bound pod/secret) still
//! exists with the same uid, authenticates as `system:serviceaccount:<ns>:<name>` in
//! `system:serviceaccounts` and `system:serviceaccounts:<ns>`.

use std::sync::Arc;

use api_types::meta;
use base64::{engine::general_purpose::STANDARD, Engine};
use serde_json::Value;

use super::{TokenAuthenticator, UserInfo};
use crate::{cache::WatchCache, serviceaccount::TokenKeys};

pub const SERVICE_ACCOUNTS_GROUP: &str = "system:serviceaccounts";

/// The user of a service account (upstream `serviceaccount.UserInfo`).
pub fn service_account_user(namespace: &str, name: &str, uid: &str) -> UserInfo {
    UserInfo {
        name: format!("system:serviceaccount:{namespace}:{name}"),
        uid: uid.to_string(),
        groups: vec![
            SERVICE_ACCOUNTS_GROUP.into(),
            format!("{SERVICE_ACCOUNTS_GROUP}:{namespace}"),
        ],
    }
}

pub struct ServiceAccountAuthenticator {
    keys: Arc<TokenKeys>,
    /// `--service-account-lookup`: check the objects still exist (always on for bound tokens).
    cache: Option<Arc<WatchCache>>,
}

impl ServiceAccountAuthenticator {
    pub fn new(keys: Arc<TokenKeys>, cache: Option<Arc<WatchCache>>) -> Self {
        ServiceAccountAuthenticator { keys, cache }
    }

    fn cached(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let cache = self.cache.as_ref()?;
        let info = api_types::registry::lookup("", "v1", plural)?;
        cache
            .resource(info)?
            .get(&info.key(Some(namespace), name))
            .map(|o| o.selectable.clone())
    }

    /// The object exists, is not being deleted, and has `uid` (when given).
    fn alive(&self, plural: &str, namespace: &str, name: &str, uid: &str) -> Option<Value> {
        let obj = self.cached(plural, namespace, name)?;
        if meta::deletion_timestamp(&obj).is_some()
            || (!uid.is_empty() && meta::uid(&obj) != Some(uid))
        {
            return None;
        }
        Some(obj)
    }
}

impl TokenAuthenticator for ServiceAccountAuthenticator {
    fn name(&self) -> &'static str {
        "serviceaccount"
    }

    fn authenticate_token(&self, token: &str) -> Option<UserInfo> {
        if token.matches('.').count() != 2 {
            return None;
        }
        let now = chrono::Utc::now().timestamp();
        let claims = match self.keys.verify(token, now) {
            Ok(c) => c,
            Err(err) => {
                tracing::debug!(%err, "service account token rejected");
                return None;
            }
        };
        let mut uid = claims.uid.clone();
        if self.cache.is_some() {
            let sa = self.alive(
                "serviceaccounts",
                &claims.namespace,
                &claims.name,
                &claims.uid,
            )?;
            uid = meta::uid(&sa).unwrap_or("").to_string();
            match &claims.bound {
                Some((kind, name, bound_uid)) if kind == "pod" => {
                    self.alive("pods", &claims.namespace, name, bound_uid)?;
                }
                Some((kind, name, bound_uid)) if kind == "secret" => {
                    let secret = self.alive("secrets", &claims.namespace, name, bound_uid)?;
                    // A legacy token must still be the one stored in its secret.
                    if claims.expires == 0 {
                        let stored = secret
                            .pointer("/data/token")
                            .and_then(Value::as_str)
                            .and_then(|t| STANDARD.decode(t).ok());
                        if stored.as_deref() != Some(token.as_bytes()) {
                            return None;
                        }
                    }
                }
                _ => {}
            }
        } else if claims.expires == 0 {
            // Legacy tokens cannot be checked without the secret.
            return None;
        }
        Some(service_account_user(&claims.namespace, &claims.name, &uid))
    }
}
