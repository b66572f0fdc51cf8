//! The event printer (upstream `printEvent`) for core/v1 and events.k8s.io/v1
//! events: Last Seen, Type, Reason, Object, Message, and the wide Subobject, Source,
//! First Seen, Count and Name.

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{Event, ObjectReference};
use serde_json::Value;

use super::util::{at, doc, i, name, opt_s, s};
use super::{columns, translate_timestamp_since, Column, Printer, Row};

pub(crate) fn printer(group: &str, kind: &str) -> Option<Printer> {
    match (group, kind) {
        ("", "Event") => Some(Printer {
            columns: event_columns,
            row: core_event_row,
        }),
        ("events.k8s.io", "Event") => Some(Printer {
            columns: event_columns,
            row: events_v1_event_row,
        }),
        _ => None,
    }
}

fn event_columns() -> &'static [Column] {
    columns![
        Column::new("Last Seen", "string", doc::<Event>("lastTimestamp")),
        Column::new("Type", "string", doc::<Event>("type")),
        Column::new("Reason", "string", doc::<Event>("reason")),
        Column::new("Object", "string", doc::<Event>("involvedObject")),
        Column::new("Subobject", "string", doc::<ObjectReference>("fieldPath")).wide(),
        Column::new("Source", "string", doc::<Event>("source")).wide(),
        Column::new("Message", "string", doc::<Event>("message")),
        Column::new("First Seen", "string", doc::<Event>("firstTimestamp")).wide(),
        Column::new("Count", "string", doc::<Event>("count")).wide(),
        Column {
            priority: 1,
            ..Column::name()
        },
    ]
}

/// The fields of upstream's internal `api.Event`, read from either wire form.
struct EventView<'a> {
    name: &'a str,
    involved: Option<&'a Value>,
    source: Option<&'a Value>,
    message: &'a str,
    first: Option<&'a str>,
    last: Option<&'a str>,
    event_time: Option<&'a str>,
    count: i64,
    series: Option<&'a Value>,
    ty: &'a str,
    reason: &'a str,
    reporting_controller: &'a str,
    reporting_instance: &'a str,
}

fn core_event_row(ev: &Value, now: DateTime<Utc>) -> Row {
    event_row(
        EventView {
            name: name(ev),
            involved: at(ev, &["involvedObject"]),
            source: at(ev, &["source"]),
            message: s(ev, &["message"]),
            first: opt_s(ev, &["firstTimestamp"]),
            last: opt_s(ev, &["lastTimestamp"]),
            event_time: opt_s(ev, &["eventTime"]),
            count: i(ev, &["count"]),
            series: at(ev, &["series"]).filter(|v| v.is_object()),
            ty: s(ev, &["type"]),
            reason: s(ev, &["reason"]),
            reporting_controller: s(ev, &["reportingComponent"]),
            reporting_instance: s(ev, &["reportingInstance"]),
        },
        now,
    )
}

/// `events.k8s.io/v1` names the same fields differently (upstream converts it to the
/// internal core Event before printing).
fn events_v1_event_row(ev: &Value, now: DateTime<Utc>) -> Row {
    event_row(
        EventView {
            name: name(ev),
            involved: at(ev, &["regarding"]),
            source: at(ev, &["deprecatedSource"]),
            message: s(ev, &["note"]),
            first: opt_s(ev, &["deprecatedFirstTimestamp"]),
            last: opt_s(ev, &["deprecatedLastTimestamp"]),
            event_time: opt_s(ev, &["eventTime"]),
            count: i(ev, &["deprecatedCount"]),
            series: at(ev, &["series"]).filter(|v| v.is_object()),
            ty: s(ev, &["type"]),
            reason: s(ev, &["reason"]),
            reporting_controller: s(ev, &["reportingController"]),
            reporting_instance: s(ev, &["reportingInstance"]),
        },
        now,
    )
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() {
        b
    } else {
        a
    }
}

fn is_set(ts: Option<&str>) -> bool {
    ts.is_some_and(|t| !t.is_empty())
}

fn event_row(ev: EventView<'_>, now: DateTime<Utc>) -> Row {
    let first_seen = if is_set(ev.first) {
        translate_timestamp_since(ev.first, now)
    } else {
        translate_timestamp_since(ev.event_time, now)
    };
    let mut last_seen = if is_set(ev.last) {
        translate_timestamp_since(ev.last, now)
    } else {
        first_seen.clone()
    };
    let mut count = ev.count;
    if let Some(series) = ev.series {
        last_seen = translate_timestamp_since(opt_s(series, &["lastObservedTime"]), now);
        count = i(series, &["count"]);
    } else if count == 0 {
        // Singleton events of the new API have no count.
        count = 1;
    }
    let kind = ev.involved.map_or("", |o| s(o, &["kind"])).to_lowercase();
    let involved_name = ev.involved.map_or("", |o| s(o, &["name"]));
    let target = if involved_name.is_empty() {
        kind
    } else {
        format!("{kind}/{involved_name}")
    };
    let component = first_non_empty(
        ev.source.map_or("", |src| s(src, &["component"])),
        ev.reporting_controller,
    );
    let instance = first_non_empty(
        ev.source.map_or("", |src| s(src, &["host"])),
        ev.reporting_instance,
    );
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        Value::from(last_seen),
        Value::from(ev.ty),
        Value::from(ev.reason),
        Value::from(target),
        Value::from(ev.involved.map_or("", |o| s(o, &["fieldPath"]))),
        Value::from(source),
        Value::from(ev.message.trim()),
        Value::from(first_seen),
        Value::from(count),
        Value::from(ev.name),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ago, labeled_column_names as names, meta_aged, print_one};
    use serde_json::{json, Value};

    fn meta(name: &str) -> Value {
        meta_aged(name, 600)
    }

    #[test]
    fn core_event() {
        let ev = json!({
            "metadata": meta("web-1.17d"),
            "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{app}"},
            "reason": "Pulled", "type": "Normal", "message": "Container image pulled\n",
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": ago(3600), "lastTimestamp": ago(65), "count": 4
        });
        let (t, cells) = print_one("", "Event", ev);
        assert_eq!(
            names(&t),
            [
                "Last Seen",
                "Type",
                "Reason",
                "Object",
                "Subobject(1)",
                "Source(1)",
                "Message",
                "First Seen(1)",
                "Count(1)",
                "Name(1)"
            ]
        );
        assert_eq!(t["columnDefinitions"][9]["format"], "name");
        assert_eq!(
            cells,
            vec![
                json!("65s"),
                json!("Normal"),
                json!("Pulled"),
                json!("pod/web-1"),
                json!("spec.containers{app}"),
                json!("kubelet, node-1"),
                json!("Container image pulled"),
                json!("60m"),
                json!(4),
                json!("web-1.17d")
            ]
        );

        // New-style event: eventTime, series, reporting controller, no count.
        let ev = json!({
            "metadata": meta("x"), "involvedObject": {"kind": "Node"}, "type": "Warning", "reason": "R",
            "eventTime": "2024-06-01T11:59:00.000000Z", "reportingComponent": "kube-scheduler"
        });
        let cells = print_one("", "Event", ev.clone()).1;
        assert_eq!(cells[0], "60s");
        assert_eq!(cells[3], "node");
        assert_eq!(cells[5], "kube-scheduler");
        assert_eq!(cells[7], "60s");
        assert_eq!(cells[8], 1);
        let mut with_series = ev;
        with_series["series"] =
            json!({"count": 7, "lastObservedTime": "2024-06-01T11:59:50.000000Z"});
        let cells = print_one("", "Event", with_series).1;
        assert_eq!(cells[0], "10s");
        assert_eq!(cells[8], 7);

        let cells = print_one("", "Event", json!({"metadata": meta("y")})).1;
        assert_eq!(cells[0], "<unknown>");
    }

    #[test]
    fn events_k8s_io_event() {
        let ev = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": meta("e"),
            "regarding": {"kind": "Deployment", "name": "web"}, "note": "Scaled up", "reason": "ScalingReplicaSet",
            "type": "Normal", "reportingController": "deployment-controller", "reportingInstance": "cm-1",
            "deprecatedFirstTimestamp": ago(120), "deprecatedLastTimestamp": ago(30), "deprecatedCount": 2
        });
        let cells = print_one("events.k8s.io", "Event", ev).1;
        assert_eq!(
            cells,
            vec![
                json!("30s"),
                json!("Normal"),
                json!("ScalingReplicaSet"),
                json!("deployment/web"),
                json!(""),
                json!("deployment-controller, cm-1"),
                json!("Scaled up"),
                json!("2m"),
                json!(2),
                json!("e")
            ]
        );
    }
}
