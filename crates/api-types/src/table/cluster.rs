//! Printers for networking, coordination, RBAC, storage, certificates and scheduling
//! kinds: leases, endpoint slices, ingresses, ingress classes, network policies,
//! (cluster) role bindings, storage classes, CSRs and priority classes.

use chrono::{DateTime, Utc};
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequestSpec, CertificateSigningRequestStatus,
};
use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicySpec;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::api::storage::v1::StorageClass;
use serde_json::Value;

use super::corev1::load_balancer_ingress;
use super::util::{
    age, arr, at, doc, format_label_selector, list_with_more, name, opt_b, opt_i, opt_s, s,
};
use super::{columns, human_duration, Column, ColumnsFn, Printer, Row, RowFn};

pub(crate) fn printer(group: &str, kind: &str) -> Option<Printer> {
    let (columns, row): (ColumnsFn, RowFn) = match (group, kind) {
        ("coordination.k8s.io", "Lease") => (lease_columns, lease_row),
        ("discovery.k8s.io", "EndpointSlice") => (endpointslice_columns, endpointslice_row),
        ("networking.k8s.io", "Ingress") => (ingress_columns, ingress_row),
        ("networking.k8s.io", "IngressClass") => (ingressclass_columns, ingressclass_row),
        ("networking.k8s.io", "NetworkPolicy") => (networkpolicy_columns, networkpolicy_row),
        ("rbac.authorization.k8s.io", "RoleBinding") => (rolebinding_columns, binding_row),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            (clusterrolebinding_columns, binding_row)
        }
        ("storage.k8s.io", "StorageClass") => (storageclass_columns, storageclass_row),
        ("certificates.k8s.io", "CertificateSigningRequest") => (csr_columns, csr_row),
        ("scheduling.k8s.io", "PriorityClass") => (priorityclass_columns, priorityclass_row),
        _ => return None,
    };
    Some(Printer { columns, row })
}

// ---- leases ----

fn lease_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new("Holder", "string", doc::<LeaseSpec>("holderIdentity")),
        Column::age(),
    ]
}

fn lease_row(lease: &Value, now: DateTime<Utc>) -> Row {
    vec![
        Value::from(name(lease)),
        Value::from(s(lease, &["spec", "holderIdentity"])),
        age(lease, now),
    ]
    .into()
}

// ---- endpoint slices ----

fn endpointslice_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new("AddressType", "string", doc::<EndpointSlice>("addressType")),
        Column::new("Ports", "string", doc::<EndpointSlice>("ports")),
        Column::new("Endpoints", "string", doc::<EndpointSlice>("endpoints")),
        Column::age(),
    ]
}

const LIST_MAX: usize = 3;

/// `formatDiscoveryPorts`: port numbers (or names, or `*`), at most 3.
fn discovery_ports(slice: &Value) -> String {
    let ports = arr(slice, &["ports"]);
    let list: Vec<String> = ports
        .iter()
        .take(LIST_MAX)
        .map(|p| match (opt_i(p, &["port"]), opt_s(p, &["name"])) {
            (Some(port), _) => port.to_string(),
            (None, Some(port_name)) => port_name.to_string(),
            (None, None) => "*".to_string(),
        })
        .collect();
    list_with_more(&list, ports.len() > LIST_MAX, ports.len(), LIST_MAX)
}

/// `formatDiscoveryEndpoints`: endpoint addresses, at most 3.
fn discovery_endpoints(slice: &Value) -> String {
    let addresses: Vec<&str> = arr(slice, &["endpoints"])
        .iter()
        .flat_map(|ep| arr(ep, &["addresses"]).iter().filter_map(Value::as_str))
        .collect();
    let list: Vec<String> = addresses
        .iter()
        .take(LIST_MAX)
        .map(|a| a.to_string())
        .collect();
    list_with_more(&list, addresses.len() > LIST_MAX, addresses.len(), LIST_MAX)
}

fn endpointslice_row(slice: &Value, now: DateTime<Utc>) -> Row {
    vec![
        Value::from(name(slice)),
        Value::from(s(slice, &["addressType"])),
        Value::from(discovery_ports(slice)),
        Value::from(discovery_endpoints(slice)),
        age(slice, now),
    ]
    .into()
}

// ---- ingresses ----

fn ingress_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new(
            "Class",
            "string",
            "The name of the IngressClass resource that should be used for additional configuration"
        ),
        Column::new("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule"),
        Column::new("Address", "string", "Address is a list containing ingress points for the load-balancer"),
        Column::new("Ports", "string", "Ports of TLS configurations that open"),
        Column::age(),
    ]
}

/// `formatHosts`: up to 3 rule hosts, `*` when none.
fn ingress_hosts(ing: &Value) -> String {
    let rules = arr(ing, &["spec", "rules"]);
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == LIST_MAX {
            more = true;
        }
        let host = s(rule, &["host"]);
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".to_string();
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", rules.len() - LIST_MAX)
    } else {
        ret
    }
}

fn ingress_row(ing: &Value, now: DateTime<Utc>) -> Row {
    let ports = if arr(ing, &["spec", "tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        Value::from(name(ing)),
        Value::from(opt_s(ing, &["spec", "ingressClassName"]).unwrap_or("<none>")),
        Value::from(ingress_hosts(ing)),
        Value::from(load_balancer_ingress(at(ing, &["status", "loadBalancer"]))),
        Value::from(ports),
        age(ing, now),
    ]
    .into()
}

fn ingressclass_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new(
            "Controller",
            "string",
            "Controller that is responsible for handling this class"
        ),
        Column::new(
            "Parameters",
            "string",
            "A reference to a resource with additional parameters"
        ),
        Column::age(),
    ]
}

fn ingressclass_row(class: &Value, now: DateTime<Utc>) -> Row {
    let parameters = match at(class, &["spec", "parameters"]).filter(|p| p.is_object()) {
        None => "<none>".to_string(),
        Some(p) => {
            let mut kind = s(p, &["kind"]).to_string();
            if let Some(group) = opt_s(p, &["apiGroup"]) {
                kind = format!("{kind}.{group}");
            }
            format!("{kind}/{}", s(p, &["name"]))
        }
    };
    vec![
        Value::from(name(class)),
        Value::from(s(class, &["spec", "controller"])),
        Value::from(parameters),
        age(class, now),
    ]
    .into()
}

fn networkpolicy_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new(
            "Pod-Selector",
            "string",
            doc::<NetworkPolicySpec>("podSelector")
        ),
        Column::age(),
    ]
}

fn networkpolicy_row(np: &Value, now: DateTime<Utc>) -> Row {
    // `podSelector` is a struct, not a pointer, upstream: absent means empty (`<none>`).
    let selector = at(np, &["spec", "podSelector"])
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}));
    vec![
        Value::from(name(np)),
        Value::from(format_label_selector(Some(&selector))),
        age(np, now),
    ]
    .into()
}

// ---- RBAC bindings ----

fn rolebinding_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new("Role", "string", doc::<RoleBinding>("roleRef")),
        Column::age(),
        Column::new("Users", "string", "Users in the roleBinding").wide(),
        Column::new("Groups", "string", "Groups in the roleBinding").wide(),
        Column::new(
            "ServiceAccounts",
            "string",
            "ServiceAccounts in the roleBinding"
        )
        .wide(),
    ]
}

fn clusterrolebinding_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new("Role", "string", doc::<ClusterRoleBinding>("roleRef")),
        Column::age(),
        Column::new("Users", "string", "Users in the clusterRoleBinding").wide(),
        Column::new("Groups", "string", "Groups in the clusterRoleBinding").wide(),
        Column::new(
            "ServiceAccounts",
            "string",
            "ServiceAccounts in the clusterRoleBinding"
        )
        .wide(),
    ]
}

fn binding_row(binding: &Value, now: DateTime<Utc>) -> Row {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut service_accounts = Vec::new();
    for subject in arr(binding, &["subjects"]) {
        let subject_name = s(subject, &["name"]);
        match s(subject, &["kind"]) {
            "ServiceAccount" => {
                service_accounts.push(format!("{}/{subject_name}", s(subject, &["namespace"])))
            }
            "User" => users.push(subject_name.to_string()),
            "Group" => groups.push(subject_name.to_string()),
            _ => {}
        }
    }
    vec![
        Value::from(name(binding)),
        Value::from(format!(
            "{}/{}",
            s(binding, &["roleRef", "kind"]),
            s(binding, &["roleRef", "name"])
        )),
        age(binding, now),
        Value::from(users.join(", ")),
        Value::from(groups.join(", ")),
        Value::from(service_accounts.join(", ")),
    ]
    .into()
}

// ---- storage classes ----

fn storageclass_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new("Provisioner", "string", doc::<StorageClass>("provisioner")),
        Column::new(
            "ReclaimPolicy",
            "string",
            doc::<StorageClass>("reclaimPolicy")
        ),
        Column::new(
            "VolumeBindingMode",
            "string",
            doc::<StorageClass>("volumeBindingMode")
        ),
        Column::new(
            "AllowVolumeExpansion",
            "string",
            doc::<StorageClass>("allowVolumeExpansion")
        ),
        Column::age(),
    ]
}

fn storageclass_row(sc: &Value, now: DateTime<Utc>) -> Row {
    let is_default = [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|a| opt_s(sc, &["metadata", "annotations", a]) == Some("true"));
    let mut display_name = name(sc).to_string();
    if is_default {
        display_name.push_str(" (default)");
    }
    vec![
        Value::from(display_name),
        Value::from(s(sc, &["provisioner"])),
        Value::from(opt_s(sc, &["reclaimPolicy"]).unwrap_or("Delete")),
        Value::from(opt_s(sc, &["volumeBindingMode"]).unwrap_or("Immediate")),
        Value::from(opt_b(sc, &["allowVolumeExpansion"]).unwrap_or(false)),
        age(sc, now),
    ]
    .into()
}

// ---- certificate signing requests ----

fn csr_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::age(),
        Column::new(
            "SignerName",
            "string",
            doc::<CertificateSigningRequestSpec>("signerName")
        ),
        Column::new(
            "Requestor",
            "string",
            doc::<CertificateSigningRequestSpec>("request")
        ),
        Column::new(
            "RequestedDuration",
            "string",
            doc::<CertificateSigningRequestSpec>("expirationSeconds")
        ),
        Column::new(
            "Condition",
            "string",
            doc::<CertificateSigningRequestStatus>("conditions")
        ),
    ]
}

/// `extractCSRStatus`: Denied > Approved > Pending, then `,Failed` and `,Issued`.
fn csr_status(csr: &Value) -> String {
    let has = |ty: &str| {
        arr(csr, &["status", "conditions"])
            .iter()
            .any(|c| s(c, &["type"]) == ty)
    };
    let mut status = if has("Denied") {
        "Denied"
    } else if has("Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_string();
    if has("Failed") {
        status.push_str(",Failed");
    }
    if !s(csr, &["status", "certificate"]).is_empty() {
        status.push_str(",Issued");
    }
    status
}

fn csr_row(csr: &Value, now: DateTime<Utc>) -> Row {
    let signer = Some(s(csr, &["spec", "signerName"]))
        .filter(|v| !v.is_empty())
        .unwrap_or("<none>");
    let duration = opt_i(csr, &["spec", "expirationSeconds"]).map_or_else(
        || "<none>".to_string(),
        |secs| human_duration(chrono::Duration::seconds(secs)),
    );
    vec![
        Value::from(name(csr)),
        age(csr, now),
        Value::from(signer),
        Value::from(s(csr, &["spec", "username"])),
        Value::from(duration),
        Value::from(csr_status(csr)),
    ]
    .into()
}

// ---- priority classes ----

fn priorityclass_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new("Value", "integer", doc::<PriorityClass>("value")),
        Column::new(
            "Global-Default",
            "boolean",
            doc::<PriorityClass>("globalDefault")
        ),
        Column::age(),
        Column::new(
            "PreemptionPolicy",
            "string",
            doc::<PriorityClass>("preemptionPolicy")
        ),
    ]
}

fn priorityclass_row(pc: &Value, now: DateTime<Utc>) -> Row {
    vec![
        Value::from(name(pc)),
        Value::from(opt_i(pc, &["value"]).unwrap_or(0)),
        Value::from(opt_b(pc, &["globalDefault"]).unwrap_or(false)),
        age(pc, now),
        Value::from(s(pc, &["preemptionPolicy"])),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ago, labeled_column_names as names, meta_aged, print_one};
    use serde_json::{json, Value};

    fn meta(name: &str) -> Value {
        meta_aged(name, 7200)
    }

    #[test]
    fn lease() {
        let lease = json!({"metadata": meta("node-1"), "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40}});
        let (t, cells) = print_one("coordination.k8s.io", "Lease", lease);
        assert_eq!(names(&t), ["Name", "Holder", "Age"]);
        assert_eq!(cells, vec![json!("node-1"), json!("node-1"), json!("120m")]);
        assert_eq!(
            print_one(
                "coordination.k8s.io",
                "Lease",
                json!({"metadata": meta("x")})
            )
            .1[1],
            ""
        );
    }

    #[test]
    fn endpoint_slice() {
        let slice = json!({
            "metadata": meta("web-abc"), "addressType": "IPv4",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "metrics"}, {}, {"port": 9}],
            "endpoints": [{"addresses": ["10.1.0.1"]}, {"addresses": ["10.1.0.2", "10.1.0.3"]}, {"addresses": ["10.1.0.4"]}]
        });
        let (t, cells) = print_one("discovery.k8s.io", "EndpointSlice", slice);
        assert_eq!(
            names(&t),
            ["Name", "AddressType", "Ports", "Endpoints", "Age"]
        );
        assert_eq!(
            cells,
            vec![
                json!("web-abc"),
                json!("IPv4"),
                json!("80,metrics,* + 1 more..."),
                json!("10.1.0.1,10.1.0.2,10.1.0.3 + 1 more..."),
                json!("120m")
            ]
        );
        let empty = json!({"metadata": meta("e"), "addressType": "IPv4"});
        let cells = print_one("discovery.k8s.io", "EndpointSlice", empty).1;
        assert_eq!(cells[2..4], [json!("<unset>"), json!("<unset>")]);
    }

    #[test]
    fn ingress_and_class() {
        let ing = json!({
            "metadata": meta("web"),
            "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["a.example"]}],
                     "rules": [{"host": "a.example"}, {"host": "b.example"}, {}, {"host": "c.example"}, {"host": "d.example"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.50"}]}}
        });
        let (t, cells) = print_one("networking.k8s.io", "Ingress", ing);
        assert_eq!(
            names(&t),
            ["Name", "Class", "Hosts", "Address", "Ports", "Age"]
        );
        assert_eq!(
            cells,
            vec![
                json!("web"),
                json!("nginx"),
                json!("a.example,b.example,c.example + 2 more..."),
                json!("192.168.1.50"),
                json!("80, 443"),
                json!("120m")
            ]
        );
        let bare = json!({"metadata": meta("x"), "spec": {"rules": [{}]}});
        let cells = print_one("networking.k8s.io", "Ingress", bare).1;
        assert_eq!(
            cells[1..5],
            [json!("<none>"), json!("*"), json!(""), json!("80")]
        );

        let class = json!({"metadata": meta("nginx"), "spec": {"controller": "k8s.io/ingress-nginx",
            "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "p"}}});
        let (t, cells) = print_one("networking.k8s.io", "IngressClass", class);
        assert_eq!(names(&t), ["Name", "Controller", "Parameters", "Age"]);
        assert_eq!(
            cells,
            vec![
                json!("nginx"),
                json!("k8s.io/ingress-nginx"),
                json!("IngressParameters.k8s.example.com/p"),
                json!("120m")
            ]
        );
    }

    #[test]
    fn network_policy() {
        let np = json!({"metadata": meta("deny"), "spec": {"podSelector": {"matchLabels": {"role": "db"}}}});
        let (t, cells) = print_one("networking.k8s.io", "NetworkPolicy", np);
        assert_eq!(names(&t), ["Name", "Pod-Selector", "Age"]);
        assert_eq!(cells, vec![json!("deny"), json!("role=db"), json!("120m")]);
        let all = json!({"metadata": meta("all"), "spec": {"podSelector": {}}});
        assert_eq!(
            print_one("networking.k8s.io", "NetworkPolicy", all).1[1],
            "<none>"
        );
    }

    #[test]
    fn role_bindings() {
        let rb = json!({
            "metadata": meta("read"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [
                {"kind": "User", "name": "alice"}, {"kind": "User", "name": "bob"},
                {"kind": "Group", "name": "devs"},
                {"kind": "ServiceAccount", "name": "default", "namespace": "kube-system"}
            ]
        });
        let (t, cells) = print_one("rbac.authorization.k8s.io", "RoleBinding", rb.clone());
        assert_eq!(
            names(&t),
            [
                "Name",
                "Role",
                "Age",
                "Users(1)",
                "Groups(1)",
                "ServiceAccounts(1)"
            ]
        );
        assert_eq!(
            cells,
            vec![
                json!("read"),
                json!("ClusterRole/view"),
                json!("120m"),
                json!("alice, bob"),
                json!("devs"),
                json!("kube-system/default")
            ]
        );
        let (t, cells) = print_one("rbac.authorization.k8s.io", "ClusterRoleBinding", rb);
        assert_eq!(
            t["columnDefinitions"][3]["description"],
            "Users in the clusterRoleBinding"
        );
        assert_eq!(cells[1], "ClusterRole/view");
    }

    #[test]
    fn storage_class() {
        let sc = json!({"metadata": {"name": "local", "creationTimestamp": ago(60),
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "WaitForFirstConsumer"});
        let (t, cells) = print_one("storage.k8s.io", "StorageClass", sc);
        assert_eq!(
            names(&t),
            [
                "Name",
                "Provisioner",
                "ReclaimPolicy",
                "VolumeBindingMode",
                "AllowVolumeExpansion",
                "Age"
            ]
        );
        assert_eq!(
            cells,
            vec![
                json!("local (default)"),
                json!("kubernetes.io/no-provisioner"),
                json!("Delete"),
                json!("WaitForFirstConsumer"),
                json!(false),
                json!("60s")
            ]
        );
    }

    #[test]
    fn csr() {
        let csr = json!({
            "metadata": {"name": "node-csr-1", "creationTimestamp": ago(30)},
            "spec": {"signerName": "kubernetes.io/kube-apiserver-client-kubelet", "username": "system:node:node-1",
                     "expirationSeconds": 86400},
            "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "LS0t"}
        });
        let (t, cells) = print_one("certificates.k8s.io", "CertificateSigningRequest", csr);
        assert_eq!(
            names(&t),
            [
                "Name",
                "Age",
                "SignerName",
                "Requestor",
                "RequestedDuration",
                "Condition"
            ]
        );
        assert_eq!(
            cells,
            vec![
                json!("node-csr-1"),
                json!("30s"),
                json!("kubernetes.io/kube-apiserver-client-kubelet"),
                json!("system:node:node-1"),
                json!("24h"),
                json!("Approved,Issued")
            ]
        );
        let pending = json!({"metadata": {"name": "p"}, "spec": {}});
        let cells = print_one("certificates.k8s.io", "CertificateSigningRequest", pending).1;
        assert_eq!(cells[2], "<none>");
        assert_eq!(cells[4], "<none>");
        assert_eq!(cells[5], "Pending");
    }

    #[test]
    fn priority_class() {
        let pc = json!({"metadata": {"name": "system-node-critical", "creationTimestamp": ago(60)},
            "value": 2000001000, "globalDefault": false, "preemptionPolicy": "PreemptLowerPriority"});
        let (t, cells) = print_one("scheduling.k8s.io", "PriorityClass", pc);
        assert_eq!(
            names(&t),
            ["Name", "Value", "Global-Default", "Age", "PreemptionPolicy"]
        );
        assert_eq!(
            cells,
            vec![
                json!("system-node-critical"),
                json!(2000001000),
                json!(false),
                json!("60s"),
                json!("PreemptLowerPriority")
            ]
        );
    }
}
