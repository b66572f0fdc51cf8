//! Liveness, readiness and startup probes (upstream `pkg/kubelet/prober`): one
//! task per (container, probe) that probes every `periodSeconds` after
//! `initialDelaySeconds`, turns `successThreshold`/`failureThreshold` runs into a
//! result and wakes the pod worker when a result changes. Liveness and readiness
//! wait for the startup probe to succeed. exec goes through CRI ExecSync,
//! httpGet and tcpSocket dial the pod IP.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod, Probe};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::cri::RuntimeService;
use crate::events::{self, Recorder};

pub use super::probe_net::network_probe;

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
        let secs = |v: Option<i32>, default: i32, min: i32| {
            Duration::from_secs(v.unwrap_or(default).max(min) as u64)
        };
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

/// Runs `probe` once: `Ok(())` on success, `Err(message)` as upstream words it.
pub async fn probe_once<R: RuntimeService>(
    cri: &R,
    probe: &Probe,
    target: &Target,
    timeout: Duration,
) -> Result<(), String> {
    if let Some(exec) = &probe.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        let quoted = format!("{cmd:?}");
        let out = match tokio::time::timeout(
            timeout + Duration::from_secs(1),
            cri.exec_sync(&target.container_id, cmd, timeout),
        )
        .await
        {
            Ok(Ok(out)) => out,
            Ok(Err(err))
                if err.to_string().contains("DeadlineExceeded")
                    || err.to_string().contains("timeout") =>
            {
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
    pub fn start<R: RuntimeService>(
        container: &Container,
        ctx: ProbeContext<R>,
    ) -> Option<ContainerProbes> {
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
        let tasks = probes
            .into_iter()
            .map(|(kind, probe)| {
                tokio::spawn(probe_loop(ctx.clone(), kind, probe, results.clone()))
            })
            .collect();
        Some(ContainerProbes { results, tasks })
    }
}

async fn probe_loop<R: RuntimeService>(
    ctx: Arc<ProbeContext<R>>,
    kind: ProbeKind,
    probe: Probe,
    results: Arc<Mutex<Results>>,
) {
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
                ctx.recorder.container_event(
                    &ctx.pod,
                    &ctx.container,
                    events::WARNING,
                    "Unhealthy",
                    message,
                );
            }
            let threshold = if ok {
                timing.success_threshold
            } else {
                timing.failure_threshold
            };
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
        self.containers
            .get(container_id)
            .map(|c| c.results.lock().clone())
    }

    pub fn contains(&self, container_id: &str) -> bool {
        self.containers.contains_key(container_id)
    }

    pub fn insert(&mut self, container_id: String, probes: ContainerProbes) {
        self.containers.insert(container_id, probes);
    }

    /// Stops the probes of containers that are no longer running.
    pub fn retain_running(&mut self, running: &[&str]) {
        self.containers
            .retain(|id, _| running.contains(&id.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let t = Timing::of(&Probe::default());
        assert_eq!(
            t,
            Timing {
                initial_delay: Duration::ZERO,
                period: Duration::from_secs(10),
                timeout: Duration::from_secs(1),
                success_threshold: 1,
                failure_threshold: 3
            }
        );
        let t = Timing::of(&Probe {
            period_seconds: Some(0),
            timeout_seconds: Some(5),
            failure_threshold: Some(1),
            ..Default::default()
        });
        assert_eq!(
            (t.period, t.timeout, t.failure_threshold),
            (Duration::from_secs(1), Duration::from_secs(5), 1)
        );
    }
}
