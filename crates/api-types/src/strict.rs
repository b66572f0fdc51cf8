//! Strict field checking (`?fieldValidation=Strict|Warn`): decodes an object into its
//! typed k8s-openapi struct, collecting the JSON fields the type does not know, and
//! reporting type mismatches the way Go's decoder does.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::registry::ResourceInfo;

mod fast;

use k8s_openapi::api::{
    apps::v1 as apps, autoscaling::v2 as autoscaling, batch::v1 as batch,
    certificates::v1 as certificates, coordination::v1 as coordination, core::v1 as core,
    discovery::v1 as discovery, events::v1 as events, networking::v1 as networking,
    policy::v1 as policy, rbac::v1 as rbac, scheduling::v1 as scheduling, storage::v1 as storage,
};

/// Decodes `obj` as the typed struct of `info`'s kind. `Ok(paths)` lists unknown
/// fields as upstream prints them (`spec.containers[0].imagePullPolicyy`, no leading
/// dot); `Err(msg)` when a value has the wrong type. Kinds without a typed mapping
/// give `Ok(vec![])`.
///
/// Almost every body is clean: a walk over the JSON against the kind's schema graph
/// ([`fast`]) proves that cheaply and answers `Ok(vec![])`; anything it is not sure of
/// goes to the typed decode, the only source of messages.
pub fn check_fields(info: &ResourceInfo, obj: &Value) -> Result<Vec<String>, String> {
    let Some((index, typed)) = typed_for(info) else {
        return Ok(Vec::new());
    };
    if fast::is_clean(index, obj) {
        return Ok(Vec::new());
    }
    (typed.decode)(info, obj)
}

/// One kind with a typed decode: its k8s-openapi struct, as functions.
pub(crate) struct Typed {
    group: &'static str,
    kind: &'static str,
    /// Only for this served version (HPA v1); `None`: any version.
    version: Option<&'static str>,
    decode: fn(&ResourceInfo, &Value) -> Result<Vec<String>, String>,
    /// Adds the struct's schema to a generator; returns the `$ref` to it.
    schema: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
}

fn schema_of<T: schemars::JsonSchema>(gen: &mut schemars::SchemaGenerator) -> schemars::Schema {
    gen.subschema_for::<T>()
}

macro_rules! typed {
    ($group:literal, $kind:literal, $version:expr, $ty:ty) => {
        Typed {
            group: $group,
            kind: $kind,
            version: $version,
            decode: check::<$ty>,
            schema: schema_of::<$ty>,
        }
    };
    ($group:literal, $kind:literal, $ty:ty) => {
        typed!($group, $kind, None, $ty)
    };
}

/// Every kind with a typed mapping; the first match wins.
static TYPED: &[Typed] = &[
    typed!("", "Pod", core::Pod),
    typed!("", "Service", core::Service),
    typed!("", "Namespace", core::Namespace),
    typed!("", "Endpoints", core::Endpoints),
    typed!("", "Node", core::Node),
    typed!("", "ConfigMap", core::ConfigMap),
    typed!("", "Secret", core::Secret),
    typed!("", "ServiceAccount", core::ServiceAccount),
    typed!("", "ReplicationController", core::ReplicationController),
    typed!("", "Event", core::Event),
    typed!("", "LimitRange", core::LimitRange),
    typed!("", "ResourceQuota", core::ResourceQuota),
    typed!("", "PersistentVolume", core::PersistentVolume),
    typed!("", "PersistentVolumeClaim", core::PersistentVolumeClaim),
    typed!("", "Binding", core::Binding),
    typed!("apps", "Deployment", apps::Deployment),
    typed!("apps", "ReplicaSet", apps::ReplicaSet),
    typed!("apps", "DaemonSet", apps::DaemonSet),
    typed!("apps", "StatefulSet", apps::StatefulSet),
    typed!("apps", "ControllerRevision", apps::ControllerRevision),
    typed!("batch", "Job", batch::Job),
    typed!("batch", "CronJob", batch::CronJob),
    typed!(
        "autoscaling",
        "HorizontalPodAutoscaler",
        Some("v1"),
        k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler
    ),
    typed!(
        "autoscaling",
        "HorizontalPodAutoscaler",
        autoscaling::HorizontalPodAutoscaler
    ),
    typed!("coordination.k8s.io", "Lease", coordination::Lease),
    typed!(
        "discovery.k8s.io",
        "EndpointSlice",
        discovery::EndpointSlice
    ),
    typed!("events.k8s.io", "Event", events::Event),
    typed!("policy", "PodDisruptionBudget", policy::PodDisruptionBudget),
    typed!("networking.k8s.io", "Ingress", networking::Ingress),
    typed!(
        "networking.k8s.io",
        "NetworkPolicy",
        networking::NetworkPolicy
    ),
    typed!(
        "networking.k8s.io",
        "IngressClass",
        networking::IngressClass
    ),
    typed!("rbac.authorization.k8s.io", "Role", rbac::Role),
    typed!(
        "rbac.authorization.k8s.io",
        "RoleBinding",
        rbac::RoleBinding
    ),
    typed!(
        "rbac.authorization.k8s.io",
        "ClusterRole",
        rbac::ClusterRole
    ),
    typed!(
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        rbac::ClusterRoleBinding
    ),
    typed!("storage.k8s.io", "StorageClass", storage::StorageClass),
    typed!(
        "certificates.k8s.io",
        "CertificateSigningRequest",
        certificates::CertificateSigningRequest
    ),
    typed!(
        "scheduling.k8s.io",
        "PriorityClass",
        scheduling::PriorityClass
    ),
];

/// The typed mapping of `info`'s kind and its index in [`TYPED`].
fn typed_for(info: &ResourceInfo) -> Option<(usize, &'static Typed)> {
    TYPED.iter().enumerate().find(|(_, t)| {
        t.group == info.group && t.kind == info.kind && t.version.is_none_or(|v| v == info.version)
    })
}

fn check<T: DeserializeOwned>(info: &ResourceInfo, obj: &Value) -> Result<Vec<String>, String> {
    // apiVersion/kind are checked by the caller against the URL; pin them here so the
    // typed decoder (which insists on its own values) only judges the body's fields.
    // Bodies normally carry the right ones already: then the object is not copied.
    let api_version = info.api_version();
    let pinned = obj.get("apiVersion").and_then(Value::as_str) == Some(api_version.as_str())
        && obj.get("kind").and_then(Value::as_str) == Some(info.kind);
    let mut copy;
    let obj = if pinned {
        obj
    } else {
        copy = obj.clone();
        if let Some(m) = copy.as_object_mut() {
            m.insert("apiVersion".into(), Value::String(api_version));
            m.insert("kind".into(), Value::String(info.kind.to_string()));
        }
        &copy
    };
    if !obj.is_object() {
        return Err(format!(
            "json: cannot unmarshal {} into Go value of type {}.{}",
            go_json_type(obj),
            info.version,
            info.kind
        ));
    }
    let mut unknown = Vec::new();
    let mut track = serde_path_to_error::Track::new();
    let result: Result<T, serde_json::Error> = {
        let tracked = serde_path_to_error::Deserializer::new(obj, &mut track);
        serde_ignored::deserialize(tracked, |path| unknown.push(format_path(&path)))
    };
    match result {
        Ok(_) => Ok(unknown),
        Err(e) => Err(describe_error(
            info.kind,
            &track.path().to_string(),
            &e.to_string(),
            obj,
        )),
    }
}

/// `spec.containers[0].foo` from serde_ignored's path.
fn format_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    match path {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", format_path(parent)),
        P::Map { parent, key } => {
            let p = format_path(parent);
            if p.is_empty() {
                key.clone()
            } else {
                format!("{p}.{key}")
            }
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            format_path(parent)
        }
    }
}

fn go_json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Go's `json: cannot unmarshal <type> into Go struct field <Kind>.<path> of type <T>`
/// for type mismatches; other decode errors keep serde's text with the field path.
fn describe_error(kind: &str, path: &str, message: &str, obj: &Value) -> String {
    let pointer = path_to_pointer(path);
    let found = obj.pointer(&pointer);
    if let (Some(rest), Some(found)) = (message.strip_prefix("invalid type: "), found) {
        let expected = rest.split_once(", expected ").map_or("", |(_, e)| e);
        let expected = expected
            .strip_prefix("a ")
            .or_else(|| expected.strip_prefix("an "))
            .unwrap_or(expected);
        return format!(
            "json: cannot unmarshal {} into Go struct field {kind}.{path} of type {expected}",
            go_json_type(found)
        );
    }
    if path.is_empty() || path == "?" {
        message.to_string()
    } else {
        format!("{path}: {message}")
    }
}

/// `spec.containers[0].image` → `/spec/containers/0/image`.
fn path_to_pointer(path: &str) -> String {
    let mut out = String::new();
    for seg in path.split('.') {
        let (name, indices) = match seg.find('[') {
            Some(i) => (&seg[..i], &seg[i..]),
            None => (seg, ""),
        };
        if !name.is_empty() {
            out.push('/');
            out.push_str(&name.replace('~', "~0").replace('/', "~1"));
        }
        for idx in indices.split('[').filter(|s| !s.is_empty()) {
            out.push('/');
            out.push_str(idx.trim_end_matches(']'));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::lookup_kind;
    use serde_json::json;

    fn info(api_version: &str, kind: &str) -> &'static ResourceInfo {
        lookup_kind(api_version, kind).expect("registered kind")
    }

    #[test]
    fn hpa_is_checked_against_the_served_version() {
        let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 3, "targetCPUUtilizationPercentage": 50}});
        assert_eq!(
            check_fields(info("autoscaling/v1", "HorizontalPodAutoscaler"), &v1),
            Ok(vec![])
        );
        assert_eq!(
            check_fields(info("autoscaling/v2", "HorizontalPodAutoscaler"), &v1),
            Ok(vec!["spec.targetCPUUtilizationPercentage".to_string()])
        );
    }

    #[test]
    fn reports_unknown_fields_with_upstream_paths() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labelz": {}},
            "spec": {"containers": [
                {"name": "a", "image": "busybox"},
                {"name": "b", "image": "busybox", "imagePullPolicyy": "Always", "ports": [{"containerPort": 80, "hostPortt": 1}]}
            ], "foo": 1},
        });
        let unknown = check_fields(info("v1", "Pod"), &pod).expect("decodes");
        assert_eq!(
            unknown,
            vec![
                "metadata.labelz".to_string(),
                "spec.containers[1].imagePullPolicyy".to_string(),
                "spec.containers[1].ports[0].hostPortt".to_string(),
                "spec.foo".to_string(),
            ]
        );
    }

    #[test]
    fn clean_objects_have_no_unknown_fields() {
        let deploy = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"app": "d"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                     "template": {"metadata": {"labels": {"app": "d"}},
                                  "spec": {"containers": [{"name": "c", "image": "x",
                                      "resources": {"limits": {"cpu": 1, "memory": "64Mi"}}}]}}},
            "status": {"replicas": 2},
        });
        assert_eq!(
            check_fields(info("apps/v1", "Deployment"), &deploy),
            Ok(vec![])
        );
        // apiVersion/kind are judged by the caller, not here.
        let cm = json!({"apiVersion": "v9", "kind": "Nope", "metadata": {"name": "c"}, "data": {"a": "b"}});
        assert_eq!(check_fields(info("v1", "ConfigMap"), &cm), Ok(vec![]));
    }

    #[test]
    fn wrong_types_name_the_field() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": "nope"}});
        let err = check_fields(info("v1", "Pod"), &pod).expect_err("wrong type");
        assert!(
            err.starts_with(
                "json: cannot unmarshal string into Go struct field Pod.spec.containers of type"
            ),
            "{err}"
        );
        let svc = json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": "eighty"}]}});
        let err = check_fields(info("v1", "Service"), &svc).expect_err("wrong type");
        assert!(err.contains("Service.spec.ports[0].port"), "{err}");
        let secret = json!({"metadata": {"name": "s"}, "data": {"k": "not base64!"}});
        let err = check_fields(info("v1", "Secret"), &secret).expect_err("bad base64");
        assert!(err.starts_with("data.k: "), "{err}");
    }

    #[test]
    fn unmapped_kinds_pass() {
        let binding = ResourceInfo {
            kind: "Widget",
            group: "example.com",
            ..info("v1", "Pod").clone()
        };
        assert_eq!(check_fields(&binding, &json!({"anything": 1})), Ok(vec![]));
    }
}
