//! Printers for core/v1 kinds other than pods, events and volumes: nodes, services,
//! endpoints, namespaces, configmaps, secrets, service accounts, replication
//! controllers, resource quotas and component statuses.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, NodeStatus, NodeSystemInfo, ReplicationControllerSpec,
    ReplicationControllerStatus, Secret, ServiceAccount, ServiceSpec,
};
use serde_json::Value;

use super::util::{
    age, arr, at, container_cells, doc, format_labels, i, join_host_port, map_len, name, obj,
    opt_i, opt_s, quantity, quantity_string, s,
};
use super::{columns, Column, ColumnsFn, Printer, Row, RowFn};

pub(crate) fn printer(group: &str, kind: &str) -> Option<Printer> {
    let (columns, row): (ColumnsFn, RowFn) = match (group, kind) {
        ("", "Node") => (node_columns, node_row),
        ("", "Service") => (service_columns, service_row),
        ("", "Endpoints") => (endpoints_columns, endpoints_row),
        ("", "Namespace") => (namespace_columns, namespace_row),
        ("", "ConfigMap") => (configmap_columns, configmap_row),
        ("", "Secret") => (secret_columns, secret_row),
        ("", "ServiceAccount") => (serviceaccount_columns, serviceaccount_row),
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
        Column::new(
            "Kernel-Version",
            "string",
            doc::<NodeSystemInfo>("kernelVersion")
        )
        .wide(),
        Column::new(
            "Container-Runtime",
            "string",
            doc::<NodeSystemInfo>("containerRuntimeVersion")
        )
        .wide(),
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
                let mut all: Vec<&str> = if lb.is_empty() {
                    Vec::new()
                } else {
                    lb.split(',').collect()
                };
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
        .or_else(|| {
            arr(svc, &["spec", "clusterIPs"])
                .first()
                .and_then(Value::as_str)
        })
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
    vec![
        Value::from(name(ep)),
        Value::from(format_endpoints(ep)),
        age(ep, now),
    ]
    .into()
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
    vec![
        Value::from(name(ns)),
        Value::from(s(ns, &["status", "phase"])),
        age(ns, now),
    ]
    .into()
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

// ---- replication controllers ----

fn rc_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new(
            "Desired",
            "integer",
            doc::<ReplicationControllerSpec>("replicas")
        ),
        Column::new(
            "Current",
            "integer",
            doc::<ReplicationControllerStatus>("replicas")
        ),
        Column::new(
            "Ready",
            "integer",
            doc::<ReplicationControllerStatus>("readyReplicas")
        ),
        Column::age(),
        Column::containers(),
        Column::images(),
        Column::new(
            "Selector",
            "string",
            doc::<ReplicationControllerSpec>("selector")
        )
        .wide(),
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
    let healthy = arr(cs, &["conditions"])
        .iter()
        .find(|c| s(c, &["type"]) == "Healthy");
    let (status, message, error) = match healthy {
        Some(c) => (
            if s(c, &["status"]) == "True" {
                "Healthy"
            } else {
                "Unhealthy"
            },
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
    use super::super::tests::{ago, labeled_column_names as names, meta_aged, print_one};
    use serde_json::{json, Value};

    fn meta(name: &str) -> Value {
        meta_aged(name, 600)
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
            [
                "Name",
                "Status",
                "Roles",
                "Age",
                "Version",
                "Internal-IP(1)",
                "External-IP(1)",
                "OS-Image(1)",
                "Kernel-Version(1)",
                "Container-Runtime(1)"
            ]
        );
        assert_eq!(
            cells,
            vec![
                json!("node-1"),
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,master,worker"),
                json!("10d"),
                json!("v1.32.0"),
                json!("192.168.1.10"),
                json!("<none>"),
                json!("Debian GNU/Linux 12 (bookworm)"),
                json!("6.1.0"),
                json!("containerd://1.6.20")
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
        assert_eq!(
            names(&t),
            [
                "Name",
                "Type",
                "Cluster-IP",
                "External-IP",
                "Port(s)",
                "Age",
                "Selector(1)"
            ]
        );
        assert_eq!(
            cells,
            vec![
                json!("web"),
                json!("NodePort"),
                json!("10.0.0.10"),
                json!("<none>"),
                json!("80:30080/TCP,53/UDP"),
                json!("10m"),
                json!("app=web,tier=fe")
            ]
        );

        let lb = |status: Value, external: Value| {
            print_one("", "Service", json!({"metadata": meta("lb"),
                "spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.11", "externalIPs": external, "ports": [{"port": 443, "protocol": "TCP"}]},
                "status": {"loadBalancer": status}})).1[3].clone()
        };
        assert_eq!(lb(json!({}), json!([])), "<pending>");
        assert_eq!(
            lb(
                json!({"ingress": [{"ip": "5.6.7.8"}, {"hostname": "a.example"}, {"ip": "1.2.3.4"}]}),
                json!([])
            ),
            "1.2.3.4,5.6.7.8,a.example"
        );
        assert_eq!(
            lb(json!({"ingress": [{"ip": "1.2.3.4"}]}), json!(["9.9.9.9"])),
            "1.2.3.4,9.9.9.9"
        );

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
        let ep = |subsets: Value| {
            print_one(
                "",
                "Endpoints",
                json!({"metadata": meta("web"), "subsets": subsets}),
            )
            .1
        };
        let (t, _) = print_one("", "Endpoints", json!({"metadata": meta("web")}));
        assert_eq!(names(&t), ["Name", "Endpoints", "Age"]);
        assert_eq!(ep(json!([]))[1], "<none>");
        assert_eq!(
            ep(
                json!([{"addresses": [{"ip": "10.1.2.3"}, {"ip": "10.1.2.4"}], "ports": [{"port": 80}]}])
            )[1],
            "10.1.2.3:80,10.1.2.4:80"
        );
        assert_eq!(
            ep(
                json!([{"addresses": [{"ip": "10.1.0.1"}, {"ip": "10.1.0.2"}, {"ip": "10.1.0.3"}],
                       "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}])
            )[1],
            "10.1.0.1:80,10.1.0.2:80,10.1.0.3:80 + 3 more..."
        );
        assert_eq!(
            ep(json!([{"addresses": [{"ip": "10.1.0.9"}]}]))[1],
            "10.1.0.9"
        );
    }

    #[test]
    fn namespace_configmap_secret_serviceaccount() {
        let (t, cells) = print_one(
            "",
            "Namespace",
            json!({"metadata": meta("kube-system"), "status": {"phase": "Active"}}),
        );
        assert_eq!(names(&t), ["Name", "Status", "Age"]);
        assert_eq!(
            cells,
            vec![json!("kube-system"), json!("Active"), json!("10m")]
        );

        let (t, cells) = print_one(
            "",
            "ConfigMap",
            json!({"metadata": meta("cm"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}),
        );
        assert_eq!(names(&t), ["Name", "Data", "Age"]);
        assert_eq!(cells, vec![json!("cm"), json!(3), json!("10m")]);

        let (t, cells) = print_one(
            "",
            "Secret",
            json!({"metadata": meta("s"), "type": "Opaque", "data": {"a": "MQ=="}}),
        );
        assert_eq!(names(&t), ["Name", "Type", "Data", "Age"]);
        assert_eq!(
            cells,
            vec![json!("s"), json!("Opaque"), json!(1), json!("10m")]
        );

        let (t, cells) = print_one("", "ServiceAccount", json!({"metadata": meta("default")}));
        assert_eq!(names(&t), ["Name", "Secrets", "Age"]);
        assert_eq!(cells, vec![json!("default"), json!(0), json!("10m")]);
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
        assert_eq!(
            names(&t),
            [
                "Name",
                "Desired",
                "Current",
                "Ready",
                "Age",
                "Containers(1)",
                "Images(1)",
                "Selector(1)"
            ]
        );
        assert_eq!(t["columnDefinitions"][1]["type"], "integer");
        assert_eq!(
            cells,
            vec![
                json!("rc"),
                json!(3),
                json!(3),
                json!(2),
                json!("10m"),
                json!("a,b"),
                json!("busybox,pause"),
                json!("app=web")
            ]
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
            vec![
                json!("q"),
                json!("pods: 3/10, requests.cpu: 500m/1"),
                json!("limits.cpu: 0/2, limits.memory: 1Gi/2Gi"),
                json!("10m")
            ]
        );
    }

    #[test]
    fn component_status() {
        let cs = json!({"metadata": {"name": "etcd-0"}, "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}]});
        let (t, cells) = print_one("", "ComponentStatus", cs);
        assert_eq!(names(&t), ["Name", "Status", "Message", "Error"]);
        assert_eq!(
            cells,
            vec![json!("etcd-0"), json!("Healthy"), json!("ok"), json!("")]
        );
    }
}
