//! Printers for horizontal pod autoscalers (upstream `formatHPAMetrics`) and pod
//! disruption budgets.

use chrono::{DateTime, Utc};
use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscalerSpec, HorizontalPodAutoscalerStatus,
};
use serde_json::Value;

use crate::conversion::hpa;

use super::util::{age, arr, at, doc, i, int_or_string, name, opt_i, quantity_string, s};
use super::{columns, Column, Printer, Row};

pub(crate) fn printer(group: &str, kind: &str) -> Option<Printer> {
    match (group, kind) {
        ("autoscaling", "HorizontalPodAutoscaler") => Some(Printer {
            columns: hpa_columns,
            row: hpa_row,
        }),
        ("policy", "PodDisruptionBudget") => Some(Printer {
            columns: pdb_columns,
            row: pdb_row,
        }),
        _ => None,
    }
}

fn hpa_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new(
            "Reference",
            "string",
            doc::<HorizontalPodAutoscalerSpec>("scaleTargetRef")
        ),
        Column::new(
            "Targets",
            "string",
            doc::<HorizontalPodAutoscalerSpec>("metrics")
        ),
        Column::new(
            "MinPods",
            "string",
            doc::<HorizontalPodAutoscalerSpec>("minReplicas")
        ),
        Column::new(
            "MaxPods",
            "string",
            doc::<HorizontalPodAutoscalerSpec>("maxReplicas")
        ),
        Column::new(
            "Replicas",
            "string",
            doc::<HorizontalPodAutoscalerStatus>("currentReplicas")
        ),
        Column::age(),
    ]
}

/// `Quantity.String()` of an optional quantity pointer (`<nil>` when absent, as Go).
fn quantity_ptr(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "<nil>".to_string(),
        Some(q) => quantity_string(q),
    }
}

/// One metric's `current/target` (upstream `formatHPAMetrics` case bodies).
fn format_metric(spec: &Value, status: Option<&Value>) -> String {
    let unknown = || "<unknown>".to_string();
    // The status entry of the same source type, as upstream's `statuses[i].X != nil`.
    let current = |source: &str| {
        status
            .and_then(|st| at(st, &[source]))
            .filter(|v| v.is_object())
    };
    match s(spec, &["type"]) {
        source @ ("External" | "Object") => {
            let key = if source == "External" {
                "external"
            } else {
                "object"
            };
            let target = at(spec, &[key, "target"]);
            let avg = target
                .and_then(|t| t.get("averageValue"))
                .filter(|v| !v.is_null());
            if let Some(avg) = avg {
                let cur = current(key)
                    .and_then(|c| at(c, &["current", "averageValue"]))
                    .map_or_else(unknown, |q| quantity_ptr(Some(q)));
                format!("{cur}/{} (avg)", quantity_string(avg))
            } else {
                let cur = current(key)
                    .map_or_else(unknown, |c| quantity_ptr(at(c, &["current", "value"])));
                format!(
                    "{cur}/{}",
                    quantity_ptr(target.and_then(|t| t.get("value")))
                )
            }
        }
        "Pods" => {
            let cur = current("pods").map_or_else(unknown, |c| {
                quantity_ptr(at(c, &["current", "averageValue"]))
            });
            format!(
                "{cur}/{}",
                quantity_ptr(at(spec, &["pods", "target", "averageValue"]))
            )
        }
        source @ ("Resource" | "ContainerResource") => {
            let key = if source == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let resource = s(spec, &[key, "name"]);
            let target = at(spec, &[key, "target"]);
            if let Some(avg) = target
                .and_then(|t| t.get("averageValue"))
                .filter(|v| !v.is_null())
            {
                let cur = current(key).map_or_else(unknown, |c| {
                    quantity_ptr(at(c, &["current", "averageValue"]))
                });
                format!("{resource}: {cur}/{}", quantity_string(avg))
            } else {
                let cur = current(key)
                    .and_then(|c| opt_i(c, &["current", "averageUtilization"]))
                    .map_or_else(unknown, |u| format!("{u}%"));
                let want = target
                    .and_then(|t| t.get("averageUtilization"))
                    .and_then(Value::as_i64)
                    .map_or_else(|| "<auto>".to_string(), |u| format!("{u}%"));
                format!("{resource}: {cur}/{want}")
            }
        }
        _ => "<unknown type>".to_string(),
    }
}

fn format_hpa_metrics(hpa: &Value) -> String {
    let specs = arr(hpa, &["spec", "metrics"]);
    if specs.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 2;
    let statuses = arr(hpa, &["status", "currentMetrics"]);
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(idx, spec)| format_metric(spec, statuses.get(idx)))
        .collect();
    if list.len() > MAX {
        format!("{} + {} more...", list[..MAX].join(", "), list.len() - MAX)
    } else {
        list.join(", ")
    }
}

fn hpa_row(hpa: &Value, now: DateTime<Utc>) -> Row {
    // An autoscaling/v1 object prints as its v2 form (upstream prints the internal one).
    let converted;
    let hpa = if hpa.get("apiVersion").and_then(Value::as_str) == Some(hpa::API_VERSION_V1) {
        let mut v2 = hpa.clone();
        hpa::v1_to_v2(&mut v2);
        converted = v2;
        &converted
    } else {
        hpa
    };
    let reference = format!(
        "{}/{}",
        s(hpa, &["spec", "scaleTargetRef", "kind"]),
        s(hpa, &["spec", "scaleTargetRef", "name"])
    );
    let min_pods = opt_i(hpa, &["spec", "minReplicas"])
        .map_or_else(|| "<unset>".to_string(), |m| m.to_string());
    vec![
        Value::from(name(hpa)),
        Value::from(reference),
        Value::from(format_hpa_metrics(hpa)),
        Value::from(min_pods),
        Value::from(i(hpa, &["spec", "maxReplicas"])),
        Value::from(i(hpa, &["status", "currentReplicas"])),
        age(hpa, now),
    ]
    .into()
}

// ---- pod disruption budgets ----

fn pdb_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new(
            "Min Available",
            "string",
            "The minimum number of pods that must be available."
        ),
        Column::new(
            "Max Unavailable",
            "string",
            "The maximum number of pods that may be unavailable."
        ),
        Column::new(
            "Allowed Disruptions",
            "integer",
            "Calculated number of pods that may be disrupted at this time."
        ),
        Column::age(),
    ]
}

fn pdb_row(pdb: &Value, now: DateTime<Utc>) -> Row {
    let int_or_na = |field: &str| {
        at(pdb, &["spec", field])
            .filter(|v| !v.is_null())
            .map_or_else(|| "N/A".to_string(), int_or_string)
    };
    vec![
        Value::from(name(pdb)),
        Value::from(int_or_na("minAvailable")),
        Value::from(int_or_na("maxUnavailable")),
        Value::from(i(pdb, &["status", "disruptionsAllowed"])),
        age(pdb, now),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{labeled_column_names as names, meta_aged, print_one};
    use serde_json::{json, Value};

    fn meta(name: &str) -> Value {
        meta_aged(name, 90)
    }

    #[test]
    fn hpa() {
        let hpa = json!({
            "metadata": meta("web"),
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "minReplicas": 1, "maxReplicas": 10,
                     "metrics": [
                        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
                        {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1024Mi"}}},
                        {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}}
                     ]},
            "status": {"currentReplicas": 2, "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12, "averageValue": "60m"}}}
            ]}
        });
        let (t, cells) = print_one("autoscaling", "HorizontalPodAutoscaler", hpa);
        assert_eq!(
            names(&t),
            [
                "Name",
                "Reference",
                "Targets",
                "MinPods",
                "MaxPods",
                "Replicas",
                "Age"
            ]
        );
        assert_eq!(
            cells,
            vec![
                json!("web"),
                json!("Deployment/web"),
                json!("cpu: 12%/50%, memory: <unknown>/1Gi + 1 more..."),
                json!("1"),
                json!(10),
                json!(2),
                json!("90s")
            ]
        );
        let bare = json!({"metadata": meta("x"), "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 3}});
        let cells = print_one("autoscaling", "HorizontalPodAutoscaler", bare).1;
        assert_eq!(cells[2], "<none>");
        assert_eq!(cells[3], "<unset>");
        let ext = json!({"metadata": meta("e"), "spec": {"metrics": [
            {"type": "External", "external": {"metric": {"name": "q"}, "target": {"type": "Value", "value": "5"}}},
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}}
        ]}, "status": {"currentMetrics": [{"type": "External", "external": {"current": {"value": "3"}}}]}});
        assert_eq!(
            print_one("autoscaling", "HorizontalPodAutoscaler", ext).1[2],
            "3/5, cpu: <unknown>/<auto>"
        );
    }

    #[test]
    fn hpa_v1_prints_as_its_v2_form() {
        let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": meta("web"),
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "minReplicas": 2, "maxReplicas": 5, "targetCPUUtilizationPercentage": 60},
            "status": {"currentReplicas": 2, "desiredReplicas": 2, "currentCPUUtilizationPercentage": 7}});
        let info = crate::registry::lookup("autoscaling", "v1", "horizontalpodautoscalers")
            .expect("v1 hpa");
        let table = super::super::to_table(
            info,
            &[v1],
            super::super::tests::now(),
            super::super::IncludeObject::None,
        );
        assert_eq!(
            table["rows"][0]["cells"],
            json!(["web", "Deployment/web", "cpu: 7%/60%", "2", 5, 2, "90s"])
        );
        assert_eq!(names(&table).len(), 7);
    }

    #[test]
    fn pdb() {
        let pdb = json!({"metadata": meta("db"), "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}});
        let (t, cells) = print_one("policy", "PodDisruptionBudget", pdb);
        assert_eq!(
            names(&t),
            [
                "Name",
                "Min Available",
                "Max Unavailable",
                "Allowed Disruptions",
                "Age"
            ]
        );
        assert_eq!(
            cells,
            vec![
                json!("db"),
                json!("50%"),
                json!("N/A"),
                json!(1),
                json!("90s")
            ]
        );
        let pdb = json!({"metadata": meta("db"), "spec": {"maxUnavailable": 1}});
        assert_eq!(
            print_one("policy", "PodDisruptionBudget", pdb).1[1..3],
            [json!("N/A"), json!("1")]
        );
    }
}
