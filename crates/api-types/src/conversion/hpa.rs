//! `autoscaling/v1` ⇄ `autoscaling/v2` HorizontalPodAutoscaler, as upstream's
//! `pkg/apis/autoscaling/v1/conversion.go`: the v1 `targetCPUUtilizationPercentage`
//! is a `Resource` cpu `Utilization` metric, `currentCPUUtilizationPercentage` its
//! current `averageUtilization`; whatever v1 cannot say (other metrics, current
//! metrics, conditions, behavior) rides in round-trip annotations on the v1 form.
//!
//! Both directions look at the object's own `apiVersion` and do nothing when it is
//! already in the wanted form, so defaulting, admission and the store edges may call
//! them on either form.

use serde_json::{json, Map, Value};

pub const API_VERSION_V1: &str = "autoscaling/v1";
pub const API_VERSION_V2: &str = "autoscaling/v2";
/// `autoscaling.MetricSpecsAnnotation`.
pub const METRIC_SPECS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
/// `autoscaling.MetricStatusesAnnotation`.
pub const METRIC_STATUSES_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
/// `autoscaling.HorizontalPodAutoscalerConditionsAnnotation`.
pub const CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";
/// `autoscaling.BehaviorSpecsAnnotation`.
pub const BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";
/// `autoscaling.DefaultCPUUtilization`.
pub const DEFAULT_CPU_UTILIZATION: i64 = 80;

const ROUND_TRIP_ANNOTATIONS: [&str; 4] = [
    METRIC_SPECS_ANNOTATION,
    METRIC_STATUSES_ANNOTATION,
    CONDITIONS_ANNOTATION,
    BEHAVIOR_ANNOTATION,
];

fn api_version(obj: &Value) -> Option<&str> {
    obj.get("apiVersion").and_then(Value::as_str)
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

fn put(out: &mut Map<String, Value>, key: &str, v: Option<&Value>) {
    if let Some(v) = v.filter(|x| !x.is_null()) {
        out.insert(key.to_string(), v.clone());
    }
}

fn is_cpu_resource(m: &Value) -> bool {
    m.get("type").and_then(Value::as_str) == Some("Resource")
        && m.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
}

fn list(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// Removes the round-trip annotations (upstream `DropRoundTripHorizontalPodAutoscalerAnnotations`),
/// returning them by key.
fn take_round_trip_annotations(obj: &mut Value) -> Map<String, Value> {
    let mut taken = Map::new();
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return taken;
    };
    if let Some(ann) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
        for key in ROUND_TRIP_ANNOTATIONS {
            if let Some(v) = ann.remove(key) {
                taken.insert(key.to_string(), v);
            }
        }
        if ann.is_empty() {
            meta.remove("annotations");
        }
    }
    taken
}

fn set_annotations(obj: &mut Value, add: Map<String, Value>) {
    if add.is_empty() {
        return;
    }
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    let meta = root.entry("metadata").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    let ann = meta.entry("annotations").or_insert_with(|| json!({}));
    if !ann.is_object() {
        *ann = json!({});
    }
    if let Some(ann) = ann.as_object_mut() {
        ann.extend(add);
    }
}

/// Parses a round-trip annotation's JSON text; a malformed value is dropped (upstream
/// fails the conversion, which here would make the object unreadable).
fn parse_annotation(taken: &Map<String, Value>, key: &str) -> Option<Value> {
    let text = taken.get(key)?.as_str()?;
    serde_json::from_str(text)
        .ok()
        .filter(|v: &Value| !v.is_null())
}

// ---- metric specs and statuses: v2 ⇄ the v1 (v2beta1-shaped) annotation form ----

/// (v1 flat field, v2 field inside `target` (specs) or `current` (statuses)).
type Fields = &'static [(&'static str, &'static str)];

/// How one metric source type maps between the flat v1 form and v2.
struct MetricSource {
    ty: &'static str,
    /// The member holding the source, the same in both forms (`object`, `pods`, ...).
    key: &'static str,
    /// v1 `target` ⇄ v2 `describedObject`.
    described_object: bool,
    /// v1 key of the metric selector when the source names a metric (v1
    /// `metricName` ⇄ v2 `metric.name`); `None`: a resource, `name` in both forms.
    selector: Option<&'static str>,
    /// `container` in both forms.
    container: bool,
    spec: Fields,
    /// The v2 `target.type`: `.1` when v1 field `.0` is set, else `.2`.
    target_type: (&'static str, &'static str, &'static str),
    status: Fields,
}

const RESOURCE_SPEC: Fields = &[
    ("targetAverageUtilization", "averageUtilization"),
    ("targetAverageValue", "averageValue"),
];
const RESOURCE_STATUS: Fields = &[
    ("currentAverageUtilization", "averageUtilization"),
    ("currentAverageValue", "averageValue"),
];
const RESOURCE_TARGET_TYPE: (&str, &str, &str) =
    ("targetAverageUtilization", "Utilization", "AverageValue");

const METRIC_SOURCES: &[MetricSource] = &[
    MetricSource {
        ty: "Object",
        key: "object",
        described_object: true,
        selector: Some("selector"),
        container: false,
        spec: &[("targetValue", "value"), ("averageValue", "averageValue")],
        target_type: ("averageValue", "AverageValue", "Value"),
        status: &[("currentValue", "value"), ("averageValue", "averageValue")],
    },
    MetricSource {
        ty: "Pods",
        key: "pods",
        described_object: false,
        selector: Some("selector"),
        container: false,
        spec: &[("targetAverageValue", "averageValue")],
        target_type: ("targetAverageValue", "AverageValue", "AverageValue"),
        status: &[("currentAverageValue", "averageValue")],
    },
    MetricSource {
        ty: "Resource",
        key: "resource",
        described_object: false,
        selector: None,
        container: false,
        spec: RESOURCE_SPEC,
        target_type: RESOURCE_TARGET_TYPE,
        status: RESOURCE_STATUS,
    },
    MetricSource {
        ty: "ContainerResource",
        key: "containerResource",
        described_object: false,
        selector: None,
        container: true,
        spec: RESOURCE_SPEC,
        target_type: RESOURCE_TARGET_TYPE,
        status: RESOURCE_STATUS,
    },
    MetricSource {
        ty: "External",
        key: "external",
        described_object: false,
        selector: Some("metricSelector"),
        container: false,
        spec: &[
            ("targetValue", "value"),
            ("targetAverageValue", "averageValue"),
        ],
        target_type: ("targetValue", "Value", "AverageValue"),
        status: &[
            ("currentValue", "value"),
            ("currentAverageValue", "averageValue"),
        ],
    },
];

/// A `metrics[]` spec entry or a `currentMetrics[]` status entry.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MetricPart {
    Spec,
    Status,
}

impl MetricPart {
    /// The v2 member holding the values, and the field table.
    fn values(self, source: &MetricSource) -> (&'static str, Fields) {
        match self {
            MetricPart::Spec => ("target", source.spec),
            MetricPart::Status => ("current", source.status),
        }
    }
}

/// The entry's type, a fresh `{"type": ty}`, and its source description (none for
/// an unknown type: the entry keeps only its type).
fn metric_source(m: &Value) -> (Map<String, Value>, Option<&'static MetricSource>) {
    let ty = m.get("type").and_then(Value::as_str).unwrap_or_default();
    let mut out = Map::new();
    out.insert("type".into(), json!(ty));
    (out, METRIC_SOURCES.iter().find(|s| s.ty == ty))
}

fn metric_to_v1(m: &Value, part: MetricPart) -> Value {
    let (mut out, source) = metric_source(m);
    let Some(source) = source else {
        return Value::Object(out);
    };
    let v2 = get(m, source.key).cloned().unwrap_or_default();
    let mut v1 = Map::new();
    if source.described_object {
        put(&mut v1, "target", get(&v2, "describedObject"));
    }
    match source.selector {
        Some(selector) => {
            put(&mut v1, "metricName", v2.pointer("/metric/name"));
            put(&mut v1, selector, v2.pointer("/metric/selector"));
        }
        None => put(&mut v1, "name", get(&v2, "name")),
    }
    let (member, fields) = part.values(source);
    for (v1_key, v2_key) in fields {
        put(
            &mut v1,
            v1_key,
            get(&v2, member).and_then(|values| get(values, v2_key)),
        );
    }
    if source.container {
        put(&mut v1, "container", get(&v2, "container"));
    }
    out.insert(source.key.into(), Value::Object(v1));
    Value::Object(out)
}

fn metric_to_v2(m: &Value, part: MetricPart) -> Value {
    let (mut out, source) = metric_source(m);
    let Some(source) = source else {
        return Value::Object(out);
    };
    let v1 = get(m, source.key).cloned().unwrap_or_default();
    let mut v2 = Map::new();
    if source.described_object {
        put(&mut v2, "describedObject", get(&v1, "target"));
    }
    match source.selector {
        Some(selector) => {
            let mut id = Map::new();
            id.insert(
                "name".into(),
                get(&v1, "metricName").cloned().unwrap_or_else(|| json!("")),
            );
            put(&mut id, "selector", get(&v1, selector));
            v2.insert("metric".into(), Value::Object(id));
        }
        None => put(&mut v2, "name", get(&v1, "name")),
    }
    let (member, fields) = part.values(source);
    let mut values = Map::new();
    if part == MetricPart::Spec {
        let (when_set, set, unset) = source.target_type;
        values.insert(
            "type".into(),
            json!(if get(&v1, when_set).is_some() {
                set
            } else {
                unset
            }),
        );
    }
    for (v1_key, v2_key) in fields {
        put(&mut values, v2_key, get(&v1, v1_key));
    }
    v2.insert(member.into(), Value::Object(values));
    if source.container {
        put(&mut v2, "container", get(&v1, "container"));
    }
    out.insert(source.key.into(), Value::Object(v2));
    Value::Object(out)
}

fn metric_spec_to_v1(m: &Value) -> Value {
    metric_to_v1(m, MetricPart::Spec)
}

fn metric_spec_to_v2(m: &Value) -> Value {
    metric_to_v2(m, MetricPart::Spec)
}

fn metric_status_to_v1(m: &Value) -> Value {
    metric_to_v1(m, MetricPart::Status)
}

fn metric_status_to_v2(m: &Value) -> Value {
    metric_to_v2(m, MetricPart::Status)
}

// ---- behavior: upstream marshals the internal Go type (no json tags) ----

/// (v2 JSON name, Go field name of the internal type)
const BEHAVIOR_FIELDS: &[(&str, &str)] = &[("scaleUp", "ScaleUp"), ("scaleDown", "ScaleDown")];
const RULE_FIELDS: &[(&str, &str)] = &[
    ("stabilizationWindowSeconds", "StabilizationWindowSeconds"),
    ("selectPolicy", "SelectPolicy"),
    ("policies", "Policies"),
];
const OPTIONAL_RULE_FIELDS: &[(&str, &str)] = &[("tolerance", "Tolerance")];
const POLICY_FIELDS: &[(&str, &str)] = &[
    ("type", "Type"),
    ("value", "Value"),
    ("periodSeconds", "PeriodSeconds"),
];

fn rename_fields(
    v: &Value,
    fields: &[(&str, &str)],
    optional: &[(&str, &str)],
    to_go: bool,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (json_name, go_name) in fields.iter().chain(optional) {
        let (from, to) = if to_go {
            (*json_name, *go_name)
        } else {
            (*go_name, *json_name)
        };
        let value = if to_go {
            v.get(from).cloned()
        } else {
            // encoding/json matches field names case-insensitively.
            v.as_object().and_then(|m| {
                m.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(from))
                    .map(|(_, x)| x.clone())
            })
        };
        match value.filter(|x| !x.is_null()) {
            Some(x) => {
                out.insert(to.into(), x);
            }
            // Go writes nil pointers and slices of the internal type as null.
            None if to_go && !optional.iter().any(|(j, _)| j == json_name) => {
                out.insert(to.into(), Value::Null);
            }
            None => {}
        }
    }
    out
}

fn rules_convert(rules: &Value, to_go: bool) -> Value {
    let mut out = rename_fields(rules, RULE_FIELDS, OPTIONAL_RULE_FIELDS, to_go);
    let policies_key = if to_go { "Policies" } else { "policies" };
    if let Some(Value::Array(policies)) = out.get_mut(policies_key) {
        for p in policies.iter_mut() {
            *p = Value::Object(rename_fields(p, POLICY_FIELDS, &[], to_go));
        }
    }
    Value::Object(out)
}

fn behavior_convert(behavior: &Value, to_go: bool) -> Value {
    let mut out = rename_fields(behavior, BEHAVIOR_FIELDS, &[], to_go);
    for v in out.values_mut() {
        if v.is_object() {
            *v = rules_convert(v, to_go);
        }
    }
    Value::Object(out)
}

// ---- whole objects ----

/// v2 → v1 (no-op unless `obj` is an `autoscaling/v2` object, or carries no apiVersion).
pub fn v2_to_v1(obj: &mut Value) {
    if !obj.is_object() || api_version(obj).is_some_and(|av| av != API_VERSION_V2) {
        return;
    }
    let spec = obj.get("spec").cloned().unwrap_or_default();
    let status = obj.get("status").cloned().unwrap_or_default();
    // Annotations a client sent on a v2 object are not ours to keep.
    take_round_trip_annotations(obj);

    let metrics = list(get(&spec, "metrics"));
    let mut v1_spec = Map::new();
    put(&mut v1_spec, "scaleTargetRef", get(&spec, "scaleTargetRef"));
    put(&mut v1_spec, "minReplicas", get(&spec, "minReplicas"));
    v1_spec.insert(
        "maxReplicas".into(),
        get(&spec, "maxReplicas").cloned().unwrap_or(json!(0)),
    );
    if let Some(cpu) = metrics.iter().find(|m| is_cpu_resource(m)) {
        put(
            &mut v1_spec,
            "targetCPUUtilizationPercentage",
            cpu.pointer("/resource/target/averageUtilization"),
        );
    }
    let other: Vec<Value> = metrics
        .iter()
        .filter(|m| {
            !(is_cpu_resource(m)
                && m.pointer("/resource/target/averageUtilization")
                    .is_some_and(|u| !u.is_null()))
        })
        .map(metric_spec_to_v1)
        .collect();

    let current = list(get(&status, "currentMetrics"));
    let conditions = list(get(&status, "conditions"));
    let mut v1_status = Map::new();
    put(
        &mut v1_status,
        "observedGeneration",
        get(&status, "observedGeneration"),
    );
    put(
        &mut v1_status,
        "lastScaleTime",
        get(&status, "lastScaleTime"),
    );
    v1_status.insert(
        "currentReplicas".into(),
        get(&status, "currentReplicas").cloned().unwrap_or(json!(0)),
    );
    v1_status.insert(
        "desiredReplicas".into(),
        get(&status, "desiredReplicas").cloned().unwrap_or(json!(0)),
    );
    for m in current.iter().filter(|m| is_cpu_resource(m)) {
        put(
            &mut v1_status,
            "currentCPUUtilizationPercentage",
            m.pointer("/resource/current/averageUtilization"),
        );
    }

    let mut add = Map::new();
    let text = |v: Value| Value::String(v.to_string());
    if !other.is_empty() {
        add.insert(METRIC_SPECS_ANNOTATION.into(), text(Value::Array(other)));
    }
    if !current.is_empty() {
        let statuses = current.iter().map(metric_status_to_v1).collect();
        add.insert(
            METRIC_STATUSES_ANNOTATION.into(),
            text(Value::Array(statuses)),
        );
    }
    if let Some(behavior) = get(&spec, "behavior") {
        add.insert(
            BEHAVIOR_ANNOTATION.into(),
            text(behavior_convert(behavior, true)),
        );
    }
    if !conditions.is_empty() {
        add.insert(
            CONDITIONS_ANNOTATION.into(),
            text(Value::Array(conditions.to_vec())),
        );
    }
    set_annotations(obj, add);

    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), json!(API_VERSION_V1));
        map.insert("kind".into(), json!("HorizontalPodAutoscaler"));
        map.insert("spec".into(), Value::Object(v1_spec));
        map.insert("status".into(), Value::Object(v1_status));
    }
}

/// v1 → v2 (no-op unless `obj` is an `autoscaling/v1` object).
pub fn v1_to_v2(obj: &mut Value) {
    if !obj.is_object() || api_version(obj) != Some(API_VERSION_V1) {
        return;
    }
    let spec = obj.get("spec").cloned().unwrap_or_default();
    let status = obj.get("status").cloned();
    let taken = take_round_trip_annotations(obj);

    let mut v2_spec = Map::new();
    put(&mut v2_spec, "scaleTargetRef", get(&spec, "scaleTargetRef"));
    put(&mut v2_spec, "minReplicas", get(&spec, "minReplicas"));
    put(&mut v2_spec, "maxReplicas", get(&spec, "maxReplicas"));
    // Annotation metrics first, then the cpu target (upstream's order).
    let mut metrics: Vec<Value> = parse_annotation(&taken, METRIC_SPECS_ANNOTATION)
        .as_ref()
        .and_then(Value::as_array)
        .map(|a| a.iter().map(metric_spec_to_v2).collect())
        .unwrap_or_default();
    let cpu = |utilization: Value| json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": utilization}}});
    if let Some(target) = get(&spec, "targetCPUUtilizationPercentage") {
        metrics.push(cpu(target.clone()));
    }
    // autoscaling/v1's implicit default, made explicit as upstream's conversion does.
    if metrics.is_empty() {
        metrics.push(cpu(json!(DEFAULT_CPU_UTILIZATION)));
    }
    v2_spec.insert("metrics".into(), Value::Array(metrics));
    if let Some(behavior) = parse_annotation(&taken, BEHAVIOR_ANNOTATION).filter(Value::is_object) {
        v2_spec.insert("behavior".into(), behavior_convert(&behavior, false));
    }

    let v2_status = status.filter(Value::is_object).map(|status| {
        let mut out = Map::new();
        put(&mut out, "observedGeneration", get(&status, "observedGeneration"));
        put(&mut out, "lastScaleTime", get(&status, "lastScaleTime"));
        put(&mut out, "currentReplicas", get(&status, "currentReplicas"));
        put(&mut out, "desiredReplicas", get(&status, "desiredReplicas"));
        // The annotation has more than the cpu percentage: it wins.
        let current = match parse_annotation(&taken, METRIC_STATUSES_ANNOTATION).as_ref().and_then(Value::as_array) {
            Some(a) => Some(a.iter().map(metric_status_to_v2).collect()),
            None => get(&status, "currentCPUUtilizationPercentage").map(|u| {
                vec![json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": u}}})]
            }),
        };
        if let Some(current) = current {
            out.insert("currentMetrics".into(), Value::Array(current));
        }
        if let Some(conditions) = parse_annotation(&taken, CONDITIONS_ANNOTATION).filter(Value::is_array) {
            out.insert("conditions".into(), conditions);
        }
        Value::Object(out)
    });

    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), json!(API_VERSION_V2));
        map.insert("kind".into(), json!("HorizontalPodAutoscaler"));
        map.insert("spec".into(), Value::Object(v2_spec));
        match v2_status {
            Some(s) => map.insert("status".into(), s),
            None => map.remove("status"),
        };
    }
}

/// What upstream's v2 conversion does to a v2 object on its way in: round-trip
/// annotations are dropped.
pub fn drop_round_trip_annotations(obj: &mut Value) {
    take_round_trip_annotations(obj);
}

#[cfg(test)]
mod tests;
