//! Pod predicates and the scale-down order, as upstream's `pkg/api/v1/pod` and
//! `controller_utils.go` (`FilterActivePods`, `IsPodReady`, `IsPodAvailable`,
//! `ActivePodsWithRanks`).

use std::cmp::Ordering;
use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Pod, PodCondition};
use k8s_openapi::jiff::Timestamp;

/// Annotation that lowers or raises a pod's scale-down preference.
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Not terminated and not being deleted.
pub fn is_active(pod: &Pod) -> bool {
    let p = phase(pod);
    p != "Succeeded" && p != "Failed" && pod.metadata.deletion_timestamp.is_none()
}

pub fn condition<'a>(pod: &'a Pod, type_: &str) -> Option<&'a PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

pub fn is_ready(pod: &Pod) -> bool {
    condition(pod, "Ready").is_some_and(|c| c.status == "True")
}

/// When the pod last became ready.
pub fn ready_time(pod: &Pod) -> Option<Timestamp> {
    condition(pod, "Ready")
        .filter(|c| c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
}

/// Ready for at least `min_ready_seconds` (upstream `IsPodAvailable`).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    if !is_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    match ready_time(pod) {
        Some(t) => t.as_second() + i64::from(min_ready_seconds) <= now.as_second(),
        None => false,
    }
}

fn phase_ordinal(pod: &Pod) -> u8 {
    match phase(pod) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

fn max_restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0)
}

fn deletion_cost(pod: &Pod) -> i64 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_DELETION_COST))
        .and_then(|v| v.parse::<i32>().ok())
        .map_or(0, i64::from)
}

fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

/// `afterOrZero`: a missing time sorts first, then later times first.
fn after_or_zero(a: Option<Timestamp>, b: Option<Timestamp>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => b.cmp(&a),
    }
}

/// Upstream `ActivePodsWithRanks.Less`: the pods to delete first sort first.
/// `rank` is the number of related pods on the same node (doubled-up pods go first).
pub fn deletion_order(a: &Pod, rank_a: usize, b: &Pod, rank_b: usize) -> Ordering {
    // 1. Unassigned < assigned.
    let (na, nb) = (node_name(a), node_name(b));
    if na != nb && (na.is_empty() || nb.is_empty()) {
        return if na.is_empty() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    // 2. Pending < Unknown < Running.
    let ord = phase_ordinal(a).cmp(&phase_ordinal(b));
    if ord != Ordering::Equal {
        return ord;
    }
    // 3. Not ready < ready.
    let (ra, rb) = (is_ready(a), is_ready(b));
    if ra != rb {
        return if ra {
            Ordering::Greater
        } else {
            Ordering::Less
        };
    }
    // 4. Lower deletion cost first.
    let ord = deletion_cost(a).cmp(&deletion_cost(b));
    if ord != Ordering::Equal {
        return ord;
    }
    // 5. Doubled up < not doubled up.
    if rank_a != rank_b {
        return rank_b.cmp(&rank_a);
    }
    // 6. Ready for less time first.
    if ra && rb {
        let ord = after_or_zero(ready_time(a), ready_time(b));
        if ord != Ordering::Equal {
            return ord;
        }
    }
    // 7. More restarts first.
    let ord = max_restarts(b).cmp(&max_restarts(a));
    if ord != Ordering::Equal {
        return ord;
    }
    // 8. Newer first.
    after_or_zero(
        a.metadata.creation_timestamp.as_ref().map(|t| t.0),
        b.metadata.creation_timestamp.as_ref().map(|t| t.0),
    )
}

/// The `n` pods to delete from `pods`, in deletion order; pods are ranked by how
/// many of `pods` share their node, as upstream's `getPodsRankedByRelatedPodsOnSameNode`.
pub fn pods_to_delete(pods: &[Pod], n: usize) -> Vec<Pod> {
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for p in pods {
        if is_active(p) {
            *per_node.entry(node_name(p)).or_insert(0) += 1;
        }
    }
    let mut ranked: Vec<(usize, &Pod)> = pods
        .iter()
        .map(|p| {
            let rank = if node_name(p).is_empty() {
                0
            } else {
                per_node.get(node_name(p)).copied().unwrap_or(0)
            };
            (rank, p)
        })
        .collect();
    ranked.sort_by(|(ra, a), (rb, b)| deletion_order(a, *ra, b, *rb));
    ranked.into_iter().take(n).map(|(_, p)| p.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn pod(name: &str, node: &str, phase: &str, ready_at: Option<i64>, created: i64) -> Pod {
        let conditions = ready_at.map(|t| {
            vec![PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                last_transition_time: Some(Time(Timestamp::from_second(t).expect("ts"))),
                ..Default::default()
            }]
        });
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(Timestamp::from_second(created).expect("ts"))),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: (!node.is_empty()).then(|| node.to_string()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions,
                ..Default::default()
            }),
        }
    }

    fn names(pods: &[Pod]) -> Vec<String> {
        pods.iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect()
    }

    #[test]
    fn unscheduled_then_pending_then_not_ready_then_newer() {
        let pods = vec![
            pod("running-ready-old", "n1", "Running", Some(100), 10),
            pod("running-ready-new", "n2", "Running", Some(200), 20),
            pod("unscheduled", "", "Pending", None, 5),
            pod("pending", "n3", "Pending", None, 5),
            pod("running-not-ready", "n4", "Running", None, 5),
        ];
        assert_eq!(
            names(&pods_to_delete(&pods, 5)),
            [
                "unscheduled",
                "pending",
                "running-not-ready",
                "running-ready-new",
                "running-ready-old"
            ]
        );
        assert_eq!(names(&pods_to_delete(&pods, 2)), ["unscheduled", "pending"]);
    }

    #[test]
    fn doubled_up_pods_go_first() {
        let pods = vec![
            pod("alone", "n1", "Running", Some(100), 10),
            pod("shared-a", "n2", "Running", Some(100), 10),
            pod("shared-b", "n2", "Running", Some(100), 10),
        ];
        assert_eq!(names(&pods_to_delete(&pods, 1)), ["shared-a"]);
    }

    #[test]
    fn deletion_cost_annotation_is_honoured() {
        let mut cheap = pod("cheap", "n1", "Running", Some(100), 10);
        cheap.metadata.annotations =
            Some([(POD_DELETION_COST.to_string(), "-5".to_string())].into());
        let pods = vec![pod("new", "n2", "Running", Some(200), 20), cheap];
        assert_eq!(names(&pods_to_delete(&pods, 1)), ["cheap"]);
    }

    #[test]
    fn availability_needs_min_ready_seconds() {
        let p = pod("p", "n", "Running", Some(1_000), 0);
        let now = Timestamp::from_second(1_005).expect("ts");
        assert!(is_available(&p, 0, now));
        assert!(is_available(&p, 5, now));
        assert!(!is_available(&p, 6, now));
        assert!(!is_available(&pod("q", "n", "Running", None, 0), 0, now));
    }
}
