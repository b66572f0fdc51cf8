//! ConfigMap, Secret and Namespace validation.

use serde_json::Value;

use super::field::{forbidden, invalid_str, required, too_long, Path};
use super::{get_list, get_str, names, FIELD_IMMUTABLE};
use crate::status::StatusCause;

/// Upstream's `MaxSecretSize` (also the ConfigMap limit): 1 MiB.
const MAX_DATA_SIZE: usize = 1024 * 1024;

fn validate_data_keys(obj: &Value, field: &str, errs: &mut Vec<StatusCause>) -> usize {
    let mut total = 0;
    if let Some(map) = obj.get(field).and_then(Value::as_object) {
        for (key, value) in map {
            for msg in names::is_config_map_key(key) {
                errs.push(invalid_str(&Path::new(field).key(key), key, &msg));
            }
            total += value.as_str().map_or(0, str::len);
        }
    }
    total
}

pub fn validate_config_map(cm: &Value) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    let mut total = validate_data_keys(cm, "data", &mut errs);
    total += validate_data_keys(cm, "binaryData", &mut errs);
    if let (Some(data), Some(binary)) = (
        cm.get("data").and_then(Value::as_object),
        cm.get("binaryData").and_then(Value::as_object),
    ) {
        for key in binary.keys().filter(|k| data.contains_key(*k)) {
            errs.push(invalid_str(
                &Path::new("binaryData"),
                key,
                "duplicate of key present in data",
            ));
        }
    }
    if total > MAX_DATA_SIZE {
        errs.push(too_long(&Path::new(""), MAX_DATA_SIZE));
    }
    errs
}

pub fn validate_secret(secret: &Value) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    let total = validate_data_keys(secret, "data", &mut errs);
    // stringData is merged into data by the apiserver; its keys follow the same rule.
    validate_data_keys(secret, "stringData", &mut errs);
    if total > MAX_DATA_SIZE {
        errs.push(too_long(&Path::new("data"), MAX_DATA_SIZE));
    }
    let has_key = |k: &str| {
        ["data", "stringData"].iter().any(|f| {
            secret
                .get(*f)
                .and_then(Value::as_object)
                .is_some_and(|m| m.contains_key(k))
        })
    };
    let data_path = Path::new("data");
    let sa_annotated = secret
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get("kubernetes.io/service-account.name"))
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    match get_str(secret, "type") {
        "kubernetes.io/service-account-token" if !sa_annotated => {
            errs.push(required(
                &Path::new("metadata.annotations").key("kubernetes.io/service-account.name"),
                "",
            ));
        }
        other => {
            let required_keys: &[&str] = match other {
                "kubernetes.io/dockercfg" => &[".dockercfg"],
                "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
                // Either basic-auth key may be empty, but one of them must be present.
                "kubernetes.io/basic-auth" if has_key("username") || has_key("password") => &[],
                "kubernetes.io/basic-auth" => &["username", "password"],
                "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
                "kubernetes.io/tls" => &["tls.crt", "tls.key"],
                _ => &[],
            };
            for key in required_keys.iter().filter(|k| !has_key(k)) {
                errs.push(required(&data_path.key(key), ""));
            }
        }
    }
    errs
}

fn immutable_flag(obj: &Value) -> bool {
    obj.get("immutable")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn validate_immutable_data(new: &Value, old: &Value, fields: &[&str]) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    if !immutable_flag(old) {
        return errs;
    }
    if !immutable_flag(new) {
        errs.push(forbidden(
            &Path::new("immutable"),
            "field is immutable when `immutable` is set",
        ));
    }
    for field in fields {
        let n = new.get(*field).filter(|v| !v.is_null());
        let o = old.get(*field).filter(|v| !v.is_null());
        if n != o {
            errs.push(forbidden(
                &Path::new(field),
                "field is immutable when `immutable` is set",
            ));
        }
    }
    errs
}

pub fn validate_secret_update(new: &Value, old: &Value) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    if get_str(new, "type") != get_str(old, "type") {
        errs.push(invalid_str(
            &Path::new("type"),
            get_str(new, "type"),
            FIELD_IMMUTABLE,
        ));
    }
    errs.extend(validate_immutable_data(new, old, &["data"]));
    errs
}

pub fn validate_config_map_update(new: &Value, old: &Value) -> Vec<StatusCause> {
    validate_immutable_data(new, old, &["data", "binaryData"])
}

pub fn validate_namespace(ns: &Value) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    let empty = Value::Null;
    let spec = ns.get("spec").unwrap_or(&empty);
    let finalizers = Path::new("spec.finalizers");
    for (i, f) in get_list(spec, "finalizers").iter().enumerate() {
        let f = f.as_str().unwrap_or_default();
        let path = finalizers.index(i);
        let msgs = names::is_qualified_name(f);
        if !msgs.is_empty() {
            for msg in msgs {
                errs.push(invalid_str(&path, f, &msg));
            }
        } else if !f.contains('/') && f != "kubernetes" {
            errs.push(invalid_str(
                &path,
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    errs
}
