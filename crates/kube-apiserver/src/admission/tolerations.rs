//! DefaultTolerationSeconds: pods tolerate `not-ready` and `unreachable` NoExecute
//! taints for 300 s unless they say otherwise, so the node lifecycle controller evicts
//! them five minutes after their node goes away.

use std::sync::LazyLock;

use serde_json::{json, Value};

pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";
/// Upstream's `--default-not-ready-toleration-seconds` / `--default-unreachable-toleration-seconds`.
pub const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// Adds the default tolerations a pod lacks.
pub fn add_default_tolerations(pod: &mut Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let list = spec.entry("tolerations").or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    let Some(list) = list.as_array_mut() else {
        return;
    };
    let tolerates = |key: &str| {
        list.iter().any(|t| {
            let k = api_types::meta::field(t, "key")
                .and_then(Value::as_str)
                .unwrap_or("");
            let effect = api_types::meta::field(t, "effect")
                .and_then(Value::as_str)
                .unwrap_or("");
            (k == key || k.is_empty()) && (effect == "NoExecute" || effect.is_empty())
        })
    };
    // Built once; a clone copies the maps without hashing their keys again.
    static DEFAULTS: LazyLock<[Value; 2]> = LazyLock::new(|| {
        [NOT_READY_TAINT, UNREACHABLE_TAINT].map(|key| {
            json!({
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
            })
        })
    });
    let present = [tolerates(NOT_READY_TAINT), tolerates(UNREACHABLE_TAINT)];
    for (default, present) in DEFAULTS.iter().zip(present) {
        if !present {
            list.push(default.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_both_defaults_to_a_plain_pod() {
        let mut pod = json!({"spec": {"containers": []}});
        add_default_tolerations(&mut pod);
        assert_eq!(
            pod["spec"]["tolerations"],
            json!([
                {"key": NOT_READY_TAINT, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": UNREACHABLE_TAINT, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ])
        );
        // Idempotent: a second pass (an update) adds nothing.
        let before = pod.clone();
        add_default_tolerations(&mut pod);
        assert_eq!(pod, before);
    }

    #[test]
    fn keeps_user_tolerations_and_respects_wildcards() {
        let mut pod = json!({"spec": {"tolerations": [
            {"key": NOT_READY_TAINT, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}
        ]}});
        add_default_tolerations(&mut pod);
        let t = pod["spec"]["tolerations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0]["tolerationSeconds"], 10);
        assert_eq!(t[1]["key"], UNREACHABLE_TAINT);

        // An empty key with Exists tolerates every taint: nothing is added.
        let mut pod = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        add_default_tolerations(&mut pod);
        assert_eq!(pod["spec"]["tolerations"], json!([{"operator": "Exists"}]));

        // A NoSchedule toleration does not cover NoExecute.
        let mut pod = json!({"spec": {"tolerations": [{"key": UNREACHABLE_TAINT, "operator": "Exists", "effect": "NoSchedule"}]}});
        add_default_tolerations(&mut pod);
        assert_eq!(pod["spec"]["tolerations"].as_array().map(Vec::len), Some(3));
    }
}
