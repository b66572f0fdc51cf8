//! LimitRanger: default container requests/limits from `type: Container` LimitRange
//! items (mutating), then min/max/maxLimitRequestRatio for containers, pods and PVCs
//! (validating), with upstream's messages.

use api_types::quantity::ParsedQuantity;
use serde_json::{json, Map, Value};

const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// One constraint bucket of a LimitRange item (`min`, `max`, ...), in the order written.
fn bucket<'a>(item: &'a Value, name: &str) -> Vec<(&'a str, ParsedQuantity)> {
    item.get(name)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        _ => return None,
                    };
                    ParsedQuantity::parse(&s).ok().map(|q| (k.as_str(), q))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn items(limit_range: &Value) -> &[Value] {
    limit_range
        .pointer("/spec/limits")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Applies one LimitRange's container defaults to a pod (upstream `PodMutateLimitFunc`).
pub fn default_pod(limit_range: &Value, pod: &mut Value) {
    let mut default_requests: Vec<(String, Value)> = Vec::new();
    let mut default_limits: Vec<(String, Value)> = Vec::new();
    for item in items(limit_range) {
        if item.get("type").and_then(Value::as_str) != Some("Container") {
            continue;
        }
        for (src, dst) in [
            ("defaultRequest", &mut default_requests),
            ("default", &mut default_limits),
        ] {
            if let Some(m) = item.get(src).and_then(Value::as_object) {
                for (k, v) in m {
                    dst.retain(|(name, _)| name != k);
                    dst.push((k.clone(), v.clone()));
                }
            }
        }
    }
    if default_requests.is_empty() && default_limits.is_empty() {
        return;
    }
    let mut notes = Vec::new();
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for (field, label) in [
        ("containers", "container"),
        ("initContainers", "init container"),
    ] {
        let Some(containers) = spec.get_mut(field).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers {
            let name = c
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let Some(c) = c.as_object_mut() else { continue };
            let resources = c.entry("resources").or_insert_with(|| json!({}));
            if !resources.is_object() {
                *resources = json!({});
            }
            let Some(resources) = resources.as_object_mut() else {
                continue;
            };
            let set_requests = merge_defaults(resources, "requests", &default_requests);
            let set_limits = merge_defaults(resources, "limits", &default_limits);
            if !set_requests.is_empty() {
                notes.push(format!(
                    "{} request for {label} {name}",
                    set_requests.join(", ")
                ));
            }
            if !set_limits.is_empty() {
                notes.push(format!(
                    "{} limit for {label} {name}",
                    set_limits.join(", ")
                ));
            }
        }
    }
    if !notes.is_empty() {
        let value = format!("LimitRanger plugin set: {}", notes.join("; "));
        let meta = api_types::meta::meta_mut(pod);
        let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
        if !annotations.is_object() {
            *annotations = json!({});
        }
        if let Some(a) = annotations.as_object_mut() {
            a.insert(ANNOTATION.into(), Value::String(value));
        }
    }
}

/// Fills missing keys of `resources[key]`; returns the names set, sorted.
fn merge_defaults(
    resources: &mut Map<String, Value>,
    key: &str,
    defaults: &[(String, Value)],
) -> Vec<String> {
    if defaults.is_empty() {
        return Vec::new();
    }
    let list = resources.entry(key).or_insert_with(|| json!({}));
    if !list.is_object() {
        *list = json!({});
    }
    let mut set = Vec::new();
    if let Some(list) = list.as_object_mut() {
        for (k, v) in defaults {
            if !list.contains_key(k) {
                list.insert(k.clone(), v.clone());
                set.push(k.clone());
            }
        }
    }
    set.sort();
    set
}

/// A resource list as parsed quantities, keeping unparsable ones out.
type Quantities = Vec<(String, ParsedQuantity)>;

fn quantities(v: Option<&Value>) -> Quantities {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| match v {
                    Value::String(s) => ParsedQuantity::parse(s).ok().map(|q| (k.clone(), q)),
                    Value::Number(n) => ParsedQuantity::parse(&n.to_string())
                        .ok()
                        .map(|q| (k.clone(), q)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

fn find<'a>(list: &'a Quantities, name: &str) -> Option<&'a ParsedQuantity> {
    list.iter().find(|(k, _)| k == name).map(|(_, q)| q)
}

/// Upstream's `MaxMilliValue`: beyond it comparisons fall back to whole units.
const MAX_MILLI_VALUE: i64 = i64::MAX / 1000;

/// `requestLimitEnforcedValues`: milli precision unless any value would overflow.
fn enforced_values(
    req: Option<&ParsedQuantity>,
    lim: Option<&ParsedQuantity>,
    enforced: &ParsedQuantity,
) -> (i64, i64, i64) {
    let v = |q: Option<&ParsedQuantity>| q.map(ParsedQuantity::value).unwrap_or(0);
    let m = |q: Option<&ParsedQuantity>| q.map(ParsedQuantity::milli_value).unwrap_or(0);
    if v(req) <= MAX_MILLI_VALUE && v(lim) <= MAX_MILLI_VALUE && enforced.value() <= MAX_MILLI_VALUE
    {
        (m(req), m(lim), enforced.milli_value())
    } else {
        (v(req), v(lim), enforced.value())
    }
}

fn min_constraint(
    limit_type: &str,
    name: &str,
    enforced: &ParsedQuantity,
    requests: &Quantities,
    limits: &Quantities,
) -> Option<String> {
    let (req, lim) = (find(requests, name), find(limits, name));
    let (r, l, e) = enforced_values(req, lim, enforced);
    let Some(req) = req else {
        return Some(format!(
            "minimum {name} usage per {limit_type} is {enforced}.  No request is specified"
        ));
    };
    if r < e {
        return Some(format!(
            "minimum {name} usage per {limit_type} is {enforced}, but request is {req}"
        ));
    }
    match lim {
        Some(lim) if l < e => Some(format!(
            "minimum {name} usage per {limit_type} is {enforced}, but limit is {lim}"
        )),
        _ => None,
    }
}

fn max_constraint(
    limit_type: &str,
    name: &str,
    enforced: &ParsedQuantity,
    requests: &Quantities,
    limits: &Quantities,
) -> Option<String> {
    let (req, lim) = (find(requests, name), find(limits, name));
    let (r, l, e) = enforced_values(req, lim, enforced);
    let Some(lim) = lim else {
        return Some(format!(
            "maximum {name} usage per {limit_type} is {enforced}.  No limit is specified"
        ));
    };
    if l > e {
        return Some(format!(
            "maximum {name} usage per {limit_type} is {enforced}, but limit is {lim}"
        ));
    }
    match req {
        Some(req) if r > e => Some(format!(
            "maximum {name} usage per {limit_type} is {enforced}, but request is {req}"
        )),
        _ => None,
    }
}

/// `maxRequestConstraint`: for kinds without limits (PVCs).
fn max_request_constraint(
    limit_type: &str,
    name: &str,
    enforced: &ParsedQuantity,
    requests: &Quantities,
) -> Option<String> {
    let req = find(requests, name);
    let (r, _, e) = enforced_values(req, None, enforced);
    let Some(req) = req else {
        return Some(format!(
            "maximum {name} usage per {limit_type} is {enforced}.  No request is specified"
        ));
    };
    (r > e).then(|| {
        format!("maximum {name} usage per {limit_type} is {enforced}, but request is {req}")
    })
}

fn ratio_constraint(
    limit_type: &str,
    name: &str,
    enforced: &ParsedQuantity,
    requests: &Quantities,
    limits: &Quantities,
) -> Option<String> {
    let (req, lim) = (find(requests, name), find(limits, name));
    let (r, l, _) = enforced_values(req, lim, enforced);
    if req.is_none() || r == 0 {
        return Some(format!(
            "{name} max limit to request ratio per {limit_type} is {enforced}, but no request is specified or request is 0"
        ));
    }
    if lim.is_none() || l == 0 {
        return Some(format!(
            "{name} max limit to request ratio per {limit_type} is {enforced}, but no limit is specified or limit is 0"
        ));
    }
    let observed = l as f64 / r as f64;
    let (scaled, max_ratio) = if enforced.value() <= MAX_MILLI_VALUE {
        (observed * 1000.0, enforced.milli_value() as f64)
    } else {
        (observed, enforced.value() as f64)
    };
    (scaled > max_ratio).then(|| {
        format!("{name} max limit to request ratio per {limit_type} is {enforced}, but provided ratio is {observed:.6}")
    })
}

fn check_all(
    item: &Value,
    limit_type: &str,
    requests: &Quantities,
    limits: &Quantities,
    errs: &mut Vec<String>,
) {
    for (k, v) in bucket(item, "min") {
        errs.extend(min_constraint(limit_type, k, &v, requests, limits));
    }
    for (k, v) in bucket(item, "max") {
        errs.extend(max_constraint(limit_type, k, &v, requests, limits));
    }
    for (k, v) in bucket(item, "maxLimitRequestRatio") {
        errs.extend(ratio_constraint(limit_type, k, &v, requests, limits));
    }
}

fn to_quantities(list: &api_types::quota::ResourceList) -> Quantities {
    list.iter()
        .filter_map(|(k, q)| {
            ParsedQuantity::parse(&q.to_string())
                .ok()
                .map(|p| (k.clone(), p))
        })
        .collect()
}

/// Checks a pod against one LimitRange (upstream `PodValidateLimitFunc`); the error is
/// the aggregate message (`[a, b]` when several).
pub fn validate_pod(limit_range: &Value, pod: &Value) -> Result<(), String> {
    let mut errs = Vec::new();
    let spec = pod.get("spec");
    for item in items(limit_range) {
        match item.get("type").and_then(Value::as_str) {
            Some("Container") => {
                for field in ["containers", "initContainers"] {
                    for c in spec
                        .and_then(|s| s.get(field))
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let res = c.get("resources");
                        let requests = quantities(res.and_then(|r| r.get("requests")));
                        let limits = quantities(res.and_then(|r| r.get("limits")));
                        check_all(item, "Container", &requests, &limits, &mut errs);
                    }
                }
            }
            Some("Pod") => {
                let requests =
                    to_quantities(&api_types::quota::pod_aggregate(pod, "requests", false));
                let limits = to_quantities(&api_types::quota::pod_aggregate(pod, "limits", false));
                check_all(item, "Pod", &requests, &limits, &mut errs);
            }
            _ => {}
        }
    }
    aggregate(errs)
}

/// Checks a PVC's storage request against `type: PersistentVolumeClaim` items.
pub fn validate_pvc(limit_range: &Value, pvc: &Value) -> Result<(), String> {
    let mut errs = Vec::new();
    let requests = quantities(pvc.pointer("/spec/resources/requests"));
    for item in items(limit_range) {
        if item.get("type").and_then(Value::as_str) != Some("PersistentVolumeClaim") {
            continue;
        }
        for (k, v) in bucket(item, "min") {
            errs.extend(min_constraint(
                "PersistentVolumeClaim",
                k,
                &v,
                &requests,
                &Vec::new(),
            ));
        }
        for (k, v) in bucket(item, "max") {
            errs.extend(max_request_constraint(
                "PersistentVolumeClaim",
                k,
                &v,
                &requests,
            ));
        }
    }
    aggregate(errs)
}

/// `utilerrors.NewAggregate(errs).Error()`.
fn aggregate(errs: Vec<String>) -> Result<(), String> {
    match errs.len() {
        0 => Ok(()),
        1 => Err(errs.into_iter().next().unwrap_or_default()),
        _ => Err(format!("[{}]", errs.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range() -> Value {
        json!({"spec": {"limits": [{
            "type": "Container",
            "max": {"cpu": "500m", "memory": "1Gi"},
            "min": {"cpu": "50m"},
            "default": {"cpu": "200m", "memory": "256Mi"},
            "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
            "maxLimitRequestRatio": {"cpu": "4"}
        }]}})
    }

    #[test]
    fn defaults_missing_requests_and_limits_and_annotates() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "web", "image": "nginx"},
            {"name": "side", "image": "x", "resources": {"limits": {"cpu": "300m"}, "requests": {"cpu": "150m"}}}
        ]}});
        default_pod(&range(), &mut pod);
        assert_eq!(
            pod["spec"]["containers"][0]["resources"],
            json!({
                "requests": {"cpu": "100m", "memory": "128Mi"},
                "limits": {"cpu": "200m", "memory": "256Mi"}
            })
        );
        assert_eq!(
            pod["spec"]["containers"][1]["resources"]["limits"],
            json!({"cpu": "300m", "memory": "256Mi"})
        );
        assert_eq!(
            pod["spec"]["containers"][1]["resources"]["requests"],
            json!({"cpu": "150m", "memory": "128Mi"})
        );
        assert_eq!(
            pod["metadata"]["annotations"][ANNOTATION],
            "LimitRanger plugin set: cpu, memory request for container web; cpu, memory limit for container web; memory request for container side; memory limit for container side"
        );
        assert_eq!(validate_pod(&range(), &pod), Ok(()));
    }

    #[test]
    fn enforces_max_min_and_ratio_with_upstream_messages() {
        let pod = |req: &str, lim: &str| json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": req, "memory": "128Mi"}, "limits": {"cpu": lim, "memory": "256Mi"}}}]}});
        assert_eq!(
            validate_pod(&range(), &pod("500m", "1")),
            Err("maximum cpu usage per Container is 500m, but limit is 1".into())
        );
        assert_eq!(
            validate_pod(&range(), &pod("10m", "20m")),
            Err("minimum cpu usage per Container is 50m, but request is 10m".into())
        );
        assert_eq!(
            validate_pod(&range(), &pod("100m", "500m")),
            Err(
                "cpu max limit to request ratio per Container is 4, but provided ratio is 5.000000"
                    .into()
            )
        );
        let no_limit = json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}}}]}});
        assert_eq!(
            validate_pod(&range(), &no_limit),
            Err("[maximum cpu usage per Container is 500m.  No limit is specified, maximum memory usage per Container is 1Gi.  No limit is specified, cpu max limit to request ratio per Container is 4, but no limit is specified or limit is 0]".into())
        );
    }

    #[test]
    fn pod_type_limits_apply_to_the_sum() {
        let lr = json!({"spec": {"limits": [{"type": "Pod", "max": {"memory": "1Gi"}}]}});
        let pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"limits": {"memory": "768Mi"}}},
            {"name": "b", "resources": {"limits": {"memory": "512Mi"}}}
        ]}});
        assert_eq!(
            validate_pod(&lr, &pod),
            Err("maximum memory usage per Pod is 1Gi, but limit is 1280Mi".into())
        );
    }

    #[test]
    fn pvc_storage_bounds() {
        let lr = json!({"spec": {"limits": [{"type": "PersistentVolumeClaim", "max": {"storage": "2Gi"}, "min": {"storage": "1Gi"}}]}});
        let pvc = |s: &str| json!({"spec": {"resources": {"requests": {"storage": s}}}});
        assert_eq!(validate_pvc(&lr, &pvc("1Gi")), Ok(()));
        assert_eq!(
            validate_pvc(&lr, &pvc("5Gi")),
            Err(
                "maximum storage usage per PersistentVolumeClaim is 2Gi, but request is 5Gi".into()
            )
        );
        assert_eq!(
            validate_pvc(&lr, &pvc("500Mi")),
            Err(
                "minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi"
                    .into()
            )
        );
    }
}
