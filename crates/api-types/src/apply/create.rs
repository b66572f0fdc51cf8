//! Field ownership of a new object, built in one walk. With no old object every field
//! of the request is added, so the diff of the general path (`compare({}, new)`, then
//! set algebra on [`FieldSet`](super::fieldset::FieldSet) trees, then the `FieldsV1`
//! encoding) reduces to encoding what `walk::mark_added` would record, straight into
//! the `fieldsV1` JSON bytes (no tree of maps is built). The result is byte-identical
//! to the general path's (the tests compare both); the few inputs where two list items
//! share a key fall back to it.

use serde_json::Value;

use super::walk::{elem_meta, granular, item_key};
use crate::patch::schema::{field, is_struct, FieldMeta, ListType, Shape};

/// Two children of one node encode to the same path element (list items sharing a
/// merge key, repeated set values): the general path merges them, this one does not.
#[derive(Debug)]
pub(super) struct Duplicate;

/// Where a node sits relative to the paths nobody owns (`STRIPPED` in `apply.rs`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Metadata,
    Elsewhere,
}

/// Top-level fields nobody owns (the node itself; their children still count).
const STRIPPED_TOP: &[&str] = &["apiVersion", "kind", "metadata"];
/// Fields of `metadata` nobody owns; `managedFields` is skipped entirely.
const STRIPPED_META: &[&str] = &[
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "generation",
    "resourceVersion",
];

/// The `fieldsV1` a create records for `obj` (of shape `shape`), as the JSON that
/// serializing it gives, leaving out the top-level field `reset` (see `reset_field`)
/// and `metadata.managedFields`. `None` when nothing is owned (the entry is then
/// dropped, as the general path drops empty entries).
pub(super) fn created_fields_v1(
    obj: &Value,
    shape: &'static Shape,
    reset: Option<&str>,
) -> Result<Option<Vec<u8>>, Duplicate> {
    let Value::Object(m) = obj else {
        return Ok(None);
    };
    let mut children = Vec::with_capacity(m.len());
    for (k, v) in m {
        if reset == Some(k.as_str()) {
            continue;
        }
        let place = if k == "metadata" {
            Place::Metadata
        } else {
            Place::Elsewhere
        };
        let strip = STRIPPED_TOP.contains(&k.as_str());
        if let Some(node) = added(v, field(shape, k), false, place, strip)? {
            children.push((format!("f:{k}"), node));
        }
    }
    let fields = finish(false, children)?;
    Ok(fields)
}

/// The encoded node for `v` recorded as wholly added (`walk::mark_added`); `None` when
/// the node is empty. `place` is the node's own place: under `metadata` some children
/// are not owned. `strip` drops the node's own membership.
fn added(
    v: &Value,
    meta: FieldMeta,
    whole: bool,
    place: Place,
    strip: bool,
) -> Result<Option<Vec<u8>>, Duplicate> {
    let mut member = true;
    let mut children = Vec::new();
    match v {
        Value::Object(m) if granular(meta.shape) && !m.is_empty() => {
            member = whole || !is_struct(meta.shape);
            children.reserve(m.len());
            for (k, child) in m {
                let mut child_strip = false;
                if place == Place::Metadata {
                    if k == "managedFields" {
                        continue;
                    }
                    child_strip = STRIPPED_META.contains(&k.as_str());
                }
                let child_meta = field(meta.shape, k);
                if let Some(node) = added(child, child_meta, false, Place::Elsewhere, child_strip)? {
                    children.push((format!("f:{k}"), node));
                }
            }
            // `metadata` holding only `managedFields` is an empty map (a leaf) to the
            // general path; either way the node is stripped and so not encoded.
        }
        Value::Array(items) if !items.is_empty() => match meta.list_type() {
            ListType::Set => {
                children.reserve(items.len());
                for item in items {
                    children.push((format!("v:{item}"), b"{}".to_vec()));
                }
            }
            ListType::Map(keys) => {
                let mut item_keys = Vec::with_capacity(items.len());
                for item in items {
                    match item_key(item, keys) {
                        Some(super::fieldset::PathElement::Key(k)) => item_keys.push(k),
                        _ => {
                            item_keys.clear();
                            break;
                        }
                    }
                }
                if item_keys.len() == items.len() {
                    let elem = elem_meta(meta);
                    children.reserve(items.len());
                    for (item, key) in items.iter().zip(item_keys) {
                        if let Some(node) = added(item, elem, true, Place::Elsewhere, false)? {
                            children.push((format!("k:{key}"), node));
                        }
                    }
                }
            }
            ListType::Atomic => {}
        },
        _ => {}
    }
    finish(member && !strip, children)
}

/// Encodes one node: `{}` for a leaf member, `{".": {}, ...children}` for a member
/// with children, children alone otherwise, `None` when empty. Children are sorted by
/// their encoded element, which is the order of `PathElement` (`f:` < `k:` < `v:`).
/// The bytes are what `serde_json` writes for the same map.
fn finish(member: bool, mut children: Vec<(String, Vec<u8>)>) -> Result<Option<Vec<u8>>, Duplicate> {
    if children.is_empty() {
        return Ok(member.then(|| b"{}".to_vec()));
    }
    children.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    if children.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(Duplicate);
    }
    let size: usize = children.iter().map(|(k, v)| k.len() + v.len() + 8).sum();
    let mut out = Vec::with_capacity(size + 8);
    out.push(b'{');
    if member {
        out.extend_from_slice(br#"".":{}"#);
    }
    for (i, (k, v)) in children.iter().enumerate() {
        if i > 0 || member {
            out.push(b',');
        }
        write_json_str(&mut out, k);
        out.push(b':');
        out.extend_from_slice(v);
    }
    out.push(b'}');
    Ok(Some(out))
}

/// Appends `s` as a JSON string, escaped as `serde_json` escapes it.
pub(super) fn write_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::patch::schema::{root_shape, root_shape_for};
    use crate::registry::lookup_kind;
    use crate::ResourceInfo;

    const NOW: &str = "2025-01-01T00:00:00Z";

    fn info(api_version: &str, kind: &str) -> &'static ResourceInfo {
        lookup_kind(api_version, kind).unwrap_or_else(|| panic!("{kind} registered"))
    }

    /// Runs the public entry point (fast path) and the general diff on copies of
    /// `obj` and asserts the two results serialize to the same bytes.
    fn assert_same_as_diff(info: &ResourceInfo, obj: &Value, subresource: Option<&str>) -> Value {
        let mut fast = obj.clone();
        super::super::update_managed_fields(info, None, &mut fast, "kubectl-create", "Update", NOW, subresource);
        let mut general = obj.clone();
        super::super::update_managed_fields_by_diff(info, None, &mut general, "kubectl-create", "Update", NOW, subresource);
        let (f, g) = (
            serde_json::to_string(&fast).expect("json"),
            serde_json::to_string(&general).expect("json"),
        );
        assert_eq!(f, g, "fast path differs from the general path");
        fast
    }

    /// The encoder alone against the general path's field set, for any shape.
    fn assert_fields_same(obj: &Value, shape: &'static Shape, reset: Option<&str>) {
        let fast = created_fields_v1(obj, shape, reset).expect("no duplicates");
        let fast = fast.map_or("null".to_string(), |b| String::from_utf8(b).expect("utf-8"));
        let clean = super::super::without_managed_fields(obj);
        let changed = super::super::walk::compare(&json!({}), &clean, shape).changed();
        let set = super::super::owned_set(changed, reset);
        let general = (!set.is_empty()).then(|| set.to_fields_v1());
        assert_eq!(fast, serde_json::to_string(&general).expect("json"));
    }

    fn bench_pod() -> Value {
        let env: Vec<Value> = (0..24)
            .map(|i| json!({"name": format!("SETTING_{i}"), "value": format!("value-{i}")}))
            .collect();
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "bench", "uid": "u", "creationTimestamp": NOW, "generation": 1,
                "labels": {"app": "bench", "tier": "web"}, "annotations": {"example.com/owner": "team-a"}},
            "spec": {
                "containers": [{
                    "name": "web", "image": "busybox", "command": ["sh", "-c", "httpd -f -p 8080"],
                    "ports": [{"containerPort": 8080, "name": "http"}, {"containerPort": 53, "protocol": "UDP"}],
                    "env": env,
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m"}},
                    "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 5},
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    "terminationMessagePath": "/dev/termination-log"
                }, {"name": "sidecar", "image": "pause", "securityContext": {}}],
                "initContainers": [{"name": "init", "image": "busybox", "args": []}],
                "volumes": [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "c", "items": [{"key": "a", "path": "a"}]}}],
                "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
                "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "nodeSelector": {"disk": "ssd"}
            },
            "status": {"phase": "Pending", "qosClass": "Burstable"}
        })
    }

    #[test]
    fn managed_fields_bytes_are_what_the_value_path_serializes() {
        let pods = info("v1", "Pod");
        for sub in [None, Some("status")] {
            let mut obj = bench_pod();
            let bytes = super::super::created_managed_fields_json(pods, &obj, "kubectl-create", "Update", NOW, sub)
                .expect("fast path")
                .expect("fields owned");
            super::super::update_managed_fields(pods, None, &mut obj, "kubectl-create", "Update", NOW, sub);
            let expected = serde_json::to_string(&obj["metadata"]["managedFields"]).expect("json");
            assert_eq!(String::from_utf8(bytes).expect("utf-8"), expected);
        }
        // A body that sent the key (even empty) takes the Value path.
        let mut sent = bench_pod();
        sent["metadata"]["managedFields"] = json!([]);
        assert!(super::super::created_managed_fields_json(pods, &sent, "m", "Update", NOW, None).is_err());
        // Nothing owned: no managedFields at all.
        let bare = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
        assert_eq!(super::super::created_managed_fields_json(pods, &bare, "m", "Update", NOW, None), Ok(None));
        let mut bare_value = bare.clone();
        super::super::update_managed_fields(pods, None, &mut bare_value, "m", "Update", NOW, None);
        assert!(bare_value["metadata"].get("managedFields").is_none());
    }

    #[test]
    fn pods_match_the_general_path() {
        let pods = info("v1", "Pod");
        let out = assert_same_as_diff(pods, &bench_pod(), None);
        let fields = &out["metadata"]["managedFields"][0]["fieldsV1"];
        assert_eq!(fields["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:ports"]["k:{\"containerPort\":8080,\"protocol\":\"TCP\"}"], json!({".": {}, "f:containerPort": {}, "f:name": {}}));
        assert_eq!(fields["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:env"]["k:{\"name\":\"SETTING_3\"}"], json!({".": {}, "f:name": {}, "f:value": {}}));
        assert!(fields.get("f:status").is_none(), "status is reset through the main resource: {fields}");
        assert!(fields["f:metadata"].get("f:name").is_none());
        // Through /status: spec is not owned.
        assert_same_as_diff(pods, &bench_pod(), Some("status"));
    }

    #[test]
    fn other_kinds_match_the_general_path() {
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a", "b"],
                "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "x", "uid": "1", "controller": true}]},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
                "template": {"metadata": {"name": "t", "labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}]}}},
            "status": {"replicas": 3}
        });
        assert_same_as_diff(info("apps/v1", "Deployment"), &deployment, None);
        let service = json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "d"},
            "spec": {"type": "NodePort", "clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"],
                "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP", "name": "dns"}],
                "selector": {"app": "x"}},
            "status": {"loadBalancer": {}}
        });
        assert_same_as_diff(info("v1", "Service"), &service, None);
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "annotations": {}},
            "data": {"a": "1", "b": ""}, "binaryData": {}, "immutable": null});
        assert_same_as_diff(info("v1", "ConfigMap"), &cm, None);
        let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]});
        assert_same_as_diff(info("rbac.authorization.k8s.io/v1", "Role"), &role, None);
    }

    #[test]
    fn edge_cases_match_the_general_path() {
        let ns = info("v1", "Namespace");
        // Only unowned fields: no entry at all.
        let bare = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}});
        let out = assert_same_as_diff(ns, &bare, None);
        assert!(out["metadata"].get("managedFields").is_none());
        assert_same_as_diff(ns, &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "managedFields": []}}), None);
        assert_same_as_diff(ns, &json!({"kind": "Namespace", "metadata": null, "spec": {"finalizers": []}}), None);
        assert_same_as_diff(ns, &json!({"metadata": {"managedFields": "junk"}, "spec": {}}), None);
        assert_same_as_diff(ns, &json!({}), None);
        let pods = info("v1", "Pod");
        // A list-map item without its key makes the list atomic.
        assert_same_as_diff(pods, &json!({"metadata": {"name": "p"}, "spec": {"containers": [{"image": "x"}, {"name": "a"}], "volumes": [{"name": "v"}]}}), None);
        // Unknown fields and odd values.
        assert_same_as_diff(pods, &json!({"metadata": {"name": {"deep": 1}, "labels": {"a": null}}, "spec": {"bogus": {"x": [1, 2]}, "hostname": 5}}), None);
        // Without a schema everything is granular.
        let unknown = root_shape_for("example.com", "Widget");
        assert_fields_same(&json!({"apiVersion": "x/v1", "kind": "Widget", "metadata": {"name": {"a": 1}, "labels": {"k": "v"}, "managedFields": []}, "spec": {"a": {"b": [1]}, "c": []}}), unknown, None);
        assert_fields_same(&bench_pod(), root_shape(pods), Some("status"));
    }

    #[test]
    fn duplicate_list_keys_fall_back_to_the_general_path() {
        let pods = info("v1", "Pod");
        let dup = json!({"metadata": {"name": "p", "finalizers": ["a", "a"]},
            "spec": {"containers": [{"name": "c", "image": "1"}, {"name": "c", "env": [{"name": "E"}]}]}});
        assert!(created_fields_v1(&dup, root_shape(pods), None).is_err());
        let out = assert_same_as_diff(pods, &dup, None);
        let fields = &out["metadata"]["managedFields"][0]["fieldsV1"];
        assert_eq!(fields["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]["f:env"]["k:{\"name\":\"E\"}"], json!({".": {}, "f:name": {}}));
    }

    #[test]
    fn sent_managed_fields_take_the_general_path() {
        let pods = info("v1", "Pod");
        let sent = json!({"metadata": {"name": "p", "managedFields": [{"manager": "other", "operation": "Update", "apiVersion": "v1",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:hostname": {}}}}]}, "spec": {"hostname": "h", "subdomain": "s"}});
        let out = assert_same_as_diff(pods, &sent, None);
        assert_eq!(out["metadata"]["managedFields"].as_array().map(Vec::len), Some(1), "{out}");
    }
}
