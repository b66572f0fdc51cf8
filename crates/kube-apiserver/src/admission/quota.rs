//! ResourceQuota admission, as upstream's `checkRequest`: which writes are charged,
//! the charge of a write and whether it fits a quota. What objects use under quota
//! names lives in [`api_types::quota`], shared with the resourcequota controller.

use api_types::quota::{
    add, less_than_or_equal, mask, names, pretty_print, remove_zeros, subtract_non_negative,
    ResourceList,
};
use api_types::ResourceInfo;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::Operation;

pub use api_types::quota::{constraints, matches_scopes, matching_resources, tracks, usage};

fn is_kind(info: &ResourceInfo, plural: &str) -> bool {
    info.group.is_empty() && info.plural == plural
}

/// Which operations are charged: creates, plus updates of services and claims (their
/// node ports and storage can grow).
pub fn handles(info: &ResourceInfo, op: Operation) -> bool {
    match op {
        Operation::Create => true,
        Operation::Update => is_kind(info, "services") || is_kind(info, "persistentvolumeclaims"),
        Operation::Delete => false,
    }
}

/// The charge of a write: the object's usage, minus the old object's on updates.
pub fn delta(
    info: &ResourceInfo,
    obj: &Value,
    old: Option<&Value>,
    now: DateTime<Utc>,
) -> ResourceList {
    let mut d = usage(info, obj, now);
    if let Some(old) = old {
        d = subtract_non_negative(&d, &usage(info, old, now));
    }
    remove_zeros(&d)
}

/// Charges `delta` to one quota: `Ok(None)` when it tracks none of it, `Ok(Some(used))`
/// with the new usage, or the upstream `exceeded quota` message.
pub fn charge(
    quota_name: &str,
    hard: &ResourceList,
    used: &ResourceList,
    delta: &ResourceList,
) -> Result<Option<ResourceList>, String> {
    let requested = remove_zeros(&mask(delta, &names(hard)));
    if requested.is_empty() {
        return Ok(None);
    }
    let new_usage = add(used, &requested);
    let (ok, exceeded) = less_than_or_equal(&mask(&new_usage, &names(&requested)), hard);
    if !ok {
        return Err(format!(
            "exceeded quota: {quota_name}, requested: {}, used: {}, limited: {}",
            pretty_print(&mask(&requested, &exceeded)),
            pretty_print(&mask(used, &exceeded)),
            pretty_print(&mask(hard, &exceeded)),
        ));
    }
    Ok(Some(new_usage))
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_types::quota::{parse_list, to_json};
    use serde_json::json;

    fn info(plural: &str) -> &'static ResourceInfo {
        api_types::registry::lookup("", "v1", plural)
            .unwrap_or_else(|| panic!("{plural} registered"))
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
    fn updates_are_charged_only_what_grows() {
        // ClusterIP -> NodePort on update charges only the new node ports.
        let svc = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}});
        let old = json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80}, {"port": 443}]}});
        assert_eq!(
            pretty_print(&delta(info("services"), &svc, Some(&old), Utc::now())),
            "services.nodeports=2"
        );
        assert!(handles(info("services"), Operation::Update));
        assert!(!handles(info("pods"), Operation::Update));
        assert!(handles(info("pods"), Operation::Create));
        assert!(!handles(info("configmaps"), Operation::Delete));
    }

    #[test]
    fn charge_rejects_with_upstream_message() {
        let hard = list(json!({"pods": "2", "requests.cpu": "1"}));
        let used = list(json!({"pods": "2", "requests.cpu": "500m"}));
        let d = usage(info("pods"), &pod("250m", "64Mi"), Utc::now());
        assert_eq!(
            charge("compute", &hard, &used, &d),
            Err("exceeded quota: compute, requested: pods=1, used: pods=2, limited: pods=2".into())
        );
        let used = list(json!({"pods": "1", "requests.cpu": "900m"}));
        assert_eq!(
            charge("compute", &hard, &used, &d),
            Err("exceeded quota: compute, requested: requests.cpu=250m, used: requests.cpu=900m, limited: requests.cpu=1".into())
        );
        let used = list(json!({"pods": "1", "requests.cpu": "500m"}));
        let new_used = charge("compute", &hard, &used, &d)
            .ok()
            .flatten()
            .map(|u| pretty_print(&u));
        assert_eq!(new_used.as_deref(), Some("pods=2,requests.cpu=750m"));
        // A quota that tracks nothing this object uses is not charged.
        assert_eq!(
            charge(
                "cm",
                &list(json!({"configmaps": "1"})),
                &ResourceList::new(),
                &d
            ),
            Ok(None)
        );
    }

    #[test]
    fn charge_on_zero_usage_records_the_requests_format() {
        // Upstream writes "512Mi" into status.used when usage starts at "0".
        let hard = list(json!({"limits.memory": "2Gi"}));
        let used = list(json!({"limits.memory": "0"}));
        let d = usage(info("pods"), &pod("250m", "512Mi"), Utc::now());
        let new_used = charge("mem", &hard, &used, &d)
            .ok()
            .flatten()
            .map(|u| to_json(&u));
        assert_eq!(new_used, Some(json!({"limits.memory": "512Mi"})));
    }
}
