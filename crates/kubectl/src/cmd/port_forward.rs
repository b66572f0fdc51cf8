//! `kubectl port-forward (POD | TYPE/NAME) [LOCAL_PORT:]REMOTE_PORT... [--address]`.
//!
//! Every accepted local connection gets its own WebSocket to `pods/portforward`
//! (the runtime's streaming server, upstream `portforward/websocket.go`, speaks
//! `v4.channel.k8s.io` there): one port per connection, channel 0 carries data
//! both ways and channel 1 the server's error text; the first frame the server
//! sends on each channel is the port as two little-endian bytes. The protocol has
//! no half-close, so a local EOF only stops reading: the connection ends when the
//! pod side closes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use crate::cmd::attach::duration_flag;
use crate::cmd::exec::{map_kube_error, pod_location, resolve_pod};
use crate::context::Context;
use crate::errors::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct PortForwardArgs {
    /// TYPE/NAME (or POD) followed by [LOCAL_PORT:]REMOTE_PORT...
    pub args: Vec<String>,
    /// Addresses to listen on (comma separated). Only accepts IP addresses or localhost as a value.
    #[arg(long, value_delimiter = ',', default_value = "localhost")]
    pub address: Vec<String>,
    /// The length of time (like 5s, 2m, or 3h, higher than zero) to wait until at least one pod is running
    #[arg(long, default_value = "1m0s")]
    pub pod_running_timeout: String,
}

/// One `[LOCAL:]REMOTE` pair, numbers resolved (local 0: any free port).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PortPair {
    pub local: u16,
    pub remote: u16,
}

fn parse_port(text: &str) -> Result<u16> {
    text.parse::<u16>()
        .map_err(|_| Error::usage(format!("Error parsing local port '{text}': strconv.ParseUint: parsing \"{text}\": invalid syntax")))
}

/// The port number of a named container port of the pod.
fn container_port_by_name(pod: &Value, name: &str) -> Option<u16> {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
        .find(|p| p["name"].as_str() == Some(name))
        .and_then(|p| p["containerPort"].as_u64())
        .and_then(|p| u16::try_from(p).ok())
}

/// Upstream's `translateServicePortToTargetPort`: a service port (number or
/// name) becomes the pod's target port; without a local port the service port
/// is used locally.
fn translate_service_port(spec: &str, svc: &Value, pod: &Value) -> Result<String> {
    let (local, remote) = match spec.split_once(':') {
        Some((l, r)) => (Some(l), r),
        None => (None, spec),
    };
    let svc_name = svc["metadata"]["name"].as_str().unwrap_or_default();
    let ports = svc["spec"]["ports"].as_array().cloned().unwrap_or_default();
    let port_num: i64 = match remote.parse::<i64>() {
        Ok(n) => n,
        Err(_) => ports
            .iter()
            .find(|p| p["name"].as_str() == Some(remote))
            .and_then(|p| p["port"].as_i64())
            .ok_or_else(|| {
                Error::usage(format!(
                    "Service '{svc_name}' does not have a named port '{remote}'"
                ))
            })?,
    };
    let svc_port = ports
        .iter()
        .find(|p| p["port"].as_i64() == Some(port_num))
        .ok_or_else(|| {
            Error::usage(format!(
                "Service {svc_name} does not have a service port {port_num}"
            ))
        })?;
    let target = &svc_port["targetPort"];
    let container_port: i64 = match (target.as_i64(), target.as_str()) {
        (Some(0), _) | (None, None) => port_num,
        (Some(n), _) => n,
        (None, Some(name)) => match name.parse::<i64>() {
            Ok(n) => n,
            Err(_) => container_port_by_name(pod, name)
                .map(i64::from)
                .ok_or_else(|| {
                    Error::usage(format!(
                        "Pod '{}' does not have a named port '{name}'",
                        pod["metadata"]["name"].as_str().unwrap_or_default()
                    ))
                })?,
        },
    };
    let local = local.map_or_else(|| port_num.to_string(), str::to_string);
    Ok(format!("{local}:{container_port}"))
}

/// Parses the port arguments (named remote ports looked up in the pod).
fn parse_ports(specs: &[String], pod: &Value) -> Result<Vec<PortPair>> {
    let mut pairs = Vec::new();
    for spec in specs {
        let (local, remote) = match spec.split_once(':') {
            Some((l, r)) => (Some(l), r),
            None => (None, spec.as_str()),
        };
        let remote_port = match remote.parse::<u16>() {
            Ok(n) => n,
            Err(_) => container_port_by_name(pod, remote).ok_or_else(|| {
                Error::usage(format!(
                    "Pod '{}' does not have a named port '{remote}'",
                    pod["metadata"]["name"].as_str().unwrap_or_default()
                ))
            })?,
        };
        if remote_port == 0 {
            return Err(Error::usage(format!(
                "Remote port must be > 0 (in \"{spec}\")"
            )));
        }
        let local_port = match local {
            None => remote_port,
            Some("") => 0,
            Some(l) => parse_port(l)?,
        };
        pairs.push(PortPair {
            local: local_port,
            remote: remote_port,
        });
    }
    Ok(pairs)
}

/// The addresses to listen on: `localhost` means 127.0.0.1 and ::1.
fn listen_addresses(addresses: &[String]) -> Result<Vec<IpAddr>> {
    let mut out = Vec::new();
    for a in addresses {
        if a == "localhost" {
            out.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
            out.push(IpAddr::V6(Ipv6Addr::LOCALHOST));
        } else {
            let ip = a
                .parse::<IpAddr>()
                .map_err(|_| Error::usage(format!("{a} is not a valid IP")))?;
            out.push(ip);
        }
    }
    Ok(out)
}

fn display(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

pub async fn run(ctx: &Context, args: PortForwardArgs) -> Result<()> {
    if args.args.len() < 2 {
        return Err(Error::usage(
            "TYPE/NAME and list of ports are required for port-forward\nSee 'kubectl port-forward -h' for help and examples",
        ));
    }
    // As in attach, a pod is not waited for: a pod not Running fails below.
    duration_flag("pod-running-timeout", &args.pod_running_timeout)?;
    let target = &args.args[0];
    let pod = resolve_pod(ctx, target).await?;
    let mut specs = args.args[1..].to_vec();
    if let Some((kind, name)) = target.split_once('/') {
        let resource = ctx.discovery().await?.resolve(kind)?.into_iter().next();
        if resource.is_some_and(|r| r.kind == "Service") {
            let svc = ctx
                .client()
                .await?
                .get(&format!(
                    "/api/v1/namespaces/{}/services/{name}",
                    ctx.namespace()
                ))
                .await?;
            specs = specs
                .iter()
                .map(|s| translate_service_port(s, &svc, &pod))
                .collect::<Result<_>>()?;
        }
    }
    let ports = parse_ports(&specs, &pod)?;
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    if phase != "Running" {
        return Err(Error::usage(format!(
            "unable to forward port because pod is not running. Current status={phase}"
        )));
    }
    let (namespace, name) = pod_location(ctx, &pod);
    let client = ctx.client().await?.kube().clone();
    let addresses = listen_addresses(&args.address)?;
    let mut listeners = Vec::new();
    for pair in &ports {
        let mut local = pair.local;
        for ip in &addresses {
            match TcpListener::bind(SocketAddr::new(*ip, local)).await {
                Ok(listener) => {
                    let bound = listener.local_addr()?;
                    // A random port is chosen once, then shared by every address.
                    local = bound.port();
                    println!("Forwarding from {} -> {}", display(&bound), pair.remote);
                    listeners.push((
                        listener,
                        PortPair {
                            local,
                            remote: pair.remote,
                        },
                    ));
                }
                Err(e) => eprintln!("Unable to listen on port {local}: {e}"),
            }
        }
    }
    if listeners.is_empty() {
        return Err(Error::usage(
            "unable to listen on any of the requested ports",
        ));
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let mut accepting =
        futures::stream::select_all(listeners.into_iter().map(|(listener, pair)| {
            Box::pin(futures::stream::unfold(listener, move |l| async move {
                let accepted = l.accept().await;
                Some(((accepted, pair), l))
            }))
        }));
    while let Some((accepted, pair)) = accepting.next().await {
        let (tcp, _) = match accepted {
            Ok(a) => a,
            Err(e) => {
                eprintln!("error accepting connection on port {}: {e}", pair.local);
                continue;
            }
        };
        println!("Handling connection for {}", pair.local);
        let _ = std::io::stdout().flush();
        let path = forward_path(&namespace, &name, pair.remote);
        let client = client.clone();
        tokio::spawn(async move {
            if let Err(e) = forward(client, &path, tcp, pair).await {
                eprintln!(
                    "an error occurred forwarding {} -> {}: {e}",
                    pair.local, pair.remote
                );
            }
        });
    }
    Ok(())
}

/// `ports=` is the `PodPortForwardOptions` field; the apiserver turns it into the
/// kubelet's `port=`.
fn forward_path(namespace: &str, pod: &str, remote: u16) -> String {
    format!("/api/v1/namespaces/{namespace}/pods/{pod}/portforward?ports={remote}")
}

const DATA_CHANNEL: u8 = 0;
const ERROR_CHANNEL: u8 = 1;

/// Splices one local connection with one port-forward WebSocket.
async fn forward(
    client: kube::Client,
    path: &str,
    mut tcp: TcpStream,
    pair: PortPair,
) -> Result<()> {
    let request = http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| Error::Transport(e.to_string()))?;
    let connection = client.connect(request).await.map_err(|e| match e {
        kube::Error::UpgradeConnection(err) => {
            Error::Transport(format!("unable to upgrade connection: {err}"))
        }
        other => map_kube_error(other),
    })?;
    let (mut sink, mut source) = connection.into_stream().split();
    let (mut local_read, mut local_write) = tcp.split();
    let mut buf = vec![0u8; 32 * 1024];
    let mut local_open = true;
    // The first two bytes of each channel are the port, not data.
    let mut data_prefix = 2usize;
    let mut error_prefix = 2usize;
    let mut error_text = Vec::new();
    loop {
        tokio::select! {
            frame = source.next() => match frame {
                None | Some(Ok(Message::Close(_))) | Some(Err(_)) => break,
                Some(Ok(Message::Binary(data))) => {
                    let Some((&channel, mut payload)) = data.split_first() else { continue };
                    let prefix = match channel {
                        DATA_CHANNEL => &mut data_prefix,
                        ERROR_CHANNEL => &mut error_prefix,
                        _ => continue,
                    };
                    let skip = (*prefix).min(payload.len());
                    *prefix -= skip;
                    payload = &payload[skip..];
                    if payload.is_empty() {
                        continue;
                    }
                    if channel == DATA_CHANNEL {
                        if local_write.write_all(payload).await.is_err() {
                            break;
                        }
                    } else {
                        error_text.extend_from_slice(payload);
                    }
                }
                Some(Ok(_)) => {}
            },
            read = local_read.read(&mut buf), if local_open => match read {
                Ok(0) | Err(_) => local_open = false,
                Ok(n) => {
                    let mut frame = Vec::with_capacity(n + 1);
                    frame.push(DATA_CHANNEL);
                    frame.extend_from_slice(&buf[..n]);
                    if sink.send(Message::binary(frame)).await.is_err() {
                        break;
                    }
                }
            },
        }
    }
    let _ = local_write.shutdown().await;
    let _ = sink.close().await;
    if !error_text.is_empty() {
        return Err(Error::Transport(
            String::from_utf8_lossy(&error_text).into_owned(),
        ));
    }
    tracing::debug!(
        local = pair.local,
        remote = pair.remote,
        "connection closed"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"containers": [
            {"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]}})
    }

    #[test]
    fn port_pairs_as_upstream_parses_them() {
        let specs: Vec<String> = ["80", "8888:80", ":81", "http", "9000:http"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let pairs = parse_ports(&specs, &pod()).expect("ports");
        let got: Vec<(u16, u16)> = pairs.iter().map(|p| (p.local, p.remote)).collect();
        assert_eq!(
            got,
            [(80, 80), (8888, 80), (0, 81), (8080, 8080), (9000, 8080)]
        );
        assert!(parse_ports(&["nope".to_string()], &pod()).is_err());
        assert!(parse_ports(&["x:80".to_string()], &pod()).is_err());
    }

    #[test]
    fn service_ports_become_target_ports() {
        let svc = json!({"metadata": {"name": "s"}, "spec": {"ports": [
            {"name": "web", "port": 80, "targetPort": "http"},
            {"port": 90, "targetPort": 9090},
            {"port": 100}]}});
        assert_eq!(
            translate_service_port("80", &svc, &pod()).expect("80"),
            "80:8080"
        );
        assert_eq!(
            translate_service_port("7000:web", &svc, &pod()).expect("web"),
            "7000:8080"
        );
        assert_eq!(
            translate_service_port("90", &svc, &pod()).expect("90"),
            "90:9090"
        );
        assert_eq!(
            translate_service_port("100", &svc, &pod()).expect("100"),
            "100:100"
        );
        assert!(translate_service_port("91", &svc, &pod()).is_err());
    }

    #[test]
    fn addresses_and_display() {
        let ips = listen_addresses(&["localhost".to_string(), "0.0.0.0".to_string()]).expect("ips");
        assert_eq!(ips.len(), 3);
        assert!(listen_addresses(&["nope".to_string()]).is_err());
        assert_eq!(
            display(&"127.0.0.1:80".parse().expect("v4")),
            "127.0.0.1:80"
        );
        assert_eq!(display(&"[::1]:80".parse().expect("v6")), "[::1]:80");
    }
}
