//! ResourceQuota controller (upstream `pkg/controller/resourcequota`): keeps
//! `status.hard` equal to `spec.hard` and recomputes `status.used` from the objects
//! in the namespace, on quota changes, on changes of the kinds it counts (pods,
//! services, configmaps, secrets, claims, replication controllers) and every
//! `--resource-quota-sync-period`. Admission charges creations; this controller is
//! what gives usage back when objects go away or pods finish. Both compute usage with
//! the shared [`api_types::quota`].

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, ReplicationController, ResourceQuota, Secret, Service,
};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::{json, Map, Value};

use crate::context::ControllerContext;
use crate::util::backoff::KeyBackoff;
use crate::util::{is_not_found, is_status, key_of, ApiContext, Result};
use api_types::quota::{
    add, equals, matches_scopes, parse_list, source_of, to_json, usage, Qty, ResourceList,
};

struct Ctx {
    client: kube::Client,
    resync: Duration,
    backoff: KeyBackoff,
}

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(run(ctx))
}

/// Every quota in the namespace of a changed object.
fn quotas_in<K: Resource>(
    quotas: Store<ResourceQuota>,
) -> impl Fn(K) -> Vec<ObjectRef<ResourceQuota>> + Send + Sync + 'static {
    move |obj: K| {
        let ns = obj.meta().namespace.clone().unwrap_or_default();
        quotas
            .state()
            .iter()
            .filter(|q| q.metadata.namespace.as_deref() == Some(ns.as_str()))
            .map(|q| ObjectRef::from_obj(q.as_ref()))
            .collect()
    }
}

async fn run(ctx: ControllerContext) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let controller = Controller::new(
        Api::<ResourceQuota>::all(client.clone()),
        watcher::Config::default(),
    );
    let quotas = controller.store();
    let cfg = watcher::Config::default;
    let state = Arc::new(Ctx {
        client: client.clone(),
        resync: ctx.options.resource_quota_sync_period,
        backoff: KeyBackoff::default(),
    });
    let mut stream = controller
        .watches(
            Api::<Pod>::all(client.clone()),
            cfg(),
            quotas_in::<Pod>(quotas.clone()),
        )
        .watches(
            Api::<Service>::all(client.clone()),
            cfg(),
            quotas_in::<Service>(quotas.clone()),
        )
        .watches(
            Api::<ConfigMap>::all(client.clone()),
            cfg(),
            quotas_in::<ConfigMap>(quotas.clone()),
        )
        .watches(
            Api::<Secret>::all(client.clone()),
            cfg(),
            quotas_in::<Secret>(quotas.clone()),
        )
        .watches(
            Api::<PersistentVolumeClaim>::all(client.clone()),
            cfg(),
            quotas_in::<PersistentVolumeClaim>(quotas.clone()),
        )
        .watches(
            Api::<ReplicationController>::all(client.clone()),
            cfg(),
            quotas_in::<ReplicationController>(quotas),
        )
        .with_config(
            ControllerConfig::default()
                .concurrency(ctx.options.concurrent_resource_quota_syncs)
                .debounce(Duration::from_millis(50)),
        )
        .run(reconcile, error_policy, state)
        .boxed();
    while let Some(result) = stream.next().await {
        if let Err(err) = result {
            tracing::debug!("resourcequota controller: {err}");
        }
    }
    Ok(())
}

async fn reconcile(quota: Arc<ResourceQuota>, ctx: Arc<Ctx>) -> Result<Action> {
    let key = key_of(&quota.metadata);
    sync_quota(&quota, &ctx).await?;
    ctx.backoff.forget(&key);
    Ok(Action::requeue(ctx.resync))
}

fn error_policy(quota: Arc<ResourceQuota>, err: &crate::util::Error, ctx: Arc<Ctx>) -> Action {
    let key = key_of(&quota.metadata);
    tracing::warn!(quota = %key, "sync failed: {err}");
    Action::requeue(ctx.backoff.next_delay(&key).max(Duration::from_millis(5)))
}

/// Usage of everything in `ns` the quota's hard names count (upstream `CalculateUsage`).
async fn calculate_usage(
    client: &kube::Client,
    ns: &str,
    quota: &Value,
    hard: &ResourceList,
) -> Result<ResourceList> {
    let now = chrono::Utc::now();
    let mut kinds: Vec<&'static api_types::ResourceInfo> = Vec::new();
    for name in hard.keys() {
        if let Some(info) = source_of(name) {
            if !kinds.iter().any(|k| std::ptr::eq(*k, info)) {
                kinds.push(info);
            }
        }
    }
    let mut used = ResourceList::new();
    for info in kinds {
        let gvk = GroupVersionKind::gvk(info.group, info.version, info.kind);
        let ar = ApiResource::from_gvk_with_plural(&gvk, info.plural);
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
        let list = api
            .list(&ListParams::default())
            .await
            .ctx(|| format!("listing {} in {ns}", info.plural))?;
        for obj in list.items {
            let value = serde_json::to_value(&obj).unwrap_or(Value::Null);
            if matches_scopes(info, quota, &value) {
                used = add(&used, &usage(info, &value, now));
            }
        }
    }
    // Only the names the quota limits, zero when nothing uses them.
    Ok(hard
        .keys()
        .map(|k| {
            (
                k.clone(),
                used.get(k).copied().unwrap_or_else(|| Qty::count(0)),
            )
        })
        .collect())
}

/// A merge patch that sets `new` and removes keys only `old` has.
fn replace_map(old: Option<&Value>, new: Value) -> Value {
    let mut out: Map<String, Value> = new.as_object().cloned().unwrap_or_default();
    for k in old
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.keys())
    {
        out.entry(k.clone()).or_insert(Value::Null);
    }
    Value::Object(out)
}

async fn sync_quota(quota: &ResourceQuota, ctx: &Ctx) -> Result<()> {
    let ns = quota.namespace().unwrap_or_default();
    let key = key_of(&quota.metadata);
    if quota.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let value = serde_json::to_value(quota).unwrap_or(Value::Null);
    let spec_hard = value
        .pointer("/spec/hard")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let hard = parse_list(Some(&spec_hard));
    let used = calculate_usage(&ctx.client, &ns, &value, &hard).await?;
    let old_hard_json = value.pointer("/status/hard");
    let old_used_json = value.pointer("/status/used");
    let old_hard = parse_list(old_hard_json);
    let old_used = parse_list(old_used_json);
    let names = |v: Option<&Value>| {
        v.and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect::<BTreeSet<_>>())
            .unwrap_or_default()
    };
    let hard_same = equals(&old_hard, &hard) && names(old_hard_json) == names(Some(&spec_hard));
    if hard_same
        && equals(&old_used, &used)
        && names(old_used_json) == used.keys().cloned().collect()
    {
        return Ok(());
    }
    // The quota's resourceVersion makes the patch a compare-and-swap, as upstream's
    // status update is: admission charges the quota between our read of it and this
    // write, and usage listed before such a charge must not overwrite it (a 409
    // requeues the quota, to be recomputed from its newer state).
    let patch = json!({
        "metadata": {"resourceVersion": quota.metadata.resource_version},
        "status": {
            "hard": replace_map(old_hard_json, spec_hard),
            "used": replace_map(old_used_json, to_json(&used)),
        },
    });
    let api: Api<ResourceQuota> = Api::namespaced(ctx.client.clone(), &ns);
    match api
        .patch_status(
            &quota.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => {
            tracing::debug!(quota = %key, "updated quota usage");
            Ok(())
        }
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) if is_status(&err, 409) => {
            // Charged (or recomputed) since we read it: the watch brings the new
            // state, and that triggers another sync.
            tracing::debug!(quota = %key, "quota changed while its usage was computed");
            Ok(())
        }
        Err(err) => Err(err).ctx(|| format!("updating status of resourcequota {key}")),
    }
}
