//! Validation of objects after defaulting, as upstream's `pkg/apis/*/validation`:
//! every problem becomes a `StatusCause` with upstream's field path and message, and
//! the apiserver answers 422 `Invalid` when the list is non-empty.
//!
//! Objects are generic JSON here; the wrong-type cases (a string where a list is
//! expected) are caught earlier by `strict::check_fields`, so these checks read
//! leniently and never panic on odd input.

use serde_json::Value;

use crate::meta::field;
use crate::registry::ResourceInfo;
use crate::status::StatusCause;

mod config;
mod container;
pub mod field;
pub mod names;
mod objectmeta;
mod pod;
mod resources;
mod service;
mod volumes;
mod workloads;

pub use field::Path;
pub use objectmeta::{validate_annotations, validate_labels};
pub use pod::{validate_pod_spec, validate_pod_template};

/// Upstream's `IsNegativeErrorMsg`.
pub const IS_NEGATIVE_ERROR_MSG: &str = "must be greater than or equal to 0";
/// Upstream's `FieldImmutableErrorMsg`.
pub const FIELD_IMMUTABLE: &str = "field is immutable";

/// Validates an object being created (after defaulting).
pub fn validate_create(info: &ResourceInfo, obj: &Value) -> Vec<StatusCause> {
    let mut errs = objectmeta::validate_object_meta(
        obj,
        info.namespaced,
        name_validator(info),
        &Path::new("metadata"),
    );
    errs.extend(validate_kind(info, obj));
    errs
}

/// Validates an update of `old` to `new` (both after defaulting): the create rules on
/// `new` plus upstream's immutability rules.
pub fn validate_update(info: &ResourceInfo, new: &Value, old: &Value) -> Vec<StatusCause> {
    let mut errs = objectmeta::validate_object_meta_update(new, old, &Path::new("metadata"));
    errs.extend(validate_create(info, new));
    errs.extend(match (info.group, info.kind) {
        ("", "Pod") => pod::validate_pod_update(new, old),
        ("", "Service") => service::validate_service_update(new, old),
        ("", "Secret") => config::validate_secret_update(new, old),
        ("", "ConfigMap") => config::validate_config_map_update(new, old),
        ("apps", "Deployment") | ("apps", "ReplicaSet") | ("apps", "DaemonSet") => {
            workloads::validate_selector_immutable(new, old)
        }
        ("apps", "StatefulSet") => workloads::validate_stateful_set_update(new, old),
        ("batch", "Job") => workloads::validate_job_update(new, old),
        _ => Vec::new(),
    });
    errs
}

fn validate_kind(info: &ResourceInfo, obj: &Value) -> Vec<StatusCause> {
    match (info.group, info.kind) {
        ("", "Pod") => pod::validate_pod(obj),
        ("", "Service") => service::validate_service(obj),
        ("", "ReplicationController") => workloads::validate_replication_controller(obj),
        ("apps", "Deployment") => workloads::validate_deployment(obj),
        ("apps", "ReplicaSet") => workloads::validate_replica_set(obj),
        ("apps", "DaemonSet") => workloads::validate_daemon_set(obj),
        ("apps", "StatefulSet") => workloads::validate_stateful_set(obj),
        ("batch", "Job") => workloads::validate_job(obj),
        ("batch", "CronJob") => workloads::validate_cron_job(obj),
        ("", "ConfigMap") => config::validate_config_map(obj),
        ("", "Secret") => config::validate_secret(obj),
        ("", "Namespace") => config::validate_namespace(obj),
        ("", "Endpoints") => service::validate_endpoints(obj),
        _ => Vec::new(),
    }
}

/// The name rule upstream applies to each kind (`ValidateNameFunc`).
fn name_validator(info: &ResourceInfo) -> names::NameValidator {
    match (info.group, info.kind) {
        ("", "Namespace") => names::name_is_dns_label,
        ("", "Service") => names::name_is_dns1035_label,
        ("rbac.authorization.k8s.io", _) => names::name_is_path_segment,
        _ => names::name_is_dns_subdomain,
    }
}

// Lenient JSON accessors shared by the submodules.

/// `v.get(key)`, or an empty object when absent: validators read an absent spec as an
/// empty one without copying a present one.
fn obj_or_empty(v: Option<&Value>) -> &Value {
    static EMPTY: std::sync::LazyLock<Value> =
        std::sync::LazyLock::new(|| Value::Object(serde_json::Map::new()));
    v.unwrap_or(&EMPTY)
}

fn get_str<'a>(v: &'a Value, key: &str) -> &'a str {
    field(v, key).and_then(Value::as_str).unwrap_or_default()
}

fn get_list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    field(v, key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn get_i64(v: &Value, key: &str) -> Option<i64> {
    field(v, key).and_then(Value::as_i64)
}

fn get_obj<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    field(v, key).filter(|x| x.is_object())
}

fn nonnegative(v: &Value, key: &str, path: &Path, errs: &mut Vec<StatusCause>) {
    if let Some(n) = get_i64(v, key) {
        if n < 0 {
            errs.push(field::invalid_int(
                &path.child(key),
                n,
                IS_NEGATIVE_ERROR_MSG,
            ));
        }
    }
}

#[cfg(test)]
mod tests;
