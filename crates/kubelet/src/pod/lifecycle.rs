//! Container lifecycle hooks (upstream `pkg/kubelet/lifecycle/handlers.go` and
//! `kuberuntime_container.go`): postStart runs right after the container starts
//! (a failure kills it with a `FailedPostStartHook` event); preStop runs before
//! the container gets SIGTERM, within the termination grace period.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod};
use tracing::{info, warn};

use super::probe_net;
use super::prober::Target;
use super::spec;
use super::status::ContainerRecord;
use crate::cri::RuntimeService;
use crate::events::{self, Recorder};

/// Upstream's `minimumGracePeriodInSeconds`: what is left for SIGTERM after a
/// preStop hook is never less than this.
const MIN_GRACE_AFTER_PRE_STOP: Duration = Duration::from_secs(2);

/// `name_namespace(uid)`, upstream's `format.Pod`.
fn format_pod(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        spec::pod_name(pod),
        spec::pod_namespace(pod),
        spec::pod_uid(pod)
    )
}

/// Runs one hook handler; the error is the event message upstream records.
pub async fn run_handler<R: RuntimeService>(
    cri: &R,
    handler: &LifecycleHandler,
    pod: &Pod,
    container: &Container,
    container_id: &str,
    pod_ip: &str,
) -> Result<(), String> {
    if let Some(exec) = &handler.exec {
        let command = exec.command.clone().unwrap_or_default();
        let failed = |err: String, output: String| {
            format!("Exec lifecycle hook ({}) for Container {:?} in Pod {:?} failed - error: {err}, message: {output:?}", go_list(&command), container.name, format_pod(pod))
        };
        // No timeout of its own, as upstream (preStop is bounded by the caller).
        return match cri
            .exec_sync(container_id, command.clone(), Duration::ZERO)
            .await
        {
            Ok(out) if out.exit_code == 0 => Ok(()),
            Ok(out) => {
                let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
                output.push_str(&String::from_utf8_lossy(&out.stderr));
                Err(failed(
                    format!(
                        "command '{}' exited with {}: {output}",
                        command.join(" "),
                        out.exit_code
                    ),
                    output,
                ))
            }
            Err(err) => Err(failed(err.go_string(), String::new())),
        };
    }
    if let Some(http) = &handler.http_get {
        let target = Target {
            container_id: container_id.to_string(),
            pod_ip: pod_ip.to_string(),
            ports: container.ports.clone().unwrap_or_default(),
        };
        let path = http.path.clone().unwrap_or_default();
        // Only transport errors fail an httpGet hook, whatever the status code.
        return probe_net::http_get_action(
            http,
            &target,
            Duration::from_secs(10),
            &probe_net::user_agent("kube-lifecycle"),
        )
        .await
        .map(|_| ())
        .map_err(|err| {
            format!(
                "HTTP lifecycle hook ({path}) for Container {:?} in Pod {:?} failed - error: {err}",
                container.name,
                format_pod(pod)
            )
        });
    }
    if let Some(sleep) = &handler.sleep {
        tokio::time::sleep(Duration::from_secs(sleep.seconds.max(0) as u64)).await;
        return Ok(());
    }
    Err(format!("Invalid handler: {handler:?}"))
}

/// Go's `%v` of a string slice: `[a b c]`.
fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// Runs the container's postStart hook, if any. On failure records
/// `FailedPostStartHook`, kills the container and returns the message.
pub async fn post_start<R: RuntimeService>(
    cri: &R,
    recorder: &Recorder,
    pod: &Pod,
    container: &Container,
    container_id: &str,
    pod_ip: &str,
) -> Result<(), String> {
    let Some(handler) = container
        .lifecycle
        .as_ref()
        .and_then(|l| l.post_start.as_ref())
    else {
        return Ok(());
    };
    let Err(message) = run_handler(cri, handler, pod, container, container_id, pod_ip).await else {
        return Ok(());
    };
    warn!(container = %container.name, "{message}");
    recorder.container_event(
        pod,
        &container.name,
        events::WARNING,
        "FailedPostStartHook",
        message.clone(),
    );
    recorder.container_event(
        pod,
        &container.name,
        events::NORMAL,
        "Killing",
        "FailedPostStartHook".into(),
    );
    if let Err(err) = cri
        .stop_container(container_id, termination_grace(pod))
        .await
    {
        warn!(container = %container.name, "killing container after its postStart hook failed: {err}");
    }
    Err(message)
}

/// The pod's `terminationGracePeriodSeconds` (default 30 s).
pub fn termination_grace(pod: &Pod) -> Duration {
    Duration::from_secs(
        pod.spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30)
            .max(0) as u64,
    )
}

/// Stops one running container: its preStop hook (bounded by `grace`), then
/// SIGTERM with what is left of `grace` (at least 2 s after a hook), SIGKILL after.
pub async fn kill_container<R: RuntimeService>(
    cri: &R,
    recorder: &Recorder,
    pod: &Pod,
    record: &ContainerRecord,
    pod_ip: &str,
    grace: Duration,
) {
    let container = pod
        .spec
        .iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .find(|c| c.name == record.name);
    let mut remaining = grace;
    if let Some((container, handler)) = container
        .and_then(|c| {
            c.lifecycle
                .as_ref()
                .and_then(|l| l.pre_stop.as_ref())
                .map(|h| (c, h))
        })
        .filter(|_| !grace.is_zero())
    {
        let started = Instant::now();
        match tokio::time::timeout(
            grace,
            run_handler(cri, handler, pod, container, &record.id, pod_ip),
        )
        .await
        {
            Ok(Ok(())) => {
                info!(container = %record.name, took = ?started.elapsed(), "preStop hook done")
            }
            Ok(Err(message)) => {
                warn!(container = %record.name, "{message}");
                recorder.container_event(
                    pod,
                    &record.name,
                    events::WARNING,
                    "FailedPreStopHook",
                    message,
                );
            }
            Err(_) => {
                warn!(container = %record.name, "PreStop hook for container {:?} did not complete in {} seconds", record.name, grace.as_secs())
            }
        }
        remaining = grace
            .saturating_sub(started.elapsed())
            .max(MIN_GRACE_AFTER_PRE_STOP);
    }
    if let Err(err) = cri.stop_container(&record.id, remaining).await {
        warn!(container = %record.id, "stopping container: {err}");
    }
}

/// Stops the given running containers concurrently, each with its preStop hook.
pub async fn kill_containers<R: RuntimeService>(
    cri: &R,
    recorder: &Recorder,
    pod: &Pod,
    records: &[ContainerRecord],
    pod_ip: &str,
    grace: Duration,
) {
    let kills = records
        .iter()
        .filter(|c| c.running())
        .map(|record| kill_container(cri, recorder, pod, record, pod_ip, grace));
    futures::future::join_all(kills).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_as_upstream() {
        assert_eq!(
            go_list(&["sh".into(), "-c".into(), "exit 1".into()]),
            "[sh -c exit 1]"
        );
        let pod: Pod = serde_json::from_value(
            serde_json::json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u"}}),
        )
        .expect("pod");
        assert_eq!(format_pod(&pod), "p_ns(u)");
        assert_eq!(termination_grace(&pod), Duration::from_secs(30));
    }
}
