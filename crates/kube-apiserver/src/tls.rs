//! Serving: the accept loops of the secure and insecure ports, and (in `tls/config.rs`)
//! the secure port's TLS config (given or self-signed serving cert, optional
//! client-certificate verification against `--client-ca-file`). Each connection is served by
//! hyper-util's auto builder (HTTP/1.1 with upgrades, HTTP/2; h2c on the insecure port)
//! and every request is authenticated before it reaches the router.

mod config;

pub use config::{
    first_service_ip, load_certs, load_key, server_config, TlsError, SELF_SIGNED_CERT_FILE,
    SELF_SIGNED_KEY_FILE,
};

use std::{convert::Infallible, future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    body::Body,
    http::{header, HeaderValue, Request, Response, StatusCode},
    Router,
};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use rustls::{pki_types::CertificateDer, ServerConfig};
use tokio::{net::TcpListener, sync::watch};
use tower::ServiceExt;

use crate::authn::{AuthResult, Authenticator, PeerCertificates, UserInfo};

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the accept loops wait, after shutdown, for open connections to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves the secure port: TLS handshake per connection, then HTTP/1.1 (with
/// upgrades) or HTTP/2 by ALPN. Every request carries [`PeerCertificates`] and, once
/// authenticated, a [`UserInfo`]; rejected credentials get a 401 `Status` without
/// reaching `app`. When `shutdown` completes the loop stops accepting, asks open
/// connections to close gracefully and waits a few seconds for them.
pub async fn serve_tls(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    app: Router,
    authn: Arc<Authenticator>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    accept_loop(listener, shutdown, move |tcp, remote, stop| {
        let acceptor = acceptor.clone();
        let app = app.clone();
        let authn = authn.clone();
        async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(err)) => {
                    tracing::debug!(%remote, %err, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%remote, "TLS handshake timed out");
                    return;
                }
            };
            let peer: Arc<[CertificateDer<'static>]> = tls
                .get_ref()
                .1
                .peer_certificates()
                .map(Arc::from)
                .unwrap_or_else(|| Arc::from(Vec::new()));
            let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut()
                    .insert(crate::audit::RemoteAddr(remote));
                secure_request(req, app.clone(), authn.clone(), peer.clone())
            });
            serve_connection(TokioIo::new(tls), service, remote, stop).await;
        }
    })
    .await
}

/// Serves the insecure port (plain HTTP/1.1 with upgrades, or h2c): no
/// authentication, every request runs as [`UserInfo::insecure_superuser`].
pub async fn serve_plain(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    accept_loop(listener, shutdown, move |tcp, remote, stop| {
        let app = app.clone();
        async move {
            let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(PeerCertificates::default());
                req.extensions_mut().insert(UserInfo::insecure_superuser());
                req.extensions_mut()
                    .insert(crate::audit::RemoteAddr(remote));
                app.clone().oneshot(req)
            });
            serve_connection(TokioIo::new(tcp), service, remote, stop).await;
        }
    })
    .await
}

/// Authenticates one secure-port request and hands it to the router.
async fn secure_request(
    mut req: Request<Incoming>,
    app: Router,
    authn: Arc<Authenticator>,
    peer: Arc<[CertificateDer<'static>]>,
) -> Result<Response<Body>, Infallible> {
    let user = match authn.authenticate(req.headers(), &peer) {
        AuthResult::User(user) => user,
        AuthResult::Anonymous => UserInfo::anonymous(),
        AuthResult::Invalid => return Ok(unauthorized()),
    };
    req.extensions_mut().insert(PeerCertificates(peer.to_vec()));
    req.extensions_mut().insert(user);
    app.oneshot(req).await
}

/// Upstream's 401 answer: a `Status` with reason `Unauthorized`.
fn unauthorized() -> Response<Body> {
    let body =
        serde_json::to_vec(&api_types::ApiError::unauthorized().to_status()).unwrap_or_default();
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::UNAUTHORIZED;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Accepts connections until `shutdown`, running `handle` for each on its own task.
/// Connection tasks are never aborted: on shutdown they are told to finish (through
/// the watch channel) and the loop waits up to [`DRAIN_TIMEOUT`] for them.
async fn accept_loop<H, F>(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    handle: H,
) -> anyhow::Result<()>
where
    H: Fn(tokio::net::TcpStream, SocketAddr, watch::Receiver<()>) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let (stop_tx, stop_rx) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, remote) = match accepted {
            Ok(conn) => conn,
            Err(err) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%err, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(%remote, %err, "cannot set TCP_NODELAY");
        }
        tokio::spawn(handle(tcp, remote, stop_rx.clone()));
    }
    drop(listener);
    drop(stop_rx);
    let _ = stop_tx.send(());
    if tokio::time::timeout(DRAIN_TIMEOUT, stop_tx.closed())
        .await
        .is_err()
    {
        tracing::info!(
            open = stop_tx.receiver_count(),
            "connections still open after shutdown grace period"
        );
    }
    Ok(())
}

/// Serves one connection until it closes, or closes it gracefully once `stop` fires.
async fn serve_connection<I, S>(
    io: I,
    service: S,
    remote: SocketAddr,
    mut stop: watch::Receiver<()>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(err) = result {
        tracing::debug!(%remote, %err, "connection error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Options;
    use axum::{routing::get, Extension, Json};
    use clap::Parser;
    use http_body_util::{BodyExt, Empty};
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    use rustls::pki_types::{PrivatePkcs8KeyDer, ServerName};
    use rustls::{pki_types::PrivateKeyDer, RootCertStore};
    use serde_json::{json, Value};

    /// A test CA that signs client certificates.
    struct TestCa {
        pem: String,
        issuer: Issuer<'static, KeyPair>,
    }

    impl TestCa {
        fn new(name: &str) -> TestCa {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
            params.distinguished_name.push(DnType::CommonName, name);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let pem = params.self_signed(&key).expect("ca").pem();
            TestCa {
                pem,
                issuer: Issuer::new(params, key),
            }
        }

        fn client_cert(
            &self,
            cn: &str,
            org: &str,
        ) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
            params.distinguished_name.push(DnType::CommonName, cn);
            params
                .distinguished_name
                .push(DnType::OrganizationName, org);
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            let cert = params.signed_by(&key, &self.issuer).expect("client cert");
            (
                cert.der().clone(),
                PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
            )
        }
    }

    /// Echoes the request's identity and client certificate count.
    fn whoami_router() -> Router {
        Router::new().route(
            "/whoami",
            get(
                |Extension(user): Extension<UserInfo>,
                 Extension(peer): Extension<PeerCertificates>| async move {
                    Json(json!({"name": user.name, "groups": user.groups, "certs": peer.0.len()}))
                },
            ),
        )
    }

    fn client_config(
        server_ca: &[CertificateDer<'static>],
        client: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
        alpn: &[u8],
    ) -> Arc<rustls::ClientConfig> {
        let mut roots = RootCertStore::empty();
        for cert in server_ca {
            roots.add(cert.clone()).expect("root");
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
        let mut config = match client {
            Some((cert, key)) => builder
                .with_client_auth_cert(vec![cert], key)
                .expect("client auth"),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![alpn.to_vec()];
        Arc::new(config)
    }

    /// One GET over a fresh TLS connection (HTTP/1.1 or h2 by `alpn`).
    async fn https_get(
        addr: SocketAddr,
        config: Arc<rustls::ClientConfig>,
        token: Option<&str>,
        alpn: &[u8],
    ) -> anyhow::Result<(StatusCode, Value)> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(ServerName::try_from("localhost")?, tcp)
            .await?;
        assert_eq!(
            tls.get_ref().1.alpn_protocol(),
            Some(alpn),
            "negotiated ALPN"
        );
        let mut req = Request::get("/whoami").header(header::HOST, "localhost");
        if let Some(token) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = req.body(Empty::<bytes::Bytes>::new())?;
        let io = TokioIo::new(tls);
        let resp = if alpn == b"h2" {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(conn);
            sender.send_request(req).await?
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
            tokio::spawn(conn);
            sender.send_request(req).await?
        };
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, serde_json::from_slice(&body)?))
    }

    fn names(groups: &Value) -> Vec<&str> {
        groups
            .as_array()
            .map(|g| g.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn secure_port_authenticates_cert_token_and_anonymous() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = TestCa::new("test-client-ca");
        let ca_path = dir.path().join("client-ca.crt");
        std::fs::write(&ca_path, &ca.pem).expect("write ca");
        let tokens_path = dir.path().join("tokens.csv");
        std::fs::write(&tokens_path, "good-token,bob,2,\"ops\"\n").expect("write tokens");
        let cert_dir = dir.path().join("certs");
        let opts = Options::try_parse_from([
            "kube-apiserver".to_string(),
            format!("--cert-dir={}", cert_dir.display()),
            format!("--client-ca-file={}", ca_path.display()),
            format!("--token-auth-file={}", tokens_path.display()),
            "--service-cluster-ip-range=10.254.0.0/16".to_string(),
        ])
        .expect("flags");
        let config = server_config(&opts).expect("server config");
        let authn = Arc::new(Authenticator::from_options(&opts).expect("authn"));

        // The generated serving chain (leaf + CA) is what clients trust.
        let serving_chain =
            load_certs(&cert_dir.join(SELF_SIGNED_CERT_FILE)).expect("serving chain");
        assert_eq!(serving_chain.len(), 2);
        let server_ca = &serving_chain[1..];

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_tls(listener, config, whoami_router(), authn, async {
            let _ = stopped.await;
        }));

        // Client certificate CN=alice,O=devs.
        let alice = ca.client_cert("alice", "devs");
        let (status, body) = https_get(
            addr,
            client_config(server_ca, Some(alice), b"http/1.1"),
            None,
            b"http/1.1",
        )
        .await
        .expect("get");
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["name"], "alice");
        assert_eq!(names(&body["groups"]), vec!["devs", "system:authenticated"]);
        assert_eq!(body["certs"], 1);

        // No certificate, no token: anonymous (over HTTP/2 this time).
        let (status, body) = https_get(addr, client_config(server_ca, None, b"h2"), None, b"h2")
            .await
            .expect("get");
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["name"], "system:anonymous");
        assert_eq!(names(&body["groups"]), vec!["system:unauthenticated"]);
        assert_eq!(body["certs"], 0);

        // A good token.
        let (status, body) = https_get(
            addr,
            client_config(server_ca, None, b"http/1.1"),
            Some("good-token"),
            b"http/1.1",
        )
        .await
        .expect("get");
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["name"], "bob");
        assert_eq!(names(&body["groups"]), vec!["ops", "system:authenticated"]);

        // A bad token: 401 Status, the router is never called.
        let (status, body) = https_get(
            addr,
            client_config(server_ca, None, b"http/1.1"),
            Some("bad-token"),
            b"http/1.1",
        )
        .await
        .expect("get");
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            body,
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401})
        );

        // A certificate from another CA fails the handshake.
        let mallory = TestCa::new("other-ca").client_cert("mallory", "system:masters");
        let result = https_get(
            addr,
            client_config(server_ca, Some(mallory), b"http/1.1"),
            None,
            b"http/1.1",
        )
        .await;
        assert!(
            result.is_err(),
            "untrusted client certificate accepted: {result:?}"
        );

        let _ = stop.send(());
        let done = tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("server stops");
        done.expect("join").expect("serve_tls");
    }

    #[tokio::test]
    async fn insecure_port_is_superuser_over_http1_and_h2c() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_plain(listener, whoami_router(), async {
            let _ = stopped.await;
        }));
        for h2 in [false, true] {
            let io = TokioIo::new(tokio::net::TcpStream::connect(addr).await.expect("connect"));
            let req = Request::get("/whoami")
                .header(header::HOST, "localhost")
                .body(Empty::<bytes::Bytes>::new())
                .expect("request");
            let resp = if h2 {
                let (mut sender, conn) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                        .await
                        .expect("h2c");
                tokio::spawn(conn);
                sender.send_request(req).await.expect("send")
            } else {
                let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
                    .await
                    .expect("http1");
                tokio::spawn(conn);
                sender.send_request(req).await.expect("send")
            };
            assert_eq!(resp.status(), StatusCode::OK);
            let body: Value =
                serde_json::from_slice(&resp.into_body().collect().await.expect("body").to_bytes())
                    .expect("json");
            assert_eq!(body["name"], "system:unsecured");
            assert_eq!(
                names(&body["groups"]),
                vec!["system:masters", "system:authenticated"]
            );
        }
        let _ = stop.send(());
        let done = tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("server stops");
        done.expect("join").expect("serve_plain");
    }
}
