//! Workload validation: ReplicationController, apps/v1 Deployment/ReplicaSet/
//! DaemonSet/StatefulSet, batch/v1 Job/CronJob (upstream `pkg/apis/{apps,batch}/validation`).

use serde_json::{Map, Value};

use super::field::{
    forbidden, invalid, invalid_shown, invalid_str, label_selector_repr, not_supported, required,
    string_map_repr, Path,
};
use super::pod::validate_pod_template;
use super::{
    get_i64, get_list, get_obj, get_str, names, nonnegative, obj_or_empty, objectmeta,
    FIELD_IMMUTABLE,
};
use crate::selectors::LabelSelector;
use crate::status::StatusCause;

const SELECTOR_MISMATCH: &str = "`selector` does not match template `labels`";

fn spec_of(obj: &Value) -> &Value {
    obj_or_empty(obj.get("spec"))
}

fn template_labels(spec: &Value) -> std::collections::BTreeMap<String, String> {
    spec.get("template")
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn template_labels_value(spec: &Value) -> Option<&Value> {
    spec.get("template")?.get("metadata")?.get("labels")
}

/// `ValidateLabelSelector` for a `metav1.LabelSelector` at `path`.
pub fn validate_label_selector(sel: &Value, path: &Path) -> Vec<StatusCause> {
    let mut errs = objectmeta::validate_labels(sel.get("matchLabels"), &path.child("matchLabels"));
    let exprs = path.child("matchExpressions");
    for (i, expr) in get_list(sel, "matchExpressions").iter().enumerate() {
        let ep = exprs.index(i);
        let values = get_list(expr, "values");
        match get_str(expr, "operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(required(
                        &ep.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(forbidden(
                        &ep.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => errs.push(invalid_str(
                &ep.child("operator"),
                other,
                "not a valid selector operator",
            )),
        }
        let key = get_str(expr, "key");
        for msg in names::is_qualified_name(key) {
            errs.push(invalid_str(&ep.child("key"), key, &msg));
        }
        for (j, v) in values.iter().enumerate() {
            let v = v.as_str().unwrap_or_default();
            for msg in names::is_valid_label_value(v) {
                errs.push(invalid_str(&ep.child("values").index(j), v, &msg));
            }
        }
    }
    errs
}

fn selector_is_empty(sel: &Value) -> bool {
    get_obj(sel, "matchLabels")
        .and_then(Value::as_object)
        .is_none_or(Map::is_empty)
        && get_list(sel, "matchExpressions").is_empty()
}

/// Whether the metav1 selector matches the template labels; `None` if it is not a
/// valid selector. A missing selector matches nothing, as upstream's `LabelSelectorAsSelector(nil)`.
fn selector_matches_template(sel: Option<&Value>, spec: &Value) -> Option<bool> {
    let Some(sel) = sel.filter(|s| !s.is_null()) else {
        return Some(false);
    };
    let parsed = LabelSelector::from_label_selector_json(sel).ok()?;
    Some(parsed.matches(&template_labels(spec)))
}

fn mismatch(spec: &Value, template_path: &Path) -> StatusCause {
    invalid_shown(
        &template_path.children(&["metadata", "labels"]),
        &string_map_repr(template_labels_value(spec)),
        SELECTOR_MISMATCH,
    )
}

/// The template must have `restartPolicy: Always` and no `activeDeadlineSeconds`.
fn always_restart_template(spec: &Value, tp: &Path, kind: &str, errs: &mut Vec<StatusCause>) {
    let pod_spec = spec.get("template").and_then(|t| t.get("spec"));
    let policy = pod_spec
        .and_then(|s| s.get("restartPolicy"))
        .cloned()
        .unwrap_or(Value::String(String::new()));
    if policy.as_str() != Some("Always") {
        errs.push(not_supported(
            &tp.children(&["spec", "restartPolicy"]),
            &policy,
            &["Always"],
        ));
    }
    if pod_spec.is_some_and(|s| s.get("activeDeadlineSeconds").is_some_and(|v| !v.is_null())) {
        errs.push(forbidden(
            &tp.children(&["spec", "activeDeadlineSeconds"]),
            &format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
}

/// Shared by Deployment and ReplicaSet (`ValidateReplicaSetSpec` and friends).
fn validate_rs_like(spec: &Value, sp: &Path, kind: &str, errs: &mut Vec<StatusCause>) {
    nonnegative(spec, "replicas", sp, errs);
    nonnegative(spec, "minReadySeconds", sp, errs);
    let sel = spec.get("selector").filter(|s| !s.is_null());
    match sel {
        None => errs.push(required(&sp.child("selector"), "")),
        Some(s) => {
            errs.extend(validate_label_selector(s, &sp.child("selector")));
            if selector_is_empty(s) {
                errs.push(invalid_shown(
                    &sp.child("selector"),
                    &label_selector_repr(Some(s)),
                    "empty selector is invalid for deployment",
                ));
            }
        }
    }
    let tp = sp.child("template");
    match selector_matches_template(sel, spec) {
        None => errs.push(invalid_shown(
            &sp.child("selector"),
            &label_selector_repr(sel),
            "invalid label selector",
        )),
        Some(matches) => {
            let empty = sel.is_some_and(selector_is_empty);
            if !empty && !matches && spec.get("template").is_some() {
                errs.push(mismatch(spec, &tp));
            }
            errs.extend(validate_pod_template(spec.get("template"), &tp));
            if spec.get("template").is_some() {
                always_restart_template(spec, &tp, kind, errs);
            }
        }
    }
}

pub fn validate_replica_set(obj: &Value) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    validate_rs_like(spec_of(obj), &Path::new("spec"), "ReplicaSet", &mut errs);
    errs
}

pub fn validate_deployment(obj: &Value) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    let spec = spec_of(obj);
    let sp = Path::new("spec");
    validate_rs_like(spec, &sp, "ReplicaSet", &mut errs);
    validate_deployment_strategy(spec.get("strategy"), &sp.child("strategy"), &mut errs);
    nonnegative(spec, "revisionHistoryLimit", &sp, &mut errs);
    if let Some(pds) = get_i64(spec, "progressDeadlineSeconds") {
        nonnegative(spec, "progressDeadlineSeconds", &sp, &mut errs);
        if pds <= get_i64(spec, "minReadySeconds").unwrap_or(0) {
            errs.push(invalid(
                &sp.child("progressDeadlineSeconds"),
                &spec["progressDeadlineSeconds"],
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
}

/// An IntOrString that is a non-negative int or a `N%` string; returns its
/// comparable value (percent or count).
fn int_or_percent(v: Option<&Value>, path: &Path, errs: &mut Vec<StatusCause>) -> Option<i64> {
    match v? {
        Value::Number(n) => {
            let n = n.as_i64().unwrap_or(-1);
            if n < 0 {
                errs.push(invalid_shown(
                    path,
                    &n.to_string(),
                    super::IS_NEGATIVE_ERROR_MSG,
                ));
            }
            Some(n)
        }
        Value::String(s) => {
            match s.strip_suffix('%').and_then(|d| d.parse::<i64>().ok()) {
                Some(p)
                    if s.strip_suffix('%')
                        .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit())) =>
                {
                    if p > 100 {
                        errs.push(invalid_str(path, s, "must not be greater than 100%"));
                    }
                    Some(p)
                }
                _ => {
                    errs.push(invalid_str(
                    path,
                    s,
                    &names::regex_error("a valid percent string must be a numeric string followed by an ending '%'", "[0-9]+%", &["1%", "93%"]),
                ));
                    None
                }
            }
        }
        _ => None,
    }
}

fn validate_max_unavailable_surge(ru: &Value, path: &Path, errs: &mut Vec<StatusCause>) {
    let unavailable = int_or_percent(
        ru.get("maxUnavailable"),
        &path.child("maxUnavailable"),
        errs,
    );
    let surge = int_or_percent(ru.get("maxSurge"), &path.child("maxSurge"), errs);
    if unavailable.unwrap_or(0) == 0 && surge.unwrap_or(0) == 0 {
        errs.push(invalid(
            &path.child("maxUnavailable"),
            ru.get("maxUnavailable").unwrap_or(&Value::from(0)),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
}

fn validate_deployment_strategy(
    strategy: Option<&Value>,
    path: &Path,
    errs: &mut Vec<StatusCause>,
) {
    let empty = Value::Object(Map::new());
    let strategy = strategy.unwrap_or(&empty);
    let rolling = strategy.get("rollingUpdate").filter(|v| !v.is_null());
    match get_str(strategy, "type") {
        "Recreate" => {
            if rolling.is_some() {
                errs.push(forbidden(
                    &path.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match rolling {
            None => errs.push(required(
                &path.child("rollingUpdate"),
                "this should be defaulted and never be nil",
            )),
            Some(ru) => validate_max_unavailable_surge(ru, &path.child("rollingUpdate"), errs),
        },
        _ => errs.push(not_supported(
            &path.child("type"),
            strategy
                .get("type")
                .unwrap_or(&Value::String(String::new())),
            &["Recreate", "RollingUpdate"],
        )),
    }
}

pub fn validate_replication_controller(obj: &Value) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    let spec = spec_of(obj);
    let sp = Path::new("spec");
    nonnegative(spec, "minReadySeconds", &sp, &mut errs);
    nonnegative(spec, "replicas", &sp, &mut errs);
    let selector = spec.get("selector").and_then(Value::as_object);
    if selector.is_none_or(Map::is_empty) {
        errs.push(required(&sp.child("selector"), ""));
    }
    errs.extend(objectmeta::validate_labels(
        spec.get("selector"),
        &sp.child("selector"),
    ));
    let tp = sp.child("template");
    if spec.get("template").is_none_or(Value::is_null) {
        errs.push(required(&tp, ""));
        return errs;
    }
    if let Some(sel) = selector.filter(|s| !s.is_empty()) {
        let labels = template_labels(spec);
        let matches = sel
            .iter()
            .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str());
        if !matches {
            errs.push(mismatch(spec, &tp));
        }
    }
    errs.extend(validate_pod_template(spec.get("template"), &tp));
    always_restart_template(spec, &tp, "ReplicationController", &mut errs);
    errs
}

pub fn validate_daemon_set(obj: &Value) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    let spec = spec_of(obj);
    let sp = Path::new("spec");
    let sel = spec.get("selector").filter(|s| !s.is_null());
    if let Some(s) = sel {
        errs.extend(validate_label_selector(s, &sp.child("selector")));
    }
    let tp = sp.child("template");
    if selector_matches_template(sel, spec) == Some(false) {
        errs.push(mismatch(spec, &tp));
    }
    if sel.is_some_and(selector_is_empty) {
        errs.push(invalid_shown(
            &sp.child("selector"),
            &label_selector_repr(sel),
            "empty selector is invalid for daemonset",
        ));
    }
    errs.extend(validate_pod_template(spec.get("template"), &tp));
    always_restart_template(spec, &tp, "DaemonSet", &mut errs);
    nonnegative(spec, "minReadySeconds", &sp, &mut errs);
    nonnegative(spec, "revisionHistoryLimit", &sp, &mut errs);
    let up = sp.child("updateStrategy");
    let strategy = spec
        .get("updateStrategy")
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    match get_str(&strategy, "type") {
        "OnDelete" => {}
        "RollingUpdate" => {
            if let Some(ru) = get_obj(&strategy, "rollingUpdate") {
                validate_max_unavailable_surge(ru, &up.child("rollingUpdate"), &mut errs);
            }
        }
        _ => errs.push(not_supported(
            &up.child("type"),
            strategy
                .get("type")
                .unwrap_or(&Value::String(String::new())),
            &["OnDelete", "RollingUpdate"],
        )),
    }
    errs
}

pub fn validate_stateful_set(obj: &Value) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    let spec = spec_of(obj);
    let sp = Path::new("spec");
    match get_str(spec, "podManagementPolicy") {
        "" => errs.push(required(&sp.child("podManagementPolicy"), "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(invalid_str(
            &sp.child("podManagementPolicy"),
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let strategy = spec
        .get("updateStrategy")
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    let up = sp.child("updateStrategy");
    match get_str(&strategy, "type") {
        "" => errs.push(required(&up, "")),
        "OnDelete" => {
            if let Some(ru) = get_obj(&strategy, "rollingUpdate") {
                errs.push(invalid(
                    &up.child("rollingUpdate"),
                    ru,
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = get_obj(&strategy, "rollingUpdate") {
                nonnegative(ru, "partition", &up.child("rollingUpdate"), &mut errs);
            }
        }
        _ => errs.push(invalid(
            &up,
            &strategy,
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    if let Some(policy) = get_obj(spec, "persistentVolumeClaimRetentionPolicy") {
        let pp = sp.child("persistentVolumeClaimRetentionPolicy");
        for field in ["whenDeleted", "whenScaled"] {
            let v = policy
                .get(field)
                .cloned()
                .unwrap_or(Value::String(String::new()));
            if !matches!(v.as_str(), Some("Retain" | "Delete")) {
                errs.push(not_supported(&pp.child(field), &v, &["Retain", "Delete"]));
            }
        }
    }
    nonnegative(spec, "replicas", &sp, &mut errs);
    nonnegative(spec, "minReadySeconds", &sp, &mut errs);
    let sel = spec.get("selector").filter(|s| !s.is_null());
    match sel {
        None => errs.push(required(&sp.child("selector"), "")),
        Some(s) => {
            errs.extend(validate_label_selector(s, &sp.child("selector")));
            if selector_is_empty(s) {
                errs.push(invalid_shown(
                    &sp.child("selector"),
                    &label_selector_repr(Some(s)),
                    "empty selector is invalid for statefulset",
                ));
            }
        }
    }
    let tp = sp.child("template");
    match selector_matches_template(sel, spec) {
        None => errs.push(invalid_shown(
            &sp.child("selector"),
            &label_selector_repr(sel),
            "",
        )),
        Some(matches) => {
            if !sel.is_some_and(selector_is_empty) && !matches && spec.get("template").is_some() {
                errs.push(mismatch(spec, &tp));
            }
            // volumeClaimTemplates become volumes of every pod, so mounts may name
            // them (upstream skips the pod-spec check for exactly this reason)
            let template = spec.get("template").map(|t| with_claim_volumes(t, spec));
            errs.extend(validate_pod_template(template.as_ref(), &tp));
        }
    }
    always_restart_template(spec, &tp, "StatefulSet", &mut errs);
    errs
}

/// The StatefulSet's pod template with a `persistentVolumeClaim` volume appended for
/// each claim template not already named in `volumes`, as the pods will have.
fn with_claim_volumes(template: &Value, spec: &Value) -> Value {
    let mut template = template.clone();
    let claims: Vec<String> = spec
        .get("volumeClaimTemplates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.pointer("/metadata/name").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    if claims.is_empty() {
        return template;
    }
    let Some(pod_spec) = template.get_mut("spec").and_then(Value::as_object_mut) else {
        return template;
    };
    let volumes = pod_spec
        .entry("volumes")
        .or_insert_with(|| Value::Array(Vec::new()));
    if volumes.is_null() {
        *volumes = Value::Array(Vec::new());
    }
    if let Some(list) = volumes.as_array_mut() {
        for claim in claims {
            let present = list
                .iter()
                .any(|v| v.get("name").and_then(Value::as_str) == Some(claim.as_str()));
            if !present {
                list.push(serde_json::json!({"name": claim, "persistentVolumeClaim": {"claimName": claim}}));
            }
        }
    }
    template
}

/// `validateJobSpec`: the part shared by Jobs and CronJob job templates.
fn validate_job_spec_common(spec: &Value, sp: &Path, errs: &mut Vec<StatusCause>) {
    for field in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ] {
        nonnegative(spec, field, sp, errs);
    }
    if let Some(mode) = spec.get("completionMode").filter(|v| !v.is_null()) {
        match mode.as_str() {
            Some("NonIndexed") => {}
            Some("Indexed") => {
                if spec.get("completions").is_none_or(Value::is_null) {
                    errs.push(required(
                        &sp.child("completions"),
                        "when completion mode is Indexed",
                    ));
                }
            }
            _ => errs.push(not_supported(
                &sp.child("completionMode"),
                mode,
                &["NonIndexed", "Indexed"],
            )),
        }
    }
    let tp = sp.child("template");
    errs.extend(validate_pod_template(spec.get("template"), &tp));
    let policy = spec
        .get("template")
        .and_then(|t| t.get("spec"))
        .and_then(|s| s.get("restartPolicy"))
        .cloned()
        .unwrap_or(Value::String(String::new()));
    let rp = tp.children(&["spec", "restartPolicy"]);
    match policy.as_str() {
        Some("OnFailure" | "Never") => {}
        Some("Always" | "") | None => {
            if spec.get("podFailurePolicy").is_none_or(Value::is_null) {
                errs.push(required(&rp, "valid values: \"OnFailure\", \"Never\""));
            } else {
                errs.push(invalid(
                    &rp,
                    &policy,
                    "only \"Never\" is supported when podFailurePolicy is specified",
                ));
            }
        }
        Some(_) => errs.push(not_supported(&rp, &policy, &["OnFailure", "Never"])),
    }
}

pub fn validate_job(obj: &Value) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    let spec = spec_of(obj);
    let sp = Path::new("spec");
    validate_job_spec_common(spec, &sp, &mut errs);
    let sel = spec.get("selector").filter(|s| !s.is_null());
    match sel {
        None => errs.push(required(&sp.child("selector"), "")),
        Some(s) => errs.extend(validate_label_selector(s, &sp.child("selector"))),
    }
    if sel.is_some() && selector_matches_template(sel, spec) == Some(false) {
        errs.push(mismatch(spec, &sp.child("template")));
    }
    errs
}

pub fn validate_cron_job(obj: &Value) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    let name = obj
        .get("metadata")
        .map(|m| get_str(m, "name"))
        .unwrap_or_default();
    if name.len() > 52 {
        errs.push(invalid_str(
            &Path::new("metadata.name"),
            name,
            "must be no more than 52 characters",
        ));
    }
    let spec = spec_of(obj);
    let sp = Path::new("spec");
    let schedule = get_str(spec, "schedule");
    if schedule.is_empty() {
        errs.push(required(&sp.child("schedule"), ""));
    } else if schedule.contains("TZ") {
        errs.push(invalid_str(
            &sp.child("schedule"),
            schedule,
            "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
        ));
    } else if let Err(e) = check_cron_schedule(schedule) {
        errs.push(invalid_str(&sp.child("schedule"), schedule, &e));
    }
    nonnegative(spec, "startingDeadlineSeconds", &sp, &mut errs);
    let policy = spec
        .get("concurrencyPolicy")
        .cloned()
        .unwrap_or(Value::String(String::new()));
    match policy.as_str() {
        Some("Allow" | "Forbid" | "Replace") => {}
        Some("") | None => errs.push(required(&sp.child("concurrencyPolicy"), "")),
        _ => errs.push(not_supported(
            &sp.child("concurrencyPolicy"),
            &policy,
            &["Allow", "Forbid", "Replace"],
        )),
    }
    let jp = sp.child("jobTemplate");
    let job_spec = obj_or_empty(spec.get("jobTemplate").and_then(|t| t.get("spec")));
    validate_job_spec_common(job_spec, &jp.child("spec"), &mut errs);
    if let Some(sel) = job_spec.get("selector").filter(|s| !s.is_null()) {
        errs.push(invalid_shown(
            &jp.children(&["spec", "selector"]),
            &label_selector_repr(Some(sel)),
            "`selector` will be auto-generated",
        ));
    }
    if job_spec.get("manualSelector").and_then(Value::as_bool) == Some(true) {
        errs.push(not_supported(
            &jp.children(&["spec", "manualSelector"]),
            &Value::Bool(true),
            &["nil", "false"],
        ));
    }
    nonnegative(spec, "successfulJobsHistoryLimit", &sp, &mut errs);
    nonnegative(spec, "failedJobsHistoryLimit", &sp, &mut errs);
    errs
}

/// A light check of robfig/cron's standard syntax (5 fields or a `@descriptor`).
fn check_cron_schedule(schedule: &str) -> Result<(), String> {
    if let Some(desc) = schedule.strip_prefix('@') {
        return match desc {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            d if d.starts_with("every ") => Ok(()),
            _ => Err(format!("unrecognized descriptor: {schedule}")),
        };
    }
    let fields: Vec<&str> = schedule.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    for f in fields {
        if !f
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '*' | '/' | ',' | '-' | '?'))
        {
            return Err(format!("failed to parse int from {f}"));
        }
    }
    Ok(())
}

/// apps/v1 selectors are immutable.
pub fn validate_selector_immutable(new: &Value, old: &Value) -> Vec<StatusCause> {
    let (n, o) = (spec_of(new), spec_of(old));
    let (ns, os) = (
        n.get("selector").filter(|v| !v.is_null()),
        o.get("selector").filter(|v| !v.is_null()),
    );
    if ns != os {
        return vec![invalid_shown(
            &Path::new("spec.selector"),
            &label_selector_repr(ns),
            FIELD_IMMUTABLE,
        )];
    }
    Vec::new()
}

pub fn validate_stateful_set_update(new: &Value, old: &Value) -> Vec<StatusCause> {
    let (mut n, o) = (spec_of(new).clone(), spec_of(old));
    if let Some(m) = n.as_object_mut() {
        for field in [
            "replicas",
            "template",
            "updateStrategy",
            "minReadySeconds",
            "ordinals",
            "revisionHistoryLimit",
            "persistentVolumeClaimRetentionPolicy",
        ] {
            match o.get(field) {
                Some(v) => m.insert(field.into(), v.clone()),
                None => m.remove(field),
            };
        }
    }
    if &n != o {
        return vec![forbidden(
            &Path::new("spec"),
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        )];
    }
    Vec::new()
}

pub fn validate_job_update(new: &Value, old: &Value) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    let (n, o) = (spec_of(new), spec_of(old));
    let sp = Path::new("spec");
    let get = |v: &Value, k: &str| v.get(k).filter(|x| !x.is_null()).cloned();
    if get_str(n, "completionMode") != "Indexed" && get(n, "completions") != get(o, "completions") {
        errs.push(invalid(
            &sp.child("completions"),
            &n.get("completions").cloned().unwrap_or(Value::Null),
            FIELD_IMMUTABLE,
        ));
    }
    if get(n, "selector") != get(o, "selector") {
        errs.push(invalid_shown(
            &sp.child("selector"),
            &label_selector_repr(n.get("selector")),
            FIELD_IMMUTABLE,
        ));
    }
    if get(n, "template") != get(o, "template") {
        let shown = n
            .get("template")
            .map(|t| format!("core.PodTemplateSpec{t}"))
            .unwrap_or_default();
        errs.push(invalid_shown(
            &sp.child("template"),
            &shown,
            FIELD_IMMUTABLE,
        ));
    }
    for field in ["completionMode", "podFailurePolicy", "backoffLimitPerIndex"] {
        if get(n, field) != get(o, field) {
            errs.push(invalid(
                &sp.child(field),
                &n.get(field).cloned().unwrap_or(Value::Null),
                FIELD_IMMUTABLE,
            ));
        }
    }
    errs
}
