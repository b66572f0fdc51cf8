//! Servers on the host's loopback that the kubelet probes or calls (hostNetwork
//! pods, hooks with `host: 127.0.0.1`): an HTTPS server with a self-signed
//! certificate, a gRPC health server, a plain HTTP request recorder.

use std::sync::atomic::{AtomicI32, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::BodyExt;
use hyper::body::{Bytes, Frame};

/// Serves `GET <path>` over TLS with the status in `status`; returns the port.
pub async fn https_server(status: Arc<AtomicU16>) -> u16 {
    let cert = rcgen::generate_simple_self_signed(vec!["probe.invalid".to_string()]).expect("cert");
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (acceptor, status) = (acceptor.clone(), status.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(socket).await else {
                    return;
                };
                let service = hyper::service::service_fn(
                    move |_req: hyper::Request<hyper::body::Incoming>| {
                        let code = status.load(Ordering::SeqCst);
                        async move { hyper::Response::builder().status(code).body(String::new()) }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    port
}

/// `grpc.health.v1.HealthCheckResponse`.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

/// A `grpc.health.v1.Health/Check` server answering the status in `status`
/// (1 SERVING, 2 NOT_SERVING); returns the port.
pub async fn grpc_health_server(status: Arc<AtomicI32>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let status = status.clone();
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let status = status.load(Ordering::SeqCst);
                    async move {
                        let path = req.uri().path().to_string();
                        let _ = req.into_body().collect().await;
                        let mut trailers = http::HeaderMap::new();
                        let mut frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> =
                            Vec::new();
                        if path == "/grpc.health.v1.Health/Check" {
                            let body =
                                prost::Message::encode_to_vec(&HealthCheckResponse { status });
                            let mut framed = vec![0u8];
                            framed.extend((body.len() as u32).to_be_bytes());
                            framed.extend(body);
                            frames.push(Ok(Frame::data(Bytes::from(framed))));
                            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                        } else {
                            trailers.insert("grpc-status", http::HeaderValue::from_static("12"));
                        }
                        frames.push(Ok(Frame::trailers(trailers)));
                        let body = http_body_util::StreamBody::new(futures::stream::iter(frames));
                        hyper::Response::builder()
                            .header("content-type", "application/grpc")
                            .body(body)
                    }
                });
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service),
            );
        }
    });
    port
}

/// Records the path of every HTTP request it gets (answering 200); returns the port.
pub async fn request_recorder(paths: Arc<Mutex<Vec<String>>>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let paths = paths.clone();
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    if let Ok(mut p) = paths.lock() {
                        p.push(req.uri().path().to_string());
                    }
                    async move { hyper::Response::builder().status(200).body(String::new()) }
                });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service),
            );
        }
    });
    port
}
