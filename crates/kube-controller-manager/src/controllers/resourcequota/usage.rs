//! What objects use, under quota resource names, as upstream's quota evaluators
//! (`pkg/quota/v1/evaluator/core`). This mirrors the apiserver's quota admission
//! (`kube-apiserver::admission::quota`) so `status.used` agrees with what admission
//! charges: same names, same arithmetic, same canonical printing.

use std::collections::BTreeMap;

use api_types::quantity::{format_bytes, Format, ParsedQuantity};
use api_types::ResourceInfo;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

/// A quantity held exactly in thousandths, printing in binary units when parsed so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qty {
    pub milli: i128,
    pub binary: bool,
}

impl Qty {
    pub fn parse(s: &str) -> Option<Qty> {
        let q = ParsedQuantity::parse(s).ok()?;
        Some(Qty { milli: i128::from(q.milli_value()), binary: q.format() == Format::BinarySI })
    }

    pub fn count(n: i64) -> Qty {
        Qty { milli: i128::from(n) * 1000, binary: false }
    }

    /// Sum keeping `self`'s format (a zero start takes the other's), as `Quantity.Add`.
    pub fn plus(self, other: Qty) -> Qty {
        let binary = if self.milli == 0 { other.binary } else { self.binary };
        Qty { milli: self.milli.saturating_add(other.milli), binary }
    }
}

impl std::fmt::Display for Qty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.binary && self.milli % 1000 == 0 {
            if let Ok(bytes) = i64::try_from(self.milli / 1000) {
                return f.write_str(&format_bytes(bytes));
            }
        }
        match ParsedQuantity::parse(&format!("{}m", self.milli)) {
            Ok(q) => f.write_str(&q.canonical()),
            Err(_) => write!(f, "{}m", self.milli),
        }
    }
}

pub type ResourceList = BTreeMap<String, Qty>;

pub fn parse_list(v: Option<&Value>) -> ResourceList {
    let mut out = ResourceList::new();
    for (k, q) in v.and_then(Value::as_object).into_iter().flatten() {
        let parsed = match q {
            Value::String(s) => Qty::parse(s),
            Value::Number(n) => Qty::parse(&n.to_string()),
            _ => None,
        };
        if let Some(q) = parsed {
            out.insert(k.clone(), q);
        }
    }
    out
}

pub fn add(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let mut out = a.clone();
    for (k, q) in b {
        let sum = out.get(k).map_or(*q, |x| x.plus(*q));
        out.insert(k.clone(), sum);
    }
    out
}

fn max(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let mut out = a.clone();
    for (k, q) in b {
        if out.get(k).is_none_or(|x| x.milli < q.milli) {
            out.insert(k.clone(), *q);
        }
    }
    out
}

/// A pod's effective requests or limits (component-helpers' `PodRequests`): the
/// containers plus sidecars, at least any init container, plus overhead.
pub fn pod_aggregate(pod: &Value, bucket: &str) -> ResourceList {
    let spec = pod.get("spec");
    let list = |c: &Value| parse_list(c.get("resources").and_then(|r| r.get(bucket)));
    let containers = |field: &str| spec.and_then(|s| s.get(field)).and_then(Value::as_array).cloned().unwrap_or_default();
    let mut sum = ResourceList::new();
    for c in containers("containers") {
        sum = add(&sum, &list(&c));
    }
    let mut sidecars = ResourceList::new();
    let mut init_max = ResourceList::new();
    for c in containers("initContainers") {
        if c.get("restartPolicy").and_then(Value::as_str) == Some("Always") {
            sidecars = add(&sidecars, &list(&c));
            init_max = max(&init_max, &sidecars);
        } else {
            init_max = max(&init_max, &add(&list(&c), &sidecars));
        }
    }
    let out = max(&add(&sum, &sidecars), &init_max);
    add(&out, &parse_list(spec.and_then(|s| s.get("overhead"))))
}

fn is_kind(info: &ResourceInfo, plural: &str) -> bool {
    info.group.is_empty() && info.plural == plural
}

/// `count/pods` for core kinds, `count/deployments.apps` otherwise.
pub fn object_count_name(info: &ResourceInfo) -> String {
    if info.group.is_empty() {
        format!("count/{}", info.plural)
    } else {
        format!("count/{}.{}", info.plural, info.group)
    }
}

fn legacy_count_name(info: &ResourceInfo) -> Option<&'static str> {
    match info.plural {
        "configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas" | "persistentvolumeclaims" | "services" | "pods"
            if info.group.is_empty() =>
        {
            Some(info.plural)
        }
        _ => None,
    }
}

/// Upstream `QuotaV1Pod`: finished pods, and pods past their deletion grace, use no compute.
fn pod_counts_for_compute(pod: &Value, now: Timestamp) -> bool {
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        return false;
    }
    let deletion = pod.pointer("/metadata/deletionTimestamp").and_then(Value::as_str).and_then(|t| t.parse::<Timestamp>().ok());
    let grace = pod.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64);
    match (deletion, grace) {
        (Some(at), Some(grace)) => now.as_second() <= at.as_second() + grace,
        _ => true,
    }
}

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

const STORAGE_CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/";

/// What one object uses under every quota name its evaluator knows.
pub fn usage(info: &ResourceInfo, obj: &Value, now: Timestamp) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert(object_count_name(info), Qty::count(1));
    if let Some(alias) = legacy_count_name(info) {
        out.insert(alias.into(), Qty::count(1));
    }
    if is_kind(info, "pods") {
        out.remove("pods");
        if pod_counts_for_compute(obj, now) {
            out.extend(compute_usage(&pod_aggregate(obj, "requests"), &pod_aggregate(obj, "limits")));
        }
    } else if is_kind(info, "services") {
        let spec = obj.get("spec");
        let ports = spec.and_then(|s| s.get("ports")).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        let explicit = ports.iter().filter(|p| p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0).count();
        let count = |n: usize| Qty::count(i64::try_from(n).unwrap_or(i64::MAX));
        match spec.and_then(|s| s.get("type")).and_then(Value::as_str).unwrap_or("ClusterIP") {
            "NodePort" => {
                out.insert("services.nodeports".into(), count(ports.len()));
            }
            "LoadBalancer" => {
                let allocate = spec.and_then(|s| s.get("allocateLoadBalancerNodePorts")).and_then(Value::as_bool) != Some(false);
                out.insert("services.nodeports".into(), count(if allocate { ports.len() } else { explicit }));
                out.insert("services.loadbalancers".into(), Qty::count(1));
            }
            _ => {}
        }
    } else if is_kind(info, "persistentvolumeclaims") {
        let class = obj.pointer("/spec/storageClassName").and_then(Value::as_str).filter(|c| !c.is_empty());
        if let Some(c) = class {
            out.insert(format!("{c}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"), Qty::count(1));
        }
        if let Some(q) = obj.pointer("/spec/resources/requests/storage").and_then(Value::as_str).and_then(Qty::parse) {
            out.insert("requests.storage".into(), q);
            if let Some(c) = class {
                out.insert(format!("{c}{STORAGE_CLASS_SUFFIX}requests.storage"), q);
            }
        }
    }
    out
}

/// The resource a quota name is computed from: `pods` for `requests.cpu`,
/// `deployments.apps` for `count/deployments.apps`; `None` for names no evaluator knows.
pub fn source_of(name: &str) -> Option<&'static ResourceInfo> {
    let core = |plural: &str| api_types::registry::resources().iter().find(|r| r.group.is_empty() && r.plural == plural);
    if let Some(rest) = name.strip_prefix("count/") {
        let (plural, group) = rest.split_once('.').unwrap_or((rest, ""));
        return api_types::registry::resources().iter().find(|r| r.group == group && r.plural == plural && r.namespaced);
    }
    match name {
        "pods" | "cpu" | "memory" | "ephemeral-storage" => core("pods"),
        "services" | "services.nodeports" | "services.loadbalancers" => core("services"),
        "configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas" | "persistentvolumeclaims" => core(name),
        "requests.storage" => core("persistentvolumeclaims"),
        n if n.contains(STORAGE_CLASS_SUFFIX) => core("persistentvolumeclaims"),
        n if n.starts_with("requests.") || n.starts_with("limits.") => core("pods"),
        _ => None,
    }
}

fn is_best_effort(pod: &Value) -> bool {
    ["containers", "initContainers"].iter().all(|field| {
        pod.pointer(&format!("/spec/{field}")).and_then(Value::as_array).into_iter().flatten().all(|c| {
            let res = c.get("resources");
            ["requests", "limits"].iter().all(|b| {
                let l = parse_list(res.and_then(|r| r.get(*b)));
                !l.contains_key("cpu") && !l.contains_key("memory")
            })
        })
    })
}

/// Whether the quota's scopes select this object (non-pods match only unscoped quotas).
pub fn matches_scopes(info: &ResourceInfo, quota: &Value, obj: &Value) -> bool {
    let mut reqs: Vec<(String, String, Vec<String>)> = quota
        .pointer("/spec/scopes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|s| (s.to_string(), "Exists".to_string(), Vec::new()))
        .collect();
    for e in quota.pointer("/spec/scopeSelector/matchExpressions").and_then(Value::as_array).into_iter().flatten() {
        let field = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let values = e.get("values").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect();
        reqs.push((field("scopeName"), field("operator"), values));
    }
    if reqs.is_empty() {
        return true;
    }
    if !is_kind(info, "pods") {
        return false;
    }
    let terminating = obj.pointer("/spec/activeDeadlineSeconds").and_then(Value::as_i64).is_some_and(|s| s >= 0);
    reqs.iter().all(|(scope, op, values)| match scope.as_str() {
        "Terminating" => terminating,
        "NotTerminating" => !terminating,
        "BestEffort" => is_best_effort(obj),
        "NotBestEffort" => !is_best_effort(obj),
        "PriorityClass" => {
            let class = obj.pointer("/spec/priorityClassName").and_then(Value::as_str).unwrap_or("");
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn info(plural: &str) -> &'static ResourceInfo {
        api_types::registry::resources().iter().find(|r| r.group.is_empty() && r.plural == plural).expect("info")
    }

    #[test]
    fn pod_usage_counts_compute_only_while_running() {
        let now = Timestamp::now();
        let mut pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}},
            {"name": "b", "resources": {"requests": {"cpu": "1"}}}]}});
        let u = usage(info("pods"), &pod, now);
        let printed: Vec<String> = u.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            printed,
            ["count/pods=1", "cpu=1250m", "limits.memory=128Mi", "memory=64Mi", "pods=1", "requests.cpu=1250m", "requests.memory=64Mi"]
        );
        pod["status"] = json!({"phase": "Succeeded"});
        assert_eq!(usage(info("pods"), &pod, now).keys().collect::<Vec<_>>(), ["count/pods"]);
    }

    #[test]
    fn names_map_to_their_source_kinds() {
        assert_eq!(source_of("requests.cpu").map(|i| i.plural), Some("pods"));
        assert_eq!(source_of("count/deployments.apps").map(|i| (i.group, i.plural)), Some(("apps", "deployments")));
        assert_eq!(source_of("services.nodeports").map(|i| i.plural), Some("services"));
        assert_eq!(source_of("gold.storageclass.storage.k8s.io/requests.storage").map(|i| i.plural), Some("persistentvolumeclaims"));
        assert!(source_of("nonsense").is_none());
    }

    #[test]
    fn sums_print_canonically() {
        let a = parse_list(Some(&json!({"memory": "1Gi", "cpu": "500m"})));
        let b = parse_list(Some(&json!({"memory": "512Mi", "cpu": "1500m"})));
        let s = add(&a, &b);
        assert_eq!(s["memory"].to_string(), "1536Mi");
        assert_eq!(s["cpu"].to_string(), "2");
        assert_eq!(Qty::count(0).to_string(), "0");
    }

    #[test]
    fn scoped_quotas_select_pods_only() {
        let quota = json!({"spec": {"scopes": ["BestEffort"]}});
        assert!(matches_scopes(info("pods"), &quota, &json!({"spec": {"containers": [{"name": "c"}]}})));
        assert!(!matches_scopes(info("pods"), &quota, &json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}})));
        assert!(!matches_scopes(info("configmaps"), &quota, &json!({})));
        assert!(matches_scopes(info("configmaps"), &json!({"spec": {}}), &json!({})));
    }
}
