//! Service account tokens for projected volumes (upstream
//! `pkg/kubelet/token/token_manager.go`): requested through the TokenRequest API
//! bound to the pod, cached, and requested again once 80% of their lifetime has
//! passed or they are 24 hours old.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use parking_lot::Mutex;
use tracing::{debug, warn};

/// Tokens older than this are refreshed whatever their expiration.
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// What a token is requested for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenKey {
    pub namespace: String,
    pub service_account: String,
    pub audiences: Vec<String>,
    pub expiration_seconds: i64,
    pub pod_name: String,
    pub pod_uid: String,
}

#[derive(Debug, Clone)]
struct Cached {
    token: String,
    /// Issued-at and expiry, seconds since the epoch.
    issued: i64,
    expires: i64,
}

impl Cached {
    /// Upstream's `requiresRefresh` (without its jitter): 80% of the lifetime
    /// passed, or older than a day.
    fn requires_refresh(&self, now: i64) -> bool {
        let ttl = self.expires - self.issued;
        now >= self.expires
            || now >= self.issued + MAX_TTL.as_secs() as i64
            || now >= self.expires - ttl * 20 / 100
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no API server configured")]
    NoClient,
    #[error("failed to fetch token: {0}")]
    Request(#[from] kube::Error),
    #[error("failed to fetch token: the TokenRequest response has no token")]
    Empty,
}

/// The node's token cache, shared by all pod workers.
#[derive(Clone, Default)]
pub struct TokenManager {
    cache: Arc<Mutex<HashMap<TokenKey, Cached>>>,
}

impl TokenManager {
    /// A valid token for `key`, from the cache unless it needs a refresh. When a
    /// refresh fails, a token that has not expired yet is still returned.
    pub async fn get(
        &self,
        client: Option<&kube::Client>,
        key: &TokenKey,
    ) -> Result<String, TokenError> {
        let now = Timestamp::now().as_second();
        let cached = self.cache.lock().get(key).cloned();
        if let Some(c) = cached.as_ref().filter(|c| !c.requires_refresh(now)) {
            return Ok(c.token.clone());
        }
        match request(client, key).await {
            Ok(fresh) => {
                debug!(namespace = %key.namespace, service_account = %key.service_account, expires = fresh.expires, "service account token issued");
                let token = fresh.token.clone();
                self.cache.lock().insert(key.clone(), fresh);
                Ok(token)
            }
            Err(err) => match cached.filter(|c| now < c.expires) {
                Some(c) => {
                    warn!(namespace = %key.namespace, service_account = %key.service_account, "refreshing token: {err}; using the current one");
                    Ok(c.token)
                }
                None => Err(err),
            },
        }
    }

    /// Drops the tokens bound to a pod that is gone.
    pub fn forget_pod(&self, uid: &str) {
        self.cache.lock().retain(|k, _| k.pod_uid != uid);
    }
}

async fn request(client: Option<&kube::Client>, key: &TokenKey) -> Result<Cached, TokenError> {
    let client = client.ok_or(TokenError::NoClient)?;
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &key.namespace);
    let body = TokenRequest {
        spec: TokenRequestSpec {
            audiences: key.audiences.clone(),
            expiration_seconds: Some(key.expiration_seconds),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(key.pod_name.clone()),
                uid: Some(key.pod_uid.clone()),
            }),
        },
        ..Default::default()
    };
    let answer: TokenRequest = api
        .create_subresource("token", &key.service_account, &PostParams::default(), &body)
        .await?;
    let status = answer
        .status
        .filter(|s| !s.token.is_empty())
        .ok_or(TokenError::Empty)?;
    let expires = status.expiration_timestamp.0.as_second();
    let lifetime = answer
        .spec
        .expiration_seconds
        .unwrap_or(key.expiration_seconds);
    Ok(Cached {
        token: status.token,
        issued: expires - lifetime,
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_at_80_percent_or_after_a_day() {
        let c = Cached {
            token: String::new(),
            issued: 1000,
            expires: 1000 + 3600,
        };
        assert!(!c.requires_refresh(1000));
        assert!(!c.requires_refresh(1000 + 2879));
        assert!(c.requires_refresh(1000 + 2880));
        let long = Cached {
            token: String::new(),
            issued: 0,
            expires: 7 * 24 * 3600,
        };
        assert!(!long.requires_refresh(24 * 3600 - 1));
        assert!(long.requires_refresh(24 * 3600));
    }
}
