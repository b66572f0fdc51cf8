//! Pod garbage collector (upstream `pkg/controller/podgc`): every period it
//! force-deletes terminated pods beyond `--terminated-pod-gc-threshold` (oldest
//! first), pods bound to nodes that no longer exist (after a quarantine, in case
//! the node is only late in the cache), terminating pods never scheduled, and
//! terminating pods on not-ready nodes marked `node.kubernetes.io/out-of-service`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node, Pod, PodCondition};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::ResourceExt;
use parking_lot::Mutex;
use serde_json::json;

use crate::context::ControllerContext;
use crate::util::pod::phase;
use crate::util::time::now;
use crate::util::workqueue::informer;
use crate::util::{is_not_found, key_of, ApiContext, Result};

/// The taint an administrator sets on a node that is down for good.
pub const TAINT_OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";

struct State {
    client: kube::Client,
    nodes: Store<Node>,
    pods: Store<Pod>,
    threshold: i64,
    quarantine: Duration,
    /// Nodes pods point at that the cache does not have, since when.
    missing_since: Mutex<HashMap<String, Instant>>,
}

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(run(ctx))
}

async fn run(ctx: ControllerContext) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let nodes = informer(
        Api::<Node>::all(client.clone()),
        watcher::Config::default(),
        |_: &Node, _| {},
    );
    let pods = informer(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default(),
        |_: &Pod, _| {},
    );
    nodes.wait_until_ready().await?;
    pods.wait_until_ready().await?;
    let state = Arc::new(State {
        client,
        nodes,
        pods,
        threshold: ctx.options.terminated_pod_gc_threshold,
        quarantine: ctx.options.pod_gc_orphan_quarantine,
        missing_since: Mutex::new(HashMap::new()),
    });
    tracing::info!(
        threshold = state.threshold,
        "starting pod garbage collector"
    );
    let mut tick = tokio::time::interval(ctx.options.pod_gc_period.max(Duration::from_millis(100)));
    loop {
        tick.tick().await;
        if let Err(err) = gc(&state).await {
            tracing::warn!("pod garbage collection: {err}");
        }
    }
}

async fn gc(state: &State) -> Result<()> {
    let pods: Vec<Arc<Pod>> = state.pods.state();
    if state.threshold > 0 {
        gc_terminated(state, &pods).await?;
    }
    gc_terminating_out_of_service(state, &pods).await?;
    gc_orphaned(state, &pods).await?;
    gc_unscheduled_terminating(state, &pods).await
}

pub fn is_terminated(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()?
        .node_name
        .as_deref()
        .filter(|n| !n.is_empty())
}

/// The terminated pods to delete so at most `threshold` remain: evicted pods
/// first, then the oldest (upstream `byEvictionAndCreationTimestamp`).
pub fn terminated_to_delete(pods: &[Arc<Pod>], threshold: i64) -> Vec<Arc<Pod>> {
    let mut terminated: Vec<Arc<Pod>> = pods.iter().filter(|p| is_terminated(p)).cloned().collect();
    let keep = usize::try_from(threshold.max(0)).unwrap_or(usize::MAX);
    if terminated.len() <= keep {
        return Vec::new();
    }
    let evicted = |p: &Pod| p.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("Evicted");
    terminated.sort_by(|a, b| {
        evicted(b)
            .cmp(&evicted(a))
            .then_with(|| {
                a.metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0)
                    .cmp(&b.metadata.creation_timestamp.as_ref().map(|t| t.0))
            })
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    let n = terminated.len() - keep;
    terminated.truncate(n);
    terminated
}

async fn gc_terminated(state: &State, pods: &[Arc<Pod>]) -> Result<()> {
    let victims = terminated_to_delete(pods, state.threshold);
    if !victims.is_empty() {
        tracing::info!(
            count = victims.len(),
            threshold = state.threshold,
            "garbage collecting terminated pods"
        );
    }
    for pod in victims {
        force_delete(state, &pod, None).await?;
    }
    Ok(())
}

async fn gc_orphaned(state: &State, pods: &[Arc<Pod>]) -> Result<()> {
    let missing: HashSet<&str> = pods
        .iter()
        .filter_map(|p| node_of(p))
        .filter(|n| state.nodes.get(&ObjectRef::new(n)).is_none())
        .collect();
    let due: Vec<String> = {
        let mut since = state.missing_since.lock();
        since.retain(|n, _| missing.contains(n.as_str()));
        let now = Instant::now();
        for n in &missing {
            since.entry((*n).to_string()).or_insert(now);
        }
        since
            .iter()
            .filter(|(_, t)| now.duration_since(**t) >= state.quarantine)
            .map(|(n, _)| n.clone())
            .collect()
    };
    let api: Api<Node> = Api::all(state.client.clone());
    for node in due {
        // The cache may lag: ask the apiserver before acting.
        match api.get_opt(&node).await {
            Ok(None) => {}
            Ok(Some(_)) => continue,
            Err(err) => return Err(err).ctx(|| format!("checking node {node}")),
        }
        for pod in pods.iter().filter(|p| node_of(p) == Some(node.as_str())) {
            tracing::info!(pod = %key_of(&pod.metadata), node = %node, "deleting orphaned pod: node no longer exists");
            force_delete(state, pod, Some("PodGC: node no longer exists")).await?;
        }
        state.missing_since.lock().remove(&node);
    }
    Ok(())
}

async fn gc_unscheduled_terminating(state: &State, pods: &[Arc<Pod>]) -> Result<()> {
    for pod in pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_some() && node_of(p).is_none())
    {
        tracing::info!(pod = %key_of(&pod.metadata), "deleting unscheduled terminating pod");
        force_delete(state, pod, None).await?;
    }
    Ok(())
}

async fn gc_terminating_out_of_service(state: &State, pods: &[Arc<Pod>]) -> Result<()> {
    for pod in pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_some())
    {
        let Some(node) = node_of(pod).and_then(|n| state.nodes.get(&ObjectRef::new(n))) else {
            continue;
        };
        let ready = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        let out_of_service = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .is_some_and(|ts| ts.iter().any(|t| t.key == TAINT_OUT_OF_SERVICE));
        if !ready && out_of_service {
            tracing::info!(pod = %key_of(&pod.metadata), node = %node.name_any(), "force deleting terminating pod on out-of-service node");
            force_delete(state, pod, Some("PodGC: node is out-of-service")).await?;
        }
    }
    Ok(())
}

/// Upstream `markFailedAndDeletePod`: a non-terminal pod is marked Failed with a
/// DisruptionTarget condition, then deleted with no grace period.
async fn force_delete(state: &State, pod: &Pod, disruption: Option<&str>) -> Result<()> {
    let key = key_of(&pod.metadata);
    let api: Api<Pod> = Api::namespaced(state.client.clone(), &pod.namespace().unwrap_or_default());
    if let Some(message) = disruption.filter(|_| !is_terminated(pod)) {
        let mut conditions: Vec<PodCondition> = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        conditions.retain(|c| c.type_ != "DisruptionTarget");
        conditions.push(PodCondition {
            type_: "DisruptionTarget".into(),
            status: "True".into(),
            reason: Some("DeletionByPodGC".into()),
            message: Some(message.to_string()),
            last_transition_time: Some(now()),
            ..Default::default()
        });
        let patch = json!({"status": {"phase": "Failed", "conditions": conditions}});
        match api
            .patch_status(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => return Ok(()),
            Err(err) => return Err(err).ctx(|| format!("marking {key} Failed")),
        }
    }
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    match api.delete(&pod.name_any(), &dp).await {
        Ok(_) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(err).ctx(|| format!("deleting pod {key}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use k8s_openapi::jiff::Timestamp;

    fn pod(name: &str, phase: &str, created: i64, reason: Option<&str>) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(Timestamp::from_second(created).expect("ts"))),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                phase: Some(phase.into()),
                reason: reason.map(Into::into),
                ..Default::default()
            }),
        })
    }

    #[test]
    fn oldest_terminated_pods_beyond_the_threshold_go_evicted_first() {
        let pods = vec![
            pod("running", "Running", 1, None),
            pod("old", "Succeeded", 10, None),
            pod("new", "Failed", 30, None),
            pod("evicted", "Failed", 40, Some("Evicted")),
            pod("mid", "Succeeded", 20, None),
        ];
        let names = |v: Vec<Arc<Pod>>| v.iter().map(|p| p.name_any()).collect::<Vec<_>>();
        assert_eq!(names(terminated_to_delete(&pods, 2)), ["evicted", "old"]);
        assert_eq!(names(terminated_to_delete(&pods, 0)).len(), 4);
        assert!(terminated_to_delete(&pods, 4).is_empty());
    }
}
