//! Object-meta helpers on generic `serde_json::Value` objects: the apiserver and
//! controllers handle objects as JSON, and these read and write `metadata.*` the way
//! upstream's `meta.Accessor` does (absent fields read as empty).

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

/// Maps up to this size are searched by comparing names: cheaper than hashing the name
/// (`serde_json`'s map hashes with SipHash), and most objects' maps are this small.
const SCAN_UP_TO: usize = 16;

/// `map.get(key)`, by a scan for small maps.
pub fn map_field<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    if map.len() <= SCAN_UP_TO {
        map.iter().find_map(|(k, v)| (k == key).then_some(v))
    } else {
        map.get(key)
    }
}

/// `map.get_mut(key)`, by a scan for small maps.
pub fn map_field_mut<'v>(map: &'v mut Map<String, Value>, key: &str) -> Option<&'v mut Value> {
    if map.len() <= SCAN_UP_TO {
        map.iter_mut().find_map(|(k, v)| (k == key).then_some(v))
    } else {
        map.get_mut(key)
    }
}

/// `v.get(key)` for an object `v` (None otherwise), by a scan for small maps.
pub fn field<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    map_field(v.as_object()?, key)
}

/// `v.get_mut(key)` for an object `v` (None otherwise), by a scan for small maps.
pub fn field_mut<'v>(v: &'v mut Value, key: &str) -> Option<&'v mut Value> {
    map_field_mut(v.as_object_mut()?, key)
}

fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    field(obj, "metadata")?.as_object()
}

fn meta_str<'a>(obj: &'a Value, name: &str) -> Option<&'a str> {
    map_field(meta(obj)?, name)?.as_str()
}

fn string_map(obj: &Value, field: &str) -> BTreeMap<String, String> {
    meta(obj)
        .and_then(|m| m.get(field))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

pub fn name(obj: &Value) -> Option<&str> {
    meta_str(obj, "name")
}

pub fn namespace(obj: &Value) -> Option<&str> {
    meta_str(obj, "namespace")
}

pub fn generate_name(obj: &Value) -> Option<&str> {
    meta_str(obj, "generateName")
}

pub fn uid(obj: &Value) -> Option<&str> {
    meta_str(obj, "uid")
}

pub fn resource_version(obj: &Value) -> Option<&str> {
    meta_str(obj, "resourceVersion")
}

pub fn deletion_timestamp(obj: &Value) -> Option<&str> {
    meta_str(obj, "deletionTimestamp")
}

/// `metadata.labels`, empty when absent.
pub fn labels(obj: &Value) -> BTreeMap<String, String> {
    string_map(obj, "labels")
}

/// `metadata.annotations`, empty when absent.
pub fn annotations(obj: &Value) -> BTreeMap<String, String> {
    string_map(obj, "annotations")
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn owner_references(obj: &Value) -> Vec<Value> {
    meta(obj)
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// `metadata.generation`, 0 when absent.
pub fn generation(obj: &Value) -> i64 {
    meta(obj)
        .and_then(|m| m.get("generation"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// `metadata` as a mutable map, created (and the object turned into an object) if missing.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let Value::Object(root) = obj else {
        unreachable!("made an object above")
    };
    let entry = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    match entry {
        Value::Object(m) => m,
        _ => unreachable!("made an object above"),
    }
}

fn set_str(obj: &mut Value, field: &str, value: &str) {
    meta_mut(obj).insert(field.to_string(), Value::String(value.to_string()));
}

pub fn set_name(obj: &mut Value, value: &str) {
    set_str(obj, "name", value)
}

pub fn set_namespace(obj: &mut Value, value: &str) {
    set_str(obj, "namespace", value)
}

pub fn set_resource_version(obj: &mut Value, value: &str) {
    set_str(obj, "resourceVersion", value)
}

/// Drops `metadata.managedFields`, keeping the order of the other fields.
pub fn remove_managed_fields(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.shift_remove("managedFields");
    }
}

pub fn set_uid(obj: &mut Value, value: &str) {
    set_str(obj, "uid", value)
}

/// Upstream's `metav1.Time` wire form: RFC 3339 with whole seconds, `Z` suffix.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn set_creation_timestamp(obj: &mut Value, t: DateTime<Utc>) {
    set_str(obj, "creationTimestamp", &format_time(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn reads_fields_and_defaults_when_absent() {
        let obj = json!({"metadata": {
            "name": "web", "namespace": "default", "uid": "u1", "resourceVersion": "7",
            "generation": 3, "labels": {"app": "web"}, "finalizers": ["a", "b"],
            "ownerReferences": [{"kind": "ReplicaSet", "name": "rs"}],
        }});
        assert_eq!(name(&obj), Some("web"));
        assert_eq!(namespace(&obj), Some("default"));
        assert_eq!(uid(&obj), Some("u1"));
        assert_eq!(resource_version(&obj), Some("7"));
        assert_eq!(generation(&obj), 3);
        assert_eq!(labels(&obj).get("app").map(String::as_str), Some("web"));
        assert!(annotations(&obj).is_empty());
        assert_eq!(finalizers(&obj), vec!["a".to_string(), "b".to_string()]);
        assert_eq!(owner_references(&obj).len(), 1);
        assert_eq!(deletion_timestamp(&obj), None);

        let empty = json!({});
        assert_eq!(name(&empty), None);
        assert_eq!(generation(&empty), 0);
        assert!(labels(&empty).is_empty());
        assert!(finalizers(&empty).is_empty());
    }

    #[test]
    fn setters_create_metadata() {
        let mut obj = json!({"kind": "Pod"});
        set_name(&mut obj, "p");
        set_namespace(&mut obj, "ns");
        set_uid(&mut obj, "abc");
        set_resource_version(&mut obj, "12");
        let t = Utc
            .with_ymd_and_hms(2026, 11, 22, 4, 50, 0)
            .single()
            .expect("valid date");
        set_creation_timestamp(&mut obj, t);
        assert_eq!(
            obj["metadata"],
            json!({"name": "p", "namespace": "ns", "uid": "abc", "resourceVersion": "12",
                   "creationTimestamp": "2026-11-22T04:50:00Z"})
        );
        let mut not_obj = json!(null);
        meta_mut(&mut not_obj).insert("name".into(), json!("x"));
        assert_eq!(name(&not_obj), Some("x"));
    }
}
