//! The pure parts of node lifecycle: the taints a node's conditions call for
//! (upstream `doNoScheduleTaintingPass` / `doNoExecuteTaintingPass`), the
//! conditions of a node that stopped reporting, and when a pod on a NoExecute
//! tainted node must go (upstream taint eviction's `getMinTolerationTime`).

use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
pub const TAINT_MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const TAINT_DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const TAINT_PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const TAINT_NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

/// Every taint key this controller owns.
const MANAGED_KEYS: &[&str] = &[
    TAINT_NOT_READY,
    TAINT_UNREACHABLE,
    TAINT_UNSCHEDULABLE,
    TAINT_MEMORY_PRESSURE,
    TAINT_DISK_PRESSURE,
    TAINT_PID_PRESSURE,
    TAINT_NETWORK_UNAVAILABLE,
];

pub const NO_SCHEDULE: &str = "NoSchedule";
pub const NO_EXECUTE: &str = "NoExecute";

/// Conditions the kubelet posts besides Ready (upstream `remainingNodeConditionTypes`).
const OTHER_CONDITIONS: &[&str] = &["MemoryPressure", "DiskPressure", "PIDPressure"];

pub fn condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// `True`, `False`, `Unknown`, or `None` when the node never posted Ready.
pub fn ready_status(node: &Node) -> Option<&str> {
    condition(node, "Ready").map(|c| c.status.as_str())
}

/// The node's conditions after it stopped posting status: Ready and the pressure
/// conditions become Unknown (upstream `tryUpdateNodeHealth`). `None` when
/// nothing changes.
pub fn unknown_conditions(node: &Node, now: &Time) -> Option<Vec<NodeCondition>> {
    let mut conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut changed = false;
    let created = node.metadata.creation_timestamp.clone();
    for type_ in std::iter::once("Ready").chain(OTHER_CONDITIONS.iter().copied()) {
        match conditions.iter_mut().find(|c| c.type_ == type_) {
            None => {
                conditions.push(NodeCondition {
                    type_: type_.to_string(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: created.clone(),
                    last_transition_time: Some(now.clone()),
                });
                changed = true;
            }
            Some(c) if c.status != "Unknown" => {
                c.status = "Unknown".into();
                c.reason = Some("NodeStatusUnknown".into());
                c.message = Some("Kubelet stopped posting node status.".into());
                c.last_transition_time = Some(now.clone());
                changed = true;
            }
            Some(_) => {}
        }
    }
    changed.then_some(conditions)
}

fn taint(key: &str, effect: &str, time_added: Option<Time>) -> Taint {
    Taint {
        key: key.into(),
        effect: effect.into(),
        value: None,
        time_added,
    }
}

/// The node's taints with the controller-owned ones set as its conditions say;
/// existing wanted taints are kept as they are (their timeAdded stays).
pub fn desired_taints(node: &Node, now: &Time) -> Vec<Taint> {
    let mut want: Vec<(&str, &str)> = Vec::new();
    match ready_status(node) {
        Some("False") => want.extend([
            (TAINT_NOT_READY, NO_SCHEDULE),
            (TAINT_NOT_READY, NO_EXECUTE),
        ]),
        Some("Unknown") => want.extend([
            (TAINT_UNREACHABLE, NO_SCHEDULE),
            (TAINT_UNREACHABLE, NO_EXECUTE),
        ]),
        _ => {}
    }
    for (cond, key) in [
        ("MemoryPressure", TAINT_MEMORY_PRESSURE),
        ("DiskPressure", TAINT_DISK_PRESSURE),
        ("PIDPressure", TAINT_PID_PRESSURE),
        ("NetworkUnavailable", TAINT_NETWORK_UNAVAILABLE),
    ] {
        if condition(node, cond).is_some_and(|c| c.status == "True") {
            want.push((key, NO_SCHEDULE));
        }
    }
    if node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
    {
        want.push((TAINT_UNSCHEDULABLE, NO_SCHEDULE));
    }
    let current = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let mut out: Vec<Taint> = current
        .into_iter()
        .filter(|t| {
            !MANAGED_KEYS.contains(&t.key.as_str())
                || want.contains(&(t.key.as_str(), t.effect.as_str()))
        })
        .collect();
    for (key, effect) in want {
        if !out.iter().any(|t| t.key == key && t.effect == effect) {
            let added = (effect == NO_EXECUTE).then(|| now.clone());
            out.push(taint(key, effect, added));
        }
    }
    out
}

/// Upstream `Toleration.ToleratesTaint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = t.effect.as_deref().filter(|e| !e.is_empty()) {
        if effect != taint.effect {
            return false;
        }
    }
    if let Some(key) = t.key.as_deref().filter(|k| !k.is_empty()) {
        if key != taint.key {
            return false;
        }
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

/// What taint eviction decides for a pod on a node with these NoExecute taints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eviction {
    /// Not affected (no NoExecute taints, or tolerated forever).
    Never,
    /// Delete at this time (now or in the past means now).
    At(Timestamp),
}

/// Upstream `processPodOnNode`: every NoExecute taint must be tolerated, else
/// the pod goes at once; otherwise it goes when the shortest tolerationSeconds
/// among the matching tolerations has passed since the taints were added.
pub fn eviction_time(pod: &Pod, taints: &[Taint], now: Timestamp) -> Eviction {
    let taints: Vec<&Taint> = taints.iter().filter(|t| t.effect == NO_EXECUTE).collect();
    if taints.is_empty() {
        return Eviction::Never;
    }
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[]);
    let mut min_seconds: Option<i64> = None;
    for taint in &taints {
        let matching: Vec<&Toleration> =
            tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Eviction::At(now);
        }
        for t in matching {
            if let Some(s) = t.toleration_seconds {
                let s = s.max(0);
                min_seconds = Some(min_seconds.map_or(s, |m| m.min(s)));
            }
        }
    }
    let Some(seconds) = min_seconds else {
        return Eviction::Never;
    };
    let since = taints
        .iter()
        .filter_map(|t| t.time_added.as_ref())
        .map(|t| t.0)
        .min()
        .unwrap_or(now);
    Eviction::At(
        since
            .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(seconds))
            .unwrap_or(since),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus, PodSpec};

    fn node(ready: Option<&str>) -> Node {
        Node {
            status: Some(NodeStatus {
                conditions: ready.map(|s| {
                    vec![NodeCondition {
                        type_: "Ready".into(),
                        status: s.into(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn keys(taints: &[Taint]) -> Vec<(String, String, bool)> {
        let mut v: Vec<_> = taints
            .iter()
            .map(|t| (t.key.clone(), t.effect.clone(), t.time_added.is_some()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn conditions_go_unknown_with_upstream_reason() {
        let now = crate::util::time::now();
        let conds = unknown_conditions(&node(Some("True")), &now).expect("changed");
        let ready = conds.iter().find(|c| c.type_ == "Ready").expect("ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("Unknown", Some("NodeStatusUnknown"))
        );
        assert_eq!(
            ready.message.as_deref(),
            Some("Kubelet stopped posting node status.")
        );
        assert_eq!(conds.len(), 4);
        let mut n = node(Some("True"));
        n.status.as_mut().expect("status").conditions = Some(conds);
        assert!(unknown_conditions(&n, &now).is_none());
    }

    #[test]
    fn taints_follow_readiness_and_are_removed_when_ready() {
        let now = crate::util::time::now();
        let t = desired_taints(&node(Some("Unknown")), &now);
        assert_eq!(
            keys(&t),
            vec![
                (TAINT_UNREACHABLE.into(), NO_EXECUTE.into(), true),
                (TAINT_UNREACHABLE.into(), NO_SCHEDULE.into(), false)
            ]
        );
        let mut n = node(Some("False"));
        n.spec = Some(NodeSpec {
            taints: Some(vec![
                t[1].clone(),
                t[0].clone(),
                Taint {
                    key: "user".into(),
                    effect: NO_SCHEDULE.into(),
                    ..Default::default()
                },
            ]),
            unschedulable: Some(true),
            ..Default::default()
        });
        let t2 = desired_taints(&n, &now);
        assert_eq!(
            keys(&t2),
            vec![
                (TAINT_NOT_READY.into(), NO_EXECUTE.into(), true),
                (TAINT_NOT_READY.into(), NO_SCHEDULE.into(), false),
                (TAINT_UNSCHEDULABLE.into(), NO_SCHEDULE.into(), false),
                ("user".into(), NO_SCHEDULE.into(), false),
            ]
        );
        n.status = node(Some("True")).status;
        n.spec.as_mut().expect("spec").unschedulable = None;
        assert_eq!(
            keys(&desired_taints(&n, &now)),
            vec![("user".into(), NO_SCHEDULE.into(), false)]
        );
    }

    #[test]
    fn eviction_waits_for_the_shortest_toleration() {
        let added = Timestamp::from_second(1_000).expect("ts");
        let taints = vec![Taint {
            key: TAINT_UNREACHABLE.into(),
            effect: NO_EXECUTE.into(),
            value: None,
            time_added: Some(Time(added)),
        }];
        let now = Timestamp::from_second(1_001).expect("ts");
        let pod = |tols: Vec<Toleration>| Pod {
            spec: Some(PodSpec {
                tolerations: Some(tols),
                ..Default::default()
            }),
            ..Default::default()
        };
        let tol = |secs: Option<i64>| Toleration {
            key: Some(TAINT_UNREACHABLE.into()),
            operator: Some("Exists".into()),
            effect: Some(NO_EXECUTE.into()),
            toleration_seconds: secs,
            ..Default::default()
        };
        assert_eq!(eviction_time(&pod(vec![]), &taints, now), Eviction::At(now));
        assert_eq!(
            eviction_time(&pod(vec![tol(None)]), &taints, now),
            Eviction::Never
        );
        assert_eq!(
            eviction_time(&pod(vec![tol(Some(30)), tol(Some(5))]), &taints, now),
            Eviction::At(Timestamp::from_second(1_005).expect("ts"))
        );
        let other = Toleration {
            key: Some("x".into()),
            operator: Some("Exists".into()),
            ..Default::default()
        };
        assert_eq!(
            eviction_time(&pod(vec![other]), &taints, now),
            Eviction::At(now)
        );
        assert_eq!(eviction_time(&pod(vec![]), &[], now), Eviction::Never);
    }
}
