//! Pod and pod-template validation (upstream `ValidatePodSpec`, `ValidatePodUpdate`).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::container::validate_container;
use super::field::{
    duplicate, forbidden, invalid, invalid_int, invalid_str, not_supported, required, Path,
};
use super::volumes::validate_volumes;
use super::{get_i64, get_list, get_obj, get_str, names, nonnegative, obj_or_empty, objectmeta};
use crate::status::StatusCause;

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];

/// The pod updates upstream allows, as printed in its Forbidden message.
pub const POD_UPDATABLE_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

pub fn validate_pod(pod: &Value) -> Vec<StatusCause> {
    validate_pod_spec(
        obj_or_empty(crate::meta::field(pod, "spec")),
        &Path::new("spec"),
    )
}

/// A `PodTemplateSpec` at `path` (`spec.template`): labels at `<path>.labels` and
/// annotations at `<path>.annotations`, as upstream prints them, then the pod spec.
pub fn validate_pod_template(template: Option<&Value>, path: &Path) -> Vec<StatusCause> {
    let Some(template) = template.filter(|t| t.is_object()) else {
        return vec![required(path, "")];
    };
    let meta = crate::meta::field(template, "metadata");
    let mut errs = objectmeta::validate_labels(
        meta.and_then(|m| crate::meta::field(m, "labels")),
        &path.child("labels"),
    );
    errs.extend(objectmeta::validate_annotations(
        meta.and_then(|m| crate::meta::field(m, "annotations")),
        &path.child("annotations"),
    ));
    let spec = obj_or_empty(crate::meta::field(template, "spec"));
    errs.extend(validate_pod_spec(spec, &path.child("spec")));
    if !get_list(spec, "ephemeralContainers").is_empty() {
        errs.push(forbidden(
            &path.children(&["spec", "ephemeralContainers"]),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// `ValidatePodSpec` for the spec at `path`.
pub fn validate_pod_spec(spec: &Value, path: &Path) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    let volumes = validate_volumes(get_list(spec, "volumes"), &path.child("volumes"), &mut errs);
    let host_network = spec
        .get("hostNetwork")
        .and_then(Value::as_bool)
        .unwrap_or(false);

    let containers = get_list(spec, "containers");
    let containers_path = path.child("containers");
    if containers.is_empty() {
        errs.push(required(&containers_path, ""));
    }
    let mut all_names = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        let cp = containers_path.index(i);
        validate_container(c, &volumes, &cp, host_network, false, &mut errs);
        let name = get_str(c, "name");
        if !all_names.insert(name.to_string()) {
            errs.push(duplicate(
                &cp.child("name"),
                &Value::String(name.to_string()),
            ));
        }
        if crate::meta::field(c, "restartPolicy").is_some_and(|v| !v.is_null()) {
            errs.push(forbidden(
                &cp.child("restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    let init_path = path.child("initContainers");
    for (i, c) in get_list(spec, "initContainers").iter().enumerate() {
        let cp = init_path.index(i);
        validate_container(c, &volumes, &cp, host_network, true, &mut errs);
        let name = get_str(c, "name");
        if all_names.contains(name) {
            errs.push(duplicate(
                &cp.child("name"),
                &Value::String(name.to_string()),
            ));
        } else if !name.is_empty() {
            all_names.insert(name.to_string());
        }
    }

    let restart_policy = spec
        .get("restartPolicy")
        .cloned()
        .unwrap_or(Value::String(String::new()));
    match restart_policy.as_str() {
        Some("") | None => errs.push(required(&path.child("restartPolicy"), "")),
        Some(p) if RESTART_POLICIES.contains(&p) => {}
        _ => errs.push(not_supported(
            &path.child("restartPolicy"),
            &restart_policy,
            RESTART_POLICIES,
        )),
    }
    let dns_policy = spec
        .get("dnsPolicy")
        .cloned()
        .unwrap_or(Value::String(String::new()));
    match dns_policy.as_str() {
        Some("") | None => errs.push(required(&path.child("dnsPolicy"), "")),
        Some(p) if DNS_POLICIES.contains(&p) => {}
        _ => errs.push(not_supported(
            &path.child("dnsPolicy"),
            &dns_policy,
            DNS_POLICIES,
        )),
    }
    if dns_policy.as_str() == Some("None") && get_obj(spec, "dnsConfig").is_none() {
        errs.push(required(
            &path.child("dnsConfig"),
            "must provide `dnsConfig` when `dnsPolicy` is None",
        ));
    }
    errs.extend(objectmeta::validate_labels(
        crate::meta::field(spec, "nodeSelector"),
        &path.child("nodeSelector"),
    ));
    for (field, validator) in [
        (
            "serviceAccountName",
            names::name_is_dns_subdomain as names::NameValidator,
        ),
        ("nodeName", names::name_is_dns_subdomain),
        ("priorityClassName", names::name_is_dns_subdomain),
    ] {
        let value = get_str(spec, field);
        if !value.is_empty() {
            for msg in validator(value, false) {
                errs.push(invalid_str(&path.child(field), value, &msg));
            }
        }
    }
    if let Some(ads) = get_i64(spec, "activeDeadlineSeconds") {
        if !(1..=i64::from(i32::MAX)).contains(&ads) {
            errs.push(invalid_int(
                &path.child("activeDeadlineSeconds"),
                ads,
                &names::inclusive_range_error(1, i64::from(i32::MAX)),
            ));
        }
    }
    nonnegative(spec, "terminationGracePeriodSeconds", path, &mut errs);
    for field in ["hostname", "subdomain"] {
        let value = get_str(spec, field);
        if !value.is_empty() {
            for msg in names::is_dns1123_label(value) {
                errs.push(invalid_str(&path.child(field), value, &msg));
            }
        }
    }
    validate_tolerations(
        get_list(spec, "tolerations"),
        &path.child("tolerations"),
        &mut errs,
    );
    errs
}

fn validate_tolerations(tolerations: &[Value], path: &Path, errs: &mut Vec<StatusCause>) {
    for (i, t) in tolerations.iter().enumerate() {
        let tp = path.index(i);
        let key = get_str(t, "key");
        if !key.is_empty() {
            for msg in names::is_qualified_name(key) {
                errs.push(invalid_str(&tp.child("key"), key, &msg));
            }
        }
        let operator = get_str(t, "operator");
        if key.is_empty() && operator != "Exists" {
            errs.push(invalid_str(&tp.child("operator"), operator, "operator must be Exists when `key` is empty, which means \"match all values and all keys\""));
        }
        let effect = get_str(t, "effect");
        if crate::meta::field(t, "tolerationSeconds").is_some_and(|v| !v.is_null())
            && effect != "NoExecute"
        {
            errs.push(invalid_str(
                &tp.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        let value = get_str(t, "value");
        match operator {
            "" | "Equal" => {
                let msgs = names::is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(invalid_str(&tp.child("operator"), value, &msgs.join(";")));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(invalid(
                        &tp.child("operator"),
                        t,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(not_supported(
                &tp.child("operator"),
                &Value::String(other.to_string()),
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute")
        {
            errs.push(not_supported(
                &tp.child("effect"),
                &Value::String(effect.to_string()),
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
}

/// `ValidatePodUpdate`: only images, activeDeadlineSeconds (shortened), added
/// tolerations and a negative grace period bumped to 1 may change.
pub fn validate_pod_update(new: &Value, old: &Value) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    let spec_path = Path::new("spec");
    let empty = Value::Object(Map::new());
    let new_spec = crate::meta::field(new, "spec").unwrap_or(&empty);
    let old_spec = crate::meta::field(old, "spec").unwrap_or(&empty);

    let ads_path = spec_path.child("activeDeadlineSeconds");
    match (
        get_i64(new_spec, "activeDeadlineSeconds"),
        get_i64(old_spec, "activeDeadlineSeconds"),
    ) {
        (Some(n), Some(o)) if n > o => {
            errs.push(invalid_int(
                &ads_path,
                n,
                "must be less than or equal to previous value",
            ));
        }
        (None, Some(_)) => errs.push(invalid(
            &ads_path,
            &Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    // Tolerations may only be added to.
    let new_tols = get_list(new_spec, "tolerations");
    for (i, old_tol) in get_list(old_spec, "tolerations").iter().enumerate() {
        if !new_tols
            .iter()
            .any(|t| normalized(t) == normalized(old_tol))
        {
            errs.push(forbidden(
                &spec_path.child("tolerations").index(i),
                "existing toleration can not be modified except its tolerationSeconds",
            ));
        }
    }

    // Mask the fields that may change, then compare what is left.
    let mut munged = new_spec.clone();
    if let Some(m) = munged.as_object_mut() {
        for list in ["containers", "initContainers"] {
            let old_list = get_list(old_spec, list);
            if let Some(Value::Array(items)) = m.get_mut(list) {
                if items.len() == old_list.len() {
                    for (item, old_item) in items.iter_mut().zip(old_list) {
                        if let (Some(obj), Some(old_image)) =
                            (item.as_object_mut(), crate::meta::field(old_item, "image"))
                        {
                            obj.insert("image".into(), old_image.clone());
                        }
                    }
                }
            }
        }
        for field in ["activeDeadlineSeconds", "tolerations"] {
            match old_spec.get(field) {
                Some(v) => m.insert(field.into(), v.clone()),
                None => m.remove(field),
            };
        }
        let old_grace = get_i64(old_spec, "terminationGracePeriodSeconds");
        if old_grace.is_some_and(|g| g < 0)
            && get_i64(new_spec, "terminationGracePeriodSeconds") == Some(1)
        {
            m.insert(
                "terminationGracePeriodSeconds".into(),
                old_spec["terminationGracePeriodSeconds"].clone(),
            );
        }
    }
    if normalized(&munged) != normalized(old_spec) {
        let changed = changed_fields(&normalized(&munged), &normalized(old_spec));
        errs.push(forbidden(
            &spec_path,
            &format!("pod updates may not change fields other than {POD_UPDATABLE_FIELDS}\n  core.PodSpec{{\n{}  }}", changed),
        ));
    }
    errs
}

/// Drops nulls, empty strings, `false`, empty maps and lists: Go's semantic equality
/// treats those as equal to absent for the fields a pod spec round-trips.
fn normalized(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), normalized(v)))
                .filter(|(_, v)| !is_empty_value(v))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalized).collect()),
        other => other.clone(),
    }
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Number(_) => false,
    }
}

/// A short diff of top-level spec fields, in the spirit of upstream's `cmp.Diff`.
fn changed_fields(new: &Value, old: &Value) -> String {
    let (Some(n), Some(o)) = (new.as_object(), old.as_object()) else {
        return String::new();
    };
    let keys: BTreeSet<&String> = n.keys().chain(o.keys()).collect();
    let mut out = String::new();
    for k in keys {
        if n.get(k) != o.get(k) {
            if let Some(v) = o.get(k) {
                out.push_str(&format!("-   {k}: {v}\n"));
            }
            if let Some(v) = n.get(k) {
                out.push_str(&format!("+   {k}: {v}\n"));
            }
        }
    }
    out
}
