//! Liveness, readiness and startup probes (upstream `pkg/kubelet/prober`): one
//! task per (container, probe) that probes every `periodSeconds` after
//! `initialDelaySeconds`, turns `successThreshold`/`failureThreshold` runs into a
//! result and wakes the pod worker when a result changes. Liveness and readiness
//! wait for the startup probe to succeed. exec goes through CRI ExecSync,
//! httpGet and tcpSocket dial the pod IP.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::cri::RuntimeService;
use crate::events::{self, Recorder};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

impl ProbeKind {
    fn label(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Startup => "Startup",
        }
    }
}

/// Probe fields with upstream's defaults applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl Timing {
    pub fn of(probe: &Probe) -> Timing {
        let secs = |v: Option<i32>, default: i32, min: i32| Duration::from_secs(v.unwrap_or(default).max(min) as u64);
        Timing {
            initial_delay: secs(probe.initial_delay_seconds, 0, 0),
            period: secs(probe.period_seconds, 10, 1),
            timeout: secs(probe.timeout_seconds, 1, 1),
            success_threshold: probe.success_threshold.unwrap_or(1).max(1) as u32,
            failure_threshold: probe.failure_threshold.unwrap_or(3).max(1) as u32,
        }
    }
}

/// Where a probe's network checks go.
#[derive(Debug, Clone)]
pub struct Target {
    pub container_id: String,
    pub pod_ip: String,
    pub ports: Vec<ContainerPort>,
}

fn resolve_port(port: &IntOrString, ports: &[ContainerPort]) -> Result<u16, String> {
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
    u16::try_from(number).ok().filter(|n| *n > 0).ok_or_else(|| format!("invalid port number: {number}"))
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Runs `probe` once: `Ok(())` on success, `Err(message)` as upstream words it.
pub async fn probe_once<R: RuntimeService>(cri: &R, probe: &Probe, target: &Target, timeout: Duration) -> Result<(), String> {
    if let Some(exec) = &probe.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        let quoted = format!("{cmd:?}");
        let out = match tokio::time::timeout(timeout + Duration::from_secs(1), cri.exec_sync(&target.container_id, cmd, timeout)).await {
            Ok(Ok(out)) => out,
            Ok(Err(err)) if err.to_string().contains("DeadlineExceeded") || err.to_string().contains("timeout") => {
                return Err(format!("command {quoted} timed out"))
            }
            Ok(Err(err)) => return Err(err.to_string()),
            Err(_) => return Err(format!("command {quoted} timed out")),
        };
        if out.exit_code == 0 {
            return Ok(());
        }
        let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
        output.push_str(&String::from_utf8_lossy(&out.stderr));
        return Err(output);
    }
    network_probe(probe, target, timeout).await
}

/// httpGet and tcpSocket probes (and the unsupported kinds).
pub async fn network_probe(probe: &Probe, target: &Target, timeout: Duration) -> Result<(), String> {
    if let Some(http) = &probe.http_get {
        let port = resolve_port(&http.port, &target.ports)?;
        let host = http.host.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| target.pod_ip.clone());
        let path = http.path.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "/".into());
        let path = if path.starts_with('/') { path } else { format!("/{path}") };
        let scheme = http.scheme.as_deref().unwrap_or("HTTP").to_lowercase();
        let authority = host_port(&host, port);
        let url = format!("{scheme}://{authority}{path}");
        if scheme != "http" {
            return Err(format!("Get \"{url}\": HTTPS probes are not supported by this kubelet"));
        }
        let headers: Vec<(String, String)> = http.http_headers.iter().flatten().map(|h| (h.name.clone(), h.value.clone())).collect();
        return match tokio::time::timeout(timeout, http_get(&authority, &path, &headers)).await {
            Err(_) => Err(format!("Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)")),
            Ok(Err(err)) => Err(format!("Get \"{url}\": {err}")),
            Ok(Ok(status)) if (200..400).contains(&status) => Ok(()),
            Ok(Ok(status)) => Err(format!("HTTP probe failed with statuscode: {status}")),
        };
    }
    if let Some(tcp) = &probe.tcp_socket {
        let port = resolve_port(&tcp.port, &target.ports)?;
        let host = tcp.host.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| target.pod_ip.clone());
        let address = host_port(&host, port);
        return match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&address)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(format!("dial tcp {address}: connect: {}", go_io_error(&err))),
            Err(_) => Err(format!("dial tcp {address}: i/o timeout")),
        };
    }
    if probe.grpc.is_some() {
        return Err("gRPC probes are not supported by this kubelet".into());
    }
    Err("missing probe handler".into())
}

/// Go's spelling of the common connect errors.
fn go_io_error(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::TimedOut => "connection timed out".into(),
        _ => err.to_string(),
    }
}

/// A GET over plain HTTP/1.1; the response status (the body is drained).
async fn http_get(authority: &str, path: &str, headers: &[(String, String)]) -> Result<u16, String> {
    let stream = tokio::net::TcpStream::connect(authority).await.map_err(|e| format!("dial tcp {authority}: connect: {}", go_io_error(&e)))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, String>(hyper_util::rt::TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req = hyper::Request::builder().method("GET").uri(path).header("Host", authority);
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    if !has("user-agent") {
        req = req.header("User-Agent", "kube-probe/1.33");
    }
    if !has("accept") {
        req = req.header("Accept", "*/*");
    }
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req.body(String::new()).map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    Ok(status)
}

/// The current results of one container's probes.
#[derive(Debug, Clone)]
pub struct Results {
    /// Readiness (false until the first success; true without a probe).
    pub ready: bool,
    /// Startup (false until success; true without a probe).
    pub started: bool,
    /// Set when liveness or startup failed: the container must be restarted.
    pub failed: Option<(ProbeKind, String)>,
}

/// The probe tasks of one running container; aborted on drop.
pub struct ContainerProbes {
    pub results: Arc<Mutex<Results>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for ContainerProbes {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// What a probe task needs besides the probe.
pub struct ProbeContext<R> {
    pub cri: Arc<R>,
    pub recorder: Recorder,
    pub pod: Arc<Pod>,
    pub container: String,
    pub target: Target,
    /// When the container started (initialDelaySeconds counts from here).
    pub started_at: Instant,
    pub wake: Arc<Notify>,
}

impl ContainerProbes {
    /// Starts the probes `container` defines; `None` when it has none.
    pub fn start<R: RuntimeService>(container: &Container, ctx: ProbeContext<R>) -> Option<ContainerProbes> {
        let probes: Vec<(ProbeKind, Probe)> = [
            (ProbeKind::Startup, container.startup_probe.clone()),
            (ProbeKind::Liveness, container.liveness_probe.clone()),
            (ProbeKind::Readiness, container.readiness_probe.clone()),
        ]
        .into_iter()
        .filter_map(|(k, p)| p.map(|p| (k, p)))
        .collect();
        if probes.is_empty() {
            return None;
        }
        let results = Arc::new(Mutex::new(Results {
            ready: container.readiness_probe.is_none(),
            started: container.startup_probe.is_none(),
            failed: None,
        }));
        let ctx = Arc::new(ctx);
        let tasks = probes.into_iter().map(|(kind, probe)| tokio::spawn(probe_loop(ctx.clone(), kind, probe, results.clone()))).collect();
        Some(ContainerProbes { results, tasks })
    }
}

async fn probe_loop<R: RuntimeService>(ctx: Arc<ProbeContext<R>>, kind: ProbeKind, probe: Probe, results: Arc<Mutex<Results>>) {
    let timing = Timing::of(&probe);
    tokio::time::sleep_until((ctx.started_at + timing.initial_delay).into()).await;
    let (mut last, mut run): (Option<bool>, u32) = (None, 0);
    loop {
        let waiting_for_startup = kind != ProbeKind::Startup && !results.lock().started;
        if !waiting_for_startup {
            let outcome = probe_once(ctx.cri.as_ref(), &probe, &ctx.target, timing.timeout).await;
            let ok = outcome.is_ok();
            if last == Some(ok) {
                run = run.saturating_add(1);
            } else {
                (last, run) = (Some(ok), 1);
            }
            if let Err(message) = &outcome {
                let message = format!("{} probe failed: {}", kind.label(), message);
                ctx.recorder.container_event(&ctx.pod, &ctx.container, events::WARNING, "Unhealthy", message);
            }
            let threshold = if ok { timing.success_threshold } else { timing.failure_threshold };
            if run >= threshold {
                let mut r = results.lock();
                let changed = match kind {
                    ProbeKind::Readiness => std::mem::replace(&mut r.ready, ok) != ok,
                    ProbeKind::Startup if ok => !std::mem::replace(&mut r.started, true),
                    ProbeKind::Liveness if ok => false,
                    ProbeKind::Liveness | ProbeKind::Startup => {
                        r.failed = Some((kind, outcome.clone().err().unwrap_or_default()));
                        true
                    }
                };
                drop(r);
                if changed {
                    ctx.wake.notify_one();
                }
                // A failed liveness/startup probe ends with the container; a
                // succeeded startup probe is done.
                if (kind != ProbeKind::Readiness && !ok) || (kind == ProbeKind::Startup && ok) {
                    return;
                }
            }
        }
        tokio::time::sleep(timing.period).await;
    }
}

/// The probes of a pod's running containers, by container id.
#[derive(Default)]
pub struct PodProbes {
    containers: HashMap<String, ContainerProbes>,
}

impl PodProbes {
    pub fn get(&self, container_id: &str) -> Option<Results> {
        self.containers.get(container_id).map(|c| c.results.lock().clone())
    }

    pub fn contains(&self, container_id: &str) -> bool {
        self.containers.contains_key(container_id)
    }

    pub fn insert(&mut self, container_id: String, probes: ContainerProbes) {
        self.containers.insert(container_id, probes);
    }

    /// Stops the probes of containers that are no longer running.
    pub fn retain_running(&mut self, running: &[&str]) {
        self.containers.retain(|id, _| running.contains(&id.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_named_ports() {
        let t = Timing::of(&Probe::default());
        assert_eq!(t, Timing { initial_delay: Duration::ZERO, period: Duration::from_secs(10), timeout: Duration::from_secs(1), success_threshold: 1, failure_threshold: 3 });
        let t = Timing::of(&Probe { period_seconds: Some(0), timeout_seconds: Some(5), failure_threshold: Some(1), ..Default::default() });
        assert_eq!((t.period, t.timeout, t.failure_threshold), (Duration::from_secs(1), Duration::from_secs(5), 1));
        let ports = vec![ContainerPort { name: Some("http".into()), container_port: 8080, ..Default::default() }];
        assert_eq!(resolve_port(&IntOrString::String("http".into()), &ports), Ok(8080));
        assert_eq!(resolve_port(&IntOrString::Int(81), &ports), Ok(81));
        assert_eq!(resolve_port(&IntOrString::String("web".into()), &ports), Err("couldn't find port: web".into()));
    }

    #[tokio::test]
    async fn tcp_and_http_probes_against_a_local_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0u8; 1024];
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let status = if request.starts_with("GET /healthz ") && request.to_lowercase().contains("x-probe: yes") { "200 OK" } else { "500 Oops" };
                    let _ = socket.write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n").as_bytes()).await;
                });
            }
        });
        let target = Target { container_id: String::new(), pod_ip: "127.0.0.1".into(), ports: Vec::new() };
        let http = |path: &str, header: bool| Probe {
            http_get: Some(k8s_openapi::api::core::v1::HTTPGetAction {
                path: Some(path.into()),
                port: IntOrString::Int(port.into()),
                http_headers: header.then(|| vec![k8s_openapi::api::core::v1::HTTPHeader { name: "X-Probe".into(), value: "yes".into() }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let second = Duration::from_secs(1);
        assert_eq!(network_probe(&http("/healthz", true), &target, second).await, Ok(()));
        assert_eq!(network_probe(&http("/healthz", false), &target, second).await, Err("HTTP probe failed with statuscode: 500".into()));
        let tcp = |port: u16| Probe {
            tcp_socket: Some(k8s_openapi::api::core::v1::TCPSocketAction { port: IntOrString::Int(port.into()), host: None }),
            ..Default::default()
        };
        assert_eq!(network_probe(&tcp(port), &target, second).await, Ok(()));
        let closed = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
        assert_eq!(network_probe(&tcp(closed), &target, second).await, Err(format!("dial tcp 127.0.0.1:{closed}: connect: connection refused")));
    }
}
