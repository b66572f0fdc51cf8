//! What objects use under quota resource names, as upstream's quota evaluators
//! (`pkg/quota/v1/evaluator/core`): the names each kind is charged for, per-object
//! usage, quota scopes and the pod evaluator's constraints.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::list::{container_resources, pod_aggregate, Qty, ResourceList};
use crate::registry::{self, ResourceInfo};

/// Compute resources a quota on pods forces every container to declare.
const VALIDATION_SET: &[&str] = &[
    "cpu",
    "limits.cpu",
    "limits.memory",
    "memory",
    "requests.cpu",
    "requests.memory",
];
const POD_RESOURCES: &[&str] = &[
    "count/pods",
    "cpu",
    "ephemeral-storage",
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "memory",
    "pods",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];
const SERVICE_RESOURCES: &[&str] = &[
    "count/services",
    "services",
    "services.loadbalancers",
    "services.nodeports",
];
/// `gold.storageclass.storage.k8s.io/requests.storage`.
const STORAGE_CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/";

/// `count/pods` for core kinds, `count/deployments.apps` otherwise.
pub fn object_count_name(info: &ResourceInfo) -> String {
    if info.group.is_empty() {
        format!("count/{}", info.plural)
    } else {
        format!("count/{}.{}", info.plural, info.group)
    }
}

/// The legacy quota name of a core kind's object count (`configmaps`, `secrets`, ...).
fn legacy_count_name(info: &ResourceInfo) -> Option<&'static str> {
    if !info.group.is_empty() {
        return None;
    }
    match info.plural {
        "configmaps"
        | "secrets"
        | "replicationcontrollers"
        | "resourcequotas"
        | "persistentvolumeclaims"
        | "services"
        | "pods" => Some(info.plural),
        _ => None,
    }
}

fn is_kind(info: &ResourceInfo, plural: &str) -> bool {
    info.group.is_empty() && info.plural == plural
}

fn core(plural: &str) -> Option<&'static ResourceInfo> {
    registry::resources()
        .iter()
        .find(|r| r.group.is_empty() && r.plural == plural)
}

/// Whether the evaluator of `info` accounts for quota resource `name`.
pub fn tracks(info: &ResourceInfo, name: &str) -> bool {
    if is_kind(info, "pods") {
        return POD_RESOURCES.contains(&name)
            || name.starts_with("requests.hugepages-")
            || (name.starts_with("requests.") && name.contains('/'));
    }
    if is_kind(info, "services") {
        return SERVICE_RESOURCES.contains(&name);
    }
    if is_kind(info, "persistentvolumeclaims") {
        return matches!(
            name,
            "count/persistentvolumeclaims" | "persistentvolumeclaims" | "requests.storage"
        ) || name
            .split_once(STORAGE_CLASS_SUFFIX)
            .is_some_and(|(_, r)| r == "requests.storage" || r == "persistentvolumeclaims");
    }
    name == object_count_name(info) || legacy_count_name(info) == Some(name)
}

/// Which of a quota's hard resources this kind is charged for.
pub fn matching_resources(info: &ResourceInfo, hard: &ResourceList) -> BTreeSet<String> {
    hard.keys().filter(|k| tracks(info, k)).cloned().collect()
}

/// The resource a quota name is computed from: `pods` for `requests.cpu`,
/// `deployments.apps` for `count/deployments.apps`; `None` for names no evaluator knows.
pub fn source_of(name: &str) -> Option<&'static ResourceInfo> {
    if let Some(rest) = name.strip_prefix("count/") {
        let (plural, group) = rest.split_once('.').unwrap_or((rest, ""));
        return registry::resources()
            .iter()
            .find(|r| r.group == group && r.plural == plural && r.namespaced);
    }
    match name {
        "pods" | "cpu" | "memory" | "ephemeral-storage" => core("pods"),
        "services" | "services.nodeports" | "services.loadbalancers" => core("services"),
        "configmaps"
        | "secrets"
        | "replicationcontrollers"
        | "resourcequotas"
        | "persistentvolumeclaims" => core(name),
        "requests.storage" => core("persistentvolumeclaims"),
        n if n.contains(STORAGE_CLASS_SUFFIX) => core("persistentvolumeclaims"),
        n if n.starts_with("requests.") || n.starts_with("limits.") => core("pods"),
        _ => None,
    }
}

/// Upstream `QuotaV1Pod`: finished pods, and pods past their deletion grace, use no compute.
fn pod_counts_for_compute(pod: &Value, now: DateTime<Utc>) -> bool {
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        return false;
    }
    let deletion = pod
        .pointer("/metadata/deletionTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
    let grace = pod
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64);
    match (deletion, grace) {
        (Some(at), Some(grace)) => now <= at.with_timezone(&Utc) + chrono::Duration::seconds(grace),
        _ => true,
    }
}

/// Per-container (or per-pod) compute usage from requests and limits
/// (upstream `podComputeUsageHelper`).
fn compute_usage(requests: &ResourceList, limits: &ResourceList) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("pods".into(), Qty::count(1));
    for res in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(q) = requests.get(res) {
            out.insert(res.into(), *q);
            out.insert(format!("requests.{res}"), *q);
        }
        if let Some(q) = limits.get(res) {
            out.insert(format!("limits.{res}"), *q);
        }
    }
    for (res, q) in requests {
        if res.starts_with("hugepages-") || res.contains('/') {
            out.insert(format!("requests.{res}"), *q);
        }
    }
    out
}

/// What one object uses, under every quota name its evaluator knows (`Usage`).
pub fn usage(info: &ResourceInfo, obj: &Value, now: DateTime<Utc>) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert(object_count_name(info), Qty::count(1));
    if let Some(alias) = legacy_count_name(info) {
        out.insert(alias.into(), Qty::count(1));
    }
    if is_kind(info, "pods") {
        out.remove("pods");
        if pod_counts_for_compute(obj, now) {
            out.extend(compute_usage(
                &pod_aggregate(obj, "requests", true),
                &pod_aggregate(obj, "limits", true),
            ));
        }
    } else if is_kind(info, "services") {
        service_usage(obj, &mut out);
    } else if is_kind(info, "persistentvolumeclaims") {
        claim_usage(obj, &mut out);
    }
    out
}

fn service_usage(obj: &Value, out: &mut ResourceList) {
    let spec = obj.get("spec");
    let ports = spec
        .and_then(|s| s.get("ports"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let explicit = ports
        .iter()
        .filter(|p| p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0)
        .count();
    let count = |n: usize| Qty::count(i64::try_from(n).unwrap_or(i64::MAX));
    match spec
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
    {
        "NodePort" => {
            out.insert("services.nodeports".into(), count(ports.len()));
        }
        "LoadBalancer" => {
            let allocate = spec
                .and_then(|s| s.get("allocateLoadBalancerNodePorts"))
                .and_then(Value::as_bool)
                != Some(false);
            out.insert(
                "services.nodeports".into(),
                count(if allocate { ports.len() } else { explicit }),
            );
            out.insert("services.loadbalancers".into(), Qty::count(1));
        }
        _ => {}
    }
}

fn claim_usage(obj: &Value, out: &mut ResourceList) {
    let class = obj
        .pointer("/spec/storageClassName")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty());
    if let Some(c) = class {
        out.insert(
            format!("{c}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"),
            Qty::count(1),
        );
    }
    if let Some(q) = obj
        .pointer("/spec/resources/requests/storage")
        .and_then(Value::as_str)
        .and_then(Qty::parse)
    {
        out.insert("requests.storage".into(), q);
        if let Some(c) = class {
            out.insert(format!("{c}{STORAGE_CLASS_SUFFIX}requests.storage"), q);
        }
    }
}

fn is_best_effort(pod: &Value) -> bool {
    let spec = pod.get("spec");
    ["containers", "initContainers"].iter().all(|field| {
        spec.and_then(|s| s.get(*field))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .all(|c| {
                let (req, lim) = container_resources(c);
                !["cpu", "memory"]
                    .iter()
                    .any(|r| req.contains_key(*r) || lim.contains_key(*r))
            })
    })
}

/// One scope requirement: (scope name, operator, values).
fn scope_requirements(quota: &Value) -> Vec<(String, String, Vec<String>)> {
    let mut out: Vec<(String, String, Vec<String>)> = quota
        .pointer("/spec/scopes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|s| (s.to_string(), "Exists".to_string(), Vec::new()))
        .collect();
    for e in quota
        .pointer("/spec/scopeSelector/matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let field = |k: &str| {
            e.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let values = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        out.push((field("scopeName"), field("operator"), values));
    }
    out
}

/// Whether a quota's scopes select this object (objects other than pods match only
/// unscoped quotas).
pub fn matches_scopes(info: &ResourceInfo, quota: &Value, obj: &Value) -> bool {
    let reqs = scope_requirements(quota);
    if reqs.is_empty() {
        return true;
    }
    if !is_kind(info, "pods") {
        return false;
    }
    let terminating = obj
        .pointer("/spec/activeDeadlineSeconds")
        .and_then(Value::as_i64)
        .is_some_and(|s| s >= 0);
    reqs.iter().all(|(scope, op, values)| match scope.as_str() {
        "Terminating" => terminating,
        "NotTerminating" => !terminating,
        "BestEffort" => is_best_effort(obj),
        "NotBestEffort" => !is_best_effort(obj),
        "PriorityClass" => {
            let class = obj
                .pointer("/spec/priorityClassName")
                .and_then(Value::as_str)
                .unwrap_or("");
            match op.as_str() {
                "In" => values.iter().any(|v| v == class),
                "NotIn" => !values.iter().any(|v| v == class),
                "Exists" => !class.is_empty(),
                "DoesNotExist" => class.is_empty(),
                _ => false,
            }
        }
        _ => false,
    })
}

/// Upstream's pod `Constraints`: with cpu/memory quotas every container must state
/// them; the error is `must specify limits.cpu,...`.
pub fn constraints(
    info: &ResourceInfo,
    obj: &Value,
    required: &BTreeSet<String>,
) -> Result<(), String> {
    if !is_kind(info, "pods") {
        return Ok(());
    }
    let required: BTreeSet<&str> = required
        .iter()
        .map(String::as_str)
        .filter(|r| VALIDATION_SET.contains(r))
        .collect();
    if required.is_empty() {
        return Ok(());
    }
    let mut missing = BTreeSet::new();
    let spec = obj.get("spec");
    for field in ["containers", "initContainers"] {
        for c in spec
            .and_then(|s| s.get(field))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (req, lim) = container_resources(c);
            let have = compute_usage(&req, &lim);
            missing.extend(
                required
                    .iter()
                    .filter(|r| !have.contains_key(**r))
                    .map(|r| r.to_string()),
            );
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "must specify {}",
            missing.into_iter().collect::<Vec<_>>().join(",")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::list::{parse_list, pretty_print};
    use super::*;
    use serde_json::json;

    fn info(plural: &str) -> &'static ResourceInfo {
        registry::lookup("", "v1", plural).unwrap_or_else(|| panic!("{plural} registered"))
    }

    fn list(v: Value) -> ResourceList {
        parse_list(Some(&v))
    }

    fn pod(cpu_req: &str, mem_lim: &str) -> Value {
        json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": cpu_req}, "limits": {"memory": mem_lim}}}
        ]}})
    }

    #[test]
    fn pod_usage_counts_compute_and_objects() {
        let u = usage(info("pods"), &pod("250m", "128Mi"), Utc::now());
        assert_eq!(
            pretty_print(&u),
            "count/pods=1,cpu=250m,limits.memory=128Mi,pods=1,requests.cpu=250m"
        );
        let two = json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}},
            {"name": "b", "resources": {"requests": {"cpu": "1"}}}],
            "overhead": {"memory": "1Mi"}}});
        assert_eq!(
            pretty_print(&usage(info("pods"), &two, Utc::now())),
            "count/pods=1,cpu=1250m,limits.memory=129Mi,memory=65Mi,pods=1,requests.cpu=1250m,requests.memory=65Mi"
        );
        let mut done = pod("250m", "128Mi");
        done["status"] = json!({"phase": "Succeeded"});
        assert_eq!(
            pretty_print(&usage(info("pods"), &done, Utc::now())),
            "count/pods=1"
        );
    }

    #[test]
    fn deleted_pods_use_compute_until_their_grace_ends() {
        let now = Utc::now();
        let mut p = pod("250m", "128Mi");
        p["metadata"]["deletionTimestamp"] = json!(now.to_rfc3339());
        p["metadata"]["deletionGracePeriodSeconds"] = json!(30);
        assert!(usage(info("pods"), &p, now).contains_key("requests.cpu"));
        let later = now + chrono::Duration::seconds(31);
        assert_eq!(
            pretty_print(&usage(info("pods"), &p, later)),
            "count/pods=1"
        );
    }

    #[test]
    fn service_usage_counts_node_ports_and_load_balancers() {
        let svc = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}});
        assert_eq!(
            pretty_print(&usage(info("services"), &svc, Utc::now())),
            "count/services=1,services=1,services.nodeports=2"
        );
        let lb = json!({"spec": {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false, "ports": [{"port": 80, "nodePort": 30001}, {"port": 81}]}});
        assert_eq!(
            pretty_print(&usage(info("services"), &lb, Utc::now())),
            "count/services=1,services=1,services.loadbalancers=1,services.nodeports=1"
        );
    }

    #[test]
    fn claim_usage_counts_storage_per_class() {
        let pvc = json!({"spec": {"storageClassName": "gold", "resources": {"requests": {"storage": "1Gi"}}}});
        assert_eq!(
            pretty_print(&usage(info("persistentvolumeclaims"), &pvc, Utc::now())),
            "count/persistentvolumeclaims=1,gold.storageclass.storage.k8s.io/persistentvolumeclaims=1,\
             gold.storageclass.storage.k8s.io/requests.storage=1Gi,persistentvolumeclaims=1,requests.storage=1Gi"
        );
    }

    #[test]
    fn object_counts_and_matching() {
        let cm = json!({"metadata": {"name": "x"}});
        assert_eq!(
            pretty_print(&usage(info("configmaps"), &cm, Utc::now())),
            "configmaps=1,count/configmaps=1"
        );
        let deploy = registry::lookup("apps", "v1", "deployments").expect("deployments registered");
        assert_eq!(object_count_name(deploy), "count/deployments.apps");
        let hard =
            list(json!({"count/deployments.apps": "1", "pods": "10", "requests.storage": "1Gi"}));
        assert_eq!(
            matching_resources(deploy, &hard)
                .into_iter()
                .collect::<Vec<_>>(),
            vec!["count/deployments.apps"]
        );
        assert_eq!(
            matching_resources(info("pods"), &hard)
                .into_iter()
                .collect::<Vec<_>>(),
            vec!["pods"]
        );
        assert_eq!(
            matching_resources(info("persistentvolumeclaims"), &hard)
                .into_iter()
                .collect::<Vec<_>>(),
            vec!["requests.storage"]
        );
    }

    #[test]
    fn names_map_to_their_source_kinds() {
        assert_eq!(source_of("requests.cpu").map(|i| i.plural), Some("pods"));
        assert_eq!(
            source_of("count/deployments.apps").map(|i| (i.group, i.plural)),
            Some(("apps", "deployments"))
        );
        assert_eq!(
            source_of("services.nodeports").map(|i| i.plural),
            Some("services")
        );
        assert_eq!(
            source_of("gold.storageclass.storage.k8s.io/requests.storage").map(|i| i.plural),
            Some("persistentvolumeclaims")
        );
        assert!(source_of("nonsense").is_none());
        assert!(source_of("count/nodes").is_none(), "not namespaced");
    }

    #[test]
    fn constraints_require_declared_compute() {
        let required: BTreeSet<String> = ["limits.cpu", "requests.cpu", "pods"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            constraints(info("pods"), &pod("100m", "64Mi"), &required),
            Err("must specify limits.cpu".into())
        );
        let ok = json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "1"}}}]}});
        assert_eq!(constraints(info("pods"), &ok, &required), Ok(()));
        assert_eq!(constraints(info("services"), &json!({}), &required), Ok(()));
    }

    #[test]
    fn scopes_select_pods() {
        let quota = json!({"spec": {"scopes": ["BestEffort"]}});
        let be = json!({"spec": {"containers": [{"name": "c"}]}});
        assert!(matches_scopes(info("pods"), &quota, &be));
        assert!(!matches_scopes(info("pods"), &quota, &pod("1", "1Gi")));
        assert!(!matches_scopes(info("services"), &quota, &json!({})));
        assert!(matches_scopes(
            info("configmaps"),
            &json!({"spec": {}}),
            &json!({})
        ));
        let prio = json!({"spec": {"scopeSelector": {"matchExpressions": [{"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}}});
        assert!(matches_scopes(
            info("pods"),
            &prio,
            &json!({"spec": {"priorityClassName": "high"}})
        ));
        assert!(!matches_scopes(info("pods"), &prio, &json!({"spec": {}})));
        let term = json!({"spec": {"scopes": ["Terminating"]}});
        assert!(matches_scopes(
            info("pods"),
            &term,
            &json!({"spec": {"activeDeadlineSeconds": 10}})
        ));
        assert!(!matches_scopes(info("pods"), &term, &be));
    }
}
