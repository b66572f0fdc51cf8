//! Whether a daemon pod belongs on a node (upstream `NodeShouldRunDaemonPod`:
//! node name, nodeSelector, required node affinity, NoSchedule/NoExecute taints),
//! the tolerations every daemon pod gets, and the node a pod targets.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, Taint, Toleration,
};

/// Upstream `util.AddOrUpdateDaemonPodTolerations`: daemons survive node problems.
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    let mut wanted = vec![
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if spec.host_network == Some(true) {
        wanted.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for (key, effect) in wanted {
        let t = Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some(effect.into()),
            ..Default::default()
        };
        // Replace a same-key same-effect toleration, as upstream's AddOrUpdateTolerationInPod.
        tolerations
            .retain(|x| !(x.key.as_deref() == Some(key) && x.effect.as_deref() == Some(effect)));
        tolerations.push(t);
    }
}

/// Upstream `ReplaceDaemonSetPodNodeNameNodeAffinity`: the pod may only go to `node`.
pub fn pin_to_node(spec: &mut PodSpec, node: &str) {
    let selector = NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(vec![node.to_string()]),
            }]),
        }],
    };
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let node_affinity = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    node_affinity.required_during_scheduling_ignored_during_execution = Some(selector);
}

/// The node a daemon pod is bound or pinned to (upstream `GetTargetNodeName`).
pub fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_ref().filter(|n| !n.is_empty()) {
        return Some(n.clone());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find_map(|r| {
            (r.key == "metadata.name" && r.operator == "In")
                .then(|| r.values.as_ref()?.first().cloned())
                .flatten()
        })
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

fn term_matches(term: &NodeSelectorTerm, labels: &BTreeMap<String, String>, name: &str) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields
            .iter()
            .all(|r| requirement_matches(r, (r.key == "metadata.name").then_some(name)))
}

/// nodeSelector and required node affinity (upstream `nodeaffinity.GetRequiredNodeAffinity`).
pub fn node_matches_affinity(spec: &PodSpec, node: &Node) -> bool {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let name = node.metadata.name.as_deref().unwrap_or("");
    if let Some(sel) = &spec.node_selector {
        if !sel.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return false;
        }
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    required.is_none_or(|r| {
        r.node_selector_terms
            .iter()
            .any(|t| term_matches(t, &labels, name))
    })
}

/// Upstream `Toleration.ToleratesTaint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    let key = t.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            key == taint.key
                && t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

fn taints_tolerated(spec: &PodSpec, node: &Node, effects: &[&str]) -> bool {
    let tolerations = spec.tolerations.as_deref().unwrap_or(&[]);
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .filter(|taint| effects.contains(&taint.effect.as_str()))
        .all(|taint| tolerations.iter().any(|t| tolerates(t, taint)))
}

/// (shouldRun, shouldContinueRunning) for a daemon pod spec (with the daemon
/// tolerations added) on `node`: a running pod only leaves for NoExecute taints.
pub fn should_run(spec: &PodSpec, node: &Node) -> (bool, bool) {
    if spec
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && Some(n) != node.metadata.name.as_deref())
    {
        return (false, false);
    }
    if !node_matches_affinity(spec, node) {
        return (false, false);
    }
    (
        taints_tolerated(spec, node, &["NoSchedule", "NoExecute"]),
        taints_tolerated(spec, node, &["NoExecute"]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn node(name: &str, labels: &[(&str, &str)], taints: Vec<Taint>) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                taints: Some(taints),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn taint(key: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            ..Default::default()
        }
    }

    #[test]
    fn taints_block_unless_tolerated_and_no_schedule_spares_running_pods() {
        let mut spec = PodSpec::default();
        add_daemon_tolerations(&mut spec);
        assert_eq!(should_run(&spec, &node("a", &[], vec![])), (true, true));
        assert_eq!(
            should_run(
                &spec,
                &node("a", &[], vec![taint("dedicated", "NoSchedule")])
            ),
            (false, true)
        );
        assert_eq!(
            should_run(
                &spec,
                &node("a", &[], vec![taint("dedicated", "NoExecute")])
            ),
            (false, false)
        );
        assert_eq!(
            should_run(
                &spec,
                &node(
                    "a",
                    &[],
                    vec![taint("node.kubernetes.io/unschedulable", "NoSchedule")]
                )
            ),
            (true, true)
        );
        assert_eq!(
            should_run(
                &spec,
                &node(
                    "a",
                    &[],
                    vec![taint("node.kubernetes.io/not-ready", "NoExecute")]
                )
            ),
            (true, true)
        );
        assert_eq!(
            should_run(
                &spec,
                &node(
                    "a",
                    &[],
                    vec![taint(
                        "node.kubernetes.io/network-unavailable",
                        "NoSchedule"
                    )]
                )
            ),
            (false, true)
        );
        spec.host_network = Some(true);
        add_daemon_tolerations(&mut spec);
        assert_eq!(
            should_run(
                &spec,
                &node(
                    "a",
                    &[],
                    vec![taint(
                        "node.kubernetes.io/network-unavailable",
                        "NoSchedule"
                    )]
                )
            ),
            (true, true)
        );
        spec.tolerations
            .get_or_insert_with(Vec::new)
            .push(Toleration {
                key: Some("dedicated".into()),
                operator: Some("Exists".into()),
                ..Default::default()
            });
        assert_eq!(
            should_run(
                &spec,
                &node("a", &[], vec![taint("dedicated", "NoExecute")])
            ),
            (true, true)
        );
    }

    #[test]
    fn node_selector_and_required_affinity() {
        let mut spec = PodSpec {
            node_selector: Some([("disk".to_string(), "ssd".to_string())].into()),
            ..Default::default()
        };
        assert!(node_matches_affinity(
            &spec,
            &node("a", &[("disk", "ssd")], vec![])
        ));
        assert!(!node_matches_affinity(
            &spec,
            &node("a", &[("disk", "hdd")], vec![])
        ));
        spec.node_selector = None;
        pin_to_node(&mut spec, "b");
        assert!(node_matches_affinity(&spec, &node("b", &[], vec![])));
        assert!(!node_matches_affinity(&spec, &node("a", &[], vec![])));
        let pod = Pod {
            spec: Some(spec),
            ..Default::default()
        };
        assert_eq!(target_node(&pod).as_deref(), Some("b"));
        let expr = NodeSelectorRequirement {
            key: "zone".into(),
            operator: "NotIn".into(),
            values: Some(vec!["z1".into()]),
        };
        let spec = PodSpec {
            affinity: Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                        node_selector_terms: vec![NodeSelectorTerm {
                            match_expressions: Some(vec![expr]),
                            match_fields: None,
                        }],
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(node_matches_affinity(
            &spec,
            &node("a", &[("zone", "z2")], vec![])
        ));
        assert!(!node_matches_affinity(
            &spec,
            &node("a", &[("zone", "z1")], vec![])
        ));
    }
}
