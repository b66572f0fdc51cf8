//! ServiceAccount: every pod runs as a service account (`default` unless named), which
//! must exist; the account's image pull secrets are copied to pods that list none;
//! unless automounting is turned off, a projected `kube-api-access-<random>` volume
//! (a bound token from TokenRequest, the `kube-root-ca.crt` CA, the namespace) is
//! mounted read-only at /var/run/secrets/kubernetes.io/serviceaccount in every
//! container, as upstream's admission plugin does; the kubelet fills it.

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

/// Where every container finds its token, CA and namespace.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Adds the projected token volume `kube-api-access-<suffix>` and its read-only
/// mount to every container (init, regular and ephemeral) that does not already
/// mount something at [`TOKEN_MOUNT_PATH`]. The pod's
/// `automountServiceAccountToken` wins over the account's; both default to true.
pub fn mount_token_volume(pod: &mut Value, service_account: &Value, suffix: &str) {
    let pod_choice = pod
        .pointer("/spec/automountServiceAccountToken")
        .and_then(Value::as_bool);
    let account_choice = service_account
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool);
    if !pod_choice.or(account_choice).unwrap_or(true) {
        return;
    }
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let volume_name = format!("kube-api-access-{suffix}");
    let mut mounted = false;
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for container in containers.iter_mut().filter_map(Value::as_object_mut) {
            let mounts = container.entry("volumeMounts").or_insert_with(|| json!([]));
            let Some(mounts) = mounts.as_array_mut() else {
                continue;
            };
            if mounts
                .iter()
                .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(TOKEN_MOUNT_PATH))
            {
                continue;
            }
            mounts.push(
                json!({"name": volume_name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH}),
            );
            mounted = true;
        }
    }
    if !mounted {
        return;
    }
    let volume = json!({
        "name": volume_name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
            ]
        }
    });
    match spec.get_mut("volumes").and_then(Value::as_array_mut) {
        Some(volumes) => volumes.push(volume),
        None => {
            spec.insert("volumes".into(), json!([volume]));
        }
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
    fn token_volume_is_mounted_unless_opted_out() {
        let mut pod = json!({"spec": {
            "initContainers": [{"name": "init"}],
            "containers": [{"name": "a"}, {"name": "b", "volumeMounts": [{"name": "own", "mountPath": TOKEN_MOUNT_PATH}]}],
            "volumes": [{"name": "own", "emptyDir": {}}]
        }});
        mount_token_volume(&mut pod, &json!({}), "x2b4z");
        let volumes = pod["spec"]["volumes"].as_array().expect("volumes");
        assert_eq!(volumes.len(), 2);
        assert_eq!(volumes[1]["name"], "kube-api-access-x2b4z");
        assert_eq!(
            volumes[1]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            3607
        );
        assert_eq!(
            pod["spec"]["initContainers"][0]["volumeMounts"][0]["readOnly"],
            true
        );
        assert_eq!(
            pod["spec"]["containers"][0]["volumeMounts"][0]["mountPath"],
            TOKEN_MOUNT_PATH
        );
        // A container mounting its own volume there is left alone.
        assert_eq!(
            pod["spec"]["containers"][1]["volumeMounts"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );

        let mut off = json!({"spec": {"containers": [{"name": "a"}]}});
        mount_token_volume(
            &mut off,
            &json!({"automountServiceAccountToken": false}),
            "aaaaa",
        );
        assert!(off["spec"].get("volumes").is_none());
        // The pod's own choice wins over the account's.
        let mut on =
            json!({"spec": {"automountServiceAccountToken": true, "containers": [{"name": "a"}]}});
        mount_token_volume(
            &mut on,
            &json!({"automountServiceAccountToken": false}),
            "aaaaa",
        );
        assert_eq!(on["spec"]["volumes"][0]["name"], "kube-api-access-aaaaa");
    }

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
