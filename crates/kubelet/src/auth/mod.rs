//! Authentication and authorization of requests to the kubelet's secure port, as
//! upstream's `pkg/kubelet/server/auth.go` + `BuildAuth`: x509 client certificates
//! (verified against `--client-ca-file` during the TLS handshake), bearer tokens
//! through the TokenReview API (`--authentication-token-webhook`), then anonymous
//! (`--anonymous-auth`); authorization `AlwaysAllow` or `Webhook`
//! (SubjectAccessReview on `nodes/<subresource>` of this node).

mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rustls::pki_types::CertificateDer;
use tracing::{debug, warn};

pub use webhook::{SubjectAccessReviewer, TokenReviewer};

/// Upstream's user for unauthenticated requests and its group.
pub const ANONYMOUS_USER: &str = "system:anonymous";
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizationMode {
    AlwaysAllow,
    Webhook,
}

/// What `--client-ca-file`, `--anonymous-auth`, `--authentication-token-webhook`
/// and `--authorization-mode` (or the KubeletConfiguration) ask for.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub client_ca_file: Option<std::path::PathBuf>,
    pub anonymous: bool,
    pub token_webhook: bool,
    pub token_webhook_cache_ttl: Duration,
    pub authorization: AuthorizationMode,
    pub authorized_ttl: Duration,
    pub unauthorized_ttl: Duration,
}

impl AuthSettings {
    /// Anonymous callers may do anything: the classic, unsecured kubelet. Only then is
    /// plain HTTP also accepted on the secure port (it exposes nothing TLS would not).
    pub fn allows_everyone(&self) -> bool {
        self.anonymous && self.authorization == AuthorizationMode::AlwaysAllow
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--authentication-token-webhook and --authorization-mode=Webhook need an API client (--kubeconfig)")]
    NoClient,
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    pub fn anonymous() -> UserInfo {
        UserInfo {
            name: ANONYMOUS_USER.into(),
            groups: vec![UNAUTHENTICATED_GROUP.into()],
            ..Default::default()
        }
    }
}

/// The TLS client certificates of the connection a request came on (verified
/// against the client CA by rustls); empty on plain HTTP or without a certificate.
#[derive(Debug, Clone, Default)]
pub struct PeerCertificates(pub Arc<[CertificateDer<'static>]>);

/// The attributes a request is authorized with (upstream `GetRequestAttributes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    pub verb: String,
    pub resource: &'static str,
    pub subresource: &'static str,
    pub name: String,
    pub path: String,
}

fn is_subpath(path: &str, prefix: &str) -> bool {
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// `nodes/<subresource>` of `node` for a request: `/stats/*` → stats, `/metrics/*` →
/// metrics, `/logs/*` → log, `/spec/*` → spec, everything else → proxy; the verb
/// from the HTTP method.
pub fn request_attributes(node: &str, method: &Method, path: &str) -> Attributes {
    let verb = match *method {
        Method::POST => "create",
        Method::GET | Method::HEAD => "get",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "",
    };
    let subresource = if is_subpath(path, "/stats") {
        "stats"
    } else if is_subpath(path, "/metrics") {
        "metrics"
    } else if is_subpath(path, "/logs") {
        // "log" as the other log subresources (pods/log).
        "log"
    } else if is_subpath(path, "/spec") {
        "spec"
    } else {
        "proxy"
    };
    Attributes {
        verb: verb.into(),
        resource: "nodes",
        subresource,
        name: node.into(),
        path: path.into(),
    }
}

/// Why a request was not authenticated (all answered 401 "Unauthorized").
#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    #[error("invalid bearer token")]
    InvalidToken,
    #[error("token review failed: {0}")]
    Review(String),
    #[error("no credentials and anonymous requests are disabled")]
    NoCredentials,
}

enum Authorizer {
    AlwaysAllow,
    Webhook(SubjectAccessReviewer),
}

/// The secure port's authenticator chain and authorizer.
pub struct KubeletAuth {
    node_name: String,
    anonymous: bool,
    tokens: Option<TokenReviewer>,
    authorizer: Authorizer,
}

impl KubeletAuth {
    pub fn new(
        settings: &AuthSettings,
        client: Option<kube::Client>,
        node_name: &str,
    ) -> Result<KubeletAuth, Error> {
        let tokens = match (settings.token_webhook, &client) {
            (false, _) => None,
            (true, Some(c)) => Some(TokenReviewer::new(
                c.clone(),
                settings.token_webhook_cache_ttl,
            )),
            (true, None) => return Err(Error::NoClient),
        };
        let authorizer = match (settings.authorization, client) {
            (AuthorizationMode::AlwaysAllow, _) => Authorizer::AlwaysAllow,
            (AuthorizationMode::Webhook, Some(c)) => Authorizer::Webhook(
                SubjectAccessReviewer::new(c, settings.authorized_ttl, settings.unauthorized_ttl),
            ),
            (AuthorizationMode::Webhook, None) => return Err(Error::NoClient),
        };
        Ok(KubeletAuth {
            node_name: node_name.into(),
            anonymous: settings.anonymous,
            tokens,
            authorizer,
        })
    }

    /// Upstream's chain: x509, then bearer token, each failing the request on an
    /// invalid credential; anonymous only when no credential was presented.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        peer: Option<&PeerCertificates>,
    ) -> Result<UserInfo, AuthnError> {
        let from_cert = peer.and_then(|p| user_from_certificate(&p.0));
        let user = match from_cert {
            Some(user) => Some(user),
            None => match (&self.tokens, bearer_token(headers)) {
                (Some(reviewer), Some(token)) => Some(
                    reviewer
                        .review(token)
                        .await?
                        .ok_or(AuthnError::InvalidToken)?,
                ),
                _ => None,
            },
        };
        match user {
            Some(mut user) => {
                if !user.groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
                    user.groups.push(AUTHENTICATED_GROUP.into());
                }
                Ok(user)
            }
            None if self.anonymous => Ok(UserInfo::anonymous()),
            None => Err(AuthnError::NoCredentials),
        }
    }

    pub async fn authorize(
        &self,
        user: &UserInfo,
        attrs: &Attributes,
    ) -> Result<bool, webhook::Error> {
        match &self.authorizer {
            Authorizer::AlwaysAllow => Ok(true),
            Authorizer::Webhook(sar) => sar.allowed(user, attrs).await,
        }
    }

    pub fn node_name(&self) -> &str {
        &self.node_name
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// User = the leaf's CommonName, groups = its Organizations (upstream
/// `CommonNameUserConversion`); none for an empty CommonName.
pub fn user_from_certificate(chain: &[CertificateDer<'_>]) -> Option<UserInfo> {
    let leaf = chain.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let name = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    if name.is_empty() {
        return None;
    }
    let groups = cert
        .subject()
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(str::to_string)
        .collect();
    Some(UserInfo {
        name,
        groups,
        ..Default::default()
    })
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The filter in front of every route of the secure port (upstream `InstallAuthFilter`).
pub async fn filter(State(auth): State<Arc<KubeletAuth>>, req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<PeerCertificates>();
    let user = match auth.authenticate(req.headers(), peer).await {
        Ok(user) => user,
        Err(err) => {
            debug!(%err, path = %req.uri().path(), "unauthorized");
            return text(StatusCode::UNAUTHORIZED, "Unauthorized".into());
        }
    };
    let attrs = request_attributes(auth.node_name(), req.method(), req.uri().path());
    let describe = || {
        format!(
            "user={}, verb={}, resource={}, subresource(s)=[{}]",
            user.name, attrs.verb, attrs.resource, attrs.subresource
        )
    };
    match auth.authorize(&user, &attrs).await {
        Ok(true) => next.run(req).await,
        Ok(false) => {
            debug!(user = %user.name, verb = %attrs.verb, subresource = attrs.subresource, "forbidden");
            text(
                StatusCode::FORBIDDEN,
                format!("Forbidden ({})\n", describe()),
            )
        }
        Err(err) => {
            warn!(%err, "authorization error");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Authorization error ({})", describe()),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_follow_upstream_paths_and_verbs() {
        let a = |m: Method, p: &str| {
            let attrs = request_attributes("n1", &m, p);
            (attrs.verb, attrs.subresource)
        };
        assert_eq!(
            a(Method::GET, "/stats/summary"),
            ("get".to_string(), "stats")
        );
        assert_eq!(a(Method::GET, "/stats"), ("get".to_string(), "stats"));
        assert_eq!(a(Method::GET, "/statsfoo"), ("get".to_string(), "proxy"));
        assert_eq!(
            a(Method::GET, "/metrics/cadvisor"),
            ("get".to_string(), "metrics")
        );
        assert_eq!(a(Method::GET, "/logs/syslog"), ("get".to_string(), "log"));
        assert_eq!(a(Method::GET, "/spec/"), ("get".to_string(), "spec"));
        assert_eq!(
            a(Method::POST, "/exec/default/p/c"),
            ("create".to_string(), "proxy")
        );
        assert_eq!(
            a(Method::GET, "/containerLogs/default/p/c"),
            ("get".to_string(), "proxy")
        );
        assert_eq!(a(Method::GET, "/pods"), ("get".to_string(), "proxy"));
        assert_eq!(a(Method::PUT, "/x"), ("update".to_string(), "proxy"));
        assert_eq!(a(Method::PATCH, "/x"), ("patch".to_string(), "proxy"));
        assert_eq!(a(Method::DELETE, "/x"), ("delete".to_string(), "proxy"));
        assert_eq!(request_attributes("n1", &Method::GET, "/pods").name, "n1");
    }

    #[test]
    fn bearer_tokens_are_parsed_case_insensitively() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), None);
        h.insert(header::AUTHORIZATION, "bearer abc".parse().expect("header"));
        assert_eq!(bearer_token(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().expect("header"));
        assert_eq!(bearer_token(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer ".parse().expect("header"));
        assert_eq!(bearer_token(&h), None);
    }

    #[tokio::test]
    async fn chain_without_webhooks() {
        let settings = AuthSettings {
            client_ca_file: None,
            anonymous: false,
            token_webhook: false,
            token_webhook_cache_ttl: Duration::from_secs(1),
            authorization: AuthorizationMode::AlwaysAllow,
            authorized_ttl: Duration::from_secs(1),
            unauthorized_ttl: Duration::from_secs(1),
        };
        let auth = KubeletAuth::new(&settings, None, "n1").expect("auth");
        assert!(matches!(
            auth.authenticate(&HeaderMap::new(), None).await,
            Err(AuthnError::NoCredentials)
        ));
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "alice");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "devs");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        let peer = PeerCertificates(Arc::from(vec![cert.der().clone()]));
        let user = auth
            .authenticate(&HeaderMap::new(), Some(&peer))
            .await
            .expect("user");
        assert_eq!(
            (user.name.as_str(), user.groups.clone()),
            (
                "alice",
                vec!["devs".to_string(), AUTHENTICATED_GROUP.to_string()]
            )
        );
        let anonymous = KubeletAuth::new(
            &AuthSettings {
                anonymous: true,
                ..settings.clone()
            },
            None,
            "n1",
        )
        .expect("auth");
        assert_eq!(
            anonymous
                .authenticate(&HeaderMap::new(), None)
                .await
                .expect("anonymous"),
            UserInfo::anonymous()
        );
        assert!(matches!(
            KubeletAuth::new(
                &AuthSettings {
                    token_webhook: true,
                    ..settings
                },
                None,
                "n1"
            ),
            Err(Error::NoClient)
        ));
    }
}
