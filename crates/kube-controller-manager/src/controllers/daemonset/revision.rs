//! DaemonSet history: one ControllerRevision per template (upstream
//! `constructHistory`, `dedupCurHistories`, `cleanupHistory`), named
//! `<daemonset>-<hash>` and labelled `controller-revision-hash`.

use std::collections::HashSet;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::{json, Value};

use crate::controllers::deployment::util::compute_hash;
use crate::util::owner::{is_controlled_by, new_controller_ref};
use crate::util::{is_not_found, is_status, key_of, ApiContext, Result};

pub const REVISION_HASH: &str = "controller-revision-hash";

/// The revision data upstream stores: a strategic patch replacing the template.
pub fn revision_data(ds: &DaemonSet) -> Value {
    let mut template = ds
        .spec
        .as_ref()
        .map(|s| serde_json::to_value(&s.template).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    if let Some(obj) = template.as_object_mut() {
        obj.insert("$patch".into(), json!("replace"));
    }
    json!({ "spec": { "template": template } })
}

pub fn template_hash(ds: &DaemonSet) -> String {
    let template = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    compute_hash(
        &template,
        ds.status.as_ref().and_then(|s| s.collision_count),
    )
}

fn revision_name(ds: &DaemonSet, hash: &str) -> String {
    let name = ds.name_any();
    let prefix = if name.len() > 223 {
        &name[..223]
    } else {
        name.as_str()
    };
    format!("{prefix}-{hash}")
}

fn hash_of(rev: &ControllerRevision) -> String {
    rev.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(REVISION_HASH))
        .cloned()
        .unwrap_or_default()
}

/// Makes sure the current template has the newest ControllerRevision; returns its hash.
pub async fn ensure_current(client: &kube::Client, ds: &DaemonSet, pods: &[Pod]) -> Result<String> {
    let ns = ds.namespace().unwrap_or_default();
    let key = key_of(&ds.metadata);
    let uid = ds.metadata.uid.clone().unwrap_or_default();
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), &ns);
    let mut history: Vec<ControllerRevision> = api
        .list(&ListParams::default())
        .await
        .ctx(|| format!("listing controller revisions of {key}"))?
        .items
        .into_iter()
        .filter(|r| is_controlled_by(&r.metadata, &uid))
        .collect();
    history.sort_by_key(|r| r.revision);
    let max_revision = history.last().map_or(0, |r| r.revision);
    let data = revision_data(ds);
    let hash = template_hash(ds);

    let current = match history
        .iter()
        .find(|r| r.data.as_ref().map(|d| &d.0) == Some(&data))
    {
        Some(existing) => {
            if existing.revision < max_revision {
                let patch = json!({ "revision": max_revision + 1 });
                api.patch(
                    &existing.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .ctx(|| format!("bumping revision of {key}"))?;
            }
            hash_of(existing)
        }
        None => {
            let mut labels = ds
                .spec
                .as_ref()
                .and_then(|s| s.template.metadata.as_ref())
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            labels.insert(REVISION_HASH.into(), hash.clone());
            let rev = ControllerRevision {
                metadata: ObjectMeta {
                    name: Some(revision_name(ds, &hash)),
                    namespace: Some(ns.clone()),
                    labels: Some(labels),
                    annotations: ds.metadata.annotations.clone(),
                    owner_references: Some(vec![new_controller_ref(ds)]),
                    ..Default::default()
                },
                data: Some(RawExtension(data)),
                revision: max_revision + 1,
            };
            match api.create(&PostParams::default(), &rev).await {
                Ok(_) => {
                    tracing::info!(daemonset = %key, revision = max_revision + 1, %hash, "created controller revision")
                }
                // Another sync (or a hash collision) got there first; the next sync sorts it out.
                Err(err) if is_status(&err, 409) => {}
                Err(err) => {
                    return Err(err).ctx(|| format!("creating controller revision of {key}"))
                }
            }
            hash
        }
    };
    cleanup(&api, ds, &history, &current, pods).await?;
    Ok(current)
}

/// Deletes the oldest revisions no pod uses beyond `revisionHistoryLimit` (10).
async fn cleanup(
    api: &Api<ControllerRevision>,
    ds: &DaemonSet,
    history: &[ControllerRevision],
    current: &str,
    pods: &[Pod],
) -> Result<()> {
    let limit = usize::try_from(
        ds.spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(10)
            .max(0),
    )
    .unwrap_or(10);
    let live: HashSet<String> = pods
        .iter()
        .filter_map(|p| p.labels().get(REVISION_HASH).cloned())
        .collect();
    let old: Vec<&ControllerRevision> = history
        .iter()
        .filter(|r| hash_of(r) != current && !live.contains(&hash_of(r)))
        .collect();
    if old.len() <= limit {
        return Ok(());
    }
    for r in &old[..old.len() - limit] {
        match api.delete(&r.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => {}
            Err(err) => {
                return Err(err).ctx(|| format!("deleting controller revision {}", r.name_any()))
            }
        }
    }
    Ok(())
}
