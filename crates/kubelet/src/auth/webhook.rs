//! The API-backed halves of the kubelet's auth: TokenReview for bearer tokens and
//! SubjectAccessReview for authorization, each answer cached for a while as
//! upstream's webhook authenticator/authorizer do (2 min; 5 min allowed / 30 s denied).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use parking_lot::Mutex;

use super::{Attributes, AuthnError, UserInfo};

/// Entries kept at most per cache; past that, expired ones are dropped (and if
/// none were, everything), so a flood of distinct tokens cannot grow memory.
const MAX_CACHE_ENTRIES: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("SubjectAccessReview failed: {0}")]
    Review(#[source] kube::Error),
}

struct TtlCache<V> {
    entries: Mutex<HashMap<String, (Instant, V)>>,
}

impl<V: Clone> TtlCache<V> {
    fn new() -> Self {
        TtlCache {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &str) -> Option<V> {
        let entries = self.entries.lock();
        entries
            .get(key)
            .filter(|(until, _)| *until > Instant::now())
            .map(|(_, v)| v.clone())
    }

    fn put(&self, key: String, value: V, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock();
        if entries.len() >= MAX_CACHE_ENTRIES {
            let now = Instant::now();
            entries.retain(|_, (until, _)| *until > now);
            if entries.len() >= MAX_CACHE_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now() + ttl, value));
    }
}

/// `--authentication-token-webhook`: bearer tokens checked with the TokenReview API.
pub struct TokenReviewer {
    client: kube::Client,
    ttl: Duration,
    cache: TtlCache<Option<UserInfo>>,
}

impl TokenReviewer {
    pub fn new(client: kube::Client, ttl: Duration) -> Self {
        TokenReviewer {
            client,
            ttl,
            cache: TtlCache::new(),
        }
    }

    /// The token's user, `None` when the apiserver says it is not authenticated.
    pub async fn review(&self, token: &str) -> Result<Option<UserInfo>, AuthnError> {
        if let Some(answer) = self.cache.get(token) {
            return Ok(answer);
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: None,
            },
            ..Default::default()
        };
        let answer = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| AuthnError::Review(e.to_string()))?;
        let status = answer.status.unwrap_or_default();
        let user = match (status.authenticated, status.user) {
            (Some(true), Some(u)) => Some(UserInfo {
                name: u.username.unwrap_or_default(),
                uid: u.uid.unwrap_or_default(),
                groups: u.groups.unwrap_or_default(),
                extra: u.extra.unwrap_or_default(),
            }),
            _ => None,
        };
        self.cache.put(token.to_string(), user.clone(), self.ttl);
        Ok(user)
    }
}

/// `--authorization-mode=Webhook`: each request authorized with a SubjectAccessReview.
pub struct SubjectAccessReviewer {
    client: kube::Client,
    allowed_ttl: Duration,
    denied_ttl: Duration,
    cache: TtlCache<bool>,
}

impl SubjectAccessReviewer {
    pub fn new(client: kube::Client, allowed_ttl: Duration, denied_ttl: Duration) -> Self {
        SubjectAccessReviewer {
            client,
            allowed_ttl,
            denied_ttl,
            cache: TtlCache::new(),
        }
    }

    pub async fn allowed(&self, user: &UserInfo, attrs: &Attributes) -> Result<bool, Error> {
        let spec = SubjectAccessReviewSpec {
            user: Some(user.name.clone()),
            uid: Some(user.uid.clone()).filter(|u| !u.is_empty()),
            groups: Some(user.groups.clone()),
            extra: Some(user.extra.clone()).filter(|e| !e.is_empty()),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(attrs.verb.clone()),
                group: Some(String::new()),
                version: Some("v1".into()),
                resource: Some(attrs.resource.into()),
                subresource: Some(attrs.subresource.into()),
                name: Some(attrs.name.clone()),
                ..Default::default()
            }),
            non_resource_attributes: None,
        };
        let key = serde_json::to_string(&spec).unwrap_or_default();
        if let Some(allowed) = self.cache.get(&key) {
            return Ok(allowed);
        }
        let review = SubjectAccessReview {
            spec,
            ..Default::default()
        };
        let answer = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(Error::Review)?;
        let allowed = answer.status.is_some_and(|s| s.allowed);
        self.cache.put(
            key,
            allowed,
            if allowed {
                self.allowed_ttl
            } else {
                self.denied_ttl
            },
        );
        Ok(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_cache_expires_and_is_bounded() {
        let cache = TtlCache::new();
        cache.put("a".into(), 1, Duration::from_secs(60));
        cache.put("z".into(), 0, Duration::ZERO);
        assert_eq!(cache.get("a"), Some(1));
        assert_eq!(cache.get("z"), None);
        cache.put("b".into(), 2, Duration::from_nanos(1));
        std::thread::sleep(Duration::from_millis(1));
        assert_eq!(cache.get("b"), None);
        for i in 0..MAX_CACHE_ENTRIES + 10 {
            cache.put(format!("k{i}"), i, Duration::from_secs(60));
        }
        assert!(cache.entries.lock().len() <= MAX_CACHE_ENTRIES);
    }
}
