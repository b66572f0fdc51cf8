//! The `scale` and `binding` subresources.

use api_types::{meta, selectors::LabelSelector, ApiError, ResourceInfo};
use serde_json::{json, Value};

/// `spec.selector` rendered as a label selector string (`app=web,tier in (a)`),
/// through the shared selector type; an unparsable selector is reported empty.
fn selector_string(info: &ResourceInfo, obj: &Value) -> String {
    let Some(sel) = obj.pointer("/spec/selector") else {
        return String::new();
    };
    let parsed = if info.kind == "ReplicationController" {
        // RC selectors are plain maps.
        let map = sel
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(LabelSelector::from_map(&map))
    } else {
        LabelSelector::from_label_selector_json(sel)
    };
    parsed.map(|s| s.to_string()).unwrap_or_default()
}

/// The `autoscaling/v1` Scale of a scalable object.
pub fn scale_of(info: &ResourceInfo, obj: &Value) -> Value {
    let m = obj.get("metadata").cloned().unwrap_or(json!({}));
    let mut md = json!({});
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = m.get(k) {
            md[k] = v.clone();
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": md,
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0)},
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector_string(info, obj),
        },
    })
}

/// Applies a Scale's `spec.replicas` to the object; the Scale's resourceVersion, if
/// set, becomes the update's precondition.
pub fn apply_scale(obj: &Value, scale: &Value) -> Result<Value, ApiError> {
    let replicas = scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if replicas < 0 {
        return Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            meta::name(obj).unwrap_or(""),
            vec![api_types::StatusCause::invalid(
                "spec.replicas",
                &json!(replicas),
                "must be greater than or equal to 0",
            )],
        ));
    }
    let mut new = obj.clone();
    if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("replicas".into(), json!(replicas));
    }
    match scale
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
    {
        Some(rv) if !rv.is_empty() => meta::set_resource_version(&mut new, rv),
        _ => {
            if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                m.shift_remove("resourceVersion");
            }
        }
    }
    Ok(new)
}

/// Binds a pod to a node (`pods/binding`): sets `spec.nodeName` and the PodScheduled
/// condition; a pod already bound gets 409 as upstream.
pub fn bind(pod: &Value, node: &str, now: &str) -> Result<Value, ApiError> {
    let name = meta::name(pod).unwrap_or("");
    if let Some(existing) = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        return Err(ApiError::conflict(
            "",
            "pods",
            name,
            &format!("pod {name} is already assigned to node \"{existing}\""),
        ));
    }
    if meta::deletion_timestamp(pod).is_some() {
        return Err(ApiError::conflict(
            "",
            "pods",
            name,
            &format!("pod {name} is being deleted, cannot be assigned to a host"),
        ));
    }
    let mut p = pod.clone();
    if let Some(spec) = p.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("nodeName".into(), json!(node));
    }
    let status = p
        .as_object_mut()
        .map(|o| o.entry("status").or_insert_with(|| json!({})));
    if let Some(Value::Object(st)) = status {
        let conds = st.entry("conditions").or_insert_with(|| json!([]));
        if let Some(arr) = conds.as_array_mut() {
            arr.retain(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"));
            arr.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}));
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_round_trip() {
        let info = api_types::registry::lookup("apps", "v1", "deployments").expect("registered");
        let d = json!({"metadata": {"name": "web", "namespace": "default", "resourceVersion": "7"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}}, "status": {"replicas": 2}});
        let s = scale_of(info, &d);
        assert_eq!(s["spec"]["replicas"], 2);
        assert_eq!(s["status"]["selector"], "app=web");
        let mut s2 = s.clone();
        s2["spec"]["replicas"] = json!(5);
        let d2 = apply_scale(&d, &s2).expect("scaled");
        assert_eq!(d2["spec"]["replicas"], 5);
        assert_eq!(d2["metadata"]["resourceVersion"], "7");
    }

    #[test]
    fn binding_twice_conflicts() {
        let p = json!({"metadata": {"name": "p"}, "spec": {"containers": []}});
        let b = bind(&p, "n1", "2026-01-01T00:00:00Z").expect("bound");
        assert_eq!(b["spec"]["nodeName"], "n1");
        assert_eq!(b["status"]["conditions"][0]["type"], "PodScheduled");
        let e = bind(&b, "n2", "2026-01-01T00:00:00Z").expect_err("already bound");
        assert_eq!(e.code, 409);
    }
}
