//! Deployment helpers without IO (upstream `pkg/controller/deployment/util`):
//! pod-template-hash, revisions and annotations, surge/unavailability arithmetic,
//! conditions.

use std::collections::BTreeMap;

use api_types::apply::LAST_APPLIED;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use crate::util::time;

pub const DEFAULT_LABEL_KEY: &str = "pod-template-hash";
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY_ANNOTATION: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";

// Condition reasons, as upstream.
pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";
pub const MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";

/// `rand.SafeEncodeString`'s alphabet: no vowels, no confusable characters.
const SAFE_ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// FNV-32a.
fn fnv32a(bytes: &[u8], mut hash: u32) -> u32 {
    for b in bytes {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// Upstream `ComputeHash`: FNV-32a of the template (here its JSON form) plus the
/// collision count, printed in decimal and mapped onto the safe alphabet.
pub fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let json = serde_json::to_vec(template).unwrap_or_default();
    let mut hash = fnv32a(&json, 0x811c_9dc5);
    if let Some(c) = collision_count {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&(c as u32).to_le_bytes());
        hash = fnv32a(&bytes, hash);
    }
    hash.to_string()
        .bytes()
        .map(|b| SAFE_ALPHANUMS[usize::from(b) % SAFE_ALPHANUMS.len()] as char)
        .collect()
}

/// Templates equal once the pod-template-hash label is ignored (`EqualIgnoreHash`).
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let strip = |t: &PodTemplateSpec| {
        let mut t = t.clone();
        if let Some(meta) = t.metadata.as_mut() {
            if let Some(labels) = meta.labels.as_mut() {
                labels.remove(DEFAULT_LABEL_KEY);
                if labels.is_empty() {
                    meta.labels = None;
                }
            }
        }
        serde_json::to_value(t).unwrap_or_default()
    };
    strip(a) == strip(b)
}

pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

pub fn rs_status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

pub fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

pub fn rs_ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

pub fn is_recreate(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        == Some("Recreate")
}

pub fn paused(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
}

pub fn revision_history_limit(d: &Deployment) -> i32 {
    d.spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10)
}

pub fn progress_deadline_seconds(d: &Deployment) -> Option<i32> {
    let v = d
        .spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .unwrap_or(600);
    (v != i32::MAX).then_some(v)
}

pub fn min_ready_seconds(d: &Deployment) -> i32 {
    d.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

/// Resolves an int-or-percent against `total` (upstream `GetScaledValueFromIntOrPercent`).
pub fn scaled_value(v: Option<&IntOrString>, default: &str, total: i32, round_up: bool) -> i32 {
    let parse_percent = |s: &str| s.strip_suffix('%').and_then(|n| n.parse::<i64>().ok());
    let percent = |p: i64| {
        let x = p * i64::from(total);
        let v = if round_up {
            (x + 99).div_euclid(100)
        } else {
            x.div_euclid(100)
        };
        i32::try_from(v).unwrap_or(i32::MAX)
    };
    match v {
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => parse_percent(s)
            .map(percent)
            .or_else(|| s.parse().ok())
            .unwrap_or(0),
        None => parse_percent(default).map(percent).unwrap_or(0),
    }
}

/// (maxSurge, maxUnavailable) as upstream `ResolveFenceposts`.
pub fn resolve_fenceposts(d: &Deployment) -> (i32, i32) {
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let desired = replicas(d);
    let surge = scaled_value(ru.and_then(|r| r.max_surge.as_ref()), "25%", desired, true);
    let unavailable = scaled_value(
        ru.and_then(|r| r.max_unavailable.as_ref()),
        "25%",
        desired,
        false,
    );
    if surge == 0 && unavailable == 0 {
        // Validation forbids both zero; upstream bumps unavailability to one.
        return (0, 1);
    }
    (surge, unavailable)
}

pub fn max_surge(d: &Deployment) -> i32 {
    if is_recreate(d) {
        return 0;
    }
    resolve_fenceposts(d).0
}

/// Upstream `MaxUnavailable`: 0 for Recreate or zero replicas, capped at replicas.
pub fn max_unavailable(d: &Deployment) -> i32 {
    if is_recreate(d) || replicas(d) == 0 {
        return 0;
    }
    resolve_fenceposts(d).1.min(replicas(d))
}

pub fn revision_of(annotations: &Option<BTreeMap<String, String>>) -> i64 {
    annotations
        .as_ref()
        .and_then(|a| a.get(REVISION_ANNOTATION))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn rs_revision(rs: &ReplicaSet) -> i64 {
    revision_of(&rs.metadata.annotations)
}

pub fn max_revision(rss: &[ReplicaSet]) -> i64 {
    rss.iter().map(rs_revision).max().unwrap_or(0)
}

/// Copies the deployment's own annotations onto a ReplicaSet (not the ones the
/// controller maintains itself), as upstream `copyDeploymentAnnotationsToReplicaSet`.
pub fn copy_deployment_annotations(
    d: &Deployment,
    rs_annotations: &mut BTreeMap<String, String>,
) -> bool {
    let mut changed = false;
    for (k, v) in d.metadata.annotations.iter().flatten() {
        let skip = [
            LAST_APPLIED,
            REVISION_ANNOTATION,
            REVISION_HISTORY_ANNOTATION,
            DESIRED_REPLICAS_ANNOTATION,
            MAX_REPLICAS_ANNOTATION,
        ];
        if skip.contains(&k.as_str()) {
            continue;
        }
        if rs_annotations.get(k) != Some(v) {
            rs_annotations.insert(k.clone(), v.clone());
            changed = true;
        }
    }
    changed
}

/// Sets desired/max replicas annotations; true when changed.
pub fn set_replicas_annotations(
    annotations: &mut BTreeMap<String, String>,
    desired: i32,
    max: i32,
) -> bool {
    let mut changed = false;
    for (k, v) in [
        (DESIRED_REPLICAS_ANNOTATION, desired.to_string()),
        (MAX_REPLICAS_ANNOTATION, max.to_string()),
    ] {
        if annotations.get(k) != Some(&v) {
            annotations.insert(k.to_string(), v);
            changed = true;
        }
    }
    changed
}

/// Upstream `SetNewReplicaSetAnnotations`: copy annotations, move the revision up
/// (recording the old one in revision-history), set the replicas annotations.
pub fn set_new_rs_annotations(d: &Deployment, rs: &mut ReplicaSet, new_revision: i64) -> bool {
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = copy_deployment_annotations(d, annotations);
    let old: i64 = annotations
        .get(REVISION_ANNOTATION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if old < new_revision {
        if old > 0 {
            let history = annotations
                .get(REVISION_HISTORY_ANNOTATION)
                .cloned()
                .unwrap_or_default();
            let history = if history.is_empty() {
                old.to_string()
            } else {
                format!("{history},{old}")
            };
            annotations.insert(REVISION_HISTORY_ANNOTATION.to_string(), history);
        }
        annotations.insert(REVISION_ANNOTATION.to_string(), new_revision.to_string());
        changed = true;
    }
    changed |= set_replicas_annotations(annotations, replicas(d), replicas(d) + max_surge(d));
    changed
}

pub fn desired_replicas_annotation(rs: &ReplicaSet) -> Option<i32> {
    rs.metadata
        .annotations
        .as_ref()?
        .get(DESIRED_REPLICAS_ANNOTATION)?
        .parse()
        .ok()
}

pub fn max_replicas_annotation(rs: &ReplicaSet) -> Option<i32> {
    rs.metadata
        .annotations
        .as_ref()?
        .get(MAX_REPLICAS_ANNOTATION)?
        .parse()
        .ok()
}

pub fn sum<F: Fn(&ReplicaSet) -> i32>(rss: &[&ReplicaSet], f: F) -> i32 {
    rss.iter().map(|rs| f(rs)).sum()
}

pub fn condition<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

pub fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
) -> DeploymentCondition {
    let now = time::now();
    DeploymentCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now),
    }
}

/// Upstream `SetDeploymentCondition`: same status and reason keeps the old
/// transition time; an identical condition is left alone.
pub fn set_condition(status: &mut DeploymentStatus, mut cond: DeploymentCondition) {
    let conds = status.conditions.get_or_insert_with(Vec::new);
    if let Some(existing) = conds.iter().find(|c| c.type_ == cond.type_) {
        if existing.status == cond.status && existing.reason == cond.reason {
            if existing.message == cond.message {
                return;
            }
            cond.last_transition_time = existing.last_transition_time.clone();
        } else if existing.status == cond.status {
            cond.last_transition_time = existing.last_transition_time.clone();
        }
    }
    conds.retain(|c| c.type_ != cond.type_);
    conds.push(cond);
}

/// Upstream `DeploymentComplete`.
pub fn deployment_complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let want = replicas(d);
    status.updated_replicas == Some(want)
        && status.replicas == Some(want)
        && status.available_replicas == Some(want)
        && status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// Upstream `DeploymentProgressing`: more updated/ready/available, or fewer old.
pub fn deployment_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let old_old = old.replicas.unwrap_or(0) - old.updated_replicas.unwrap_or(0);
    let new_old = new.replicas.unwrap_or(0) - new.updated_replicas.unwrap_or(0);
    new.updated_replicas.unwrap_or(0) > old.updated_replicas.unwrap_or(0)
        || new_old < old_old
        || new.ready_replicas.unwrap_or(0) > old.ready_replicas.unwrap_or(0)
        || new.available_replicas.unwrap_or(0) > old.available_replicas.unwrap_or(0)
}

/// Upstream `DeploymentTimedOut`: the Progressing condition was last updated more
/// than progressDeadlineSeconds ago.
pub fn deployment_timed_out(d: &Deployment, status: &DeploymentStatus, now: Timestamp) -> bool {
    let Some(deadline) = progress_deadline_seconds(d) else {
        return false;
    };
    let Some(cond) = condition(status, "Progressing") else {
        return false;
    };
    match cond.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => return false,
        Some(TIMED_OUT) => return true,
        _ => {}
    }
    let Some(last) = cond.last_update_time.as_ref() else {
        return false;
    };
    last.0.as_second() + i64::from(deadline) < now.as_second()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn deploy(
        replicas: i32,
        surge: Option<IntOrString>,
        unavailable: Option<IntOrString>,
    ) -> Deployment {
        Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: surge,
                        max_unavailable: unavailable,
                    }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn fenceposts_round_surge_up_and_unavailable_down() {
        assert_eq!(resolve_fenceposts(&deploy(10, None, None)), (3, 2));
        assert_eq!(resolve_fenceposts(&deploy(1, None, None)), (1, 0));
        assert_eq!(
            resolve_fenceposts(&deploy(
                4,
                Some(IntOrString::Int(0)),
                Some(IntOrString::Int(0))
            )),
            (0, 1)
        );
        assert_eq!(
            resolve_fenceposts(&deploy(
                3,
                Some(IntOrString::String("50%".into())),
                Some(IntOrString::Int(2))
            )),
            (2, 2)
        );
        assert_eq!(
            max_unavailable(&deploy(1, None, Some(IntOrString::Int(5)))),
            1
        );
    }

    #[test]
    fn hash_is_stable_safe_and_depends_on_collisions() {
        let t = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            }),
            spec: None,
        };
        let h = compute_hash(&t, None);
        assert_eq!(h, compute_hash(&t, None));
        assert!(h.bytes().all(|b| SAFE_ALPHANUMS.contains(&b)), "{h}");
        assert_ne!(h, compute_hash(&t, Some(1)));
        let mut labelled = t.clone();
        labelled
            .metadata
            .as_mut()
            .and_then(|m| m.labels.as_mut())
            .map(|l| l.insert(DEFAULT_LABEL_KEY.into(), h.clone()));
        assert!(equal_ignore_hash(&t, &labelled));
    }

    #[test]
    fn new_rs_annotations_move_revision_and_keep_history() {
        let mut d = deploy(3, None, None);
        d.metadata.annotations = Some(
            [
                ("kubernetes.io/change-cause".to_string(), "v2".to_string()),
                (LAST_APPLIED.to_string(), "{}".to_string()),
            ]
            .into(),
        );
        let mut rs = ReplicaSet::default();
        rs.metadata.annotations = Some([(REVISION_ANNOTATION.to_string(), "1".to_string())].into());
        assert!(set_new_rs_annotations(&d, &mut rs, 3));
        let a = rs.metadata.annotations.clone().expect("annotations");
        assert_eq!(a.get(REVISION_ANNOTATION).map(String::as_str), Some("3"));
        assert_eq!(
            a.get(REVISION_HISTORY_ANNOTATION).map(String::as_str),
            Some("1")
        );
        assert_eq!(
            a.get("kubernetes.io/change-cause").map(String::as_str),
            Some("v2")
        );
        assert_eq!(
            a.get(DESIRED_REPLICAS_ANNOTATION).map(String::as_str),
            Some("3")
        );
        assert_eq!(
            a.get(MAX_REPLICAS_ANNOTATION).map(String::as_str),
            Some("4")
        );
        assert!(!a.contains_key(LAST_APPLIED));
        assert!(
            !set_new_rs_annotations(&d, &mut rs, 3),
            "second call changes nothing"
        );
    }
}
