//! Conversion between the stored form of an object and the form a group-version serves.
//! `events.k8s.io/v1` Events are stored as core/v1 under `/registry/events` (field
//! renames); `autoscaling/v1` HorizontalPodAutoscalers are stored as `autoscaling/v2`
//! ([`hpa`]).

use serde_json::{Map, Value};

use crate::ResourceInfo;

pub mod hpa;

/// (core/v1 field, events.k8s.io/v1 field)
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("reportingInstance", "reportingInstance"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("action", "action"),
    ("reason", "reason"),
    ("related", "related"),
    ("type", "type"),
];

fn is_events_v1(info: &ResourceInfo) -> bool {
    info.group == "events.k8s.io" && info.kind == "Event"
}

fn rename(obj: &mut Value, api_version: &str, to_external: bool) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let mut out = Map::new();
    out.insert("kind".into(), Value::String("Event".into()));
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    if let Some(m) = map.remove("metadata") {
        out.insert("metadata".into(), m);
    }
    for (core, ext) in EVENT_FIELDS {
        let (from, to) = if to_external {
            (core, ext)
        } else {
            (ext, core)
        };
        if let Some(v) = map.remove(*from) {
            if !v.is_null() {
                out.insert((*to).to_string(), v);
            }
        }
    }
    // core's `series.lastObservedTime` and events' `series.lastObservedTime` match;
    // everything unknown is dropped, as a typed conversion would.
    *map = out;
}

fn is_hpa(info: &ResourceInfo) -> bool {
    info.group == "autoscaling" && info.kind == "HorizontalPodAutoscaler"
}

/// Stored form → served form of `info`.
pub fn storage_to_external(info: &ResourceInfo, obj: &mut Value) {
    if is_events_v1(info) {
        rename(obj, "events.k8s.io/v1", true);
    } else if is_hpa(info) && info.version == "v1" {
        hpa::v2_to_v1(obj);
    }
}

/// Served form of `info` → stored form.
pub fn external_to_storage(info: &ResourceInfo, obj: &mut Value) {
    if is_events_v1(info) {
        rename(obj, "v1", false);
    } else if is_hpa(info) {
        match info.version {
            "v1" => hpa::v1_to_v2(obj),
            _ => hpa::drop_round_trip_annotations(obj),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_round_trip_between_core_and_events_v1() {
        let info = crate::registry::lookup("events.k8s.io", "v1", "events").expect("registered");
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web"}, "message": "pulled", "reason": "Pulled", "type": "Normal",
            "source": {"component": "kubelet"}, "count": 2, "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": null});
        let mut ext = core.clone();
        storage_to_external(info, &mut ext);
        assert_eq!(ext["apiVersion"], "events.k8s.io/v1");
        assert_eq!(ext["regarding"]["name"], "web");
        assert_eq!(ext["note"], "pulled");
        assert_eq!(ext["deprecatedCount"], 2);
        assert!(ext.get("involvedObject").is_none());
        let mut back = ext.clone();
        external_to_storage(info, &mut back);
        let mut expected = core.clone();
        expected
            .as_object_mut()
            .expect("object")
            .remove("lastTimestamp");
        assert_eq!(back, expected);
        let pods = crate::registry::lookup("", "v1", "pods").expect("pods");
        let mut p = json!({"a": 1});
        storage_to_external(pods, &mut p);
        assert_eq!(p, json!({"a": 1}));
    }
}
