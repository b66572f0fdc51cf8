//! Printers for core/v1 kinds other than pods: nodes, services, endpoints,
//! namespaces, configmaps, secrets, service accounts, events, persistent volumes and
//! claims, replication controllers, resource quotas and component statuses.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, NodeStatus, NodeSystemInfo, ObjectReference,
    PersistentVolumeClaimSpec, PersistentVolumeClaimStatus, PersistentVolumeSpec,
    PersistentVolumeStatus, ReplicationControllerSpec, ReplicationControllerStatus, Secret,
    ServiceAccount, ServiceSpec,
};
use serde_json::Value;

use super::util::{
    age, arr, at, container_cells, doc, format_labels, has_deletion_timestamp, i, join_host_port,
    map_len, name, obj, opt_i, opt_s, quantity, quantity_string, s,
};
use super::{columns, translate_timestamp_since, Column, Printer, Row};

pub(crate) fn printer(group: &str, kind: &str) -> Option<Printer> {
    let (columns, row): (fn() -> &'static [Column], fn(&Value, DateTime<Utc>) -> Row) =
        match (group, kind) {
            ("", "Node") => (node_columns, node_row),
            ("", "Service") => (service_columns, service_row),
            ("", "Endpoints") => (endpoints_columns, endpoints_row),
            ("", "Namespace") => (namespace_columns, namespace_row),
            ("", "ConfigMap") => (configmap_columns, configmap_row),
            ("", "Secret") => (secret_columns, secret_row),
            ("", "ServiceAccount") => (serviceaccount_columns, serviceaccount_row),
            ("", "Event") => (event_columns, core_event_row),
            ("events.k8s.io", "Event") => (event_columns, events_v1_event_row),
            ("", "PersistentVolume") => (pv_columns, pv_row),
            ("", "PersistentVolumeClaim") => (pvc_columns, pvc_row),
            ("", "ReplicationController") => (rc_columns, rc_row),
            ("", "ResourceQuota") => (quota_columns, quota_row),
            ("", "ComponentStatus") => (componentstatus_columns, componentstatus_row),
            _ => return None,
        };
    Some(Printer { columns, row })
}

fn none_if_empty(v: &str) -> Value {
    Value::from(if v.is_empty() { "<none>" } else { v })
}

fn unknown_if_empty(v: &str) -> Value {
    Value::from(if v.is_empty() { "<unknown>" } else { v })
}

// ---- nodes ----

fn node_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new("Status", "string", "The status of the node"),
        Column::new("Roles", "string", "The roles of the node"),
        Column::age(),
        Column::new("Version", "string", doc::<NodeSystemInfo>("kubeletVersion")),
        Column::new("Internal-IP", "string", doc::<NodeStatus>("addresses")).wide(),
        Column::new("External-IP", "string", doc::<NodeStatus>("addresses")).wide(),
        Column::new("OS-Image", "string", doc::<NodeSystemInfo>("osImage")).wide(),
        Column::new("Kernel-Version", "string", doc::<NodeSystemInfo>("kernelVersion")).wide(),
        Column::new("Container-Runtime", "string", doc::<NodeSystemInfo>("containerRuntimeVersion")).wide(),
    ]
}

/// `findNodeRoles`: `node-role.kubernetes.io/<role>` keys and `kubernetes.io/role=<role>`.
fn node_roles(node: &Value) -> String {
    let mut roles = BTreeSet::new();
    for (k, v) in obj(node, &["metadata", "labels"]).into_iter().flatten() {
        if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.insert(role.to_string());
            }
        } else if k == "kubernetes.io/role" {
            if let Some(role) = v.as_str().filter(|r| !r.is_empty()) {
                roles.insert(role.to_string());
            }
        }
    }
    roles.into_iter().collect::<Vec<_>>().join(",")
}

fn node_address(node: &Value, ty: &str) -> Value {
    let addr = arr(node, &["status", "addresses"])
        .iter()
        .find(|a| s(a, &["type"]) == ty)
        .map_or("<none>", |a| s(a, &["address"]));
    Value::from(addr)
}

fn node_row(node: &Value, now: DateTime<Utc>) -> Row {
    // Upstream keeps the last condition of each type; only Ready is printed.
    let ready = arr(node, &["status", "conditions"])
        .iter()
        .rev()
        .find(|c| s(c, &["type"]) == "Ready");
    let mut status = vec![match ready {
        Some(c) if s(c, &["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if at(node, &["spec", "unschedulable"]).and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled");
    }
    let info = |field: &str| s(node, &["status", "nodeInfo", field]);
    vec![
        Value::from(name(node)),
        Value::from(status.join(",")),
        none_if_empty(&node_roles(node)),
        age(node, now),
        Value::from(info("kubeletVersion")),
        node_address(node, "InternalIP"),
        node_address(node, "ExternalIP"),
        unknown_if_empty(info("osImage")),
        unknown_if_empty(info("kernelVersion")),
        unknown_if_empty(info("containerRuntimeVersion")),
    ]
    .into()
}

// ---- services ----

fn service_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new("Type", "string", doc::<ServiceSpec>("type")),
        Column::new("Cluster-IP", "string", doc::<ServiceSpec>("clusterIP")),
        Column::new("External-IP", "string", doc::<ServiceSpec>("externalIPs")),
        Column::new("Port(s)", "string", doc::<ServiceSpec>("ports")),
        Column::age(),
        Column::new("Selector", "string", doc::<ServiceSpec>("selector")).wide(),
    ]
}

/// `loadBalancerStatusStringer` in its wide form (the server always prints wide):
/// sorted, de-duplicated ingress IPs or hostnames.
pub(crate) fn load_balancer_ingress(status: Option<&Value>) -> String {
    let ingress = status.map_or(&[][..], |st| arr(st, &["ingress"]));
    let set: BTreeSet<&str> = ingress
        .iter()
        .filter_map(|ing| {
            let ip = s(ing, &["ip"]);
            let host = s(ing, &["hostname"]);
            if !ip.is_empty() {
                Some(ip)
            } else if !host.is_empty() {
                Some(host)
            } else {
                None
            }
        })
        .collect();
    set.into_iter().collect::<Vec<_>>().join(",")
}

fn service_external_ip(svc: &Value) -> String {
    let external_ips: Vec<&str> = arr(svc, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match s(svc, &["spec", "type"]) {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_ingress(at(svc, &["status", "loadBalancer"]));
            if !external_ips.is_empty() {
                let mut all: Vec<&str> = if lb.is_empty() { Vec::new() } else { lb.split(',').collect() };
                all.extend(external_ips);
                all.join(",")
            } else if !lb.is_empty() {
                lb
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => s(svc, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    }
}

fn service_ports(svc: &Value) -> String {
    let pieces: Vec<String> = arr(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            let port = i(p, &["port"]);
            let protocol = opt_s(p, &["protocol"]).unwrap_or("TCP");
            match i(p, &["nodePort"]) {
                node_port if node_port > 0 => format!("{port}:{node_port}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect();
    if pieces.is_empty() {
        "<none>".to_string()
    } else {
        pieces.join(",")
    }
}

fn service_row(svc: &Value, now: DateTime<Utc>) -> Row {
    // The v1 `clusterIP` is authoritative over `clusterIPs[0]` (upstream's v1 conversion).
    let cluster_ip = Some(s(svc, &["spec", "clusterIP"]))
        .filter(|ip| !ip.is_empty())
        .or_else(|| arr(svc, &["spec", "clusterIPs"]).first().and_then(Value::as_str))
        .filter(|ip| !ip.is_empty())
        .unwrap_or("<none>");
    vec![
        Value::from(name(svc)),
        Value::from(s(svc, &["spec", "type"])),
        Value::from(cluster_ip),
        Value::from(service_external_ip(svc)),
        Value::from(service_ports(svc)),
        age(svc, now),
        Value::from(format_labels(obj(svc, &["spec", "selector"]))),
    ]
    .into()
}

// ---- endpoints ----

fn endpoints_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new("Endpoints", "string", doc::<Endpoints>("subsets")),
        Column::age(),
    ]
}

/// `formatEndpoints` with all ports: up to 3 `ip:port` then `+ N more...`.
fn format_endpoints(ep: &Value) -> String {
    let subsets = arr(ep, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in subsets {
        let addresses = arr(ss, &["addresses"]);
        let ports = arr(ss, &["ports"]);
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            for addr in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(s(addr, &["ip"]).to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for addr in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(s(addr, &["ip"]), i(port, &["port"])));
            }
        }
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", count - MAX)
    } else {
        ret
    }
}

fn endpoints_row(ep: &Value, now: DateTime<Utc>) -> Row {
    vec![Value::from(name(ep)), Value::from(format_endpoints(ep)), age(ep, now)].into()
}

// ---- namespaces, configmaps, secrets, service accounts ----

fn namespace_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new("Status", "string", "The status of the namespace"),
        Column::age(),
    ]
}

fn namespace_row(ns: &Value, now: DateTime<Utc>) -> Row {
    vec![Value::from(name(ns)), Value::from(s(ns, &["status", "phase"])), age(ns, now)].into()
}

fn configmap_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new("Data", "string", doc::<ConfigMap>("data")),
        Column::age(),
    ]
}

fn configmap_row(cm: &Value, now: DateTime<Utc>) -> Row {
    let data = map_len(cm, &["data"]) + map_len(cm, &["binaryData"]);
    vec![Value::from(name(cm)), Value::from(data), age(cm, now)].into()
}

fn secret_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new("Type", "string", doc::<Secret>("type")),
        Column::new("Data", "string", doc::<Secret>("data")),
        Column::age(),
    ]
}

fn secret_row(secret: &Value, now: DateTime<Utc>) -> Row {
    vec![
        Value::from(name(secret)),
        Value::from(s(secret, &["type"])),
        Value::from(map_len(secret, &["data"])),
        age(secret, now),
    ]
    .into()
}

fn serviceaccount_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new("Secrets", "string", doc::<ServiceAccount>("secrets")),
        Column::age(),
    ]
}

fn serviceaccount_row(sa: &Value, now: DateTime<Utc>) -> Row {
    vec![
        Value::from(name(sa)),
        Value::from(arr(sa, &["secrets"]).len()),
        age(sa, now),
    ]
    .into()
}

// ---- events ----

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
        Column { priority: 1, ..Column::name() },
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
    let component = first_non_empty(ev.source.map_or("", |src| s(src, &["component"])), ev.reporting_controller);
    let instance = first_non_empty(ev.source.map_or("", |src| s(src, &["host"])), ev.reporting_instance);
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

// ---- persistent volumes and claims ----

fn pv_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new("Capacity", "string", doc::<PersistentVolumeSpec>("capacity")),
        Column::new("Access Modes", "string", doc::<PersistentVolumeSpec>("accessModes")),
        Column::new("Reclaim Policy", "string", doc::<PersistentVolumeSpec>("persistentVolumeReclaimPolicy")),
        Column::new("Status", "string", doc::<PersistentVolumeStatus>("phase")),
        Column::new("Claim", "string", doc::<PersistentVolumeSpec>("claimRef")),
        Column::new("StorageClass", "string", "StorageClass of the pv"),
        Column::new("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
        Column::new("Reason", "string", doc::<PersistentVolumeStatus>("reason")),
        Column::age(),
        Column::new("VolumeMode", "string", doc::<PersistentVolumeSpec>("volumeMode")).wide(),
    ]
}

/// `helper.GetAccessModesAsString`: RWO, ROX, RWX, RWOP in that order.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The storage class: the beta annotation wins over `spec.storageClassName`.
fn storage_class(v: &Value) -> &str {
    opt_s(v, &["metadata", "annotations", "volume.beta.kubernetes.io/storage-class"])
        .unwrap_or_else(|| s(v, &["spec", "storageClassName"]))
}

fn pv_row(pv: &Value, now: DateTime<Utc>) -> Row {
    let claim = match at(pv, &["spec", "claimRef"]).filter(|c| c.is_object()) {
        Some(c) => format!("{}/{}", s(c, &["namespace"]), s(c, &["name"])),
        None => String::new(),
    };
    let phase = if has_deletion_timestamp(pv) { "Terminating" } else { s(pv, &["status", "phase"]) };
    vec![
        Value::from(name(pv)),
        Value::from(quantity(pv, &["spec", "capacity", "storage"])),
        Value::from(access_modes(arr(pv, &["spec", "accessModes"]))),
        Value::from(s(pv, &["spec", "persistentVolumeReclaimPolicy"])),
        Value::from(phase),
        Value::from(claim),
        Value::from(storage_class(pv)),
        Value::from(opt_s(pv, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
        Value::from(s(pv, &["status", "reason"])),
        age(pv, now),
        Value::from(opt_s(pv, &["spec", "volumeMode"]).unwrap_or("<unset>")),
    ]
    .into()
}

fn pvc_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new("Status", "string", doc::<PersistentVolumeClaimStatus>("phase")),
        Column::new("Volume", "string", doc::<PersistentVolumeClaimSpec>("volumeName")),
        Column::new("Capacity", "string", doc::<PersistentVolumeClaimStatus>("capacity")),
        Column::new("Access Modes", "string", doc::<PersistentVolumeClaimStatus>("accessModes")),
        Column::new("StorageClass", "string", "StorageClass of the pvc"),
        Column::new("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
        Column::age(),
        Column::new("VolumeMode", "string", doc::<PersistentVolumeClaimSpec>("volumeMode")).wide(),
    ]
}

fn pvc_row(pvc: &Value, now: DateTime<Utc>) -> Row {
    let phase = if has_deletion_timestamp(pvc) { "Terminating" } else { s(pvc, &["status", "phase"]) };
    let volume = s(pvc, &["spec", "volumeName"]);
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(pvc, &["status", "capacity", "storage"]),
            access_modes(arr(pvc, &["status", "accessModes"])),
        )
    };
    vec![
        Value::from(name(pvc)),
        Value::from(phase),
        Value::from(volume),
        Value::from(capacity),
        Value::from(modes),
        Value::from(storage_class(pvc)),
        Value::from(opt_s(pvc, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
        age(pvc, now),
        Value::from(opt_s(pvc, &["spec", "volumeMode"]).unwrap_or("<unset>")),
    ]
    .into()
}

// ---- replication controllers ----

fn rc_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new("Desired", "integer", doc::<ReplicationControllerSpec>("replicas")),
        Column::new("Current", "integer", doc::<ReplicationControllerStatus>("replicas")),
        Column::new("Ready", "integer", doc::<ReplicationControllerStatus>("readyReplicas")),
        Column::age(),
        Column::containers(),
        Column::images(),
        Column::new("Selector", "string", doc::<ReplicationControllerSpec>("selector")).wide(),
    ]
}

fn rc_row(rc: &Value, now: DateTime<Utc>) -> Row {
    let (names, images) = container_cells(at(rc, &["spec", "template", "spec"]));
    vec![
        Value::from(name(rc)),
        // `spec.replicas` defaults to 1.
        Value::from(opt_i(rc, &["spec", "replicas"]).unwrap_or(1)),
        Value::from(i(rc, &["status", "replicas"])),
        Value::from(i(rc, &["status", "readyReplicas"])),
        age(rc, now),
        names,
        images,
        Value::from(format_labels(obj(rc, &["spec", "selector"]))),
    ]
    .into()
}

// ---- resource quotas ----

fn quota_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new(
            "Request",
            "string",
            "Request represents a minimum amount of cpu/memory that a container may consume."
        ),
        Column::new(
            "Limit",
            "string",
            "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."
        ),
        Column::age(),
    ]
}

fn quota_row(quota: &Value, now: DateTime<Utc>) -> Row {
    let mut requests = Vec::new();
    let mut limits = Vec::new();
    // serde_json maps iterate in insertion order; upstream sorts resource names.
    let mut resources: Vec<(&String, &Value)> = obj(quota, &["status", "hard"])
        .into_iter()
        .flatten()
        .collect();
    resources.sort_by(|a, b| a.0.cmp(b.0));
    for (resource, hard) in resources {
        let used = quantity(quota, &["status", "used", resource]);
        let entry = format!("{resource}: {used}/{}", quantity_string(hard));
        if resource.split('.').next() == Some("limits") && resource.contains('.') {
            limits.push(entry);
        } else {
            requests.push(entry);
        }
    }
    vec![
        Value::from(name(quota)),
        Value::from(requests.join(", ")),
        Value::from(limits.join(", ")),
        age(quota, now),
    ]
    .into()
}

// ---- component statuses ----

fn componentstatus_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new("Status", "string", "Status of the component conditions"),
        Column::new("Message", "string", "Message of the component conditions"),
        Column::new("Error", "string", "Error of the component conditions"),
    ]
}

fn componentstatus_row(cs: &Value, _now: DateTime<Utc>) -> Row {
    let healthy = arr(cs, &["conditions"]).iter().find(|c| s(c, &["type"]) == "Healthy");
    let (status, message, error) = match healthy {
        Some(c) => (
            if s(c, &["status"]) == "True" { "Healthy" } else { "Unhealthy" },
            s(c, &["message"]),
            s(c, &["error"]),
        ),
        None => ("Unknown", "", ""),
    };
    vec![
        Value::from(name(cs)),
        Value::from(status),
        Value::from(message),
        Value::from(error),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ago, column_names, print_one};
    use serde_json::{json, Value};

    fn names(t: &Value) -> Vec<String> {
        column_names(t)
            .into_iter()
            .map(|(n, p)| if p == 1 { format!("{n}(1)") } else { n })
            .collect()
    }

    fn meta(name: &str) -> Value {
        json!({"name": name, "namespace": "default", "creationTimestamp": ago(600)})
    }

    #[test]
    fn node() {
        let n = json!({
            "metadata": {"name": "node-1", "creationTimestamp": ago(86400 * 10),
                "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/worker": "",
                           "kubernetes.io/role": "master", "node-role.kubernetes.io/": "x"}},
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "node-1"}],
                "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                             "kernelVersion": "6.1.0", "containerRuntimeVersion": "containerd://1.6.20"}
            }
        });
        let (t, cells) = print_one("", "Node", n);
        assert_eq!(
            names(&t),
            ["Name", "Status", "Roles", "Age", "Version", "Internal-IP(1)", "External-IP(1)",
             "OS-Image(1)", "Kernel-Version(1)", "Container-Runtime(1)"]
        );
        assert_eq!(
            cells,
            vec![
                json!("node-1"), json!("Ready,SchedulingDisabled"), json!("control-plane,master,worker"),
                json!("10d"), json!("v1.32.0"), json!("192.168.1.10"), json!("<none>"),
                json!("Debian GNU/Linux 12 (bookworm)"), json!("6.1.0"), json!("containerd://1.6.20")
            ]
        );

        let bare = json!({"metadata": {"name": "n2"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        let cells = print_one("", "Node", bare).1;
        assert_eq!(cells[1], "NotReady");
        assert_eq!(cells[2], "<none>");
        assert_eq!(cells[3], "<unknown>");
        assert_eq!(cells[7], "<unknown>");
        let cells = print_one("", "Node", json!({"metadata": {"name": "n3"}})).1;
        assert_eq!(cells[1], "Unknown");
    }

    #[test]
    fn service() {
        let svc = json!({
            "metadata": meta("web"),
            "spec": {"type": "NodePort", "clusterIP": "10.0.0.10", "clusterIPs": ["10.0.0.10"],
                     "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
                     "selector": {"app": "web", "tier": "fe"}}
        });
        let (t, cells) = print_one("", "Service", svc);
        assert_eq!(names(&t), ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector(1)"]);
        assert_eq!(
            cells,
            vec![json!("web"), json!("NodePort"), json!("10.0.0.10"), json!("<none>"),
                 json!("80:30080/TCP,53/UDP"), json!("10m"), json!("app=web,tier=fe")]
        );

        let lb = |status: Value, external: Value| {
            print_one("", "Service", json!({"metadata": meta("lb"),
                "spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.11", "externalIPs": external, "ports": [{"port": 443, "protocol": "TCP"}]},
                "status": {"loadBalancer": status}})).1[3].clone()
        };
        assert_eq!(lb(json!({}), json!([])), "<pending>");
        assert_eq!(lb(json!({"ingress": [{"ip": "5.6.7.8"}, {"hostname": "a.example"}, {"ip": "1.2.3.4"}]}), json!([])),
                   "1.2.3.4,5.6.7.8,a.example");
        assert_eq!(lb(json!({"ingress": [{"ip": "1.2.3.4"}]}), json!(["9.9.9.9"])), "1.2.3.4,9.9.9.9");

        let headless = json!({"metadata": meta("h"), "spec": {"type": "ClusterIP", "clusterIP": "None", "externalIPs": ["1.1.1.1"]}});
        let cells = print_one("", "Service", headless).1;
        assert_eq!(cells[2], "None");
        assert_eq!(cells[3], "1.1.1.1");
        assert_eq!(cells[4], "<none>");
        assert_eq!(cells[6], "<none>");

        let ext = json!({"metadata": meta("e"), "spec": {"type": "ExternalName", "externalName": "db.example.com"}});
        let cells = print_one("", "Service", ext).1;
        assert_eq!(cells[2], "<none>");
        assert_eq!(cells[3], "db.example.com");
    }

    #[test]
    fn endpoints() {
        let ep = |subsets: Value| print_one("", "Endpoints", json!({"metadata": meta("web"), "subsets": subsets})).1;
        let (t, _) = print_one("", "Endpoints", json!({"metadata": meta("web")}));
        assert_eq!(names(&t), ["Name", "Endpoints", "Age"]);
        assert_eq!(ep(json!([]))[1], "<none>");
        assert_eq!(
            ep(json!([{"addresses": [{"ip": "10.1.2.3"}, {"ip": "10.1.2.4"}], "ports": [{"port": 80}]}]))[1],
            "10.1.2.3:80,10.1.2.4:80"
        );
        assert_eq!(
            ep(json!([{"addresses": [{"ip": "10.1.0.1"}, {"ip": "10.1.0.2"}, {"ip": "10.1.0.3"}],
                       "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}]))[1],
            "10.1.0.1:80,10.1.0.2:80,10.1.0.3:80 + 3 more..."
        );
        assert_eq!(ep(json!([{"addresses": [{"ip": "10.1.0.9"}]}]))[1], "10.1.0.9");
    }

    #[test]
    fn namespace_configmap_secret_serviceaccount() {
        let (t, cells) = print_one("", "Namespace", json!({"metadata": meta("kube-system"), "status": {"phase": "Active"}}));
        assert_eq!(names(&t), ["Name", "Status", "Age"]);
        assert_eq!(cells, vec![json!("kube-system"), json!("Active"), json!("10m")]);

        let (t, cells) = print_one("", "ConfigMap", json!({"metadata": meta("cm"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}));
        assert_eq!(names(&t), ["Name", "Data", "Age"]);
        assert_eq!(cells, vec![json!("cm"), json!(3), json!("10m")]);

        let (t, cells) = print_one("", "Secret", json!({"metadata": meta("s"), "type": "Opaque", "data": {"a": "MQ=="}}));
        assert_eq!(names(&t), ["Name", "Type", "Data", "Age"]);
        assert_eq!(cells, vec![json!("s"), json!("Opaque"), json!(1), json!("10m")]);

        let (t, cells) = print_one("", "ServiceAccount", json!({"metadata": meta("default")}));
        assert_eq!(names(&t), ["Name", "Secrets", "Age"]);
        assert_eq!(cells, vec![json!("default"), json!(0), json!("10m")]);
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
            ["Last Seen", "Type", "Reason", "Object", "Subobject(1)", "Source(1)", "Message",
             "First Seen(1)", "Count(1)", "Name(1)"]
        );
        assert_eq!(t["columnDefinitions"][9]["format"], "name");
        assert_eq!(
            cells,
            vec![json!("65s"), json!("Normal"), json!("Pulled"), json!("pod/web-1"), json!("spec.containers{app}"),
                 json!("kubelet, node-1"), json!("Container image pulled"), json!("60m"), json!(4), json!("web-1.17d")]
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
        with_series["series"] = json!({"count": 7, "lastObservedTime": "2024-06-01T11:59:50.000000Z"});
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
            vec![json!("30s"), json!("Normal"), json!("ScalingReplicaSet"), json!("deployment/web"), json!(""),
                 json!("deployment-controller, cm-1"), json!("Scaled up"), json!("2m"), json!(2), json!("e")]
        );
    }

    #[test]
    fn persistent_volumes_and_claims() {
        let pv = json!({
            "metadata": meta("pv-1"),
            "spec": {"capacity": {"storage": "1024Mi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Retain", "claimRef": {"namespace": "default", "name": "data"},
                     "storageClassName": "local", "volumeMode": "Filesystem"},
            "status": {"phase": "Bound"}
        });
        let (t, cells) = print_one("", "PersistentVolume", pv);
        assert_eq!(
            names(&t),
            ["Name", "Capacity", "Access Modes", "Reclaim Policy", "Status", "Claim", "StorageClass",
             "VolumeAttributesClass", "Reason", "Age", "VolumeMode(1)"]
        );
        assert_eq!(
            cells,
            vec![json!("pv-1"), json!("1Gi"), json!("RWO,RWX"), json!("Retain"), json!("Bound"), json!("default/data"),
                 json!("local"), json!("<unset>"), json!(""), json!("10m"), json!("Filesystem")]
        );

        let pvc = json!({
            "metadata": {"name": "data", "creationTimestamp": ago(600), "deletionTimestamp": ago(1),
                         "annotations": {"volume.beta.kubernetes.io/storage-class": "beta"}},
            "spec": {"volumeName": "pv-1", "storageClassName": "local", "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Bound", "capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteOnce"]}
        });
        let (t, cells) = print_one("", "PersistentVolumeClaim", pvc);
        assert_eq!(
            names(&t),
            ["Name", "Status", "Volume", "Capacity", "Access Modes", "StorageClass", "VolumeAttributesClass", "Age", "VolumeMode(1)"]
        );
        assert_eq!(
            cells,
            vec![json!("data"), json!("Terminating"), json!("pv-1"), json!("2Gi"), json!("RWO"), json!("beta"),
                 json!("<unset>"), json!("10m"), json!("<unset>")]
        );
        let pending = json!({"metadata": meta("p"), "spec": {}, "status": {"phase": "Pending"}});
        let cells = print_one("", "PersistentVolumeClaim", pending).1;
        assert_eq!(cells[2..5], [json!(""), json!(""), json!("")]);
    }

    #[test]
    fn replication_controller() {
        let rc = json!({
            "metadata": meta("rc"),
            "spec": {"replicas": 3, "selector": {"app": "web"},
                     "template": {"spec": {"containers": [{"name": "a", "image": "busybox"}, {"name": "b", "image": "pause"}]}}},
            "status": {"replicas": 3, "readyReplicas": 2}
        });
        let (t, cells) = print_one("", "ReplicationController", rc);
        assert_eq!(names(&t), ["Name", "Desired", "Current", "Ready", "Age", "Containers(1)", "Images(1)", "Selector(1)"]);
        assert_eq!(t["columnDefinitions"][1]["type"], "integer");
        assert_eq!(
            cells,
            vec![json!("rc"), json!(3), json!(3), json!(2), json!("10m"), json!("a,b"), json!("busybox,pause"), json!("app=web")]
        );
    }

    #[test]
    fn resource_quota() {
        let q = json!({
            "metadata": meta("q"),
            "status": {"hard": {"pods": "10", "limits.memory": "2Gi", "requests.cpu": "1", "limits.cpu": "2"},
                       "used": {"pods": "3", "requests.cpu": "500m", "limits.memory": "1024Mi"}}
        });
        let (t, cells) = print_one("", "ResourceQuota", q);
        assert_eq!(names(&t), ["Name", "Request", "Limit", "Age"]);
        assert_eq!(
            cells,
            vec![json!("q"), json!("pods: 3/10, requests.cpu: 500m/1"), json!("limits.cpu: 0/2, limits.memory: 1Gi/2Gi"), json!("10m")]
        );
    }

    #[test]
    fn component_status() {
        let cs = json!({"metadata": {"name": "etcd-0"}, "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}]});
        let (t, cells) = print_one("", "ComponentStatus", cs);
        assert_eq!(names(&t), ["Name", "Status", "Message", "Error"]);
        assert_eq!(cells, vec![json!("etcd-0"), json!("Healthy"), json!("ok"), json!("")]);
    }
}
