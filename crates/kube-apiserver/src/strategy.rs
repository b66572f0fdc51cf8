//! Per-kind create/update strategies (upstream's `rest.RESTCreateStrategy` /
//! `RESTUpdateStrategy`): what the server resets on create, which parts of an update
//! the main resource and the `status` subresource may change, and generation bumps.

use api_types::{meta, ResourceInfo, Subresource};
use serde_json::{json, Value};

/// Kinds whose `.status` is reset on create (set only through `/status` afterwards).
fn clears_status_on_create(info: &ResourceInfo) -> bool {
    info.status_is_subresource()
        && !matches!(
            info.kind,
            "Namespace"
                | "Node"
                | "Pod"
                | "PersistentVolume"
                | "PersistentVolumeClaim"
                | "CertificateSigningRequest"
        )
}

/// Whether `metadata.generation` is maintained (1 on create, +1 on spec change).
pub fn tracks_generation(info: &ResourceInfo) -> bool {
    info.status_is_subresource() || info.kind == "Pod"
}

/// Server-owned fields of a new object.
pub fn prepare_for_create(info: &ResourceInfo, obj: &mut Value, uid: &str, now: &str) {
    if info.kind == "Secret" {
        merge_string_data(obj);
    }
    let m = meta::meta_mut(obj);
    m.insert("uid".into(), json!(uid));
    m.insert("creationTimestamp".into(), json!(now));
    // Usually absent: found by a scan (no hashing), removed keeping the key order.
    for key in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        if meta::map_field(m, key).is_some() {
            m.shift_remove(key);
        }
    }
    drop_empty_meta(m);
    if tracks_generation(info) {
        m.insert("generation".into(), json!(1));
    } else if meta::map_field(m, "generation").is_some() {
        m.shift_remove("generation");
    }
    if clears_status_on_create(info) {
        if let Some(o) = obj.as_object_mut() {
            o.remove("status");
        }
    }
    if info.kind == "Pod" {
        let qos = pod_qos_class(obj);
        let status = obj
            .as_object_mut()
            .map(|o| o.entry("status").or_insert_with(|| json!({})));
        if let Some(Value::Object(s)) = status {
            s.insert("phase".into(), json!("Pending"));
            s.insert("qosClass".into(), json!(qos));
        }
    }
}

/// Builds the object to store from an update of the main resource (`sub` = None) or
/// of the status subresource, given the current object.
/// A Secret's write-only `stringData` merged into `data` (base64), overriding keys
/// of the same name, as upstream's v1 conversion does; it is never stored.
pub fn merge_string_data(secret: &mut Value) {
    use base64::Engine;
    let Some(o) = secret.as_object_mut() else {
        return;
    };
    let Some(Value::Object(strings)) = o.remove("stringData") else {
        return;
    };
    let data = o.entry("data").or_insert_with(|| json!({}));
    if !data.is_object() {
        *data = json!({});
    }
    if let Some(d) = data.as_object_mut() {
        for (k, v) in strings {
            let text = v.as_str().unwrap_or_default();
            d.insert(
                k,
                json!(base64::engine::general_purpose::STANDARD.encode(text)),
            );
        }
    }
}

pub fn prepare_for_update(
    info: &ResourceInfo,
    new: Value,
    old: &Value,
    sub: Option<Subresource>,
) -> Value {
    let mut new = new;
    let csr_request = (info.kind == crate::certificates::KIND).then(|| new.clone());
    if info.kind == "Secret" {
        merge_string_data(&mut new);
    }
    let mut obj = match sub {
        Some(Subresource::Status) => {
            // Only status moves; everything else stays as stored.
            let mut o = old.clone();
            if let (Some(dst), Some(status)) = (o.as_object_mut(), new.get("status")) {
                dst.insert("status".into(), status.clone());
            }
            // Conditions/labels set by the status writer are not taken from metadata.
            o
        }
        _ => {
            let mut n = new;
            if info.status_is_subresource() {
                if let Some(o) = n.as_object_mut() {
                    match old.get("status") {
                        Some(s) => {
                            o.insert("status".into(), s.clone());
                        }
                        None => {
                            o.remove("status");
                        }
                    }
                }
            }
            n
        }
    };
    // Server-owned metadata is kept from the stored object.
    let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let m = meta::meta_mut(&mut obj);
    for k in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old_meta.get(k) {
            Some(v) => {
                m.insert(k.into(), v.clone());
            }
            None => {
                m.remove(k);
            }
        }
    }
    drop_empty_meta(m);
    if sub.is_none() && info.kind == "Service" {
        clear_node_ports_for_cluster_ip(&mut obj);
    }
    // A scale write is a write of the spec (`spec.replicas`), and counts as one.
    let spec_write = matches!(sub, None | Some(Subresource::Scale));
    if spec_write && tracks_generation(info) && obj.get("spec") != old.get("spec") {
        let g = meta::generation(old) + 1;
        meta::meta_mut(&mut obj).insert("generation".into(), json!(g));
    }
    if let Some(request) = csr_request {
        let now = meta::format_time(chrono::Utc::now());
        crate::certificates::prepare_for_update(info, &mut obj, &request, old, sub, &now);
    }
    obj
}

/// Drops the metadata maps and lists left empty (`kubectl label cm x app-` removing
/// the last label): upstream's `omitempty` never stores nor serves them.
fn drop_empty_meta(m: &mut serde_json::Map<String, Value>) {
    for key in ["labels", "annotations", "finalizers", "ownerReferences"] {
        let empty = match meta::map_field(m, key) {
            Some(Value::Object(o)) => o.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            _ => false,
        };
        if empty {
            m.shift_remove(key);
        }
    }
}

/// A Service changed to ClusterIP/ExternalName drops its node ports (upstream's
/// service strategy does this before validation).
fn clear_node_ports_for_cluster_ip(svc: &mut Value) {
    let ty = svc
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    if ty != "ClusterIP" && ty != "ExternalName" {
        return;
    }
    if let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
        for p in ports {
            if let Some(o) = p.as_object_mut() {
                o.remove("nodePort");
            }
        }
    }
}

/// Upstream's QoS class of a pod: Guaranteed, Burstable or BestEffort.
pub fn pod_qos_class(pod: &Value) -> &'static str {
    use api_types::meta::field;
    let spec = field(pod, "spec");
    let containers = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| field(spec?, k)?.as_array())
        .flatten();
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let resources = field(c, "resources");
        let req = resources.and_then(|r| field(r, "requests"));
        let lim = resources.and_then(|r| field(r, "limits"));
        for r in ["cpu", "memory"] {
            let lm = lim.and_then(|l| field(l, r));
            let rq = req.and_then(|q| field(q, r)).or(lm);
            if rq.is_some() || lm.is_some() {
                any = true;
            }
            match (rq, lm) {
                (Some(a), Some(b)) if quantity_eq(a, b) => {}
                _ => guaranteed = false,
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn quantity_eq(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    let parse = |v: &Value| {
        v.as_str()
            .and_then(|s| api_types::quantity::ParsedQuantity::parse(s).ok())
            .map(|q| q.milli_value())
    };
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(kind: &str) -> &'static ResourceInfo {
        api_types::registry::RESOURCES
            .iter()
            .find(|r| r.kind == kind)
            .expect("registered")
    }

    #[test]
    fn deployment_create_resets_status_and_sets_generation() {
        let mut d = json!({"metadata": {"name": "d", "resourceVersion": "5"}, "spec": {"replicas": 1}, "status": {"replicas": 9}});
        prepare_for_create(info("Deployment"), &mut d, "u1", "2026-01-01T00:00:00Z");
        assert_eq!(d["metadata"]["generation"], 1);
        assert!(d.get("status").is_none());
        assert!(d["metadata"].get("resourceVersion").is_none());
    }

    #[test]
    fn spec_change_bumps_generation_status_change_does_not() {
        let old = json!({"metadata": {"name": "d", "generation": 3, "uid": "u"}, "spec": {"replicas": 1}, "status": {"replicas": 1}});
        let new =
            json!({"metadata": {"name": "d"}, "spec": {"replicas": 2}, "status": {"replicas": 7}});
        let out = prepare_for_update(info("Deployment"), new.clone(), &old, None);
        assert_eq!(out["metadata"]["generation"], 4);
        assert_eq!(
            out["status"]["replicas"], 1,
            "main resource cannot write status"
        );
        assert_eq!(out["metadata"]["uid"], "u");
        let st = prepare_for_update(info("Deployment"), new, &old, Some(Subresource::Status));
        assert_eq!(st["metadata"]["generation"], 3);
        assert_eq!(st["status"]["replicas"], 7);
        assert_eq!(
            st["spec"]["replicas"], 1,
            "status subresource cannot write spec"
        );
    }

    #[test]
    fn qos_classes() {
        let be = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(pod_qos_class(&be), "BestEffort");
        let g = json!({"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}});
        assert_eq!(pod_qos_class(&g), "Guaranteed");
        let b = json!({"spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "100m"}}}]}});
        assert_eq!(pod_qos_class(&b), "Burstable");
    }
}
