//! One DaemonSet sync (upstream `syncDaemonSet`, `manage`, `rollingUpdate`,
//! `updateDaemonSetStatus`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;

use super::predicates::{add_daemon_tolerations, pin_to_node, should_run, target_node};
use super::revision::{ensure_current, REVISION_HASH};
use super::Ctx;
use crate::controllers::deployment::util::scaled_value;
use crate::util::owner::{is_controlled_by, new_controller_ref};
use crate::util::pod::{is_available, is_ready};
use crate::util::podcontrol::PodControl;
use crate::util::{is_not_found, key_of, ApiContext, Error, Result};

pub const TEMPLATE_GENERATION: &str = "pod-template-generation";

/// A pod for `node` from the template (upstream `NewPod` + controller labels).
pub fn new_pod(ds: &DaemonSet, node: &str, hash: &str) -> Option<Pod> {
    let template = ds.spec.as_ref()?.template.clone();
    let tmeta = template.metadata.unwrap_or_default();
    let mut spec = template.spec?;
    add_daemon_tolerations(&mut spec);
    pin_to_node(&mut spec, node);
    let mut labels = tmeta.labels.unwrap_or_default();
    labels.insert(REVISION_HASH.into(), hash.to_string());
    labels.insert(
        TEMPLATE_GENERATION.into(),
        ds.metadata.generation.unwrap_or(0).to_string(),
    );
    let name = ds.name_any();
    let prefix = if name.len() > 57 {
        &name[..57]
    } else {
        name.as_str()
    };
    Some(Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{prefix}-")),
            namespace: ds.namespace(),
            labels: Some(labels),
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![new_controller_ref(ds)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    })
}

/// The template spec as a daemon pod on any node would have it (for predicates).
fn probe_spec(ds: &DaemonSet) -> Option<k8s_openapi::api::core::v1::PodSpec> {
    let mut spec = ds.spec.as_ref()?.template.spec.clone()?;
    add_daemon_tolerations(&mut spec);
    Some(spec)
}

fn is_updated(pod: &Pod, hash: &str) -> bool {
    pod.labels().get(REVISION_HASH).map(String::as_str) == Some(hash)
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn created(p: &Pod) -> Option<Timestamp> {
    p.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// What one sync does per node.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub create_on: Vec<String>,
    pub delete: Vec<String>,
}

/// Upstream `podsShouldBeOnNode` over every node, plus pods pinned to vanished nodes.
pub fn plan(
    spec: &k8s_openapi::api::core::v1::PodSpec,
    nodes: &[Node],
    by_node: &BTreeMap<String, Vec<Pod>>,
) -> Plan {
    let mut out = Plan::default();
    for node in nodes {
        let name = node.name_any();
        let (run, keep) = should_run(spec, node);
        let pods: Vec<&Pod> = by_node
            .get(&name)
            .map(|v| {
                v.iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .collect()
            })
            .unwrap_or_default();
        if run && pods.is_empty() {
            out.create_on.push(name);
        } else if keep {
            // Failed daemon pods are replaced (the next sync creates the new one).
            let (failed, mut alive): (Vec<&Pod>, Vec<&Pod>) =
                pods.into_iter().partition(|p| phase(p) == "Failed");
            out.delete.extend(failed.iter().map(|p| p.name_any()));
            if alive.len() > 1 {
                alive.sort_by_key(|p| created(p));
                out.delete.extend(alive[1..].iter().map(|p| p.name_any()));
            }
        } else {
            out.delete.extend(pods.iter().map(|p| p.name_any()));
        }
    }
    for (node, pods) in by_node {
        if !nodes
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some(node.as_str()))
        {
            out.delete.extend(
                pods.iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .map(|p| p.name_any()),
            );
        }
    }
    out
}

/// RollingUpdate without surge: old pods to delete now, keeping at most
/// `max_unavailable` daemon pods unavailable (upstream `rollingUpdate`).
pub fn rolling_victims(
    spec: &k8s_openapi::api::core::v1::PodSpec,
    nodes: &[Node],
    by_node: &BTreeMap<String, Vec<Pod>>,
    hash: &str,
    max_unavailable: i32,
    min_ready: i32,
    now: Timestamp,
) -> Vec<String> {
    let mut unavailable = 0;
    let mut old_available = Vec::new();
    let mut victims = Vec::new();
    for node in nodes {
        let (run, keep) = should_run(spec, node);
        if !run && !keep {
            continue;
        }
        let pods: Vec<&Pod> = by_node
            .get(&node.name_any())
            .map(|v| {
                v.iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .collect()
            })
            .unwrap_or_default();
        let Some(pod) = pods.iter().min_by_key(|p| created(p)) else {
            if run {
                unavailable += 1;
            }
            continue;
        };
        let available = is_available(pod, min_ready, now);
        if is_updated(pod, hash) {
            if !available {
                unavailable += 1;
            }
        } else if !available {
            // An old pod that is down anyway goes at once.
            unavailable += 1;
            victims.push(pod.name_any());
        } else {
            old_available.push(pod.name_any());
        }
    }
    for name in old_available {
        if unavailable >= max_unavailable {
            break;
        }
        unavailable += 1;
        victims.push(name);
    }
    victims
}

pub async fn sync_daemonset(ds: &Arc<DaemonSet>, ctx: &Ctx) -> Result<Option<Duration>> {
    let key = key_of(&ds.metadata);
    let ns = ds.namespace().unwrap_or_default();
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let uid = ds.metadata.uid.clone().unwrap_or_default();
    let pods: Vec<Pod> = ctx
        .pods
        .state()
        .iter()
        .filter(|p| {
            p.metadata.namespace.as_deref() == Some(ns.as_str())
                && is_controlled_by(&p.metadata, &uid)
        })
        .map(|p| p.as_ref().clone())
        .collect();
    let Some(spec) = probe_spec(ds) else {
        return Err(Error::Invalid {
            object: key,
            message: "spec.template.spec is required".into(),
        });
    };
    let hash = ensure_current(&ctx.client, ds, &pods).await?;
    let nodes: Vec<Node> = ctx
        .nodes
        .state()
        .iter()
        .map(|n| n.as_ref().clone())
        .collect();
    let mut by_node: BTreeMap<String, Vec<Pod>> = BTreeMap::new();
    for p in &pods {
        if let Some(n) = target_node(p) {
            by_node.entry(n).or_default().push(p.clone());
        }
    }
    let now = Timestamp::now();
    let min_ready = ds
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    let mut manage_result = Ok(());
    if ctx.expectations.satisfied(&key) {
        let mut plan = plan(&spec, &nodes, &by_node);
        let strategy = ds.spec.as_ref().and_then(|s| s.update_strategy.as_ref());
        if strategy
            .and_then(|s| s.type_.as_deref())
            .unwrap_or("RollingUpdate")
            == "RollingUpdate"
        {
            let desired = i32::try_from(nodes.iter().filter(|n| should_run(&spec, n).0).count())
                .unwrap_or(i32::MAX);
            let max_unavailable = strategy
                .and_then(|s| s.rolling_update.as_ref())
                .and_then(|r| r.max_unavailable.as_ref());
            let max_unavailable = scaled_value(max_unavailable, "1", desired, true).max(0);
            for v in rolling_victims(
                &spec,
                &nodes,
                &by_node,
                &hash,
                max_unavailable,
                min_ready,
                now,
            ) {
                if !plan.delete.contains(&v) {
                    plan.delete.push(v);
                }
            }
        }
        manage_result = execute(ds, &hash, &plan, ctx, &key).await;
    }
    let status = compute_status(ds, &spec, &nodes, &by_node, &hash, min_ready, now);
    if Some(&status) != ds.status.as_ref() {
        let api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), &ns);
        match api
            .patch_status(
                &ds.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&json!({ "status": status })),
            )
            .await
        {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => return Ok(None),
            Err(err) => return Err(err).ctx(|| format!("updating status of daemonset {key}")),
        }
    }
    manage_result?;
    if min_ready > 0 && status.number_available.unwrap_or(0) < status.number_ready {
        return Ok(Some(Duration::from_secs(
            u64::try_from(min_ready).unwrap_or(1),
        )));
    }
    Ok(None)
}

async fn execute(ds: &DaemonSet, hash: &str, plan: &Plan, ctx: &Ctx, key: &str) -> Result<()> {
    let ns = ds.namespace().unwrap_or_default();
    let control = PodControl {
        client: &ctx.client,
        expectations: &ctx.expectations,
        recorder: &ctx.recorder,
        key,
        owner: ds,
    };
    if !plan.delete.is_empty() {
        let targets: Vec<(String, String)> = plan
            .delete
            .iter()
            .map(|n| (ns.clone(), n.clone()))
            .collect();
        control
            .delete(&targets)
            .await
            .ctx(|| format!("deleting daemon pods of {key}"))?;
        tracing::info!(daemonset = %key, deleted = plan.delete.len(), "deleted daemon pods");
        // Replacements are created once the deletions are observed (next sync).
        return Ok(());
    }
    if !plan.create_on.is_empty() {
        let pods: Vec<Pod> = plan
            .create_on
            .iter()
            .filter_map(|n| new_pod(ds, n, hash))
            .collect();
        control
            .create(&pods)
            .await
            .ctx(|| format!("creating daemon pods for {key}"))?;
        tracing::info!(daemonset = %key, created = pods.len(), "created daemon pods");
    }
    Ok(())
}

fn compute_status(
    ds: &DaemonSet,
    spec: &k8s_openapi::api::core::v1::PodSpec,
    nodes: &[Node],
    by_node: &BTreeMap<String, Vec<Pod>>,
    hash: &str,
    min_ready: i32,
    now: Timestamp,
) -> DaemonSetStatus {
    let mut s = DaemonSetStatus {
        observed_generation: ds.metadata.generation,
        collision_count: ds.status.as_ref().and_then(|s| s.collision_count),
        conditions: ds.status.as_ref().and_then(|s| s.conditions.clone()),
        ..Default::default()
    };
    for node in nodes {
        let (run, _) = should_run(spec, node);
        let pods: Vec<&Pod> = by_node
            .get(&node.name_any())
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        if run {
            s.desired_number_scheduled += 1;
        }
        let Some(pod) = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .min_by_key(|p| created(p))
        else {
            continue;
        };
        if !run {
            s.number_misscheduled += 1;
            continue;
        }
        s.current_number_scheduled += 1;
        if is_ready(pod) {
            s.number_ready += 1;
            if is_available(pod, min_ready, now) {
                *s.number_available.get_or_insert(0) += 1;
            }
        }
        if is_updated(pod, hash) {
            *s.updated_number_scheduled.get_or_insert(0) += 1;
        }
    }
    let available = s.number_available.unwrap_or(0);
    s.number_available = Some(available);
    s.updated_number_scheduled = Some(s.updated_number_scheduled.unwrap_or(0));
    s.number_unavailable = Some((s.desired_number_scheduled - available).max(0));
    s
}
