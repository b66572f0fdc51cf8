//! One sync of a ReplicaSet/ReplicationController: claim pods, create or delete
//! the difference, write status (upstream `syncReplicaSet`, `manageReplicas`,
//! `calculateStatus`).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;

use super::{owner_key, Ctx, ReplicaStatus, ReplicatedKind, BURST_REPLICAS};
use crate::util::owner::{controller_of, new_controller_ref};
use crate::util::pod::{is_active, is_available, is_ready, pods_to_delete};
use crate::util::podcontrol::{targets, PodControl};
use crate::util::selector::{from_map, labels_of};
use crate::util::{is_not_found, is_status, key_of, ApiContext, Result};

/// What claiming decided for one pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Ours and matching.
    Keep,
    /// An orphan that matches: take it.
    Adopt,
    /// Ours but no longer matching: let it go.
    Release,
    /// Not ours to touch.
    Ignore,
}

/// Upstream `PodControllerRefManager.ClaimPods` decision for one pod.
pub fn claim_decision<K: ReplicatedKind>(owner: &K, pod: &Pod) -> Claim {
    let uid = owner.meta().uid.as_deref().unwrap_or("");
    let matches = owner
        .selector()
        .is_some_and(|s| s.matches(&labels_of(&pod.metadata.labels)));
    let owner_deleting = owner.meta().deletion_timestamp.is_some();
    match controller_of(&pod.metadata) {
        Some(r) if r.uid == uid => {
            if matches || owner_deleting {
                Claim::Keep
            } else {
                Claim::Release
            }
        }
        Some(_) => Claim::Ignore,
        None if matches && !owner_deleting && pod.metadata.deletion_timestamp.is_none() => {
            Claim::Adopt
        }
        None => Claim::Ignore,
    }
}

/// Upstream `calculateStatus` over the claimed active pods.
pub fn calculate_status<K: ReplicatedKind>(
    owner: &K,
    pods: &[Pod],
    now: Timestamp,
) -> ReplicaStatus {
    let template_labels = owner
        .template()
        .and_then(|t| t.metadata.as_ref())
        .map(|m| labels_of(&m.labels))
        .unwrap_or_default();
    let template_selector = from_map(&template_labels);
    let count = |f: &dyn Fn(&Pod) -> bool| {
        i32::try_from(pods.iter().filter(|p| f(p)).count()).unwrap_or(i32::MAX)
    };
    ReplicaStatus {
        replicas: count(&|_| true),
        fully_labeled_replicas: count(&|p| {
            template_selector.matches(&labels_of(&p.metadata.labels))
        }),
        ready_replicas: count(&|p| is_ready(p)),
        available_replicas: count(&|p| is_available(p, owner.min_ready_seconds(), now)),
        observed_generation: owner.meta().generation.unwrap_or(0),
    }
}

/// A pod from the owner's template (upstream `GetPodFromTemplate`).
pub fn pod_from_template<K: ReplicatedKind>(owner: &K) -> Option<Pod> {
    let template = owner.template()?;
    let tmeta = template.metadata.clone().unwrap_or_default();
    let name = owner.name_any();
    // Upstream trims the prefix so generated names stay valid.
    let prefix = if name.len() > 57 {
        format!("{}-", &name[..57])
    } else {
        format!("{name}-")
    };
    Some(Pod {
        metadata: ObjectMeta {
            generate_name: Some(prefix),
            namespace: owner.namespace(),
            labels: tmeta.labels,
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![new_controller_ref(owner)]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    })
}

/// Syncs one owner; returns when to look again (minReadySeconds), if at all.
pub async fn sync_owner<K: ReplicatedKind>(
    owner: &Arc<K>,
    ctx: &Ctx<K>,
) -> Result<Option<Duration>> {
    let ns = owner.namespace().unwrap_or_default();
    let key = owner_key(&ns, &owner.name_any());
    let needs_sync = ctx.expectations.satisfied(&key) && owner.meta().deletion_timestamp.is_none();

    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let mut claimed = Vec::new();
    for pod in ctx.pods.state() {
        if pod.metadata.namespace.as_deref() != Some(ns.as_str()) || !is_active(&pod) {
            continue;
        }
        match claim_decision(owner.as_ref(), &pod) {
            Claim::Keep => claimed.push(pod.as_ref().clone()),
            Claim::Adopt => {
                if adopt(&pods_api, owner.as_ref(), &pod).await? {
                    claimed.push(pod.as_ref().clone());
                }
            }
            Claim::Release => release(&pods_api, owner.as_ref(), &pod).await?,
            Claim::Ignore => {}
        }
    }

    let manage_result = if needs_sync {
        manage_replicas(owner.as_ref(), &claimed, ctx, &key).await
    } else {
        Ok(())
    };

    let now = Timestamp::now();
    let status = calculate_status(owner.as_ref(), &claimed, now);
    if status != owner.current_status() {
        let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = json!({ "status": status.to_json() });
        match api
            .patch_status(
                &owner.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => return Ok(None),
            Err(err) => {
                return Err(err).ctx(|| format!("updating status of {} {key}", K::kind(&())))
            }
        }
    }
    manage_result?;
    let min_ready = owner.min_ready_seconds();
    if min_ready > 0
        && status.ready_replicas == owner.replicas()
        && status.available_replicas != owner.replicas()
    {
        return Ok(Some(Duration::from_secs(
            u64::try_from(min_ready).unwrap_or(0),
        )));
    }
    Ok(None)
}

/// Creates or deletes pods so `claimed` reaches `spec.replicas`.
async fn manage_replicas<K: ReplicatedKind>(
    owner: &K,
    claimed: &[Pod],
    ctx: &Ctx<K>,
    key: &str,
) -> Result<()> {
    let want = usize::try_from(owner.replicas().max(0)).unwrap_or(0);
    let control = PodControl {
        client: &ctx.client,
        expectations: &ctx.expectations,
        recorder: &ctx.recorder,
        key,
        owner,
    };
    if claimed.len() < want {
        let diff = (want - claimed.len()).min(BURST_REPLICAS);
        let Some(pod) = pod_from_template(owner) else {
            return Err(crate::util::Error::Invalid {
                object: key.to_string(),
                message: "spec.template is required".into(),
            });
        };
        control
            .create(&vec![pod; diff])
            .await
            .ctx(|| format!("creating pods for {} {key}", K::kind(&())))?;
        tracing::info!(kind = %K::kind(&()), owner = %key, created = diff, "created pods");
    } else if claimed.len() > want {
        let diff = (claimed.len() - want).min(BURST_REPLICAS);
        let victims = pods_to_delete(claimed, diff);
        control
            .delete(&targets(&victims))
            .await
            .ctx(|| format!("deleting pods of {} {key}", K::kind(&())))?;
        tracing::info!(kind = %K::kind(&()), owner = %key, deleted = diff, "deleted pods");
    }
    Ok(())
}

/// Sets our controller reference on an orphan; false when it changed meanwhile.
async fn adopt<K: ReplicatedKind>(api: &Api<Pod>, owner: &K, pod: &Pod) -> Result<bool> {
    let mut refs = pod.metadata.owner_references.clone().unwrap_or_default();
    refs.push(new_controller_ref(owner));
    let patch = json!({ "metadata": { "ownerReferences": refs, "uid": pod.metadata.uid, "resourceVersion": pod.metadata.resource_version } });
    match api
        .patch(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => {
            tracing::info!(kind = %K::kind(&()), pod = %key_of(&pod.metadata), owner = %owner.name_any(), "adopted pod");
            Ok(true)
        }
        Err(err) if is_not_found(&err) || is_status(&err, 409) || is_status(&err, 422) => Ok(false),
        Err(err) => Err(err).ctx(|| format!("adopting pod {}", key_of(&pod.metadata))),
    }
}

/// Removes our reference from a pod that no longer matches.
async fn release<K: ReplicatedKind>(api: &Api<Pod>, owner: &K, pod: &Pod) -> Result<()> {
    let uid = owner.meta().uid.clone().unwrap_or_default();
    let refs: Vec<_> = pod
        .metadata
        .owner_references
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.uid != uid)
        .collect();
    let patch = json!({ "metadata": { "ownerReferences": refs, "uid": pod.metadata.uid, "resourceVersion": pod.metadata.resource_version } });
    match api
        .patch(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => {
            tracing::info!(kind = %K::kind(&()), pod = %key_of(&pod.metadata), owner = %owner.name_any(), "released pod");
            Ok(())
        }
        Err(err) if is_not_found(&err) || is_status(&err, 409) || is_status(&err, 422) => Ok(()),
        Err(err) => Err(err).ctx(|| format!("releasing pod {}", key_of(&pod.metadata))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus, PodTemplateSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference, Time};
    use std::collections::BTreeMap;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn rs() -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                uid: Some("rs-uid".into()),
                generation: Some(3),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(2),
                min_ready_seconds: Some(10),
                selector: LabelSelector {
                    match_labels: Some(labels(&[("app", "web")])),
                    ..Default::default()
                },
                template: Some(PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels(&[("app", "web"), ("tier", "fe")])),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec::default()),
                }),
            }),
            status: None,
        }
    }

    fn pod(l: &[(&str, &str)], owner_uid: Option<&str>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                labels: Some(labels(l)),
                owner_references: owner_uid.map(|uid| {
                    vec![OwnerReference {
                        uid: uid.into(),
                        controller: Some(true),
                        kind: "ReplicaSet".into(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn claims_adopt_keep_release_ignore() {
        let rs = rs();
        assert_eq!(
            claim_decision(&rs, &pod(&[("app", "web")], Some("rs-uid"))),
            Claim::Keep
        );
        assert_eq!(
            claim_decision(&rs, &pod(&[("app", "web")], None)),
            Claim::Adopt
        );
        assert_eq!(
            claim_decision(&rs, &pod(&[("app", "db")], Some("rs-uid"))),
            Claim::Release
        );
        assert_eq!(
            claim_decision(&rs, &pod(&[("app", "web")], Some("other"))),
            Claim::Ignore
        );
        assert_eq!(
            claim_decision(&rs, &pod(&[("app", "db")], None)),
            Claim::Ignore
        );
    }

    #[test]
    fn status_counts_labels_readiness_and_availability() {
        let rs = rs();
        let now = Timestamp::from_second(1_000).expect("ts");
        let ready_at = |t: i64| {
            Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(Time(Timestamp::from_second(t).expect("ts"))),
                    ..Default::default()
                }]),
                ..Default::default()
            })
        };
        let mut full_available = pod(&[("app", "web"), ("tier", "fe")], Some("rs-uid"));
        full_available.status = ready_at(900);
        let mut partial_ready = pod(&[("app", "web")], Some("rs-uid"));
        partial_ready.status = ready_at(995);
        let status = calculate_status(
            &rs,
            &[
                full_available,
                partial_ready,
                pod(&[("app", "web")], Some("rs-uid")),
            ],
            now,
        );
        assert_eq!(
            status,
            ReplicaStatus {
                replicas: 3,
                fully_labeled_replicas: 1,
                ready_replicas: 2,
                available_replicas: 1,
                observed_generation: 3
            }
        );
    }

    #[test]
    fn template_pods_carry_controller_ref_and_generate_name() {
        let p = pod_from_template(&rs()).expect("template");
        assert_eq!(p.metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(p.metadata.namespace.as_deref(), Some("ns"));
        let r = &p.metadata.owner_references.expect("refs")[0];
        assert_eq!(
            (r.uid.as_str(), r.controller, r.block_owner_deletion),
            ("rs-uid", Some(true), Some(true))
        );
        assert_eq!(
            p.metadata.labels,
            Some(labels(&[("app", "web"), ("tier", "fe")]))
        );
    }
}
