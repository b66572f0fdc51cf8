//! Upstream's bootstrap RBAC policy (`plugin/pkg/auth/authorizer/rbac/bootstrappolicy`):
//! the default ClusterRoles and ClusterRoleBindings, reconciled at apiserver start as
//! upstream's `rbac/bootstrap-roles` post-start hook does: missing objects are created;
//! existing ones annotated `rbac.authorization.kubernetes.io/autoupdate: "true"` get
//! missing rules/subjects added (never removed).

use serde_json::{json, Value};

use super::rbac::PolicyRule;

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
const RW: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

pub const AUTOUPDATE_ANNOTATION: &str = "rbac.authorization.kubernetes.io/autoupdate";
pub const AGGREGATE_TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
pub const AGGREGATE_TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
pub const AGGREGATE_TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";

pub(crate) fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

/// A rule limited to `names` (`resourceNames`).
pub(crate) fn named_rule(
    verbs: &[&str],
    groups: &[&str],
    resources: &[&str],
    names: &[&str],
) -> Value {
    json!({"apiGroups": groups, "resources": resources, "resourceNames": names, "verbs": verbs})
}

/// A bootstrap ClusterRole without labels beyond the bootstrapping one.
pub(crate) fn system_cluster_role(name: &str, rules: Vec<Value>) -> Value {
    cluster_role(name, &[], rules)
}

/// A bootstrap ClusterRoleBinding to one ServiceAccount.
pub(crate) fn binding_to_service_account(
    name: &str,
    role: &str,
    namespace: &str,
    account: &str,
) -> Value {
    binding(
        name,
        role,
        vec![json!({"kind": "ServiceAccount", "name": account, "namespace": namespace})],
    )
}

fn url_rule(verbs: &[&str], urls: &[&str]) -> Value {
    json!({"nonResourceURLs": urls, "verbs": verbs})
}

fn metadata(name: &str, labels: &[(&str, &str)]) -> Value {
    let mut l = serde_json::Map::new();
    l.insert("kubernetes.io/bootstrapping".into(), json!("rbac-defaults"));
    for (k, v) in labels {
        l.insert((*k).into(), json!(v));
    }
    json!({"name": name, "labels": l, "annotations": {AUTOUPDATE_ANNOTATION: "true"}})
}

fn cluster_role(name: &str, labels: &[(&str, &str)], rules: Vec<Value>) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": metadata(name, labels), "rules": rules})
}

fn aggregated(name: &str, labels: &[(&str, &str)], selector_label: &str) -> Value {
    let mut r = cluster_role(name, labels, Vec::new());
    r["aggregationRule"] =
        json!({"clusterRoleSelectors": [{"matchLabels": {selector_label: "true"}}]});
    r
}

fn binding(name: &str, role: &str, subjects: Vec<Value>) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": metadata(name, &[]),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    })
}

fn group(name: &str) -> Value {
    json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": name})
}

fn user(name: &str) -> Value {
    json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name})
}

/// The rules of `system:node` (also what the Node authorizer grants to kubelets).
pub fn node_rules_json() -> Vec<Value> {
    vec![
        rule(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
        rule(
            &["create"],
            &["authorization.k8s.io"],
            &["localsubjectaccessreviews", "subjectaccessreviews"],
        ),
        rule(READ, &[""], &["services"]),
        rule(&["create", "get", "list", "watch"], &[""], &["nodes"]),
        rule(&["patch", "update"], &[""], &["nodes/status"]),
        rule(&["delete", "patch", "update"], &[""], &["nodes"]),
        rule(
            &["create", "patch", "update"],
            &["", "events.k8s.io"],
            &["events"],
        ),
        rule(READ, &[""], &["pods"]),
        rule(&["create", "delete"], &[""], &["pods"]),
        rule(&["patch", "update"], &[""], &["pods/status"]),
        rule(&["create"], &[""], &["pods/eviction"]),
        rule(
            &["get"],
            &[""],
            &[
                "secrets",
                "configmaps",
                "persistentvolumeclaims",
                "persistentvolumes",
            ],
        ),
        rule(&["get"], &[""], &["endpoints"]),
        rule(
            &["get", "update", "patch"],
            &[""],
            &["persistentvolumeclaims/status"],
        ),
        rule(&["create"], &[""], &["serviceaccounts/token"]),
        rule(
            &["create", "delete", "get", "patch", "update"],
            &["coordination.k8s.io"],
            &["leases"],
        ),
        rule(
            &["create", "get", "list", "watch"],
            &["certificates.k8s.io"],
            &["certificatesigningrequests"],
        ),
        rule(READ, &["node.k8s.io"], &["runtimeclasses"]),
        rule(
            READ,
            &["storage.k8s.io"],
            &["csidrivers", "csinodes", "volumeattachments"],
        ),
    ]
}

/// [`node_rules_json`] parsed.
pub fn node_rules() -> Vec<PolicyRule> {
    node_rules_json()
        .iter()
        .map(PolicyRule::from_json)
        .collect()
}

/// The default ClusterRoles.
pub fn cluster_roles() -> Vec<Value> {
    let core = &[""];
    let view_rules = vec![
        rule(
            READ,
            core,
            &[
                "pods",
                "pods/status",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "replicationcontrollers/status",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "services",
                "services/status",
                "endpoints",
                "configmaps",
                "serviceaccounts",
                "limitranges",
                "resourcequotas",
                "bindings",
                "events",
                "namespaces/status",
                "pods/log",
                "resourcequotas/status",
                "namespaces",
            ],
        ),
        rule(READ, &["discovery.k8s.io"], &["endpointslices"]),
        rule(
            READ,
            &["apps"],
            &[
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ],
        ),
        rule(
            READ,
            &["autoscaling"],
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
        ),
        rule(
            READ,
            &["batch"],
            &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
        ),
        rule(
            READ,
            &["policy"],
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        ),
        rule(
            READ,
            &["networking.k8s.io"],
            &["ingresses", "ingresses/status", "networkpolicies"],
        ),
    ];
    let edit_rules = vec![
        rule(
            READ,
            core,
            &[
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
                "secrets",
                "services/proxy",
            ],
        ),
        rule(&["impersonate"], core, &["serviceaccounts"]),
        rule(
            WRITE,
            core,
            &[
                "pods",
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
            ],
        ),
        rule(&["create"], core, &["pods/eviction"]),
        rule(
            WRITE,
            core,
            &[
                "configmaps",
                "events",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
            ],
        ),
        rule(&["create"], core, &["serviceaccounts/token"]),
        rule(
            WRITE,
            &["apps"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
        ),
        rule(WRITE, &["autoscaling"], &["horizontalpodautoscalers"]),
        rule(WRITE, &["batch"], &["cronjobs", "jobs"]),
        rule(WRITE, &["policy"], &["poddisruptionbudgets"]),
        rule(
            WRITE,
            &["networking.k8s.io"],
            &["ingresses", "networkpolicies"],
        ),
        rule(
            &[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
            &["coordination.k8s.io"],
            &["leases"],
        ),
    ];
    let admin_rules = vec![
        rule(
            &["create"],
            &["authorization.k8s.io"],
            &["localsubjectaccessreviews"],
        ),
        rule(
            RW,
            &["rbac.authorization.k8s.io"],
            &["rolebindings", "roles"],
        ),
    ];
    let discovery_urls = &[
        "/api",
        "/api/*",
        "/apis",
        "/apis/*",
        "/healthz",
        "/livez",
        "/openapi",
        "/openapi/*",
        "/readyz",
        "/version",
        "/version/",
    ];
    vec![
        cluster_role(
            "cluster-admin",
            &[],
            vec![rule(&["*"], &["*"], &["*"]), url_rule(&["*"], &["*"])],
        ),
        url_role("system:discovery", discovery_urls),
        url_role(
            "system:public-info-viewer",
            &["/healthz", "/livez", "/readyz", "/version", "/version/"],
        ),
        cluster_role(
            "system:monitoring",
            &[],
            vec![url_rule(
                &["get"],
                &[
                    "/healthz",
                    "/healthz/*",
                    "/livez",
                    "/livez/*",
                    "/metrics",
                    "/readyz",
                    "/readyz/*",
                ],
            )],
        ),
        cluster_role(
            "system:basic-user",
            &[],
            vec![
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                rule(
                    &["create"],
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                ),
            ],
        ),
        aggregated("admin", &[], AGGREGATE_TO_ADMIN),
        aggregated("edit", &[(AGGREGATE_TO_ADMIN, "true")], AGGREGATE_TO_EDIT),
        aggregated("view", &[(AGGREGATE_TO_EDIT, "true")], AGGREGATE_TO_VIEW),
        cluster_role(
            "system:aggregate-to-admin",
            &[(AGGREGATE_TO_ADMIN, "true")],
            admin_rules,
        ),
        cluster_role(
            "system:aggregate-to-edit",
            &[(AGGREGATE_TO_EDIT, "true")],
            edit_rules,
        ),
        cluster_role(
            "system:aggregate-to-view",
            &[(AGGREGATE_TO_VIEW, "true")],
            view_rules,
        ),
        cluster_role("system:node", &[], node_rules_json()),
        cluster_role(
            "system:node-proxier",
            &[],
            vec![
                rule(&["list", "watch"], &[""], &["services", "endpoints"]),
                rule(&["get", "list", "watch"], &[""], &["nodes"]),
                rule(
                    &["create", "patch", "update"],
                    &["", "events.k8s.io"],
                    &["events"],
                ),
                rule(
                    &["list", "watch"],
                    &["discovery.k8s.io"],
                    &["endpointslices"],
                ),
            ],
        ),
        cluster_role(
            "system:kube-scheduler",
            &[],
            vec![
                rule(
                    &["create", "patch", "update"],
                    &["", "events.k8s.io"],
                    &["events"],
                ),
                rule(&["create"], &["coordination.k8s.io"], &["leases"]),
                rule(&["get", "update"], &["coordination.k8s.io"], &["leases"]),
                rule(&["create"], &[""], &["endpoints"]),
                rule(&["get", "update"], &[""], &["endpoints"]),
                rule(READ, &[""], &["nodes"]),
                rule(&["delete", "get", "list", "watch"], &[""], &["pods"]),
                rule(&["create"], &[""], &["bindings", "pods/binding"]),
                rule(&["patch", "update"], &[""], &["pods/status"]),
                rule(READ, &[""], &["replicationcontrollers", "services"]),
                rule(READ, &["apps", "extensions"], &["replicasets"]),
                rule(READ, &["apps"], &["statefulsets"]),
                rule(READ, &["policy"], &["poddisruptionbudgets"]),
                rule(
                    READ,
                    &[""],
                    &[
                        "persistentvolumeclaims",
                        "persistentvolumes",
                        "namespaces",
                        "configmaps",
                    ],
                ),
                rule(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["subjectaccessreviews"],
                ),
                rule(
                    READ,
                    &["storage.k8s.io"],
                    &[
                        "csidrivers",
                        "csinodes",
                        "csistoragecapacities",
                        "storageclasses",
                    ],
                ),
            ],
        ),
        cluster_role(
            "system:kube-controller-manager",
            &[],
            vec![
                rule(
                    &["create", "patch", "update"],
                    &["", "events.k8s.io"],
                    &["events"],
                ),
                rule(&["create"], &["coordination.k8s.io"], &["leases"]),
                rule(&["get", "update"], &["coordination.k8s.io"], &["leases"]),
                rule(
                    &["create"],
                    &[""],
                    &["endpoints", "secrets", "serviceaccounts"],
                ),
                rule(&["delete"], &[""], &["secrets"]),
                rule(
                    &["get"],
                    &[""],
                    &["endpoints", "namespaces", "secrets", "serviceaccounts"],
                ),
                rule(
                    &["update"],
                    &[""],
                    &["endpoints", "secrets", "serviceaccounts"],
                ),
                rule(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["subjectaccessreviews"],
                ),
                rule(&["list", "watch"], &["*"], &["*"]),
                rule(&["create"], &[""], &["serviceaccounts/token"]),
            ],
        ),
        cluster_role(
            "system:volume-scheduler",
            &[],
            vec![
                rule(
                    &["get", "list", "patch", "update", "watch"],
                    &[""],
                    &["persistentvolumes"],
                ),
                rule(READ, &["storage.k8s.io"], &["storageclasses"]),
                rule(
                    &["get", "list", "patch", "update", "watch"],
                    &[""],
                    &["persistentvolumeclaims"],
                ),
            ],
        ),
        cluster_role(
            "system:auth-delegator",
            &[],
            vec![
                rule(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["subjectaccessreviews"],
                ),
            ],
        ),
        cluster_role(
            "system:node-bootstrapper",
            &[],
            vec![rule(
                &["create", "get", "list", "watch"],
                &["certificates.k8s.io"],
                &["certificatesigningrequests"],
            )],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            &[],
            vec![rule(
                &["create"],
                &["certificates.k8s.io"],
                &["certificatesigningrequests/nodeclient"],
            )],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            &[],
            vec![rule(
                &["create"],
                &["certificates.k8s.io"],
                &["certificatesigningrequests/selfnodeclient"],
            )],
        ),
        cluster_role(
            "system:service-account-issuer-discovery",
            &[],
            vec![url_rule(
                &["get"],
                &[
                    "/.well-known/openid-configuration",
                    "/.well-known/openid-configuration/",
                    "/openid/v1/jwks",
                    "/openid/v1/jwks/",
                ],
            )],
        ),
        // kubeadm's (not upstream's bootstrap policy): bootstrap tokens may read nodes.
        cluster_role(
            "kubeadm:get-nodes",
            &[],
            vec![rule(&["get"], &[""], &["nodes"])],
        ),
    ]
    .into_iter()
    .chain(super::controller_policy::cluster_roles())
    .collect()
}

fn url_role(name: &str, urls: &[&str]) -> Value {
    cluster_role(name, &[], vec![url_rule(&["get"], urls)])
}

/// The default ClusterRoleBindings.
pub fn cluster_role_bindings() -> Vec<Value> {
    vec![
        binding(
            "cluster-admin",
            "cluster-admin",
            vec![group("system:masters")],
        ),
        binding(
            "system:monitoring",
            "system:monitoring",
            vec![group("system:monitoring")],
        ),
        binding(
            "system:discovery",
            "system:discovery",
            vec![group("system:authenticated")],
        ),
        binding(
            "system:basic-user",
            "system:basic-user",
            vec![group("system:authenticated")],
        ),
        binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            vec![
                group("system:authenticated"),
                group("system:unauthenticated"),
            ],
        ),
        // As upstream: no subjects; kubelets are authorized by the Node authorizer.
        binding("system:node", "system:node", Vec::new()),
        binding(
            "system:node-proxier",
            "system:node-proxier",
            vec![user("system:kube-proxy")],
        ),
        binding(
            "system:kube-scheduler",
            "system:kube-scheduler",
            vec![user("system:kube-scheduler")],
        ),
        binding(
            "system:volume-scheduler",
            "system:volume-scheduler",
            vec![user("system:kube-scheduler")],
        ),
        binding(
            "system:kube-controller-manager",
            "system:kube-controller-manager",
            vec![user("system:kube-controller-manager")],
        ),
        binding(
            "system:service-account-issuer-discovery",
            "system:service-account-issuer-discovery",
            vec![group("system:serviceaccounts")],
        ),
        // The bindings `kubeadm init` creates for TLS bootstrapping (kubeadm binds the
        // per-token-group `system:bootstrappers:kubeadm:default-node-token`; every
        // bootstrap token is in `system:bootstrappers`, so that group is bound here):
        // bootstrap tokens may create CSRs, their node client CSRs are auto-approved,
        // kubelets (`system:nodes`) may renew their own client certificate, and
        // bootstrap tokens may read nodes.
        binding(
            "kubeadm:kubelet-bootstrap",
            "system:node-bootstrapper",
            vec![group("system:bootstrappers")],
        ),
        binding(
            "kubeadm:node-autoapprove-bootstrap",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            vec![group("system:bootstrappers")],
        ),
        binding(
            "kubeadm:node-autoapprove-certificate-rotation",
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            vec![group("system:nodes")],
        ),
        binding(
            "kubeadm:get-nodes",
            "kubeadm:get-nodes",
            vec![group("system:bootstrappers")],
        ),
    ]
    .into_iter()
    .chain(super::controller_policy::cluster_role_bindings())
    .collect()
}

/// The object to store when `existing` is present: `None` leaves it alone (autoupdate
/// off, or nothing missing); otherwise `existing` with the bootstrap rules, subjects
/// and labels it lacks added.
pub fn reconcile(existing: &Value, wanted: &Value) -> Option<Value> {
    let autoupdate = existing
        .pointer(&format!(
            "/metadata/annotations/{}",
            AUTOUPDATE_ANNOTATION.replace('/', "~1")
        ))
        .and_then(Value::as_str);
    if autoupdate == Some("false") {
        return None;
    }
    let mut out = existing.clone();
    let mut changed = false;
    for field in ["rules", "subjects"] {
        let Some(want) = wanted.get(field).and_then(Value::as_array) else {
            continue;
        };
        let have = out
            .get(field)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut merged = have.clone();
        for w in want {
            if !have.contains(w) {
                merged.push(w.clone());
                changed = true;
            }
        }
        out[field] = Value::Array(merged);
    }
    if let Some(agg) = wanted.get("aggregationRule") {
        if out.get("aggregationRule") != Some(agg) {
            out["aggregationRule"] = agg.clone();
            changed = true;
        }
    }
    for (k, v) in api_types::meta::labels(wanted) {
        if api_types::meta::labels(&out).get(&k) != Some(&v) {
            api_types::meta::meta_mut(&mut out)
                .entry("labels")
                .or_insert_with(|| json!({}))[&k] = json!(v);
            changed = true;
        }
    }
    changed.then_some(out)
}

/// Creates or updates the bootstrap ClusterRoles and ClusterRoleBindings (upstream's
/// `rbac/bootstrap-roles` post-start hook). Aggregated roles are stored with the
/// union of the rules they aggregate, as upstream's aggregation controller keeps them.
pub async fn ensure(
    store: &crate::store::Store,
    cache: &crate::cache::WatchCache,
    write: &crate::store::WriteOptions,
) -> anyhow::Result<()> {
    let roles_info = api_types::registry::lookup("rbac.authorization.k8s.io", "v1", "clusterroles")
        .ok_or_else(|| anyhow::anyhow!("clusterroles not registered"))?;
    let bindings_info =
        api_types::registry::lookup("rbac.authorization.k8s.io", "v1", "clusterrolebindings")
            .ok_or_else(|| anyhow::anyhow!("clusterrolebindings not registered"))?;
    let mut roles = cluster_roles();
    // Aggregation sees stored roles (custom ones with aggregate-to-* labels) too.
    let mut all: Vec<Value> = cache
        .resource(roles_info)
        .map(|c| {
            c.list(&roles_info.key_prefix())
                .iter()
                .map(|o| o.selectable.clone())
                .collect()
        })
        .unwrap_or_default();
    all.retain(|r| {
        !roles
            .iter()
            .any(|b| api_types::meta::name(b) == api_types::meta::name(r))
    });
    all.extend(roles.iter().cloned());
    for role in roles.iter_mut() {
        if role.get("aggregationRule").is_some() {
            let rules = super::rbac::aggregated_rules(role, &all);
            role["rules"] = Value::Array(rules.iter().map(PolicyRule::to_json).collect());
        }
    }
    let mut changed = 0usize;
    for (info, objects) in [
        (roles_info, roles),
        (bindings_info, cluster_role_bindings()),
    ] {
        for wanted in objects {
            let name = api_types::meta::name(&wanted).unwrap_or("").to_string();
            let result = match store.get(info, None, &name).await {
                Ok(existing) => match reconcile(&existing, &wanted) {
                    Some(updated) => store
                        .update(info, None, &name, None, updated, write)
                        .await
                        .map(|_| true),
                    None => Ok(false),
                },
                Err(e) if e.code == 404 => match store.create(info, None, wanted, write).await {
                    Ok(_) => Ok(true),
                    Err(e) if e.code == 409 => Ok(false),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            match result {
                Ok(true) => changed += 1,
                Ok(false) => {}
                Err(e) => anyhow::bail!("reconciling {} {name}: {}", info.plural, e.message),
            }
        }
    }
    tracing::info!(changed, "reconciled bootstrap RBAC policy");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_bindings_point_at_roles() {
        let roles = cluster_roles();
        let names: Vec<&str> = roles.iter().filter_map(api_types::meta::name).collect();
        let mut dedup = names.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), names.len());
        for b in cluster_role_bindings() {
            let role = b
                .pointer("/roleRef/name")
                .and_then(Value::as_str)
                .expect("roleRef");
            assert!(names.contains(&role), "{role}");
        }
    }

    #[test]
    fn reconcile_adds_missing_and_respects_autoupdate_false() {
        let wanted = binding("x", "view", vec![group("a")]);
        let mut existing = binding("x", "view", vec![group("b")]);
        let merged = reconcile(&existing, &wanted).expect("changed");
        assert_eq!(merged["subjects"].as_array().map(Vec::len), Some(2));
        assert!(reconcile(&merged, &wanted).is_none(), "idempotent");
        existing["metadata"]["annotations"][AUTOUPDATE_ANNOTATION] = json!("false");
        assert!(reconcile(&existing, &wanted).is_none());
    }
}
