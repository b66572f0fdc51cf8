//! ServiceAccount: every pod runs as a service account (`default` unless named), which
//! must exist; the account's image pull secrets are copied to pods that list none.
//! Token volumes are not mounted yet.

use serde_json::{json, Value};

pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Static pods mirrored by the kubelet are exempt, as upstream.
pub fn is_mirror_pod(pod: &Value) -> bool {
    pod.pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION))
}

/// Sets `spec.serviceAccountName` (default `default`, or the deprecated
/// `spec.serviceAccount` when only that is given) and mirrors it into
/// `spec.serviceAccount`; returns the name.
pub fn default_service_account_name(pod: &mut Value) -> String {
    let spec = pod
        .as_object_mut()
        .map(|o| o.entry("spec").or_insert_with(|| json!({})));
    let Some(spec) = spec.and_then(Value::as_object_mut) else {
        return DEFAULT_SERVICE_ACCOUNT.to_string();
    };
    let non_empty = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let name = non_empty(spec.get("serviceAccountName"))
        .or_else(|| non_empty(spec.get("serviceAccount")))
        .unwrap_or_else(|| DEFAULT_SERVICE_ACCOUNT.to_string());
    spec.insert("serviceAccountName".into(), json!(name));
    spec.insert("serviceAccount".into(), json!(name));
    name
}

/// Copies the account's `imagePullSecrets` to a pod that has none.
pub fn apply_image_pull_secrets(pod: &mut Value, service_account: &Value) {
    let Some(secrets) = service_account
        .get("imagePullSecrets")
        .and_then(Value::as_array)
        .filter(|s| !s.is_empty())
    else {
        return;
    };
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let has_own = spec
        .get("imagePullSecrets")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    if !has_own {
        let copied: Vec<Value> = secrets
            .iter()
            .filter_map(|s| s.get("name").map(|n| json!({"name": n})))
            .collect();
        spec.insert("imagePullSecrets".into(), Value::Array(copied));
    }
}

/// The reason a pod is refused when its account is missing.
pub fn not_found_message(namespace: &str, name: &str) -> String {
    format!(
        "error looking up service account {namespace}/{name}: serviceaccount \"{name}\" not found"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_mirrors_the_account_name() {
        let mut pod = json!({"spec": {"containers": []}});
        assert_eq!(default_service_account_name(&mut pod), "default");
        assert_eq!(pod["spec"]["serviceAccountName"], "default");
        assert_eq!(pod["spec"]["serviceAccount"], "default");

        let mut pod = json!({"spec": {"serviceAccount": "builder"}});
        assert_eq!(default_service_account_name(&mut pod), "builder");
        assert_eq!(pod["spec"]["serviceAccountName"], "builder");

        let mut pod = json!({"spec": {"serviceAccountName": "robot", "serviceAccount": ""}});
        assert_eq!(default_service_account_name(&mut pod), "robot");
        assert_eq!(pod["spec"]["serviceAccount"], "robot");
    }

    #[test]
    fn copies_pull_secrets_only_when_the_pod_has_none() {
        let sa = json!({"imagePullSecrets": [{"name": "regcred"}]});
        let mut pod = json!({"spec": {}});
        apply_image_pull_secrets(&mut pod, &sa);
        assert_eq!(
            pod["spec"]["imagePullSecrets"],
            json!([{"name": "regcred"}])
        );
        let mut pod = json!({"spec": {"imagePullSecrets": [{"name": "mine"}]}});
        apply_image_pull_secrets(&mut pod, &sa);
        assert_eq!(pod["spec"]["imagePullSecrets"], json!([{"name": "mine"}]));
    }

    #[test]
    fn message_matches_upstream() {
        assert_eq!(
            not_found_message("default", "default"),
            "error looking up service account default/default: serviceaccount \"default\" not found"
        );
        assert!(is_mirror_pod(
            &json!({"metadata": {"annotations": {"kubernetes.io/config.mirror": "abc"}}})
        ));
        assert!(!is_mirror_pod(&json!({"metadata": {}})));
    }
}
