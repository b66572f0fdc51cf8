//! Network checks of probes (upstream `pkg/probe/{http,tcp,grpc}`) and of
//! httpGet lifecycle hooks: HTTP and HTTPS GET (certificates not verified, as
//! upstream), TCP connect, and the gRPC health protocol (`grpc.health.v1`).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{ContainerPort, HTTPGetAction, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};

use super::prober::Target;

/// `kube-probe/1.32` (upstream: `kube-probe/<major>.<minor>` of the kubelet).
pub fn user_agent(component: &str) -> String {
    let version = crate::node::KUBELET_VERSION.trim_start_matches('v');
    let minor = version
        .rsplit_once('.')
        .map_or(version, |(major_minor, _)| major_minor);
    format!("{component}/{minor}")
}

pub fn resolve_port(port: &IntOrString, ports: &[ContainerPort]) -> Result<u16, String> {
    let number = match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => match name.parse::<i32>() {
            Ok(n) => n,
            Err(_) => ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| p.container_port)
                .ok_or_else(|| format!("couldn't find port: {name}"))?,
        },
    };
    u16::try_from(number)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("invalid port number: {number}"))
}

pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Go's spelling of the common connect errors.
fn go_io_error(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::TimedOut => "connection timed out".into(),
        _ => err.to_string(),
    }
}

/// httpGet, tcpSocket and grpc probes.
pub async fn network_probe(
    probe: &Probe,
    target: &Target,
    timeout: Duration,
) -> Result<(), String> {
    if let Some(http) = &probe.http_get {
        return match http_get_action(http, target, timeout, &user_agent("kube-probe")).await {
            Ok(status) if (200..400).contains(&status) => Ok(()),
            Ok(status) => Err(format!("HTTP probe failed with statuscode: {status}")),
            Err(err) => Err(err),
        };
    }
    if let Some(tcp) = &probe.tcp_socket {
        let port = resolve_port(&tcp.port, &target.ports)?;
        let host = tcp
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| target.pod_ip.clone());
        let address = host_port(&host, port);
        return match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&address)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(format!(
                "dial tcp {address}: connect: {}",
                go_io_error(&err)
            )),
            Err(_) => Err(format!("dial tcp {address}: i/o timeout")),
        };
    }
    if let Some(grpc) = &probe.grpc {
        let port = u16::try_from(grpc.port)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("invalid port number: {}", grpc.port))?;
        return grpc_health_check(
            &host_port(&target.pod_ip, port),
            grpc.service.as_deref().unwrap_or(""),
            timeout,
        )
        .await;
    }
    Err("missing probe handler".into())
}

/// Runs an httpGet action (probe or hook) against the target; the response
/// status, or the error as Go's `http.Client` words it.
pub async fn http_get_action(
    http: &HTTPGetAction,
    target: &Target,
    timeout: Duration,
    user_agent: &str,
) -> Result<u16, String> {
    let port = resolve_port(&http.port, &target.ports)?;
    let host = http
        .host
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| target.pod_ip.clone());
    let path = http
        .path
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/".into());
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    let https = http
        .scheme
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("HTTPS"));
    let authority = host_port(&host, port);
    let url = format!(
        "{}://{authority}{path}",
        if https { "https" } else { "http" }
    );
    let mut headers: Vec<(String, String)> = http
        .http_headers
        .iter()
        .flatten()
        .map(|h| (h.name.clone(), h.value.clone()))
        .collect();
    let has = |headers: &[(String, String)], name: &str| {
        headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name))
    };
    if !has(&headers, "user-agent") {
        headers.push(("User-Agent".into(), user_agent.into()));
    }
    if !has(&headers, "accept") {
        headers.push(("Accept".into(), "*/*".into()));
    }
    let get = async {
        let stream = tokio::net::TcpStream::connect(&authority)
            .await
            .map_err(|e| format!("dial tcp {authority}: connect: {}", go_io_error(&e)))?;
        if !https {
            return send_get(stream, &authority, &path, &headers).await;
        }
        let name = ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(insecure_tls_config())
            .connect(name, stream)
            .await
            .map_err(|e| e.to_string())?;
        send_get(tls, &authority, &path, &headers).await
    };
    match tokio::time::timeout(timeout, get).await {
        Err(_) => Err(format!("Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)")),
        Ok(Err(err)) => Err(format!("Get \"{url}\": {err}")),
        Ok(Ok(status)) => Ok(status),
    }
}

/// A GET over HTTP/1.1 on `io`; the response status (the body is drained).
async fn send_get<IO>(
    io: IO,
    authority: &str,
    path: &str,
    headers: &[(String, String)],
) -> Result<u16, String>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, String>(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method("GET")
        .uri(path)
        .header("Host", authority);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req.body(String::new()).map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    Ok(status)
}

/// Accepts any server certificate (Go's `InsecureSkipVerify`, which upstream's
/// HTTPS probes use) but still checks the handshake signatures.
#[derive(Debug)]
struct SkipVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for SkipVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn insecure_tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map(|b| {
                    b.dangerous()
                        .with_custom_certificate_verifier(Arc::new(SkipVerification(provider)))
                        .with_no_client_auth()
                })
                .unwrap_or_else(|_| {
                    // The ring provider supports the default versions; never reached.
                    rustls::ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS13])
                        .dangerous()
                        .with_custom_certificate_verifier(Arc::new(SkipVerification(Arc::new(
                            rustls::crypto::ring::default_provider(),
                        ))))
                        .with_no_client_auth()
                });
            Arc::new(config)
        })
        .clone()
}

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    pub service: String,
}

/// `grpc.health.v1.HealthCheckResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    pub status: i32,
}

/// `HealthCheckResponse.ServingStatus` names.
fn serving_status_name(status: i32) -> &'static str {
    match status {
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "UNKNOWN",
    }
}

/// One `grpc.health.v1.Health/Check` call, judged and worded as upstream's
/// `pkg/probe/grpc`.
pub async fn grpc_health_check(
    address: &str,
    service: &str,
    timeout: Duration,
) -> Result<(), String> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(timeout)
        .timeout(timeout)
        .user_agent(user_agent("kube-probe"))
        .map_err(|e| e.to_string())?;
    let seconds = format!("{}s", timeout.as_secs());
    let channel = match tokio::time::timeout(timeout, endpoint.connect()).await {
        Ok(Ok(channel)) => channel,
        Ok(Err(err)) => return Err(format!("timeout: failed to connect service {address:?} within {seconds}: {err}")),
        Err(_) => return Err(format!("timeout: failed to connect service {address:?} within {seconds}: context deadline exceeded")),
    };
    let mut grpc = tonic::client::Grpc::new(channel);
    let call = async {
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let codec = tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default();
        let path = http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/Check");
        grpc.unary(
            tonic::Request::new(HealthCheckRequest {
                service: service.to_string(),
            }),
            path,
            codec,
        )
        .await
    };
    let response = match tokio::time::timeout(timeout, call).await {
        Err(_) => {
            return Err(format!(
                "timeout: health rpc did not complete within {seconds}"
            ))
        }
        Ok(Err(status)) if status.code() == tonic::Code::Unimplemented => {
            return Err(format!(
            "this server doesn't implement the grpc health protocol (grpc.health.v1.Health): {}",
            status.message()
        ))
        }
        Ok(Err(status)) if status.code() == tonic::Code::DeadlineExceeded => {
            return Err(format!(
                "timeout: health rpc did not complete within {seconds}"
            ))
        }
        Ok(Err(status)) => {
            return Err(format!(
                "error: health rpc probe failed: rpc error: code = {:?} desc = {}",
                status.code(),
                status.message()
            ))
        }
        Ok(Ok(response)) => response.into_inner(),
    };
    if response.status != 1 {
        return Err(format!(
            "service unhealthy (responded with {:?})",
            serving_status_name(response.status)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_ports_and_user_agent() {
        let ports = vec![ContainerPort {
            name: Some("http".into()),
            container_port: 8080,
            ..Default::default()
        }];
        assert_eq!(
            resolve_port(&IntOrString::String("http".into()), &ports),
            Ok(8080)
        );
        assert_eq!(resolve_port(&IntOrString::Int(81), &ports), Ok(81));
        assert_eq!(
            resolve_port(&IntOrString::String("web".into()), &ports),
            Err("couldn't find port: web".into())
        );
        assert_eq!(
            user_agent("kube-probe"),
            format!("kube-probe/{}", &crate::node::KUBELET_VERSION[1..5])
        );
    }

    /// A gRPC health server on plain HTTP/2 answering `status` for `service`.
    async fn grpc_health_server(status: i32) -> u16 {
        use hyper::body::{Bytes, Frame};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| async move {
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
                        Ok::<_, std::convert::Infallible>(
                            hyper::Response::builder()
                                .header("content-type", "application/grpc")
                                .body(body)
                                .expect("response"),
                        )
                    },
                );
                tokio::spawn(
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(socket), service),
                );
            }
        });
        port
    }

    #[tokio::test]
    async fn grpc_health_probe() {
        let second = Duration::from_secs(2);
        let serving = grpc_health_server(1).await;
        assert_eq!(
            grpc_health_check(&format!("127.0.0.1:{serving}"), "", second).await,
            Ok(())
        );
        let not_serving = grpc_health_server(2).await;
        assert_eq!(
            grpc_health_check(&format!("127.0.0.1:{not_serving}"), "db", second).await,
            Err("service unhealthy (responded with \"NOT_SERVING\")".into())
        );
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let err = grpc_health_check(&format!("127.0.0.1:{closed}"), "", second)
            .await
            .expect_err("refused");
        assert!(
            err.starts_with(&format!(
                "timeout: failed to connect service \"127.0.0.1:{closed}\" within 2s"
            )),
            "{err}"
        );
    }

    #[tokio::test]
    async fn https_probe_skips_verification() {
        let cert =
            rcgen::generate_simple_self_signed(vec!["example.invalid".to_string()]).expect("cert");
        let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der())
            .expect("key");
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
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    continue;
                };
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 1024];
                let n = tls.read(&mut buf).await.unwrap_or(0);
                let status = if buf[..n].starts_with(b"GET /healthz ") {
                    "200 OK"
                } else {
                    "404 Not Found"
                };
                let _ = tls
                    .write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n").as_bytes())
                    .await;
                let _ = tls.shutdown().await;
            }
        });
        let target = Target {
            container_id: String::new(),
            pod_ip: "127.0.0.1".into(),
            ports: Vec::new(),
        };
        let probe = |path: &str, scheme: &str| Probe {
            http_get: Some(HTTPGetAction {
                path: Some(path.into()),
                port: IntOrString::Int(port.into()),
                scheme: Some(scheme.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let second = Duration::from_secs(2);
        assert_eq!(
            network_probe(&probe("/healthz", "HTTPS"), &target, second).await,
            Ok(())
        );
        assert_eq!(
            network_probe(&probe("/other", "HTTPS"), &target, second).await,
            Err("HTTP probe failed with statuscode: 404".into())
        );
        // Plain HTTP to a TLS port fails.
        assert!(network_probe(&probe("/healthz", "HTTP"), &target, second)
            .await
            .is_err());
    }

    #[tokio::test]
    async fn tcp_and_http_probes_against_a_local_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0u8; 1024];
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let status = if request.starts_with("GET /healthz ")
                        && request.to_lowercase().contains("x-probe: yes")
                    {
                        "200 OK"
                    } else {
                        "500 Oops"
                    };
                    let _ = socket
                        .write_all(
                            format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n").as_bytes(),
                        )
                        .await;
                });
            }
        });
        let target = Target {
            container_id: String::new(),
            pod_ip: "127.0.0.1".into(),
            ports: Vec::new(),
        };
        let http = |path: &str, header: bool| Probe {
            http_get: Some(k8s_openapi::api::core::v1::HTTPGetAction {
                path: Some(path.into()),
                port: IntOrString::Int(port.into()),
                http_headers: header.then(|| {
                    vec![k8s_openapi::api::core::v1::HTTPHeader {
                        name: "X-Probe".into(),
                        value: "yes".into(),
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let second = Duration::from_secs(1);
        assert_eq!(
            network_probe(&http("/healthz", true), &target, second).await,
            Ok(())
        );
        assert_eq!(
            network_probe(&http("/healthz", false), &target, second).await,
            Err("HTTP probe failed with statuscode: 500".into())
        );
        let tcp = |port: u16| Probe {
            tcp_socket: Some(k8s_openapi::api::core::v1::TCPSocketAction {
                port: IntOrString::Int(port.into()),
                host: None,
            }),
            ..Default::default()
        };
        assert_eq!(network_probe(&tcp(port), &target, second).await, Ok(()));
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        assert_eq!(
            network_probe(&tcp(closed), &target, second).await,
            Err(format!(
                "dial tcp 127.0.0.1:{closed}: connect: connection refused"
            ))
        );
    }
}
