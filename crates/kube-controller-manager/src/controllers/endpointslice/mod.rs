//! EndpointSlice controller (upstream `pkg/controller/endpointslice`): for every
//! Service with a selector, `discovery.k8s.io/v1` EndpointSlices named
//! `<service>-<random>` listing the selected pods, at most
//! `--max-endpoints-per-slice` endpoints each, owned by the Service.

mod reconcile;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use parking_lot::Mutex;

pub use reconcile::{
    desired_endpoints, plan, slice_labels, Plan, CONTROLLER_NAME, MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
};

use crate::context::ControllerContext;
use crate::util::endpoints::{selects, service_selector, trigger_time};
use crate::util::workqueue::{informer, run_workers, WorkQueue};
use crate::util::{is_not_found, is_status, key_of, ApiContext, Result};

/// How long to wait for the cache to show our own writes before trusting it anyway.
const STALE_LIMIT: Duration = Duration::from_secs(10);

/// What our last writes for a service should look like in the slice cache
/// (upstream's `EndpointSliceTracker`): acting on a cache that does not show
/// them yet would create duplicate slices.
#[derive(Default)]
struct Written {
    /// Slice name -> the resourceVersion we wrote.
    versions: HashMap<String, u64>,
    deleted: HashSet<String>,
    at: Option<Instant>,
}

struct State {
    client: kube::Client,
    services: Store<Service>,
    pods: Store<Pod>,
    nodes: Store<Node>,
    slices: Store<EndpointSlice>,
    max_per_slice: usize,
    written: Mutex<HashMap<String, Written>>,
}

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(run(ctx))
}

fn service_of_slice(slice: &EndpointSlice) -> Option<String> {
    let name = slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    Some(format!(
        "{}/{name}",
        slice.metadata.namespace.as_deref().unwrap_or("")
    ))
}

fn rv(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> u64 {
    meta.resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn run(ctx: ControllerContext) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let queue = WorkQueue::new();
    let q = queue.clone();
    let services = informer(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
        move |svc: &Service, _| {
            q.add(&key_of(&svc.metadata));
        },
    );
    let q = queue.clone();
    let managed = format!("{MANAGED_BY_LABEL}={CONTROLLER_NAME}");
    let slices = informer(
        Api::<EndpointSlice>::all(client.clone()),
        watcher::Config::default().labels(&managed),
        move |s: &EndpointSlice, _| {
            if let Some(key) = service_of_slice(s) {
                q.add(&key);
            }
        },
    );
    let (q, svcs, sls) = (queue.clone(), services.clone(), slices.clone());
    let pods = informer(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default(),
        move |pod: &Pod, _| {
            for svc in svcs.state().iter().filter(|s| selects(s, pod)) {
                q.add(&key_of(&svc.metadata));
            }
            // Services listing the pod now, so a pod that stops matching is removed.
            let listed = sls
                .state()
                .into_iter()
                .filter(|s| s.metadata.namespace == pod.metadata.namespace)
                .filter(|s| {
                    s.endpoints.iter().any(|e| {
                        e.target_ref
                            .as_ref()
                            .is_some_and(|r| r.name == pod.metadata.name)
                    })
                });
            for s in listed {
                if let Some(key) = service_of_slice(&s) {
                    q.add(&key);
                }
            }
        },
    );
    let nodes = informer(
        Api::<Node>::all(client.clone()),
        watcher::Config::default(),
        |_: &Node, _| {},
    );
    services.wait_until_ready().await?;
    slices.wait_until_ready().await?;
    pods.wait_until_ready().await?;
    nodes.wait_until_ready().await?;
    let state = Arc::new(State {
        client,
        services,
        pods,
        nodes,
        slices,
        max_per_slice: ctx.options.max_endpoints_per_slice,
        written: Mutex::new(HashMap::new()),
    });
    tracing::info!(
        max_per_slice = state.max_per_slice,
        "starting endpointslice controller"
    );
    run_workers(
        queue,
        ctx.options.concurrent_service_endpoint_syncs,
        "endpointslice-controller",
        move |key| {
            let state = state.clone();
            async move { sync(&state, &key).await }
        },
    )
    .await;
    Ok(())
}

/// Whether the slice cache does not show our last writes for `key` yet.
fn cache_is_stale(state: &State, key: &str, ns: &str) -> bool {
    let mut written = state.written.lock();
    let Some(w) = written.get(key) else {
        return false;
    };
    let behind = w.versions.iter().any(|(name, v)| {
        state
            .slices
            .get(&ObjectRef::new(name).within(ns))
            .is_none_or(|s| rv(&s.metadata) < *v)
    }) || w
        .deleted
        .iter()
        .any(|name| state.slices.get(&ObjectRef::new(name).within(ns)).is_some());
    if behind && w.at.is_some_and(|at| at.elapsed() < STALE_LIMIT) {
        return true;
    }
    written.remove(key);
    false
}

async fn sync(state: &State, key: &str) -> Result<Option<Duration>> {
    let (ns, name) = key.split_once('/').unwrap_or(("", key));
    if cache_is_stale(state, key, ns) {
        return Ok(Some(Duration::from_millis(100)));
    }
    let existing: Vec<EndpointSlice> = state
        .slices
        .state()
        .iter()
        .filter(|s| {
            s.metadata.namespace.as_deref() == Some(ns)
                && service_of_slice(s).as_deref() == Some(key)
        })
        .map(|s| s.as_ref().clone())
        .collect();
    let api: Api<EndpointSlice> = Api::namespaced(state.client.clone(), ns);
    let svc = state.services.get(&ObjectRef::new(name).within(ns));
    let plan = match &svc {
        None => Plan {
            delete: existing,
            ..Default::default()
        },
        // ExternalName services get no endpoints (upstream issue 105986).
        Some(svc)
            if service_selector(svc).is_none()
                || svc.metadata.deletion_timestamp.is_some()
                || svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("ExternalName") =>
        {
            return Ok(None)
        }
        Some(svc) => {
            let selected: Vec<Arc<Pod>> = state
                .pods
                .state()
                .into_iter()
                .filter(|p| selects(svc, p))
                .collect();
            let zone_of = |node: &str| {
                state.nodes.get(&ObjectRef::new(node)).and_then(|n| {
                    n.metadata
                        .labels
                        .as_ref()?
                        .get(reconcile::ZONE_LABEL)
                        .cloned()
                })
            };
            let desired = desired_endpoints(svc, selected.iter().map(AsRef::as_ref), zone_of);
            let trigger = trigger_time(svc, selected.iter().map(AsRef::as_ref));
            // Only owned slices are ours to change.
            let uid = svc.metadata.uid.clone().unwrap_or_default();
            let owned: Vec<EndpointSlice> = existing
                .into_iter()
                .filter(|s| crate::util::owner::is_controlled_by(&s.metadata, &uid))
                .collect();
            plan(
                svc,
                desired,
                &owned,
                state.max_per_slice,
                trigger.as_deref(),
            )
        }
    };
    if plan.create.is_empty() && plan.update.is_empty() && plan.delete.is_empty() {
        return Ok(None);
    }
    let mut written = Written {
        at: Some(Instant::now()),
        ..Default::default()
    };
    let result = apply(&api, key, plan, &mut written).await;
    state.written.lock().insert(key.to_string(), written);
    result?;
    Ok(None)
}

async fn apply(
    api: &Api<EndpointSlice>,
    key: &str,
    plan: Plan,
    written: &mut Written,
) -> Result<()> {
    for slice in &plan.update {
        let name = slice.metadata.name.clone().unwrap_or_default();
        let out = api
            .replace(&name, &PostParams::default(), slice)
            .await
            .ctx(|| format!("updating endpointslice {name} of {key}"))?;
        written.versions.insert(name, rv(&out.metadata));
    }
    for slice in &plan.create {
        match api.create(&PostParams::default(), slice).await {
            Ok(out) => {
                tracing::debug!(service = %key, slice = ?out.metadata.name, "created endpointslice");
                written.versions.insert(
                    out.metadata.name.clone().unwrap_or_default(),
                    rv(&out.metadata),
                );
            }
            // The namespace is going away.
            Err(err) if is_status(&err, 403) => return Ok(()),
            Err(err) => return Err(err).ctx(|| format!("creating endpointslice for {key}")),
        }
    }
    for slice in &plan.delete {
        let name = slice.metadata.name.clone().unwrap_or_default();
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(err).ctx(|| format!("deleting endpointslice {name} of {key}")),
        }
        written.deleted.insert(name);
    }
    tracing::debug!(service = %key, created = plan.create.len(), updated = plan.update.len(), deleted = plan.delete.len(), "synced endpointslices");
    Ok(())
}
