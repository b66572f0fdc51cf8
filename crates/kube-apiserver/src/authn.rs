//! Request authentication for the secure port, in upstream's order
//! (`apiserver/pkg/authentication/authenticatorfactory` + `union`):
//! x509 client certificate, then `Authorization: Bearer` tokens (token file, and later
//! service-account JWTs / bootstrap tokens through [`TokenAuthenticator`]), then
//! anonymous. A bearer token nobody recognises fails the request (401) even when
//! anonymous access is on, as upstream's `union.NewFailOnError(authn, anonymous)`.

pub mod bootstrap;
pub mod review;
pub mod serviceaccount;
pub mod tokenfile;
pub mod x509;

use axum::http::{header::AUTHORIZATION, HeaderMap};
use rustls::pki_types::CertificateDer;

use crate::options::Options;

/// Upstream's well-known user and group names (`k8s.io/apiserver/pkg/authentication/user`).
pub const ANONYMOUS_USER: &str = "system:anonymous";
pub const ALL_AUTHENTICATED: &str = "system:authenticated";
pub const ALL_UNAUTHENTICATED: &str = "system:unauthenticated";
pub const SYSTEM_PRIVILEGED_GROUP: &str = "system:masters";
/// The identity given to requests on the insecure port.
pub const INSECURE_USER: &str = "system:unsecured";

/// The authenticated identity of a request, carried as a request extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    /// `system:anonymous` in `system:unauthenticated`.
    pub fn anonymous() -> UserInfo {
        UserInfo {
            name: ANONYMOUS_USER.into(),
            uid: String::new(),
            groups: vec![ALL_UNAUTHENTICATED.into()],
        }
    }

    /// The privileged identity of the insecure port (upstream's `insecureSuperuser`).
    pub fn insecure_superuser() -> UserInfo {
        UserInfo {
            name: INSECURE_USER.into(),
            uid: String::new(),
            groups: vec![SYSTEM_PRIVILEGED_GROUP.into(), ALL_AUTHENTICATED.into()],
        }
    }
}

/// The client certificate chain of the connection (empty without one), carried as a
/// request extension. On the secure port it was verified against `--client-ca-file`.
#[derive(Debug, Clone, Default)]
pub struct PeerCertificates(pub Vec<CertificateDer<'static>>);

/// The outcome of authenticating one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthResult {
    /// A credential was presented and accepted.
    User(UserInfo),
    /// No credential, and anonymous requests are allowed (user [`UserInfo::anonymous`]).
    Anonymous,
    /// A credential was presented and rejected, or none was presented and anonymous
    /// requests are off: answer 401.
    Invalid,
}

/// One way to turn a bearer token into a user: the token file now; service-account
/// JWTs and bootstrap tokens plug in here later. Implementations must be cheap and
/// non-blocking (look-ups go to in-memory caches).
pub trait TokenAuthenticator: Send + Sync {
    /// Short name for logs.
    fn name(&self) -> &'static str;
    /// The user the token belongs to, or `None` if this authenticator does not accept it.
    fn authenticate_token(&self, token: &str) -> Option<UserInfo>;
}

/// The secure port's authenticator chain.
pub struct Authenticator {
    /// Whether `--client-ca-file` is set: only then does rustls ask for (and verify)
    /// client certificates, so only then is a peer chain trusted.
    client_certs: bool,
    token_authenticators: Vec<Box<dyn TokenAuthenticator>>,
    anonymous: bool,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tokens: Vec<&str> = self.token_authenticators.iter().map(|a| a.name()).collect();
        f.debug_struct("Authenticator")
            .field("client_certs", &self.client_certs)
            .field("token_authenticators", &tokens)
            .field("anonymous", &self.anonymous)
            .finish()
    }
}

impl Authenticator {
    /// An authenticator with no token authenticators.
    pub fn new(client_certs: bool, anonymous: bool) -> Authenticator {
        Authenticator {
            client_certs,
            token_authenticators: Vec::new(),
            anonymous,
        }
    }

    /// Builds the chain from the flags (`--client-ca-file`, `--token-auth-file`,
    /// `--anonymous-auth`).
    pub fn from_options(opts: &Options) -> anyhow::Result<Authenticator> {
        let mut authn = Authenticator::new(opts.client_ca_file.is_some(), opts.anonymous_auth);
        if let Some(path) = &opts.token_auth_file {
            let file = tokenfile::TokenFile::load(path)?;
            tracing::info!(path = %path.display(), tokens = file.len(), "loaded token auth file");
            authn.add_token_authenticator(Box::new(file));
        }
        Ok(authn)
    }

    /// Adds the authenticators that need cluster state: service-account JWTs (when
    /// keys are configured) and, with `--enable-bootstrap-token-auth`, bootstrap tokens.
    pub fn with_cluster(
        mut self,
        cache: std::sync::Arc<crate::cache::WatchCache>,
        token_keys: Option<std::sync::Arc<crate::serviceaccount::TokenKeys>>,
        bootstrap_tokens: bool,
    ) -> Authenticator {
        if let Some(keys) = token_keys {
            self.add_token_authenticator(Box::new(
                serviceaccount::ServiceAccountAuthenticator::new(keys, Some(cache.clone())),
            ));
        }
        if bootstrap_tokens {
            self.add_token_authenticator(Box::new(bootstrap::BootstrapTokenAuthenticator::new(
                cache,
            )));
        }
        self
    }

    /// The user of a bearer token according to the token authenticators only (TokenReview).
    pub fn authenticate_token(&self, token: &str) -> Option<UserInfo> {
        self.token_authenticators
            .iter()
            .find_map(|a| a.authenticate_token(token))
            .map(with_authenticated_group)
    }

    /// Appends a bearer-token authenticator; they are tried in the order added.
    pub fn add_token_authenticator(&mut self, authenticator: Box<dyn TokenAuthenticator>) {
        self.token_authenticators.push(authenticator);
    }

    pub fn anonymous_enabled(&self) -> bool {
        self.anonymous
    }

    /// Authenticates one request from its headers and the connection's verified
    /// client certificate chain.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        peer_certs: &[CertificateDer<'_>],
    ) -> AuthResult {
        if self.client_certs {
            if let Some(user) = x509::user_from_chain(peer_certs) {
                return AuthResult::User(with_authenticated_group(user));
            }
        }
        if let Some(token) = bearer_token(headers) {
            for authenticator in &self.token_authenticators {
                if let Some(user) = authenticator.authenticate_token(token) {
                    return AuthResult::User(with_authenticated_group(user));
                }
            }
            tracing::debug!("bearer token rejected");
            return AuthResult::Invalid;
        }
        if self.anonymous {
            AuthResult::Anonymous
        } else {
            AuthResult::Invalid
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header, parsed as upstream's
/// `bearertoken` authenticator: other schemes and empty tokens count as no token.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let mut parts = value.splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return None;
    }
    Some(token)
}

/// Upstream's `AuthenticatedGroupAdder`: every authenticated user is in
/// `system:authenticated` unless it already names one of the two catch-all groups.
fn with_authenticated_group(mut user: UserInfo) -> UserInfo {
    let has_catch_all = user
        .groups
        .iter()
        .any(|g| g == ALL_AUTHENTICATED || g == ALL_UNAUTHENTICATED);
    if user.name != ANONYMOUS_USER && !has_catch_all {
        user.groups.push(ALL_AUTHENTICATED.into());
    }
    user
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn token_authn(anonymous: bool) -> Authenticator {
        let mut authn = Authenticator::new(false, anonymous);
        let file =
            tokenfile::TokenFile::parse("secret,alice,42,\"devs,ops\"\n").expect("token file");
        authn.add_token_authenticator(Box::new(file));
        authn
    }

    fn auth_header(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).expect("header"));
        headers
    }

    #[test]
    fn token_hit_adds_authenticated_group() {
        let authn = token_authn(true);
        let expected = UserInfo {
            name: "alice".into(),
            uid: "42".into(),
            groups: vec!["devs".into(), "ops".into(), ALL_AUTHENTICATED.into()],
        };
        assert_eq!(
            authn.authenticate(&auth_header("Bearer secret"), &[]),
            AuthResult::User(expected.clone())
        );
        // Scheme is case-insensitive; surrounding spaces are trimmed.
        assert_eq!(
            authn.authenticate(&auth_header("  bearer secret "), &[]),
            AuthResult::User(expected)
        );
    }

    #[test]
    fn token_miss_is_invalid_even_with_anonymous() {
        assert_eq!(
            token_authn(true).authenticate(&auth_header("Bearer wrong"), &[]),
            AuthResult::Invalid
        );
        assert_eq!(
            token_authn(false).authenticate(&auth_header("Bearer wrong"), &[]),
            AuthResult::Invalid
        );
        // Without any token authenticator a token is still rejected, as upstream.
        let bare = Authenticator::new(false, true);
        assert_eq!(
            bare.authenticate(&auth_header("Bearer secret"), &[]),
            AuthResult::Invalid
        );
    }

    #[test]
    fn anonymous_on_and_off() {
        let none = HeaderMap::new();
        assert_eq!(
            token_authn(true).authenticate(&none, &[]),
            AuthResult::Anonymous
        );
        assert_eq!(
            token_authn(false).authenticate(&none, &[]),
            AuthResult::Invalid
        );
        // Other schemes and empty bearer tokens are "no credential".
        assert_eq!(
            token_authn(true).authenticate(&auth_header("Basic YTpi"), &[]),
            AuthResult::Anonymous
        );
        assert_eq!(
            token_authn(true).authenticate(&auth_header("Bearer"), &[]),
            AuthResult::Anonymous
        );
        assert_eq!(
            token_authn(false).authenticate(&auth_header("Bearer  secret"), &[]),
            AuthResult::Invalid
        );
    }

    #[test]
    fn client_cert_wins_over_token_only_when_client_ca_configured() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "bob");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "system:masters");
        let chain = [params.self_signed(&key).expect("cert").der().clone()];

        let mut with_ca = Authenticator::new(true, false);
        with_ca.add_token_authenticator(Box::new(
            tokenfile::TokenFile::parse("secret,alice,42\n").expect("token file"),
        ));
        let AuthResult::User(user) = with_ca.authenticate(&auth_header("Bearer secret"), &chain)
        else {
            panic!("expected a user");
        };
        assert_eq!(user.name, "bob");
        assert_eq!(
            user.groups,
            vec!["system:masters".to_string(), ALL_AUTHENTICATED.to_string()]
        );

        // Without --client-ca-file the chain is not trusted: the token decides.
        let without_ca = token_authn(false);
        let AuthResult::User(user) = without_ca.authenticate(&auth_header("Bearer secret"), &chain)
        else {
            panic!("expected a user");
        };
        assert_eq!(user.name, "alice");
    }

    #[test]
    fn from_options_loads_token_file() {
        use clap::Parser;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens.csv");
        std::fs::write(&path, "tok,carol,7\n").expect("write");
        let path_arg = format!("--token-auth-file={}", path.display());
        let opts = Options::try_parse_from([
            "kube-apiserver",
            path_arg.as_str(),
            "--anonymous-auth=false",
        ])
        .expect("flags");
        let authn = Authenticator::from_options(&opts).expect("authn");
        assert!(!authn.anonymous_enabled());
        assert!(
            matches!(authn.authenticate(&auth_header("Bearer tok"), &[]), AuthResult::User(u) if u.name == "carol")
        );

        let missing = format!(
            "--token-auth-file={}",
            dir.path().join("absent.csv").display()
        );
        let opts = Options::try_parse_from(["kube-apiserver", missing.as_str()]).expect("flags");
        assert!(Authenticator::from_options(&opts).is_err());
    }
}
