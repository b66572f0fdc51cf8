//! Deployment controller (upstream `pkg/controller/deployment`): ReplicaSets named
//! `<deployment>-<pod-template-hash>` with revision annotations, RollingUpdate
//! (maxSurge/maxUnavailable) and Recreate, proportional scaling, paused
//! deployments, Progressing/Available conditions and revision history cleanup.

mod rollout;
mod sync;
pub mod util;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;
use serde_json::json;

use crate::context::ControllerContext;
use crate::util::backoff::KeyBackoff;
use crate::util::events::Recorder;
use crate::util::informer;
use crate::util::owner::{controller_of, new_controller_ref};
use crate::util::selector::{from_api, labels_of};
use crate::util::{is_not_found, is_status, ApiContext, Result};
use sync::Rollout;

struct Ctx {
    client: kube::Client,
    replica_sets: Store<ReplicaSet>,
    backoff: KeyBackoff,
    recorder: Recorder,
}

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(run(ctx))
}

fn selector_of(d: &Deployment) -> Option<api_types::selectors::LabelSelector> {
    let sel = from_api(&d.spec.as_ref()?.selector)?;
    (!sel.is_empty()).then_some(sel)
}

/// A ReplicaSet event concerns its controlling deployment, or (orphans) every
/// deployment whose selector matches it.
fn deployments_of_rs(
    rs: &ReplicaSet,
    deployments: &Store<Deployment>,
) -> Vec<ObjectRef<Deployment>> {
    let ns = rs.namespace().unwrap_or_default();
    if let Some(r) = controller_of(&rs.metadata) {
        return if r.kind == "Deployment" {
            vec![ObjectRef::new(&r.name).within(&ns)]
        } else {
            Vec::new()
        };
    }
    let labels = labels_of(&rs.metadata.labels);
    deployments
        .state()
        .iter()
        .filter(|d| d.namespace().as_deref() == Some(ns.as_str()))
        .filter(|d| selector_of(d).is_some_and(|s| s.matches(&labels)))
        .map(|d| ObjectRef::from_obj(d.as_ref()))
        .collect()
}

async fn run(ctx: ControllerContext) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let (replica_sets, rs_stream) = informer::spawn(
        watcher(
            Api::<ReplicaSet>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff(),
    );
    replica_sets.wait_until_ready().await?;
    let controller = Controller::new(
        Api::<Deployment>::all(client.clone()),
        watcher::Config::default(),
    );
    let deployments = controller.store();
    let recorder = Recorder::new(client.clone(), "deployment-controller");
    let state = Arc::new(Ctx {
        client,
        replica_sets,
        backoff: KeyBackoff::default(),
        recorder,
    });
    let mut stream = controller
        .watches_stream(rs_stream, move |rs: ReplicaSet| {
            deployments_of_rs(&rs, &deployments)
        })
        .with_config(
            ControllerConfig::default().concurrency(ctx.options.concurrent_deployment_syncs),
        )
        .run(reconcile, error_policy, state)
        .boxed();
    while let Some(result) = stream.next().await {
        if let Err(err) = result {
            tracing::debug!("deployment controller: {err}");
        }
    }
    Ok(())
}

fn key(d: &Deployment) -> String {
    format!("{}/{}", d.namespace().unwrap_or_default(), d.name_any())
}

async fn reconcile(d: Arc<Deployment>, ctx: Arc<Ctx>) -> Result<Action> {
    let requeue = sync_deployment(d.as_ref().clone(), &ctx).await?;
    ctx.backoff.forget(&key(&d));
    Ok(match requeue {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

fn error_policy(d: Arc<Deployment>, err: &crate::util::Error, ctx: Arc<Ctx>) -> Action {
    tracing::warn!(deployment = %key(&d), "sync failed: {err}");
    Action::requeue(
        ctx.backoff
            .next_delay(&key(&d))
            .max(Duration::from_millis(5)),
    )
}

/// Upstream `syncDeployment`.
async fn sync_deployment(d: Deployment, ctx: &Ctx) -> Result<Option<Duration>> {
    let Some(selector) = selector_of(&d) else {
        tracing::warn!(deployment = %key(&d), "a non-empty selector is required; ignoring");
        return Ok(None);
    };
    let rss = claim_replica_sets(&d, &selector, ctx).await?;
    let client = &ctx.client;

    if d.metadata.deletion_timestamp.is_some() {
        let mut r = Rollout::load(client, &ctx.recorder, d, rss, false).await?;
        r.sync_status().await?;
        return Ok(None);
    }

    // Paused/resumed conditions come first, on the deployment as read.
    let mut pre = Rollout {
        client,
        recorder: &ctx.recorder,
        d,
        new_rs: None,
        old_rss: Vec::new(),
    };
    pre.check_paused_conditions().await?;
    let d = pre.d;

    if util::paused(&d) {
        let mut r = Rollout::load(client, &ctx.recorder, d, rss, false).await?;
        rollout::scale(&mut r).await?;
        r.cleanup().await?;
        r.sync_status().await?;
        return Ok(None);
    }

    let mut probe = Rollout::load(client, &ctx.recorder, d.clone(), rss.clone(), false).await?;
    if rollout::is_scaling_event(&probe) {
        rollout::scale(&mut probe).await?;
        probe.sync_status().await?;
        return Ok(None);
    }
    let d = probe.d;

    if util::is_recreate(&d) {
        let mut r = Rollout::load(client, &ctx.recorder, d, rss.clone(), false).await?;
        return rollout::recreate(&mut r, rss).await;
    }
    let mut r = Rollout::load(client, &ctx.recorder, d, rss, true).await?;
    rollout::rolling(&mut r).await
}

/// Upstream `getReplicaSetsForDeployment` (ClaimReplicaSets): ours that match, plus
/// adopted orphans; ours that stopped matching are released.
async fn claim_replica_sets(
    d: &Deployment,
    selector: &api_types::selectors::LabelSelector,
    ctx: &Ctx,
) -> Result<Vec<ReplicaSet>> {
    let ns = d.namespace().unwrap_or_default();
    let uid = d.metadata.uid.clone().unwrap_or_default();
    let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ns);
    let deleting = d.metadata.deletion_timestamp.is_some();
    let mut owned = Vec::new();
    for rs in ctx.replica_sets.state() {
        if rs.namespace().as_deref() != Some(ns.as_str()) {
            continue;
        }
        let matches = selector.matches(&labels_of(&rs.metadata.labels));
        match controller_of(&rs.metadata) {
            Some(r) if r.uid == uid => {
                if matches || deleting {
                    owned.push(rs.as_ref().clone());
                } else {
                    let refs: Vec<_> = rs
                        .owner_references()
                        .iter()
                        .filter(|r| r.uid != uid)
                        .cloned()
                        .collect();
                    patch_owners(&api, &rs, json!(refs)).await?;
                }
            }
            None if matches && !deleting && rs.metadata.deletion_timestamp.is_none() => {
                let mut refs = rs.owner_references().to_vec();
                refs.push(new_controller_ref(d));
                if let Some(adopted) = patch_owners(&api, &rs, json!(refs)).await? {
                    owned.push(adopted);
                }
            }
            _ => {}
        }
    }
    Ok(owned)
}

async fn patch_owners(
    api: &Api<ReplicaSet>,
    rs: &ReplicaSet,
    refs: serde_json::Value,
) -> Result<Option<ReplicaSet>> {
    let patch = json!({"metadata": {"ownerReferences": refs, "uid": rs.metadata.uid, "resourceVersion": rs.metadata.resource_version}});
    match api
        .patch(
            &rs.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(updated) => Ok(Some(updated)),
        Err(err) if is_not_found(&err) || is_status(&err, 409) => Ok(None),
        Err(err) => {
            Err(err).ctx(|| format!("updating ownerReferences of replicaset {}", rs.name_any()))
        }
    }
}
