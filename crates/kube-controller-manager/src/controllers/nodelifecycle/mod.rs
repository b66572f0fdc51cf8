//! Node lifecycle controller (upstream `pkg/controller/nodelifecycle` plus the
//! taint eviction controller): nodes whose kubelet stopped renewing its Lease
//! and posting status for `--node-monitor-grace-period` get Unknown conditions,
//! their pods go NotReady, and condition taints (`unreachable`, `not-ready`,
//! pressure, unschedulable) follow the node's state. Pods on NoExecute-tainted
//! nodes are deleted once their tolerations run out.

mod taints;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::ResourceExt;
use parking_lot::Mutex;
use serde_json::json;

pub use taints::{
    desired_taints, eviction_time, tolerates, unknown_conditions, Eviction, TAINT_NOT_READY,
    TAINT_UNREACHABLE,
};

use crate::context::ControllerContext;
use crate::util::events::{Recorder, NORMAL, WARNING};
use crate::util::time::now;
use crate::util::workqueue::informer;
use crate::util::{is_not_found, key_of, ApiContext, Result};

/// Namespace of the kubelets' heartbeat Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// How often taint eviction looks at pods on NoExecute-tainted nodes.
const EVICTION_PERIOD: Duration = Duration::from_secs(1);

/// Upstream `nodeHealthData`: when we last saw the kubelet do something.
struct Health {
    probe: Instant,
    heartbeat: Option<Timestamp>,
    lease_renew: Option<Timestamp>,
    /// The Ready status seen on the last pass.
    ready: Option<String>,
}

struct State {
    client: kube::Client,
    nodes: Store<Node>,
    leases: Store<Lease>,
    pods: Store<Pod>,
    grace: Duration,
    health: Mutex<HashMap<String, Health>>,
    /// Pods we asked to delete (until the cache shows it).
    evicted: Mutex<HashSet<String>>,
    /// Events as `node-controller`.
    recorder: Recorder,
    /// Events as `taint-eviction-controller` (upstream 1.29+ runs it apart).
    eviction_recorder: Recorder,
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
    let leases = informer(
        Api::<Lease>::namespaced(client.clone(), NODE_LEASE_NAMESPACE),
        watcher::Config::default(),
        |_: &Lease, _| {},
    );
    let pods = informer(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default(),
        |_: &Pod, _| {},
    );
    nodes.wait_until_ready().await?;
    leases.wait_until_ready().await?;
    pods.wait_until_ready().await?;
    let recorder = Recorder::new(client.clone(), "node-controller");
    let eviction_recorder = Recorder::new(client.clone(), "taint-eviction-controller");
    let state = Arc::new(State {
        recorder,
        eviction_recorder,
        client,
        nodes,
        leases,
        pods,
        grace: ctx.options.node_monitor_grace_period,
        health: Mutex::new(HashMap::new()),
        evicted: Mutex::new(HashSet::new()),
    });
    tracing::info!(grace = ?state.grace, period = ?ctx.options.node_monitor_period, "starting node lifecycle controller");
    let evictor = state.clone();
    let eviction = tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVICTION_PERIOD);
        loop {
            tick.tick().await;
            evict_pods(&evictor).await;
        }
    });
    struct Abort(tokio::task::JoinHandle<()>);
    impl Drop for Abort {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let _eviction = Abort(eviction);
    let mut tick = tokio::time::interval(
        ctx.options
            .node_monitor_period
            .max(Duration::from_millis(100)),
    );
    loop {
        tick.tick().await;
        for node in state.nodes.state() {
            if let Err(err) = monitor_node(&state, &node).await {
                tracing::warn!(node = %node.name_any(), "node health update failed: {err}");
            }
        }
        let live: HashSet<String> = state.nodes.state().iter().map(|n| n.name_any()).collect();
        state.health.lock().retain(|name, _| live.contains(name));
    }
}

/// Records what the kubelet did since the last pass; true when it has been
/// silent for longer than the grace period.
fn silent_too_long(state: &State, node: &Node) -> bool {
    let name = node.name_any();
    let heartbeat = taints::condition(node, "Ready")
        .and_then(|c| c.last_heartbeat_time.as_ref())
        .map(|t| t.0);
    let lease_renew = state
        .leases
        .get(&ObjectRef::new(&name).within(NODE_LEASE_NAMESPACE))
        .and_then(|l| l.spec.as_ref()?.renew_time.as_ref().map(|t| t.0));
    let mut health = state.health.lock();
    let now = Instant::now();
    let h = health.entry(name).or_insert(Health {
        probe: now,
        heartbeat,
        lease_renew,
        ready: None,
    });
    if heartbeat != h.heartbeat {
        h.heartbeat = heartbeat;
        h.probe = now;
    }
    if lease_renew.is_some() && lease_renew > h.lease_renew {
        h.lease_renew = lease_renew;
        h.probe = now;
    }
    now.duration_since(h.probe) > state.grace
}

async fn monitor_node(state: &State, node: &Node) -> Result<()> {
    let name = node.name_any();
    let api: Api<Node> = Api::all(state.client.clone());
    let now_t = now();
    let mut node = node.clone();
    if silent_too_long(state, &node) {
        if let Some(conditions) = unknown_conditions(&node, &now_t) {
            let patch = json!({"metadata": {"resourceVersion": node.metadata.resource_version}, "status": {"conditions": conditions}});
            node = match api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(n) => n,
                Err(err) if is_not_found(&err) => return Ok(()),
                Err(err) => return Err(err).ctx(|| format!("marking node {name} Unknown")),
            };
            tracing::info!(node = %name, "node stopped posting status: conditions set to Unknown");
        }
    }
    let desired = desired_taints(&node, &now_t);
    let current = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    if desired != current {
        let patch = json!({"metadata": {"resourceVersion": node.metadata.resource_version}, "spec": {"taints": desired}});
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(n) => node = n,
            Err(err) if is_not_found(&err) => return Ok(()),
            Err(err) => return Err(err).ctx(|| format!("updating taints of node {name}")),
        }
        tracing::info!(node = %name, taints = ?desired.iter().map(|t| format!("{}:{}", t.key, t.effect)).collect::<Vec<_>>(), "node taints updated");
    }
    // Pods go NotReady while the node is Unknown (nobody else speaks for them)
    // and when the kubelet reports the node NotReady (upstream: on the transition).
    let ready = taints::ready_status(&node).map(str::to_string);
    let was_ready = {
        let mut health = state.health.lock();
        health
            .get_mut(&name)
            .and_then(|h| std::mem::replace(&mut h.ready, ready.clone()))
    };
    if was_ready.as_deref() == Some("True") && ready.as_deref() != Some("True") {
        // Upstream `RecordNodeStatusChange`, once per transition.
        state.recorder.event(
            &node,
            NORMAL,
            "NodeNotReady",
            format!("Node {name} status is now: NodeNotReady"),
        );
    }
    let mark = match ready.as_deref() {
        Some("Unknown") => true,
        Some("False") => was_ready.as_deref() == Some("True"),
        _ => false,
    };
    if mark {
        if let Err(err) = mark_pods_not_ready(state, &name).await {
            // Try again on the next pass.
            if let Some(h) = state.health.lock().get_mut(&name) {
                h.ready = was_ready;
            }
            return Err(err);
        }
    }
    Ok(())
}

/// Upstream `MarkPodsNotReady`: pods on a node that is not Ready stop being Ready.
async fn mark_pods_not_ready(state: &State, node: &str) -> Result<()> {
    for pod in state.pods.state() {
        if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(node)
            || !crate::util::pod::is_ready(&pod)
        {
            continue;
        }
        let mut conditions: Vec<PodCondition> = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        for c in conditions.iter_mut().filter(|c| c.type_ == "Ready") {
            c.status = "False".into();
            c.last_transition_time = Some(now());
        }
        let api: Api<Pod> =
            Api::namespaced(state.client.clone(), &pod.namespace().unwrap_or_default());
        let patch = json!({"status": {"conditions": conditions}});
        match api
            .patch_status(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {
                tracing::info!(pod = %key_of(&pod.metadata), node, "marked pod NotReady");
                state
                    .recorder
                    .event(pod.as_ref(), WARNING, "NodeNotReady", "Node is not ready");
            }
            Err(err) if is_not_found(&err) => {}
            Err(err) => {
                return Err(err).ctx(|| format!("marking pod {} NotReady", key_of(&pod.metadata)))
            }
        }
    }
    Ok(())
}

/// Taint eviction: deletes pods whose tolerations of their node's NoExecute
/// taints ran out.
async fn evict_pods(state: &State) {
    let now_ts = Timestamp::now();
    let pods = state.pods.state();
    state.evicted.lock().retain(|uid| {
        pods.iter().any(|p| {
            p.metadata.uid.as_deref() == Some(uid) && p.metadata.deletion_timestamp.is_none()
        })
    });
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(node_name) = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .filter(|n| !n.is_empty())
        else {
            continue;
        };
        let Some(node) = state.nodes.get(&ObjectRef::new(node_name)) else {
            continue;
        };
        let taints = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        let Eviction::At(when) = eviction_time(&pod, &taints, now_ts) else {
            continue;
        };
        if when > now_ts {
            continue;
        }
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if !state.evicted.lock().insert(uid.clone()) {
            continue;
        }
        if let Err(err) = evict(state, &pod).await {
            tracing::warn!(pod = %key_of(&pod.metadata), "taint eviction failed: {err}");
            state.evicted.lock().remove(&uid);
        }
    }
}

/// Upstream `addConditionAndDeletePod`: a DisruptionTarget condition, then delete.
async fn evict(state: &State, pod: &Pod) -> Result<()> {
    let key = key_of(&pod.metadata);
    let api: Api<Pod> = Api::namespaced(state.client.clone(), &pod.namespace().unwrap_or_default());
    let mut conditions: Vec<PodCondition> = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    conditions.retain(|c| c.type_ != "DisruptionTarget");
    conditions.push(PodCondition {
        type_: "DisruptionTarget".into(),
        status: "True".into(),
        reason: Some("DeletionByTaintManager".into()),
        message: Some("Taint manager: deleting due to NoExecute taint".into()),
        last_transition_time: Some(Time(now().0)),
        ..Default::default()
    });
    let patch = json!({"status": {"conditions": conditions}});
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
        Err(err) => return Err(err).ctx(|| format!("adding DisruptionTarget to {key}")),
    }
    state.eviction_recorder.event(
        pod,
        NORMAL,
        "TaintManagerEviction",
        format!("Marking for deletion Pod {key}"),
    );
    match api.delete(&pod.name_any(), &DeleteParams::default()).await {
        Ok(_) => {
            tracing::info!(pod = %key, "deleted pod: NoExecute taint no longer tolerated");
            Ok(())
        }
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(err).ctx(|| format!("deleting {key}")),
    }
}
