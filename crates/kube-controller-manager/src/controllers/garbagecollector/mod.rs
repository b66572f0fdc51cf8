//! Garbage collector (upstream `pkg/controller/garbagecollector`): a graph of every
//! object and its `ownerReferences`, fed by one watch per resource; dependents
//! whose owners are gone are deleted, owners being deleted with the `orphan`
//! finalizer have their dependents' references removed, and owners with the
//! `foregroundDeletion` finalizer lose it once their blocking dependents are gone.

mod graph;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use api_types::registry::{ResourceInfo, RESOURCES};
use futures::future::BoxFuture;
use futures::stream::{self, StreamExt};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::{watcher, WatchStreamExt};
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::mpsc;

use crate::context::ControllerContext;
use crate::util::{is_not_found, is_status, ApiContext, Result};
use graph::{Graph, Node, FOREGROUND_FINALIZER, ORPHAN_FINALIZER};

/// Retry delay for an item whose processing failed.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Resources the collector watches: listable and watchable, except events
/// (upstream's default ignored resources) and virtual ones.
pub fn monitored_resources() -> Vec<usize> {
    RESOURCES
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.verbs.contains(&"list") && r.verbs.contains(&"watch") && r.verbs.contains(&"delete")
        })
        .filter(|(_, r)| r.kind != "Event" && r.kind != "ComponentStatus")
        .filter(|(i, r)| is_preferred(*i, r))
        .map(|(i, _)| i)
        .collect()
}

/// Whether `RESOURCES[index]` is the first (preferred) version of its group and
/// resource: autoscaling/v1 and v2 HPAs are one set of objects, served twice.
pub fn is_preferred(index: usize, info: &ResourceInfo) -> bool {
    RESOURCES
        .iter()
        .position(|o| o.group == info.group && o.plural == info.plural)
        == Some(index)
}

fn api_resource(info: &ResourceInfo) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(info.group, info.version, info.kind),
        info.plural,
    )
}

struct Collector {
    client: kube::Client,
    graph: Mutex<Graph>,
    queued: Mutex<HashSet<String>>,
    queue: mpsc::UnboundedSender<String>,
    /// Monitors that have not finished their initial list.
    unsynced: AtomicUsize,
}

impl Collector {
    fn enqueue(&self, uids: impl IntoIterator<Item = String>) {
        let mut queued = self.queued.lock();
        for uid in uids {
            if queued.insert(uid.clone()) {
                let _ = self.queue.send(uid);
            }
        }
    }

    fn api(&self, node: &Node) -> Api<DynamicObject> {
        let ar = api_resource(&RESOURCES[node.resource]);
        match &node.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
            None => Api::all_with(self.client.clone(), &ar),
        }
    }
}

fn node_of(resource: usize, obj: &DynamicObject) -> Option<Node> {
    let meta = &obj.metadata;
    Some(Node {
        resource,
        namespace: meta.namespace.clone(),
        name: meta.name.clone()?,
        uid: meta.uid.clone()?,
        resource_version: meta.resource_version.clone(),
        owners: meta.owner_references.clone().unwrap_or_default(),
        finalizers: meta.finalizers.clone().unwrap_or_default(),
        deleting: meta.deletion_timestamp.is_some(),
    })
}

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(run(ctx))
}

async fn run(ctx: ControllerContext) -> anyhow::Result<()> {
    if !ctx.options.enable_garbage_collector {
        tracing::info!("garbage collector disabled by --enable-garbage-collector=false");
        return Ok(());
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let resources = monitored_resources();
    let gc = Arc::new(Collector {
        client: ctx.client.clone(),
        graph: Mutex::new(Graph::default()),
        queued: Mutex::new(HashSet::new()),
        queue: tx,
        unsynced: AtomicUsize::new(resources.len()),
    });

    let client = ctx.client.clone();
    let monitors: Vec<_> = resources
        .into_iter()
        .map(|index| {
            let info = &RESOURCES[index];
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &api_resource(info));
            watcher(api, watcher::Config::default())
                .default_backoff()
                .map(move |event| (index, event))
                .boxed()
        })
        .collect();
    let builder_gc = gc.clone();
    let graph_builder = tokio::spawn(async move {
        let mut events = stream::select_all(monitors);
        let mut synced = HashSet::new();
        while let Some((index, event)) = events.next().await {
            let event = match event {
                Ok(e) => e,
                Err(err) => {
                    tracing::debug!(resource = RESOURCES[index].plural, "monitor: {err}");
                    continue;
                }
            };
            let dirty = {
                let mut graph = builder_gc.graph.lock();
                match &event {
                    watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) => {
                        node_of(index, obj)
                            .map(|n| graph.upsert(n))
                            .unwrap_or_default()
                    }
                    watcher::Event::Delete(obj) => obj
                        .metadata
                        .uid
                        .as_deref()
                        .map(|uid| graph.remove(uid))
                        .unwrap_or_default(),
                    watcher::Event::InitDone => {
                        if synced.insert(index) {
                            builder_gc.unsynced.fetch_sub(1, Ordering::SeqCst);
                        }
                        Vec::new()
                    }
                    watcher::Event::Init => Vec::new(),
                }
            };
            builder_gc.enqueue(dirty);
        }
    });

    let workers = usize::from(ctx.options.concurrent_gc_syncs.clamp(1, 8));
    let worker_gc = gc.clone();
    let process = async move {
        // Act only on a complete graph: "no dependents left" must mean it.
        while worker_gc.unsynced.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tracing::info!("garbage collector: all resource monitors have synced");
        let items = stream::poll_fn(|cx| rx.poll_recv(cx));
        items
            .for_each_concurrent(workers, |uid| {
                let gc = worker_gc.clone();
                async move {
                    gc.queued.lock().remove(&uid);
                    if let Err(err) = process_item(&gc, &uid).await {
                        tracing::warn!(uid = %uid, "garbage collector: {err}");
                        let gc2 = gc.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(RETRY_DELAY).await;
                            gc2.enqueue([uid]);
                        });
                    }
                }
            })
            .await;
    };
    tokio::select! {
        () = process => {},
        _ = graph_builder => {},
    }
    Ok(())
}

/// What became of one owner reference.
enum OwnerState {
    /// Exists with this uid.
    Solid,
    /// Exists and is being deleted in the foreground.
    WaitingForDependents,
    /// Gone (or replaced by another object with the same name).
    Dangling,
}

async fn owner_state(
    gc: &Collector,
    dependent: &Node,
    owner: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
) -> Result<OwnerState> {
    if let Some(n) = gc.graph.lock().get(&owner.uid) {
        return Ok(if n.deleting && n.has_finalizer(FOREGROUND_FINALIZER) {
            OwnerState::WaitingForDependents
        } else {
            OwnerState::Solid
        });
    }
    // Not in the graph: ask the apiserver (the graph may lag), as upstream does.
    let Some(info) = api_types::registry::lookup_kind(&owner.api_version, &owner.kind) else {
        // An owner of an unknown kind cannot be verified; leave the dependent alone.
        return Ok(OwnerState::Solid);
    };
    let ar = api_resource(info);
    let api: Api<DynamicObject> = match (&dependent.namespace, info.namespaced) {
        (Some(ns), true) => Api::namespaced_with(gc.client.clone(), ns, &ar),
        (None, true) => return Ok(OwnerState::Dangling),
        _ => Api::all_with(gc.client.clone(), &ar),
    };
    match api
        .get_opt(&owner.name)
        .await
        .ctx(|| format!("reading owner {} {}", owner.kind, owner.name))?
    {
        Some(obj) if obj.metadata.uid.as_deref() == Some(owner.uid.as_str()) => {
            Ok(OwnerState::Solid)
        }
        _ => Ok(OwnerState::Dangling),
    }
}

async fn process_item(gc: &Collector, uid: &str) -> Result<()> {
    let Some(node) = gc.graph.lock().get(uid).cloned() else {
        return Ok(());
    };
    if node.deleting && node.has_finalizer(ORPHAN_FINALIZER) {
        return orphan_dependents(gc, &node).await;
    }
    if node.deleting && node.has_finalizer(FOREGROUND_FINALIZER) {
        return process_foreground(gc, &node).await;
    }
    if node.owners.is_empty() || node.deleting {
        return Ok(());
    }
    let mut solid = 0;
    let mut waiting = 0;
    let mut dangling = Vec::new();
    for owner in &node.owners {
        match owner_state(gc, &node, owner).await? {
            OwnerState::Solid => solid += 1,
            OwnerState::WaitingForDependents => waiting += 1,
            OwnerState::Dangling => dangling.push(owner.uid.clone()),
        }
    }
    if solid > 0 || (waiting == 0 && dangling.is_empty()) {
        if !dangling.is_empty() {
            // Some owners remain: just drop the references to the gone ones.
            let refs: Vec<_> = node
                .owners
                .iter()
                .filter(|o| !dangling.contains(&o.uid))
                .cloned()
                .collect();
            patch_meta(gc, &node, json!({"ownerReferences": refs})).await?;
        }
        return Ok(());
    }
    // Every owner is gone or being deleted in the foreground.
    let policy = if waiting > 0 {
        PropagationPolicy::Foreground
    } else if node.has_finalizer(ORPHAN_FINALIZER) {
        PropagationPolicy::Orphan
    } else if node.has_finalizer(FOREGROUND_FINALIZER) {
        PropagationPolicy::Foreground
    } else {
        PropagationPolicy::Background
    };
    tracing::info!(kind = RESOURCES[node.resource].kind, namespace = ?node.namespace, name = %node.name, ?policy, "deleting dependent");
    delete_node(gc, &node, policy).await
}

/// Deletes the dependents of a foreground-deleting owner, and removes the finalizer
/// once none that block it remain.
async fn process_foreground(gc: &Collector, owner: &Node) -> Result<()> {
    let dependents = gc.graph.lock().dependents(&owner.uid);
    let mut blocking = 0;
    for dep in &dependents {
        let blocks = dep
            .owners
            .iter()
            .any(|o| o.uid == owner.uid && o.block_owner_deletion == Some(true));
        if blocks {
            blocking += 1;
        }
        if !dep.deleting {
            delete_node(gc, dep, PropagationPolicy::Foreground).await?;
        }
    }
    if blocking == 0 {
        remove_finalizer(gc, owner, FOREGROUND_FINALIZER).await?;
    }
    Ok(())
}

/// Removes the owner's references from its dependents, then the `orphan` finalizer.
async fn orphan_dependents(gc: &Collector, owner: &Node) -> Result<()> {
    let dependents = gc.graph.lock().dependents(&owner.uid);
    for dep in dependents {
        let refs: Vec<_> = dep
            .owners
            .iter()
            .filter(|o| o.uid != owner.uid)
            .cloned()
            .collect();
        patch_meta(gc, &dep, json!({"ownerReferences": refs})).await?;
    }
    remove_finalizer(gc, owner, ORPHAN_FINALIZER).await
}

async fn delete_node(gc: &Collector, node: &Node, policy: PropagationPolicy) -> Result<()> {
    let params = DeleteParams {
        propagation_policy: Some(policy),
        preconditions: Some(Preconditions {
            uid: Some(node.uid.clone()),
            resource_version: None,
        }),
        ..Default::default()
    };
    match gc.api(node).delete(&node.name, &params).await {
        Ok(_) => Ok(()),
        Err(err) if is_not_found(&err) || is_status(&err, 409) => Ok(()),
        Err(err) => {
            Err(err).ctx(|| format!("deleting {} {}", RESOURCES[node.resource].kind, node.name))
        }
    }
}

async fn remove_finalizer(gc: &Collector, node: &Node, finalizer: &str) -> Result<()> {
    let rest: Vec<&String> = node.finalizers.iter().filter(|f| *f != finalizer).collect();
    patch_meta(gc, node, json!({"finalizers": rest})).await
}

/// A merge patch of metadata, conditional on the uid and resourceVersion we saw
/// (a conflict is retried with a fresher graph).
async fn patch_meta(gc: &Collector, node: &Node, mut fields: serde_json::Value) -> Result<()> {
    fields["uid"] = json!(node.uid);
    if let Some(rv) = &node.resource_version {
        fields["resourceVersion"] = json!(rv);
    }
    let patch = json!({ "metadata": fields });
    match gc
        .api(node)
        .patch(&node.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => {
            Err(err).ctx(|| format!("updating {} {}", RESOURCES[node.resource].kind, node.name))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitors_owners_and_dependents_but_not_events() {
        let kinds: Vec<&str> = monitored_resources()
            .into_iter()
            .map(|i| RESOURCES[i].kind)
            .collect();
        for k in [
            "Pod",
            "ReplicaSet",
            "Deployment",
            "ConfigMap",
            "Namespace",
            "Node",
            "EndpointSlice",
        ] {
            assert!(kinds.contains(&k), "{k}");
        }
        assert!(!kinds.contains(&"Event"));
        assert!(!kinds.contains(&"Binding"));
    }
}
