//! `/exec`, `/attach` and `/portForward` (upstream `server.go` `getExec` & co.):
//! ask the runtime for a streaming URL through CRI `Exec`/`Attach`/`PortForward`
//! and reverse-proxy the client's upgrade request to it (upstream `proxyStream`).
//! containerd's streaming server speaks SPDY/3.1 and the WebSocket protocols up to
//! `v4.channel.k8s.io`; kubectl ≥ 1.31 first asks for `v5.channel.k8s.io`, which
//! the kubelet serves itself (`v5`), talking SPDY to the runtime (`spdy`).

pub mod spdy;
pub mod v5;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tracing::{debug, warn};

use crate::cri::{api, labels, Runtime};
use crate::server::ServerState;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("pod {namespace}/{name} not found")]
    PodNotFound { namespace: String, name: String },
    #[error("container not found (\"{0}\")")]
    ContainerNotFound(String),
    #[error("pod {0} has no running sandbox")]
    SandboxNotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Runtime(#[from] crate::cri::Error),
    #[error("invalid streaming URL {url:?} from the runtime")]
    BadUrl { url: String },
    #[error("connecting to the runtime's streaming server: {0}")]
    Connect(#[source] std::io::Error),
    #[error("proxying to the runtime's streaming server: {0}")]
    Proxy(#[source] hyper::Error),
    #[error("streaming from the runtime: {0}")]
    RuntimeStream(String),
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = match &self {
            Error::PodNotFound { .. } | Error::ContainerNotFound(_) | Error::SandboxNotFound(_) => {
                StatusCode::NOT_FOUND
            }
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.to_string(),
        )
            .into_response()
    }
}

/// The query of a streaming request, repeated keys kept in order.
#[derive(Debug, Default)]
pub struct StreamQuery(Vec<(String, String)>);

impl StreamQuery {
    pub fn parse(query: Option<&str>) -> StreamQuery {
        StreamQuery(
            url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean option under either name: kubectl's `PodExecOptions` names
    /// (`stdin=true`), as our apiserver forwards them, or the names upstream's
    /// apiserver rewrites them to (`input=1`).
    fn flag(&self, names: &[&str]) -> bool {
        names.iter().any(|n| {
            self.all(n)
                .any(|v| v == "1" || v.eq_ignore_ascii_case("true"))
        })
    }
}

/// stdin/stdout/stderr/tty of an exec or attach request, as upstream's
/// `remotecommand.NewOptions` reads them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl StreamOptions {
    pub fn from_query(q: &StreamQuery) -> Result<StreamOptions, Error> {
        let tty = q.flag(&["tty"]);
        let stdin = q.flag(&["stdin", "input"]);
        let stdout = q.flag(&["stdout", "output"]);
        // A terminal merges stderr into stdout: upstream drops stderr.
        let stderr = q.flag(&["stderr", "error"]) && !tty;
        if !(stdin || stdout || stderr) {
            return Err(Error::BadRequest(
                "you must specify at least 1 of stdin, stdout, stderr".into(),
            ));
        }
        Ok(StreamOptions {
            stdin,
            stdout,
            stderr,
            tty,
        })
    }
}

fn pod_uid<R>(state: &ServerState<R>, namespace: &str, name: &str) -> Result<String, Error> {
    state
        .pods
        .read()
        .values()
        .find(|p| {
            p.metadata.namespace.as_deref() == Some(namespace)
                && p.metadata.name.as_deref() == Some(name)
        })
        .and_then(|p| p.metadata.uid.clone())
        .ok_or_else(|| Error::PodNotFound {
            namespace: namespace.into(),
            name: name.into(),
        })
}

/// The running (else newest) container `name` of the pod.
async fn container_id<R: Runtime>(
    state: &ServerState<R>,
    uid: &str,
    name: &str,
) -> Result<String, Error> {
    let filter = api::ContainerFilter {
        label_selector: HashMap::from([
            (labels::POD_UID.to_string(), uid.to_string()),
            (labels::CONTAINER_NAME.to_string(), name.to_string()),
        ]),
        ..Default::default()
    };
    let mut found = state.cri.list_containers(Some(filter)).await?;
    found.sort_by_key(|c| {
        (
            c.state == api::ContainerState::ContainerRunning as i32,
            c.metadata.as_ref().map_or(0, |m| m.attempt),
            c.created_at,
        )
    });
    found
        .pop()
        .map(|c| c.id)
        .ok_or_else(|| Error::ContainerNotFound(name.into()))
}

pub async fn exec<R: Runtime>(
    State(state): State<Arc<ServerState<R>>>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    req: Request,
) -> Result<Response, Error> {
    let q = StreamQuery::parse(req.uri().query());
    let options = StreamOptions::from_query(&q)?;
    let cmd: Vec<String> = q.all("command").map(str::to_string).collect();
    if cmd.is_empty() {
        return Err(Error::BadRequest("you must specify a command".into()));
    }
    let uid = pod_uid(&state, &namespace, &pod)?;
    let container_id = container_id(&state, &uid, &container).await?;
    let request = api::ExecRequest {
        container_id,
        cmd,
        tty: options.tty,
        stdin: options.stdin,
        stdout: options.stdout,
        stderr: options.stderr,
    };
    let url = state.cri.exec(request).await?;
    if v5::wants_v5(req.headers()) {
        return v5::serve(&url, req, options).await;
    }
    proxy_stream(&url, req).await
}

pub async fn attach<R: Runtime>(
    State(state): State<Arc<ServerState<R>>>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    req: Request,
) -> Result<Response, Error> {
    let options = StreamOptions::from_query(&StreamQuery::parse(req.uri().query()))?;
    let uid = pod_uid(&state, &namespace, &pod)?;
    let container_id = container_id(&state, &uid, &container).await?;
    let request = api::AttachRequest {
        container_id,
        stdin: options.stdin,
        tty: options.tty,
        stdout: options.stdout,
        stderr: options.stderr,
    };
    let url = state.cri.attach(request).await?;
    if v5::wants_v5(req.headers()) {
        return v5::serve(&url, req, options).await;
    }
    proxy_stream(&url, req).await
}

pub async fn port_forward<R: Runtime>(
    State(state): State<Arc<ServerState<R>>>,
    Path((namespace, pod)): Path<(String, String)>,
    req: Request,
) -> Result<Response, Error> {
    let q = StreamQuery::parse(req.uri().query());
    let mut port = Vec::new();
    for p in q.all("port") {
        let n: u16 = p
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| Error::BadRequest(format!("invalid port {p:?}")))?;
        port.push(i32::from(n));
    }
    let uid = pod_uid(&state, &namespace, &pod)?;
    let filter = api::PodSandboxFilter {
        label_selector: HashMap::from([(labels::POD_UID.to_string(), uid)]),
        state: Some(api::PodSandboxStateValue {
            state: api::PodSandboxState::SandboxReady as i32,
        }),
        ..Default::default()
    };
    let sandbox = state
        .cri
        .list_pod_sandbox(Some(filter))
        .await?
        .into_iter()
        .max_by_key(|s| s.created_at);
    let pod_sandbox_id = sandbox
        .map(|s| s.id)
        .ok_or_else(|| Error::SandboxNotFound(format!("{namespace}/{pod}")))?;
    let url = state
        .cri
        .port_forward(api::PortForwardRequest {
            pod_sandbox_id,
            port,
        })
        .await?;
    proxy_stream(&url, req).await
}

/// Sends `req` (method, headers; the path replaced by the URL's) to the runtime's
/// streaming server. A 101 answer is returned to the client and both upgraded
/// connections are spliced byte for byte; anything else is passed through.
pub async fn proxy_stream(location: &str, mut req: Request) -> Result<Response, Error> {
    let client_upgrade = req
        .headers()
        .contains_key(header::UPGRADE)
        .then(|| hyper::upgrade::on(&mut req));
    let mut out = hyper::Request::builder().method(req.method().clone());
    for (name, value) in req.headers() {
        if name != header::HOST && name != header::AUTHORIZATION {
            out = out.header(name, value);
        }
    }
    let body = if req.method() == Method::GET {
        Body::empty()
    } else {
        req.into_body()
    };
    let mut out = out.body(body).map_err(|_| Error::BadUrl {
        url: location.to_string(),
    })?;
    let mut resp = send_to_runtime(location, &mut out).await?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        debug!(status = %resp.status(), "streaming server did not upgrade");
        let (parts, body) = resp.into_parts();
        return Ok(Response::from_parts(parts, Body::new(body)));
    }
    let Some(client_upgrade) = client_upgrade else {
        return Err(Error::BadRequest(
            "the streaming server switched protocols on a plain request".into(),
        ));
    };
    let runtime_upgrade = hyper::upgrade::on(&mut resp);
    tokio::spawn(async move {
        match (client_upgrade.await, runtime_upgrade.await) {
            (Ok(client), Ok(runtime)) => {
                let mut client = hyper_util::rt::TokioIo::new(client);
                let mut runtime = hyper_util::rt::TokioIo::new(runtime);
                if let Err(err) = tokio::io::copy_bidirectional(&mut client, &mut runtime).await {
                    debug!("stream ended: {err}");
                }
            }
            (client, runtime) => warn!(
                client_ok = client.is_ok(),
                runtime_ok = runtime.is_ok(),
                "upgrade failed"
            ),
        }
    });
    let mut upgraded = Response::new(Body::empty());
    *upgraded.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *upgraded.headers_mut() = resp.headers().clone();
    Ok(upgraded)
}

/// Sends `req` (its method, headers and body; the path and Host set here) to
/// the runtime's streaming server at `location` over a fresh HTTP/1.1
/// connection that supports upgrades.
pub(crate) async fn send_to_runtime(
    location: &str,
    req: &mut hyper::Request<Body>,
) -> Result<hyper::Response<hyper::body::Incoming>, Error> {
    let bad_url = || Error::BadUrl {
        url: location.to_string(),
    };
    let url = url::Url::parse(location).map_err(|_| bad_url())?;
    if url.scheme() != "http" {
        // containerd serves plain HTTP unless configured with TLS, which we never do.
        return Err(bad_url());
    }
    let host = url.host_str().ok_or_else(bad_url)?;
    let port = url.port_or_known_default().ok_or_else(bad_url)?;
    let authority = format!("{host}:{port}");
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    *req.uri_mut() = path.parse().map_err(|_| bad_url())?;
    req.headers_mut().insert(
        header::HOST,
        HeaderValue::from_str(&authority).map_err(|_| bad_url())?,
    );
    let stream = tokio::net::TcpStream::connect(&authority)
        .await
        .map_err(Error::Connect)?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Body>(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(Error::Proxy)?;
    tokio::spawn(async move {
        if let Err(err) = conn.with_upgrades().await {
            debug!("streaming server connection: {err}");
        }
    });
    let body = std::mem::replace(req.body_mut(), Body::empty());
    let mut out = hyper::Request::new(body);
    *out.method_mut() = req.method().clone();
    *out.uri_mut() = req.uri().clone();
    *out.headers_mut() = req.headers().clone();
    sender.send_request(out).await.map_err(Error::Proxy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_from_kubectl_and_upstream_apiserver_queries() {
        let kubectl = StreamQuery::parse(Some("command=sh&command=-c&command=echo%20hi&container=c&stdin=true&stdout=true&stderr=true&tty=false"));
        assert_eq!(
            kubectl.all("command").collect::<Vec<_>>(),
            ["sh", "-c", "echo hi"]
        );
        let o = StreamOptions::from_query(&kubectl).expect("options");
        assert_eq!(
            o,
            StreamOptions {
                stdin: true,
                stdout: true,
                stderr: true,
                tty: false
            }
        );

        let upstream = StreamQuery::parse(Some("command=cat&input=1&output=1&error=1&tty=1"));
        let o = StreamOptions::from_query(&upstream).expect("options");
        assert_eq!(
            o,
            StreamOptions {
                stdin: true,
                stdout: true,
                stderr: false,
                tty: true
            },
            "a tty drops stderr"
        );

        let none = StreamQuery::parse(Some("command=ls&stdout=false"));
        assert!(matches!(
            StreamOptions::from_query(&none),
            Err(Error::BadRequest(_))
        ));
    }
}
