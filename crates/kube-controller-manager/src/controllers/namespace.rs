//! Namespace controller (upstream `pkg/controller/namespace`): when a namespace is
//! being deleted, delete every namespaced object in it, and once none are left
//! remove the `kubernetes` finalizer through `PUT /api/v1/namespaces/{ns}/finalize`,
//! which lets the apiserver remove the namespace.

use std::sync::Arc;
use std::time::Duration;

use api_types::registry::{ResourceInfo, RESOURCES};
use futures::future::BoxFuture;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::watcher;

use crate::context::ControllerContext;
use crate::util::backoff::KeyBackoff;
use crate::util::{is_not_found, is_status, ApiContext, Result};

/// The finalizer the namespace controller owns (`spec.finalizers`).
pub const FINALIZER_KUBERNETES: &str = "kubernetes";

/// How soon to look again while content remains (pods finishing their grace
/// period, objects held by finalizers).
const CONTENT_REMAINING_RECHECK: Duration = Duration::from_secs(2);

struct Ctx {
    client: kube::Client,
    backoff: KeyBackoff,
}

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(run(ctx))
}

async fn run(ctx: ControllerContext) -> anyhow::Result<()> {
    let state = Arc::new(Ctx {
        client: ctx.client.clone(),
        backoff: KeyBackoff::default(),
    });
    let mut stream = Controller::new(
        Api::<Namespace>::all(ctx.client.clone()),
        watcher::Config::default(),
    )
    .with_config(ControllerConfig::default().concurrency(ctx.options.concurrent_namespace_syncs))
    .run(reconcile, error_policy, state)
    .boxed();
    while let Some(result) = stream.next().await {
        if let Err(err) = result {
            tracing::debug!("namespace controller: {err}");
        }
    }
    Ok(())
}

/// The namespaced resources whose objects a namespace deletion removes.
pub fn deletable_resources() -> impl Iterator<Item = &'static ResourceInfo> {
    RESOURCES
        .iter()
        .enumerate()
        .filter(|(i, r)| crate::controllers::garbagecollector::is_preferred(*i, r))
        .map(|(_, r)| r)
        .filter(|r| r.namespaced && r.verbs.contains(&"list") && r.verbs.contains(&"delete"))
}

fn api_resource(info: &ResourceInfo) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(info.group, info.version, info.kind),
        info.plural,
    )
}

async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Ctx>) -> Result<Action> {
    let name = ns.metadata.name.clone().unwrap_or_default();
    if ns.metadata.deletion_timestamp.is_none() {
        return Ok(Action::await_change());
    }
    let finalizers = ns
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default();
    if !finalizers.iter().any(|f| f == FINALIZER_KUBERNETES) {
        return Ok(Action::await_change());
    }
    let remaining = delete_all_content(&ctx.client, &name).await?;
    if !remaining.is_empty() {
        tracing::info!(namespace = %name, remaining = ?remaining, "namespace content remaining");
        return Ok(Action::requeue(CONTENT_REMAINING_RECHECK));
    }
    finalize(&ctx.client, &ns, &name, finalizers).await?;
    ctx.backoff.forget(&name);
    Ok(Action::await_change())
}

/// Deletes every object of every namespaced resource in `ns`; returns the
/// resources that still have objects (with their counts).
async fn delete_all_content(client: &kube::Client, ns: &str) -> Result<Vec<(String, usize)>> {
    let mut remaining = Vec::new();
    for info in deletable_resources() {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &api_resource(info));
        let list = match api.list(&ListParams::default()).await {
            Ok(list) => list,
            Err(err) if is_not_found(&err) || is_status(&err, 405) => continue,
            Err(err) => {
                return Err(err)
                    .ctx(|| format!("listing {} in namespace {ns}", info.qualified_plural()))
            }
        };
        if list.items.is_empty() {
            continue;
        }
        let mut left = 0;
        for obj in &list.items {
            let Some(obj_name) = obj.metadata.name.as_deref() else {
                continue;
            };
            if obj.metadata.deletion_timestamp.is_some() {
                left += 1;
                continue;
            }
            match api.delete(obj_name, &DeleteParams::background()).await {
                // Deleted now, or marked (graceful pods, finalizers) and still there.
                Ok(either) => {
                    if either.is_left() {
                        left += 1;
                    }
                }
                Err(err) if is_not_found(&err) => {}
                Err(err) => {
                    return Err(err)
                        .ctx(|| format!("deleting {} {ns}/{obj_name}", info.qualified_plural()))
                }
            }
        }
        if left > 0 {
            remaining.push((info.qualified_plural(), left));
        }
    }
    Ok(remaining)
}

/// Removes our finalizer through the `finalize` subresource.
async fn finalize(
    client: &kube::Client,
    ns: &Namespace,
    name: &str,
    finalizers: Vec<String>,
) -> Result<()> {
    let mut body = ns.clone();
    body.metadata.managed_fields = None;
    if let Some(spec) = body.spec.as_mut() {
        spec.finalizers = Some(
            finalizers
                .into_iter()
                .filter(|f| f != FINALIZER_KUBERNETES)
                .collect(),
        );
    }
    let api: Api<Namespace> = Api::all(client.clone());
    match api
        .replace_subresource("finalize", name, &PostParams::default(), &body)
        .await
    {
        Ok(_) => {
            tracing::info!(namespace = %name, "namespace finalized");
            Ok(())
        }
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(err).ctx(|| format!("finalizing namespace {name}")),
    }
}

fn error_policy(ns: Arc<Namespace>, err: &crate::util::Error, ctx: Arc<Ctx>) -> Action {
    let name = ns.metadata.name.clone().unwrap_or_default();
    tracing::warn!(namespace = %name, "namespace sync failed: {err}");
    Action::requeue(ctx.backoff.next_delay(&name).max(Duration::from_millis(5)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletes_namespaced_kinds_only() {
        let plurals: Vec<&str> = deletable_resources().map(|r| r.plural).collect();
        for p in [
            "pods",
            "replicasets",
            "deployments",
            "configmaps",
            "secrets",
            "services",
            "serviceaccounts",
            "leases",
            "endpointslices",
        ] {
            assert!(plurals.contains(&p), "{p} missing");
        }
        for p in ["namespaces", "nodes", "bindings", "clusterroles"] {
            assert!(!plurals.contains(&p), "{p} must not be deleted");
        }
    }
}
