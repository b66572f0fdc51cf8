//! The HTTP client of a run: kube-rs's `Client` built from the effective
//! kubeconfig, with JSON helpers and upstream's error wording.

use futures::AsyncBufRead;
use http::{Method, Request};
use serde_json::Value;

use crate::config::{ConfigFlags, Kubeconfig};
use crate::errors::{Error, Result, ServerError};

/// `Accept` for server-side tables (falls back to plain JSON as upstream asks).
pub const ACCEPT_TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

#[derive(Clone)]
pub struct Client {
    inner: kube::Client,
    /// `scheme://host:port` for messages.
    server: String,
}

/// kube-rs sends the `Impersonate-*` headers of the user's `as`, `as-groups` and
/// `as-uid`; like client-go, refuse groups or a uid without a user to impersonate.
/// `auth_name` is the kubeconfig user entry, which upstream's message names.
fn check_impersonation(user: &Value, auth_name: &str) -> Result<()> {
    let impersonating = user
        .get("as")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    let groups = user
        .get("as-groups")
        .and_then(Value::as_array)
        .is_some_and(|g| !g.is_empty());
    let uid = user
        .get("as-uid")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if !impersonating && (groups || uid) {
        return Err(Error::usage(format!(
            "requesting uid, groups or user-extra for {auth_name} without impersonating a user"
        )));
    }
    Ok(())
}

impl Client {
    pub async fn new(kubeconfig: &Kubeconfig, flags: &ConfigFlags) -> Result<Client> {
        let effective = kubeconfig.effective(flags)?;
        let server = effective["clusters"][0]["cluster"]["server"]
            .as_str()
            .unwrap_or(crate::config::DEFAULT_SERVER)
            .to_string();
        check_impersonation(
            &effective["users"][0]["user"],
            &kubeconfig.user_name(flags).unwrap_or_default(),
        )?;
        let parsed: kube::config::Kubeconfig = serde_json::from_value(effective)
            .map_err(|e| Error::usage(format!("invalid configuration: {e}")))?;
        let options = kube::config::KubeConfigOptions {
            context: Some("kubectl".into()),
            cluster: Some("kubectl".into()),
            user: Some("kubectl".into()),
        };
        let config = kube::Config::from_custom_kubeconfig(parsed, &options)
            .await
            .map_err(|e| Error::usage(format!("invalid configuration: {e}")))?;
        let inner = kube::Client::try_from(config)
            .map_err(|e| Error::usage(format!("invalid configuration: {e}")))?;
        Ok(Client { inner, server })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// The kube-rs client underneath, for upgraded (WebSocket) requests.
    pub fn kube(&self) -> &kube::Client {
        &self.inner
    }

    fn host_port(&self) -> String {
        let without_scheme = self
            .server
            .split_once("://")
            .map_or(self.server.as_str(), |(_, rest)| rest);
        without_scheme.trim_end_matches('/').to_string()
    }

    fn build(
        &self,
        method: Method,
        path: &str,
        accept: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Request<Vec<u8>>> {
        tracing::debug!(%method, path, "request");
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::ACCEPT, accept)
            .header(
                http::header::USER_AGENT,
                "kubectl/v1.32.0 (linux/amd64) kubernetes/rust",
            );
        let data = match body {
            Some((content_type, data)) => {
                builder = builder.header(http::header::CONTENT_TYPE, content_type);
                data
            }
            None => Vec::new(),
        };
        builder
            .body(data)
            .map_err(|e| Error::Transport(format!("error: {e}")))
    }

    /// One request; the answer as JSON (`{}` for an empty body).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        accept: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Value> {
        let text = self.request_body(method, path, accept, body).await?;
        if text.trim().is_empty() {
            return Ok(Value::Object(Default::default()));
        }
        serde_json::from_str(&text).map_err(|e| Error::Transport(format!("error: {e}")))
    }

    /// One request; the answer's body as sent.
    async fn request_body(
        &self,
        method: Method,
        path: &str,
        accept: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<String> {
        let req = self.build(method, path, accept, body)?;
        self.inner
            .request_text(req)
            .await
            .map_err(|e| self.map_error(e))
    }

    /// A GET whose body is returned as sent (`get --raw`).
    pub async fn get_text(&self, path: &str) -> Result<String> {
        self.request_body(Method::GET, path, "application/json, */*", None)
            .await
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.request(Method::GET, path, "application/json", None)
            .await
    }

    pub async fn send_json(&self, method: Method, path: &str, body: &Value) -> Result<Value> {
        let data = serde_json::to_vec(body)?;
        self.request(
            method,
            path,
            "application/json",
            Some(("application/json", data)),
        )
        .await
    }

    pub async fn patch(&self, path: &str, content_type: &str, body: Vec<u8>) -> Result<Value> {
        self.request(
            Method::PATCH,
            path,
            "application/json",
            Some((content_type, body)),
        )
        .await
    }

    /// A JSON merge patch (`application/merge-patch+json`) of `patch`.
    pub async fn merge_patch(&self, path: &str, patch: &Value) -> Result<Value> {
        self.patch(
            path,
            "application/merge-patch+json",
            serde_json::to_vec(patch)?,
        )
        .await
    }

    /// A streaming GET (watch); lines of JSON events.
    pub async fn stream(&self, path: &str, accept: &str) -> Result<impl AsyncBufRead + Unpin> {
        let req = self.build(Method::GET, path, accept, None)?;
        let reader = self
            .inner
            .request_stream(req)
            .await
            .map_err(|e| self.map_error(e))?;
        Ok(Box::pin(reader))
    }

    fn map_error(&self, err: kube::Error) -> Error {
        match err {
            kube::Error::Api(status) => {
                let mut reason = status.reason.clone();
                let mut message = status.message.clone();
                if reason == "Failed to parse error data" {
                    // A non-Status body (e.g. a plain 404 for an unknown path).
                    reason = match status.code {
                        404 => "NotFound".into(),
                        403 => "Forbidden".into(),
                        401 => "Unauthorized".into(),
                        405 => "MethodNotAllowed".into(),
                        409 => "Conflict".into(),
                        _ => String::new(),
                    };
                    if status.code == 404 {
                        message = "the server could not find the requested resource".into();
                    }
                }
                Error::Server(ServerError {
                    code: status.code,
                    reason,
                    message,
                })
            }
            other => {
                let text = format!("{other:?}");
                if text.contains("ConnectionRefused") || text.contains("Connection refused") {
                    Error::ConnectionRefused {
                        host: self.host_port(),
                    }
                } else {
                    Error::Transport(format!(
                        "Unable to connect to the server: {}",
                        error_chain(&other)
                    ))
                }
            }
        }
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut msg = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        msg = s.to_string();
        source = s.source();
    }
    msg
}

/// Percent-encodes a query parameter value.
pub fn encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}
