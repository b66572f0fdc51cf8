use super::*;
use serde_json::json;

fn annotation(obj: &Value, key: &str) -> Value {
    let text = obj["metadata"]["annotations"][key]
        .as_str()
        .expect("annotation set");
    serde_json::from_str(text).expect("annotation is JSON")
}

#[test]
fn v1_round_trips_through_v2() {
    let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default", "annotations": {"team": "a"}},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 2, "maxReplicas": 5, "targetCPUUtilizationPercentage": 60},
        "status": {"currentReplicas": 3, "desiredReplicas": 4, "currentCPUUtilizationPercentage": 42,
                   "observedGeneration": 1, "lastScaleTime": "2026-01-01T00:00:00Z"}});
    let mut v2 = v1.clone();
    v1_to_v2(&mut v2);
    assert_eq!(v2["apiVersion"], "autoscaling/v2");
    assert_eq!(
        v2["spec"]["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": 60}}}])
    );
    assert_eq!(
        v2["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"],
        42
    );
    assert!(v2["spec"].get("targetCPUUtilizationPercentage").is_none());
    // Idempotent: a v2 object stays as it is.
    let mut again = v2.clone();
    v1_to_v2(&mut again);
    assert_eq!(again, v2);
    let mut back = v2.clone();
    v2_to_v1(&mut back);
    // Upstream keeps the current metrics' raw form even when it is only cpu.
    let mut expected = v1.clone();
    expected["metadata"]["annotations"][METRIC_STATUSES_ANNOTATION] =
        json!(r#"[{"type":"Resource","resource":{"name":"cpu","currentAverageUtilization":42}}]"#);
    assert_eq!(back, expected);
    let mut again = back.clone();
    v2_to_v1(&mut again);
    assert_eq!(again, expected);
    // And that form is a fixed point of v1 → v2 → v1.
    v1_to_v2(&mut again);
    assert_eq!(again, v2);
    v2_to_v1(&mut again);
    assert_eq!(again, expected);
}

#[test]
fn v1_without_target_gets_the_default_cpu_metric() {
    let mut obj = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 3}});
    v1_to_v2(&mut obj);
    assert_eq!(
        obj["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        DEFAULT_CPU_UTILIZATION
    );
    assert!(obj.get("status").is_none());
    v2_to_v1(&mut obj);
    assert_eq!(
        obj["spec"]["targetCPUUtilizationPercentage"],
        DEFAULT_CPU_UTILIZATION
    );
    assert_eq!(
        obj["status"],
        json!({"currentReplicas": 0, "desiredReplicas": 0})
    );
    assert!(obj["metadata"].get("annotations").is_none());
}

#[test]
fn v2_only_data_survives_a_trip_through_v1() {
    let condition = json!({"type": "AbleToScale", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z",
        "reason": "ReadyForNewScale", "message": "ok"});
    let v2 = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 1, "maxReplicas": 10,
                 "metrics": [
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1Gi"}}},
                    {"type": "Pods", "pods": {"metric": {"name": "qps", "selector": {"matchLabels": {"a": "b"}}},
                        "target": {"type": "AverageValue", "averageValue": "10"}}},
                    {"type": "Object", "object": {"describedObject": {"apiVersion": "v1", "kind": "Service", "name": "s"},
                        "metric": {"name": "rps"}, "target": {"type": "Value", "value": "100"}}},
                    {"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "AverageValue", "averageValue": "30"}}},
                    {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app",
                        "target": {"type": "Utilization", "averageUtilization": 70}}},
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}
                 ],
                 "behavior": {"scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                    "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]}}},
        "status": {"currentReplicas": 2, "desiredReplicas": 2,
            "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12, "averageValue": "60m"}}},
                {"type": "External", "external": {"metric": {"name": "queue"}, "current": {"value": "3"}}}
            ],
            "conditions": [condition]}});
    let mut v1 = v2.clone();
    v2_to_v1(&mut v1);
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 50);
    assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 12);
    assert!(v1["spec"].get("metrics").is_none() && v1["spec"].get("behavior").is_none());
    assert!(v1["status"].get("conditions").is_none());
    let others = annotation(&v1, METRIC_SPECS_ANNOTATION);
    assert_eq!(others.as_array().map(Vec::len), Some(5));
    assert_eq!(
        others[0],
        json!({"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "1Gi"}})
    );
    assert_eq!(others[1]["pods"]["metricName"], "qps");
    assert_eq!(
        annotation(&v1, BEHAVIOR_ANNOTATION)["ScaleUp"]["Policies"][0]["PeriodSeconds"],
        15
    );
    assert_eq!(
        annotation(&v1, BEHAVIOR_ANNOTATION)["ScaleDown"],
        Value::Null
    );
    assert_eq!(annotation(&v1, CONDITIONS_ANNOTATION), json!([condition]));
    assert_eq!(
        annotation(&v1, METRIC_STATUSES_ANNOTATION)[1]["external"]["currentValue"],
        "3"
    );

    let mut back = v1.clone();
    v1_to_v2(&mut back);
    // Upstream appends the cpu target after the annotation's metrics.
    let mut expected = v2.clone();
    let metrics = expected["spec"]["metrics"].as_array_mut().expect("metrics");
    let cpu = metrics.remove(metrics.len() - 1);
    metrics.push(cpu);
    assert_eq!(back, expected);
}

#[test]
fn client_sent_round_trip_annotations_on_v2_are_replaced() {
    let mut v2 = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "x", "annotations": {METRIC_SPECS_ANNOTATION: "[]", "keep": "me"}},
        "spec": {"maxReplicas": 2, "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 10}}}]}});
    v2_to_v1(&mut v2);
    assert_eq!(v2["metadata"]["annotations"], json!({"keep": "me"}));
}

#[test]
fn behavior_annotation_is_read_case_insensitively() {
    let mut v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "x",
        "annotations": {BEHAVIOR_ANNOTATION: r#"{"scaleDown":{"stabilizationWindowSeconds":60,"Policies":null}}"#}},
        "spec": {"maxReplicas": 2, "targetCPUUtilizationPercentage": 10}});
    v1_to_v2(&mut v1);
    assert_eq!(
        v1["spec"]["behavior"],
        json!({"scaleDown": {"stabilizationWindowSeconds": 60}})
    );
    assert!(v1["metadata"].get("annotations").is_none());
}

/// Every metric source type in both tables (spec and status), pinned as JSON text:
/// the v1 annotations carry this text, so the key order matters too.
#[test]
fn metric_sources_map_field_by_field_in_both_directions() {
    let cases = [
        (
            r#"{"type":"Object","object":{"describedObject":{"kind":"Service","name":"s"},"metric":{"name":"m","selector":{"matchLabels":{"a":"b"}}},"target":{"type":"AverageValue","value":"1","averageValue":"2"}}}"#,
            r#"{"type":"Object","object":{"target":{"kind":"Service","name":"s"},"metricName":"m","selector":{"matchLabels":{"a":"b"}},"targetValue":"1","averageValue":"2"}}"#,
            r#"{"type":"Object","object":{"describedObject":{"kind":"Service","name":"s"},"metric":{"name":"m","selector":{"matchLabels":{"a":"b"}}},"current":{"value":"1","averageValue":"2"}}}"#,
            r#"{"type":"Object","object":{"target":{"kind":"Service","name":"s"},"metricName":"m","selector":{"matchLabels":{"a":"b"}},"currentValue":"1","averageValue":"2"}}"#,
        ),
        (
            r#"{"type":"Pods","pods":{"metric":{"name":"p"},"target":{"type":"AverageValue","averageValue":"3"}}}"#,
            r#"{"type":"Pods","pods":{"metricName":"p","targetAverageValue":"3"}}"#,
            r#"{"type":"Pods","pods":{"metric":{"name":"p"},"current":{"averageValue":"3"}}}"#,
            r#"{"type":"Pods","pods":{"metricName":"p","currentAverageValue":"3"}}"#,
        ),
        (
            r#"{"type":"ContainerResource","containerResource":{"name":"cpu","target":{"type":"Utilization","averageUtilization":50},"container":"c"}}"#,
            r#"{"type":"ContainerResource","containerResource":{"name":"cpu","targetAverageUtilization":50,"container":"c"}}"#,
            r#"{"type":"ContainerResource","containerResource":{"name":"cpu","current":{"averageUtilization":50},"container":"c"}}"#,
            r#"{"type":"ContainerResource","containerResource":{"name":"cpu","currentAverageUtilization":50,"container":"c"}}"#,
        ),
        (
            r#"{"type":"External","external":{"metric":{"name":"q","selector":{"matchLabels":{"x":"y"}}},"target":{"type":"Value","value":"5"}}}"#,
            r#"{"type":"External","external":{"metricName":"q","metricSelector":{"matchLabels":{"x":"y"}},"targetValue":"5"}}"#,
            r#"{"type":"External","external":{"metric":{"name":"q","selector":{"matchLabels":{"x":"y"}}},"current":{"value":"5"}}}"#,
            r#"{"type":"External","external":{"metricName":"q","metricSelector":{"matchLabels":{"x":"y"}},"currentValue":"5"}}"#,
        ),
    ];
    let parse = |text: &str| -> Value { serde_json::from_str(text).expect("json") };
    for (spec_v2, spec_v1, status_v2, status_v1) in cases {
        assert_eq!(metric_spec_to_v1(&parse(spec_v2)).to_string(), spec_v1);
        assert_eq!(metric_spec_to_v2(&parse(spec_v1)).to_string(), spec_v2);
        assert_eq!(
            metric_status_to_v1(&parse(status_v2)).to_string(),
            status_v1
        );
        assert_eq!(
            metric_status_to_v2(&parse(status_v1)).to_string(),
            status_v2
        );
    }
    assert_eq!(
        metric_spec_to_v2(&json!({"type": "Unknown", "x": 1})),
        json!({"type": "Unknown"})
    );
}
