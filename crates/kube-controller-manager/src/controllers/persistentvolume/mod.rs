//! The persistentvolume binder (upstream `pkg/controller/volume/persistentvolume`,
//! `persistentvolume-binder-controller`): binds each Pending claim to a matching
//! Available volume (storageClassName, accessModes, capacity ≥ request,
//! volumeMode, selector; a volume pre-bound by claimRef or a claim pre-bound by
//! volumeName wins), and keeps phases right: volumes Available → Bound →
//! Released (Retain) or Failed (no deleter/recycler here) when their claim goes;
//! claims Pending → Bound, or Lost when their bound volume disappears.
//! Dynamic provisioning is not done.
//!
//! Binding follows upstream's order so a crash half-way is finished by the next
//! sync: volume claimRef (optimistically, with the cached resourceVersion) →
//! volume phase Bound → claim volumeName + `pv.kubernetes.io/bind-completed` →
//! claim phase Bound with the volume's capacity and access modes.

pub mod binder;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolume, PersistentVolumeClaim};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use parking_lot::Mutex;
use serde_json::json;

use self::binder::{ANN_BIND_COMPLETED, ANN_BOUND_BY_CONTROLLER};
use crate::context::ControllerContext;
use crate::util::backoff::KeyBackoff;
use crate::util::events::Recorder;
use crate::util::{informer, is_not_found, is_status, key_of, ApiContext, Result};

/// Upstream `--pvclaimbinder-sync-period`: unbound claims are retried this often.
const SYNC_PERIOD: Duration = Duration::from_secs(15);
/// How long a volume we just bound stays reserved while the cache catches up.
const ASSUME_TTL: Duration = Duration::from_secs(30);

struct Ctx {
    client: kube::Client,
    volumes: Store<PersistentVolume>,
    claims: Store<PersistentVolumeClaim>,
    /// Volume name → when we bound it (our writes the cache has not seen yet).
    assumed: Mutex<HashMap<String, Instant>>,
    backoff: KeyBackoff,
    recorder: Recorder,
}

impl Ctx {
    fn is_assumed(&self, volume: &str) -> bool {
        let mut assumed = self.assumed.lock();
        assumed.retain(|_, at| at.elapsed() < ASSUME_TTL);
        assumed.contains_key(volume)
    }
}

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(run(ctx))
}

async fn run(ctx: ControllerContext) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let (volumes, volume_stream) = informer::spawn(
        watcher(
            Api::<PersistentVolume>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff(),
    );
    // Both controllers are triggered by claims and read the claim store: each trigger
    // comes after the store has the change (a claim's deletion must not find it
    // there still, or its volume would stay Bound).
    let (claims, claim_stream, claim_stream_for_volumes) = informer::spawn_pair(
        watcher(
            Api::<PersistentVolumeClaim>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff(),
    );
    volumes.wait_until_ready().await?;
    claims.wait_until_ready().await?;
    let state = Arc::new(Ctx {
        client: client.clone(),
        volumes: volumes.clone(),
        claims: claims.clone(),
        assumed: Mutex::new(HashMap::new()),
        backoff: KeyBackoff::default(),
        recorder: Recorder::new(client.clone(), "persistentvolume-controller"),
    });

    // Claims: their own changes, and any volume change (a new or freed volume
    // may serve a pending claim; a bound one names its claim).
    let pending_claims = claims.clone();
    let claim_controller = Controller::for_stream(claim_stream, claims.clone())
        .watches_stream(volume_stream, move |volume: PersistentVolume| {
            let mut refs: Vec<ObjectRef<PersistentVolumeClaim>> = pending_claims
                .state()
                .iter()
                .filter(|c| binder::claim_volume_name(c).is_empty())
                .map(|c| ObjectRef::from_obj(c.as_ref()))
                .collect();
            if let Some(r) = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
                refs.push(
                    ObjectRef::new(r.name.as_deref().unwrap_or(""))
                        .within(r.namespace.as_deref().unwrap_or("")),
                );
            }
            refs
        })
        // One claim at a time, as upstream's claim worker: two claims never race for a volume.
        .with_config(ControllerConfig::default().concurrency(1))
        .run(reconcile_claim, claim_error_policy, state.clone());

    // Volumes: their own changes, and their claim's (a deleted claim releases it).
    let volume_controller = Controller::new(
        Api::<PersistentVolume>::all(client.clone()),
        watcher::Config::default(),
    )
    .watches_stream(claim_stream_for_volumes, |claim: PersistentVolumeClaim| {
        let name = binder::claim_volume_name(&claim).to_string();
        (!name.is_empty()).then(|| ObjectRef::new(&name))
    })
    .with_config(ControllerConfig::default().concurrency(1))
    .run(reconcile_volume, volume_error_policy, state);

    let claim_results = claim_controller
        .map(|r| r.map(|_| ()).map_err(|e| e.to_string()))
        .boxed();
    let volume_results = volume_controller
        .map(|r| r.map(|_| ()).map_err(|e| e.to_string()))
        .boxed();
    let mut merged = futures::stream::select(claim_results, volume_results);
    while let Some(result) = merged.next().await {
        if let Err(err) = result {
            tracing::debug!("persistentvolume-binder: {err}");
        }
    }
    Ok(())
}

fn annotation<'a>(
    meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> Option<&'a str> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

async fn reconcile_claim(claim: Arc<PersistentVolumeClaim>, ctx: Arc<Ctx>) -> Result<Action> {
    let key = key_of(&claim.metadata);
    let action = sync_claim(&claim, &ctx).await?;
    ctx.backoff.forget(&key);
    Ok(action)
}

fn claim_error_policy(
    claim: Arc<PersistentVolumeClaim>,
    err: &crate::util::Error,
    ctx: Arc<Ctx>,
) -> Action {
    let key = key_of(&claim.metadata);
    tracing::warn!(claim = %key, "persistentvolume-binder claim sync failed: {err}");
    Action::requeue(ctx.backoff.next_delay(&key))
}

async fn sync_claim(claim: &PersistentVolumeClaim, ctx: &Ctx) -> Result<Action> {
    if claim.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let key = key_of(&claim.metadata);
    let volume_name = binder::claim_volume_name(claim).to_string();
    if volume_name.is_empty() {
        let volumes = ctx.volumes.state();
        let best = binder::find_best_match(claim, volumes.iter().map(Arc::as_ref), |v| {
            ctx.is_assumed(v)
        })
        .cloned();
        return match best {
            Some(volume) => {
                bind(ctx, claim, &volume).await?;
                Ok(Action::await_change())
            }
            None => {
                set_claim_phase(ctx, claim, "Pending").await?;
                if binder::claim_class(claim).is_empty() {
                    ctx.recorder.event(claim, "Normal", "FailedBinding", "no persistent volumes available for this claim and no storage class is set");
                }
                tracing::debug!(claim = %key, "no volume matches yet");
                Ok(Action::requeue(SYNC_PERIOD))
            }
        };
    }
    // A claim that names its volume (pre-bound by the user, or bound).
    let volume = match ctx.volumes.get(&ObjectRef::new(&volume_name)) {
        Some(v) => Some((*v).clone()),
        None => Api::<PersistentVolume>::all(ctx.client.clone())
            .get_opt(&volume_name)
            .await
            .ctx(|| format!("reading persistentvolume {volume_name}"))?,
    };
    let bound_before = annotation(&claim.metadata, ANN_BIND_COMPLETED).is_some();
    let Some(volume) = volume else {
        if bound_before {
            lose_claim(
                ctx,
                claim,
                "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
            )
            .await?;
        } else {
            set_claim_phase(ctx, claim, "Pending").await?;
        }
        return Ok(Action::requeue(SYNC_PERIOD));
    };
    let claim_ref = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
    if claim_ref.is_none() || binder::is_volume_bound_to_claim(&volume, claim) {
        if claim_ref.is_none() {
            if let Some(why) = binder::mismatch(&volume, claim) {
                let message = format!("Cannot bind to requested volume \"{volume_name}\": {why}");
                ctx.recorder
                    .event(claim, "Warning", "VolumeMismatch", message);
                set_claim_phase(ctx, claim, "Pending").await?;
                return Ok(Action::requeue(SYNC_PERIOD));
            }
        }
        bind(ctx, claim, &volume).await?;
        return Ok(Action::await_change());
    }
    // The volume belongs to someone else.
    if bound_before {
        lose_claim(
            ctx,
            claim,
            "Two claims are bound to the same volume, this one is bound incorrectly",
        )
        .await?;
    } else {
        set_claim_phase(ctx, claim, "Pending").await?;
    }
    Ok(Action::requeue(SYNC_PERIOD))
}

async fn set_claim_phase(ctx: &Ctx, claim: &PersistentVolumeClaim, phase: &str) -> Result<()> {
    if binder::claim_phase(claim) == phase {
        return Ok(());
    }
    let (ns, name) = (
        claim.metadata.namespace.clone().unwrap_or_default(),
        claim.metadata.name.clone().unwrap_or_default(),
    );
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    match api
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"phase": phase}})),
        )
        .await
    {
        Err(err) if is_not_found(&err) => Ok(()),
        other => other
            .map(|_| ())
            .ctx(|| format!("updating the phase of claim {ns}/{name}")),
    }
}

async fn lose_claim(ctx: &Ctx, claim: &PersistentVolumeClaim, message: &str) -> Result<()> {
    if binder::claim_phase(claim) != "Lost" {
        ctx.recorder.event(claim, "Warning", "ClaimLost", message);
    }
    set_claim_phase(ctx, claim, "Lost").await
}

/// Upstream `bind`: every step skipped when already done, so it also finishes
/// a binding interrupted earlier.
async fn bind(ctx: &Ctx, claim: &PersistentVolumeClaim, volume: &PersistentVolume) -> Result<()> {
    let (ns, claim_name) = (
        claim.metadata.namespace.clone().unwrap_or_default(),
        claim.metadata.name.clone().unwrap_or_default(),
    );
    let volume_name = volume.metadata.name.clone().unwrap_or_default();
    let volumes: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);

    // 1. The volume's claimRef, with the uid (a PUT: a stale cache gets a 409).
    let current_uid = volume
        .spec
        .as_ref()
        .and_then(|s| s.claim_ref.as_ref())
        .and_then(|r| r.uid.clone())
        .unwrap_or_default();
    let mut volume = volume.clone();
    if current_uid.is_empty() || Some(current_uid.as_str()) != claim.metadata.uid.as_deref() {
        let chosen_by_us = volume
            .spec
            .as_ref()
            .and_then(|s| s.claim_ref.as_ref())
            .is_none();
        let spec = volume.spec.get_or_insert_with(Default::default);
        spec.claim_ref = Some(ObjectReference {
            kind: Some("PersistentVolumeClaim".into()),
            api_version: Some("v1".into()),
            namespace: Some(ns.clone()),
            name: Some(claim_name.clone()),
            uid: claim.metadata.uid.clone(),
            resource_version: claim.metadata.resource_version.clone(),
            ..Default::default()
        });
        if chosen_by_us {
            volume
                .metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(ANN_BOUND_BY_CONTROLLER.into(), "yes".into());
        }
        volume = match volumes
            .replace(&volume_name, &PostParams::default(), &volume)
            .await
        {
            Ok(v) => v,
            Err(err) if is_status(&err, 409) => {
                return Err(err).ctx(|| {
                    format!("binding volume {volume_name} to claim {ns}/{claim_name} (stale cache)")
                });
            }
            Err(err) => {
                return Err(err)
                    .ctx(|| format!("binding volume {volume_name} to claim {ns}/{claim_name}"))
            }
        };
        ctx.assumed
            .lock()
            .insert(volume_name.clone(), Instant::now());
        tracing::info!(volume = %volume_name, claim = %format!("{ns}/{claim_name}"), "volume bound to claim");
    }
    // 2. The volume's phase.
    if binder::volume_phase(&volume) != "Bound" {
        volumes
            .patch_status(
                &volume_name,
                &PatchParams::default(),
                &Patch::Merge(
                    &json!({"status": {"phase": "Bound", "message": null, "reason": null}}),
                ),
            )
            .await
            .ctx(|| format!("updating the phase of volume {volume_name}"))?;
    }
    // 3. The claim's volumeName and annotations.
    let needs_name = binder::claim_volume_name(claim).is_empty();
    if needs_name || annotation(&claim.metadata, ANN_BIND_COMPLETED) != Some("yes") {
        let mut annotations = serde_json::Map::new();
        annotations.insert(ANN_BIND_COMPLETED.into(), json!("yes"));
        if needs_name {
            annotations.insert(ANN_BOUND_BY_CONTROLLER.into(), json!("yes"));
        }
        let patch =
            json!({"metadata": {"annotations": annotations}, "spec": {"volumeName": volume_name}});
        claims
            .patch(&claim_name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .ctx(|| format!("binding claim {ns}/{claim_name} to volume {volume_name}"))?;
    }
    // 4. The claim's status, from the volume.
    let vspec = volume.spec.clone().unwrap_or_default();
    let status = claim.status.clone().unwrap_or_default();
    if binder::claim_phase(claim) != "Bound"
        || status.capacity != vspec.capacity
        || status.access_modes != vspec.access_modes
    {
        let patch = json!({"status": {"phase": "Bound", "accessModes": vspec.access_modes, "capacity": vspec.capacity}});
        claims
            .patch_status(&claim_name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .ctx(|| format!("updating the status of claim {ns}/{claim_name}"))?;
    }
    Ok(())
}

async fn reconcile_volume(volume: Arc<PersistentVolume>, ctx: Arc<Ctx>) -> Result<Action> {
    let key = key_of(&volume.metadata);
    let action = sync_volume(&volume, &ctx).await?;
    ctx.backoff.forget(&key);
    Ok(action)
}

fn volume_error_policy(
    volume: Arc<PersistentVolume>,
    err: &crate::util::Error,
    ctx: Arc<Ctx>,
) -> Action {
    let key = key_of(&volume.metadata);
    tracing::warn!(volume = %key, "persistentvolume-binder volume sync failed: {err}");
    Action::requeue(ctx.backoff.next_delay(&key))
}

async fn set_volume_phase(
    ctx: &Ctx,
    volume: &PersistentVolume,
    phase: &str,
    message: Option<&str>,
) -> Result<()> {
    if binder::volume_phase(volume) == phase {
        return Ok(());
    }
    let name = volume.metadata.name.clone().unwrap_or_default();
    let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let patch = json!({"status": {"phase": phase, "message": message}});
    match api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Err(err) if is_not_found(&err) => Ok(()),
        other => other
            .map(|_| ())
            .ctx(|| format!("updating the phase of volume {name}")),
    }
}

/// Upstream `syncVolume`.
async fn sync_volume(volume: &PersistentVolume, ctx: &Ctx) -> Result<Action> {
    if volume.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some(claim_ref) = volume.spec.as_ref().and_then(|s| s.claim_ref.clone()) else {
        set_volume_phase(ctx, volume, "Available", None).await?;
        return Ok(Action::await_change());
    };
    let uid = claim_ref.uid.clone().unwrap_or_default();
    if uid.is_empty() {
        // Pre-bound to a claim by name: free until that claim syncs.
        set_volume_phase(ctx, volume, "Available", None).await?;
        return Ok(Action::await_change());
    }
    let (ns, name) = (
        claim_ref.namespace.clone().unwrap_or_default(),
        claim_ref.name.clone().unwrap_or_default(),
    );
    let claim = match ctx.claims.get(&ObjectRef::new(&name).within(&ns)) {
        Some(c) => Some((*c).clone()),
        // Not in the cache: ask the API before releasing anything.
        None => Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &ns)
            .get_opt(&name)
            .await
            .ctx(|| format!("reading claim {ns}/{name}"))?,
    };
    let volume_name = volume.metadata.name.clone().unwrap_or_default();
    match claim {
        Some(claim) if claim.metadata.uid.as_deref() == Some(uid.as_str()) => {
            let claimed = binder::claim_volume_name(&claim);
            if claimed == volume_name {
                set_volume_phase(ctx, volume, "Bound", None).await?;
            } else if !claimed.is_empty()
                && annotation(&volume.metadata, ANN_BOUND_BY_CONTROLLER).is_some()
            {
                // The claim went to another volume: we chose this one, so free it.
                let mut freed = volume.clone();
                if let Some(spec) = freed.spec.as_mut() {
                    spec.claim_ref = None;
                }
                if let Some(a) = freed.metadata.annotations.as_mut() {
                    a.remove(ANN_BOUND_BY_CONTROLLER);
                }
                Api::<PersistentVolume>::all(ctx.client.clone())
                    .replace(&volume_name, &PostParams::default(), &freed)
                    .await
                    .ctx(|| format!("unbinding volume {volume_name}"))?;
            }
            // An unbound claim: its own sync finishes the binding.
            Ok(Action::await_change())
        }
        _ => {
            // The claim is gone (or replaced by a new one of the same name).
            let policy = volume
                .spec
                .as_ref()
                .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
                .unwrap_or("Retain");
            if policy == "Retain" {
                set_volume_phase(ctx, volume, "Released", None).await?;
            } else {
                let message = format!("error getting deleter volume plugin for volume \"{volume_name}\": no volume plugin matched");
                if binder::volume_phase(volume) != "Failed" {
                    ctx.recorder
                        .event(volume, "Warning", "VolumeFailedDelete", message.clone());
                }
                set_volume_phase(ctx, volume, "Failed", Some(&message)).await?;
            }
            Ok(Action::await_change())
        }
    }
}
