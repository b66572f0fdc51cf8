//! One task per pod (upstream `pod_workers.go`): each wake-up compares the pod
//! spec with what the runtime has (`SyncPod` in `kuberuntime_manager.go`), starts
//! what is missing, restarts what exited as `restartPolicy` says with back-off,
//! and writes the status back when it changed. Deletion stops the containers
//! within the grace period, then deletes the pod from the API.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use tokio::sync::{watch, Notify};
use tracing::{debug, info, warn, Instrument};

use super::env::{self, PodFacts, Referenced};
use super::lifecycle;
use super::prober::{ContainerProbes, PodProbes, ProbeContext, ProbeKind, Target};
use super::projected;
use super::pvc;
use super::spec::{self, SpecSettings};
use super::status::{self, ContainerRecord, RuntimePod, StatusInputs, Waiting};
use super::token::TokenManager;
use super::volumes;
use crate::cri::{self, api, labels, Runtime};
use crate::events::{self, Recorder};

mod start;

pub use start::effective_pull_policy;
use start::Starter;

/// How often a worker re-inspects its pod without an API event (upstream's PLEG
/// relists every second).
pub const RESYNC_INTERVAL: Duration = Duration::from_secs(1);
/// Container restart back-off: 10 s doubling to 5 min (upstream `backOffPeriod`,
/// `MaxContainerBackOff`).
pub const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// After running this long without failing, the back-off starts over.
const BACKOFF_RESET: Duration = Duration::from_secs(600);
/// How often the configMap, secret, downwardAPI and projected volumes of a
/// running pod are compared with the API and rewritten (upstream: the sync
/// period, about a minute).
pub const VOLUME_RESYNC_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Runtime(#[from] cri::Error),
    #[error("API request failed: {0}")]
    Api(#[from] kube::Error),
    #[error("serializing pod status: {0}")]
    Serialize(#[from] serde_json::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What every worker shares.
pub struct PodContext<R> {
    pub cri: Arc<R>,
    /// `None` in standalone mode (static pods only, no API server configured).
    pub client: Option<kube::Client>,
    pub settings: SpecSettings,
    pub node_name: String,
    pub host_ip: String,
    /// Root of per-pod directories (`/var/lib/kubelet/pods/<uid>/volumes/...`).
    pub root_dir: std::path::PathBuf,
    pub recorder: Recorder,
    /// Service account tokens of projected volumes.
    pub tokens: TokenManager,
}

/// Per (pod, container) back-off, upstream's `flowcontrol.Backoff`.
#[derive(Debug, Clone)]
struct Backoff {
    delay: Duration,
    last: Instant,
}

#[derive(Default)]
struct WorkerState {
    backoff: HashMap<String, Backoff>,
    image_backoff: HashMap<String, Backoff>,
    waiting: HashMap<String, Waiting>,
    terminal: bool,
    last_status: Option<serde_json::Value>,
    probes: PodProbes,
    /// Probe tasks wake the worker when a result changes.
    wake: Arc<Notify>,
    /// When the pod's API-backed volumes were last refreshed.
    volumes_synced: Option<Instant>,
    /// The pod's persistentVolumeClaim volumes resolved so far, by volume name.
    claims: HashMap<String, pvc::ClaimVolume>,
    /// The last FailedMount message (recorded again only when it changes).
    mount_error: Option<String>,
}

/// Runs the worker of one pod until the pod is gone. `updates` carries the latest
/// pod from the API; `None` means it was removed from the API.
pub async fn run_worker<R: Runtime>(
    ctx: Arc<PodContext<R>>,
    mut updates: watch::Receiver<Option<Arc<Pod>>>,
) {
    let mut state = WorkerState::default();
    let mut uid = String::new();
    loop {
        let latest = updates.borrow_and_update().clone();
        match latest {
            None => {
                if !uid.is_empty() {
                    info!(pod_uid = %uid, "pod removed from the API; killing it");
                    if let Err(err) = kill_pod(&ctx, &uid, Duration::from_secs(2)).await {
                        warn!(pod_uid = %uid, "killing pod: {err}");
                    }
                    remove_pod(&ctx, &uid).await;
                }
                return;
            }
            Some(pod) => {
                uid = spec::pod_uid(&pod).to_string();
                // Instrument, never `enter()`: a guard held across `.await` corrupts
                // the span stack when the task moves between runtime threads.
                let span = tracing::info_span!("sync", pod = %format!("{}/{}", spec::pod_namespace(&pod), spec::pod_name(&pod)));
                let finished = async {
                    if pod.metadata.deletion_timestamp.is_some() {
                        match terminate(&ctx, &pod).await {
                            Ok(()) => return true,
                            Err(err) => warn!("terminating pod: {err}"),
                        }
                    } else if let Err(err) = sync_pod(&ctx, &pod, &mut state).await {
                        warn!("sync failed: {err}");
                    }
                    false
                }
                .instrument(span)
                .await;
                if finished {
                    return;
                }
            }
        }
        tokio::select! {
            changed = updates.changed() => if changed.is_err() { return },
            _ = state.wake.notified() => {}
            _ = tokio::time::sleep(RESYNC_INTERVAL) => {}
        }
    }
}

fn uid_filter_sandbox(uid: &str) -> api::PodSandboxFilter {
    api::PodSandboxFilter {
        label_selector: HashMap::from([(labels::POD_UID.into(), uid.into())]),
        ..Default::default()
    }
}

fn uid_filter_container(uid: &str) -> api::ContainerFilter {
    api::ContainerFilter {
        label_selector: HashMap::from([(labels::POD_UID.into(), uid.into())]),
        ..Default::default()
    }
}

struct Inspected {
    sandboxes: Vec<api::PodSandbox>,
    runtime: RuntimePod,
}

impl Inspected {
    fn ready_sandbox(&self) -> Option<&api::PodSandbox> {
        self.sandboxes
            .iter()
            .filter(|s| s.state == api::PodSandboxState::SandboxReady as i32)
            .max_by_key(|s| s.created_at)
    }
}

async fn inspect<R: Runtime>(cri: &R, uid: &str) -> Result<Inspected> {
    let sandboxes = cri.list_pod_sandbox(Some(uid_filter_sandbox(uid))).await?;
    let containers = cri.list_containers(Some(uid_filter_container(uid))).await?;
    let mut runtime = RuntimePod::default();
    for container in &containers {
        match cri.container_status(&container.id).await {
            Ok(status) => runtime.containers.push(ContainerRecord::from_status(
                &status,
                &container.pod_sandbox_id,
            )),
            Err(err) if err.is_not_found() => {}
            Err(err) => return Err(err.into()),
        }
    }
    let ready = sandboxes
        .iter()
        .filter(|s| s.state == api::PodSandboxState::SandboxReady as i32)
        .max_by_key(|s| s.created_at);
    if let Some(sandbox) = ready {
        runtime.sandbox_ready = true;
        let status = cri.pod_sandbox_status(&sandbox.id).await?;
        runtime.pod_ip = status.network.map(|n| n.ip).filter(|ip| !ip.is_empty());
    }
    Ok(Inspected { sandboxes, runtime })
}

fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

fn should_restart(pod: &Pod, exit_code: i32) -> bool {
    match restart_policy(pod) {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

/// The pod's containers will not run again: every app container exited and the
/// policy does not restart it, or an init container failed under `Never`.
fn is_terminal(pod: &Pod, runtime: &RuntimePod) -> bool {
    let Some(spec) = &pod.spec else { return false };
    let init_failed = spec.init_containers.iter().flatten().any(|c| {
        runtime
            .latest(&c.name)
            .is_some_and(|r| r.exited() && r.exit_code != 0 && restart_policy(pod) == "Never")
    });
    let all_done = spec.containers.iter().all(|c| {
        runtime
            .latest(&c.name)
            .is_some_and(|r| r.exited() && !should_restart(pod, r.exit_code))
    });
    init_failed || all_done
}

async fn sync_pod<R: Runtime>(
    ctx: &PodContext<R>,
    pod: &Arc<Pod>,
    state: &mut WorkerState,
) -> Result<()> {
    let uid = spec::pod_uid(pod);
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        state.terminal = true;
    }
    let mut inspected = inspect(ctx.cri.as_ref(), uid).await?;
    if !state.terminal && is_terminal(pod, &inspected.runtime) {
        state.terminal = true;
    }
    if state.terminal {
        // Nothing will run again: free the sandbox (and its IP).
        for sandbox in inspected
            .sandboxes
            .iter()
            .filter(|s| s.state == api::PodSandboxState::SandboxReady as i32)
        {
            kill_containers(ctx.cri.as_ref(), &inspected.runtime, Duration::from_secs(2)).await;
            ctx.cri.stop_pod_sandbox(&sandbox.id).await?;
        }
        state.waiting.clear();
        return write_status(ctx, pod, &inspected.runtime, state).await;
    }

    // Volumes before the sandbox, as upstream's WaitForAttachAndMount: a pod
    // whose claims are not bound waits (polled at every resync).
    // A pod already running (adopted after a kubelet restart) is not disturbed.
    if !pvc::claim_volumes(pod)
        .iter()
        .all(|(v, _, _)| state.claims.contains_key(v))
    {
        match pvc::resolve_pod(ctx.client.as_ref(), pod, &mut state.claims).await {
            Ok(()) => state.mount_error = None,
            Err(message) => {
                if state.mount_error.as_deref() != Some(message.as_str()) {
                    warn!("{message}");
                    ctx.recorder.record(events::EventRecord {
                        namespace: spec::pod_namespace(pod).to_string(),
                        pod_name: spec::pod_name(pod).to_string(),
                        pod_uid: uid.to_string(),
                        field_path: None,
                        type_: events::WARNING,
                        reason: "FailedMount",
                        message: message.clone(),
                    });
                    state.mount_error = Some(message);
                }
                if inspected.ready_sandbox().is_none() {
                    return write_status(ctx, pod, &inspected.runtime, state).await;
                }
            }
        }
    }

    let sandbox = match inspected.ready_sandbox() {
        Some(sandbox) => (
            sandbox.id.clone(),
            sandbox.metadata.as_ref().map_or(0, |m| m.attempt),
        ),
        None => {
            let attempt = inspected.sandboxes.len() as u32;
            // A dead sandbox's containers go with it (upstream kills the pod first).
            kill_containers(ctx.cri.as_ref(), &inspected.runtime, Duration::from_secs(2)).await;
            let config = spec::sandbox_config(pod, attempt, &ctx.settings);
            if let Err(err) = std::fs::create_dir_all(&config.log_directory) {
                warn!("creating {}: {err}", config.log_directory);
            }
            let id = ctx.cri.run_pod_sandbox(config, String::new()).await?;
            info!(sandbox = %id, attempt, "sandbox started");
            inspected = inspect(ctx.cri.as_ref(), uid).await?;
            (id, attempt)
        }
    };
    let (sandbox_id, sandbox_attempt) = sandbox;
    let sandbox_config = spec::sandbox_config(pod, sandbox_attempt, &ctx.settings);
    let pod_spec = pod.spec.clone().unwrap_or_default();
    let mut refs: Option<Referenced> = None;
    let mut starter = Starter {
        ctx,
        pod,
        sandbox_id: &sandbox_id,
        sandbox_config: &sandbox_config,
        refs: &mut refs,
        runtime: &inspected.runtime,
    };

    // Init containers, in order, each to completion before the next.
    let mut initialized = true;
    for container in pod_spec.init_containers.iter().flatten() {
        let current = inspected
            .runtime
            .by_name(&container.name)
            .into_iter()
            .find(|r| r.sandbox_id == sandbox_id)
            .cloned();
        let total = inspected
            .runtime
            .latest(&container.name)
            .map_or(0, |r| r.attempt + 1);
        match current {
            Some(r) if r.exited() && r.exit_code == 0 => continue,
            Some(r) if r.running() => {}
            Some(r) if r.exited() => {
                if restart_policy(pod) != "Never" {
                    starter.restart_with_backoff(container, &r, state).await;
                }
            }
            Some(_) => {}
            None => starter.start(container, total, state).await,
        }
        initialized = false;
        break;
    }
    if initialized {
        for container in &pod_spec.containers {
            let latest = inspected.runtime.latest(&container.name).cloned();
            match latest {
                None => starter.start(container, 0, state).await,
                Some(r) if r.running() => {
                    state.waiting.remove(&container.name);
                    if let Some(b) = state.backoff.get_mut(&container.name) {
                        if r.started_at > 0 && Instant::now().duration_since(b.last) > BACKOFF_RESET
                        {
                            state.backoff.remove(&container.name);
                        }
                    }
                }
                Some(r) if r.sandbox_id != sandbox_id => {
                    starter.start(container, r.attempt + 1, state).await
                }
                Some(r) if r.exited() => {
                    if should_restart(pod, r.exit_code) {
                        starter.restart_with_backoff(container, &r, state).await;
                    } else {
                        state.waiting.remove(&container.name);
                    }
                }
                Some(r) => {
                    // Created but never started (e.g. the kubelet died in between).
                    if let Err(err) = ctx.cri.start_container(&r.id).await {
                        warn!(container = %container.name, "starting created container: {err}");
                    }
                }
            }
        }
    }
    if initialized
        && manage_probes(
            ctx,
            pod,
            &inspect(ctx.cri.as_ref(), uid).await?.runtime,
            &sandbox_id,
            state,
        )
        .await
    {
        // A container was killed by its probe: restart it right away (back-off permitting).
        state.wake.notify_one();
    }
    let runtime = inspect(ctx.cri.as_ref(), uid).await?.runtime;
    if is_terminal(pod, &runtime) {
        state.terminal = true;
    }
    if state
        .volumes_synced
        .is_none_or(|t| t.elapsed() >= VOLUME_RESYNC_INTERVAL)
    {
        state.volumes_synced = Some(Instant::now());
        refresh_volumes(ctx, pod, &runtime).await;
    }
    gc_dead_containers(ctx.cri.as_ref(), &runtime).await;
    write_status(ctx, pod, &runtime, state).await
}

/// Starts probes for newly running app containers, drops those of stopped ones,
/// and kills containers whose liveness or startup probe failed. Returns whether
/// it killed any.
async fn manage_probes<R: Runtime>(
    ctx: &PodContext<R>,
    pod: &Arc<Pod>,
    runtime: &RuntimePod,
    sandbox_id: &str,
    state: &mut WorkerState,
) -> bool {
    let spec = pod.spec.clone().unwrap_or_default();
    let pod_ip = if spec::host_network(pod) {
        ctx.host_ip.clone()
    } else {
        runtime.pod_ip.clone().unwrap_or_default()
    };
    let mut running: Vec<&str> = Vec::new();
    let mut killed = false;
    for container in &spec.containers {
        let Some(record) = runtime
            .latest(&container.name)
            .filter(|r| r.running() && r.sandbox_id == sandbox_id)
        else {
            continue;
        };
        running.push(&record.id);
        if !state.probes.contains(&record.id) {
            let since_start = Duration::from_nanos(
                u64::try_from(Timestamp::now().as_nanosecond() - i128::from(record.started_at))
                    .unwrap_or(0),
            );
            let probe_ctx = ProbeContext {
                cri: ctx.cri.clone(),
                recorder: ctx.recorder.clone(),
                pod: pod.clone(),
                container: container.name.clone(),
                target: Target {
                    container_id: record.id.clone(),
                    pod_ip: pod_ip.clone(),
                    ports: container.ports.clone().unwrap_or_default(),
                },
                started_at: Instant::now()
                    .checked_sub(since_start)
                    .unwrap_or_else(Instant::now),
                wake: state.wake.clone(),
            };
            if let Some(probes) = ContainerProbes::start(container, probe_ctx) {
                state.probes.insert(record.id.clone(), probes);
            }
            continue;
        }
        let Some((kind, _)) = state.probes.get(&record.id).and_then(|r| r.failed) else {
            continue;
        };
        let (probe, what) = match kind {
            ProbeKind::Startup => (container.startup_probe.as_ref(), "startup"),
            _ => (container.liveness_probe.as_ref(), "liveness"),
        };
        let message = format!(
            "Container {} failed {what} probe, will be restarted",
            container.name
        );
        info!(container = %container.name, "{message}");
        ctx.recorder
            .container_event(pod, &container.name, events::NORMAL, "Killing", message);
        let grace = probe
            .and_then(|p| p.termination_grace_period_seconds)
            .or(spec.termination_grace_period_seconds)
            .unwrap_or(30)
            .max(0) as u64;
        lifecycle::kill_container(
            ctx.cri.as_ref(),
            &ctx.recorder,
            pod,
            record,
            &pod_ip,
            Duration::from_secs(grace),
        )
        .await;
        running.pop();
        killed = true;
    }
    state.probes.retain_running(&running);
    killed
}

/// Brings the pod's configMap, secret, downwardAPI and projected volumes up to
/// date with the API (and refreshes service account tokens due for it).
async fn refresh_volumes<R: Runtime>(ctx: &PodContext<R>, pod: &Pod, runtime: &RuntimePod) {
    let Some(spec) = &pod.spec else { return };
    if !spec
        .volumes
        .iter()
        .flatten()
        .any(|v| projected::plugin_dir(v).is_some())
    {
        return;
    }
    let refs = projected::fetch_referenced(
        ctx.client.as_ref(),
        &ctx.tokens,
        pod,
        projected::Scope::Volumes,
    )
    .await;
    if refs.fetch_errors > 0 {
        debug!(
            "not refreshing volumes: {} API reads failed",
            refs.fetch_errors
        );
        return;
    }
    let facts = PodFacts {
        pod_ip: runtime.pod_ip.clone().unwrap_or_default(),
        host_ip: ctx.host_ip.clone(),
        node_name: ctx.node_name.clone(),
    };
    volumes::refresh(
        pod,
        &ctx.root_dir.join("pods").join(spec::pod_uid(pod)),
        &refs,
        &facts,
    );
}

/// Keeps only the newest dead container per name besides the current one (for
/// `kubectl logs --previous`), like upstream's container GC.
async fn gc_dead_containers<R: Runtime>(cri: &R, runtime: &RuntimePod) {
    let mut names: Vec<&str> = runtime.containers.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        for old in runtime
            .by_name(name)
            .into_iter()
            .skip(2)
            .filter(|c| c.exited())
        {
            if let Err(err) = cri.remove_container(&old.id).await {
                debug!(container = %old.id, "removing old container: {err}");
            }
        }
    }
}

async fn write_status<R: Runtime>(
    ctx: &PodContext<R>,
    pod: &Pod,
    runtime: &RuntimePod,
    state: &mut WorkerState,
) -> Result<()> {
    let mut readiness = HashMap::new();
    let mut started = HashMap::new();
    for container in pod.spec.iter().flat_map(|s| s.containers.iter()) {
        if let Some(results) = runtime
            .latest(&container.name)
            .filter(|r| r.running())
            .and_then(|r| state.probes.get(&r.id))
        {
            readiness.insert(container.name.clone(), results.ready && results.started);
            started.insert(container.name.clone(), results.started);
        } else if container.startup_probe.is_some() || container.readiness_probe.is_some() {
            // Probes not started yet (or the kubelet just restarted): not ready until they say so.
            readiness.insert(container.name.clone(), false);
            started.insert(container.name.clone(), container.startup_probe.is_none());
        }
    }
    let inputs = StatusInputs {
        waiting: state.waiting.clone(),
        readiness,
        started,
        host_ip: &ctx.host_ip,
        terminal: state.terminal,
    };
    let computed = status::compute(pod, runtime, &inputs, Timestamp::now());
    let value = serde_json::to_value(&computed)?;
    // Compare without timestamps that change on every computation of a new pod.
    if state.last_status.as_ref() == Some(&value) {
        return Ok(());
    }
    let current = pod.status.as_ref().map(serde_json::to_value).transpose()?;
    if current.as_ref() == Some(&value) {
        state.last_status = Some(value);
        return Ok(());
    }
    let Some(client) = ctx.client.clone() else {
        return Ok(());
    };
    let api: Api<Pod> = Api::namespaced(client, spec::pod_namespace(pod));
    let patch = serde_json::json!({ "status": value });
    match api
        .patch_status(
            spec::pod_name(pod),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => {}
        // A static pod's status goes to its mirror pod, which may not exist yet.
        Err(kube::Error::Api(status))
            if status.code == 404 && super::static_pods::is_static(pod) =>
        {
            return Ok(())
        }
        Err(err) => return Err(err.into()),
    }
    debug!(phase = ?computed.phase, "status written");
    state.last_status = Some(value);
    Ok(())
}

/// Stops every running container of the pod with `grace`, concurrently.
async fn kill_containers<R: Runtime>(cri: &R, runtime: &RuntimePod, grace: Duration) {
    let stops = runtime
        .containers
        .iter()
        .filter(|c| c.running())
        .map(|c| async move {
            if let Err(err) = cri.stop_container(&c.id, grace).await {
                warn!(container = %c.id, "stopping container: {err}");
            }
        });
    futures::future::join_all(stops).await;
}

/// Stops the pod's containers (SIGTERM, SIGKILL after `grace`) and its sandboxes.
pub async fn kill_pod<R: Runtime>(ctx: &PodContext<R>, uid: &str, grace: Duration) -> Result<()> {
    let inspected = inspect(ctx.cri.as_ref(), uid).await?;
    kill_containers(ctx.cri.as_ref(), &inspected.runtime, grace).await;
    for sandbox in &inspected.sandboxes {
        ctx.cri.stop_pod_sandbox(&sandbox.id).await?;
    }
    Ok(())
}

/// Removes the pod's containers, sandboxes and volume directories.
pub async fn remove_pod<R: Runtime>(ctx: &PodContext<R>, uid: &str) {
    if let Ok(containers) = ctx
        .cri
        .list_containers(Some(uid_filter_container(uid)))
        .await
    {
        for c in containers {
            let _ = ctx.cri.remove_container(&c.id).await;
        }
    }
    if let Ok(sandboxes) = ctx
        .cri
        .list_pod_sandbox(Some(uid_filter_sandbox(uid)))
        .await
    {
        for s in sandboxes {
            let _ = ctx.cri.stop_pod_sandbox(&s.id).await;
            if let Err(err) = ctx.cri.remove_pod_sandbox(&s.id).await {
                warn!(sandbox = %s.id, "removing sandbox: {err}");
            }
        }
    }
    volumes::remove_pod_dir(&ctx.root_dir.join("pods").join(uid));
    ctx.tokens.forget_pod(uid);
}

/// Graceful deletion: stop within the grace period, then delete the pod object
/// with grace 0 and a uid precondition, then clean up the runtime.
async fn terminate<R: Runtime>(ctx: &PodContext<R>, pod: &Pod) -> Result<()> {
    let uid = spec::pod_uid(pod);
    let grace = pod
        .metadata
        .deletion_grace_period_seconds
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(30)
        .max(0) as u64;
    info!(grace_seconds = grace, "killing pod for deletion");
    let inspected = inspect(ctx.cri.as_ref(), uid).await?;
    for c in inspected.runtime.containers.iter().filter(|c| c.running()) {
        ctx.recorder.container_event(
            pod,
            &c.name,
            events::NORMAL,
            "Killing",
            format!("Stopping container {}", c.name),
        );
    }
    let pod_ip = if spec::host_network(pod) {
        ctx.host_ip.clone()
    } else {
        inspected.runtime.pod_ip.clone().unwrap_or_default()
    };
    lifecycle::kill_containers(
        ctx.cri.as_ref(),
        &ctx.recorder,
        pod,
        &inspected.runtime.containers,
        &pod_ip,
        Duration::from_secs(grace),
    )
    .await;
    for sandbox in &inspected.sandboxes {
        ctx.cri.stop_pod_sandbox(&sandbox.id).await?;
    }
    let Some(client) = ctx.client.clone() else {
        remove_pod(ctx, uid).await;
        return Ok(());
    };
    let api: Api<Pod> = Api::namespaced(client, spec::pod_namespace(pod));
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(spec::pod_name(pod), &params).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
        Err(err) => return Err(err.into()),
    }
    remove_pod(ctx, uid).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_pull_policy_as_upstream() {
        assert_eq!(effective_pull_policy("busybox", None), "Always");
        assert_eq!(effective_pull_policy("busybox:latest", None), "Always");
        assert_eq!(effective_pull_policy("busybox:1.36", None), "IfNotPresent");
        assert_eq!(effective_pull_policy("localhost:5000/x", None), "Always");
        assert_eq!(effective_pull_policy("x@sha256:abc", None), "IfNotPresent");
        assert_eq!(effective_pull_policy("busybox", Some("Never")), "Never");
    }
}
