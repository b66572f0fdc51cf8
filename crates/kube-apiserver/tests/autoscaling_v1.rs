//! autoscaling/v1 HorizontalPodAutoscalers against a real etcd and the real upstream
//! kubectl: `kubectl autoscale` posts a v1 object, which is stored as v2 under the same
//! key and read back through either version.

mod common;

use common::{kubectl, kubectl_stdin, DEPLOYMENT_YAML};
use serde_json::Value;

fn json_of(out: &test_support::KubectlOutput) -> Value {
    out.assert_success();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

const V1_MANIFEST: &str = "apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata:
  name: api
  namespace: default
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: web
  minReplicas: 1
  maxReplicas: 3
  targetCPUUtilizationPercentage: 50
";

/// The fully qualified v1 resource. kubectl 1.32's short-name expander drops the
/// version (`hpa.v1.autoscaling` reads the preferred v2, against upstream too).
const V1_HPA: &str = "horizontalpodautoscalers.v1.autoscaling";

#[test]
fn kubectl_autoscale_and_v1_manifests_round_trip_through_v2_storage() {
    let cluster = common::start();
    let api = &cluster.api;
    kubectl_stdin(api, &["apply", "-f", "-"], DEPLOYMENT_YAML).assert_success();

    // kubectl autoscale POSTs an autoscaling/v1 object (protobuf, fieldValidation).
    let out = kubectl(
        api,
        &[
            "autoscale",
            "deployment",
            "web",
            "--min=2",
            "--max=5",
            "--cpu-percent=60",
        ],
    );
    assert!(
        out.assert_success()
            .stdout
            .contains("horizontalpodautoscaler.autoscaling/web autoscaled"),
        "{out}"
    );

    // The preferred version (v2) shows the cpu target as a metric.
    let yaml = kubectl(api, &["get", "hpa", "web", "-o", "yaml"]);
    let text = &yaml.assert_success().stdout;
    assert!(text.contains("apiVersion: autoscaling/v2"), "{yaml}");
    assert!(text.contains("averageUtilization: 60"), "{yaml}");
    assert!(!text.contains("targetCPUUtilizationPercentage"), "{yaml}");
    let v2 = json_of(&kubectl(api, &["get", "hpa", "web", "-o", "json"]));
    assert_eq!(v2["spec"]["minReplicas"], 2);
    assert_eq!(v2["spec"]["maxReplicas"], 5);
    assert_eq!(
        v2["spec"]["metrics"],
        serde_json::json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}])
    );

    // ... and v1 shows it as targetCPUUtilizationPercentage.
    let out = kubectl(
        api,
        &[
            "get",
            V1_HPA,
            "web",
            "-o",
            "jsonpath={.spec.targetCPUUtilizationPercentage}",
        ],
    );
    assert_eq!(out.assert_success().stdout.trim(), "60", "{out}");
    let v1 = json_of(&kubectl(api, &["get", V1_HPA, "web", "-o", "json"]));
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert!(v1["spec"].get("metrics").is_none(), "{v1}");

    // Table columns as upstream's printer, through either version.
    for resource in ["hpa", V1_HPA] {
        let out = kubectl(api, &["get", resource]);
        let lines: Vec<&str> = out.assert_success().stdout.lines().collect();
        let header: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(
            header,
            [
                "NAME",
                "REFERENCE",
                "TARGETS",
                "MINPODS",
                "MAXPODS",
                "REPLICAS",
                "AGE"
            ],
            "{out}"
        );
        let row = lines
            .iter()
            .find(|l| l.starts_with("web "))
            .unwrap_or_else(|| panic!("no web row:\n{out}"));
        assert!(
            row.contains("Deployment/web") && row.contains("cpu: <unknown>/60%"),
            "{out}"
        );
        let cells: Vec<&str> = row
            .split("60%")
            .nth(1)
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(&cells[..3], ["2", "5", "0"], "{out}");
    }

    // etcd holds the v2 form under the usual key.
    let stored = cluster
        .etcd
        .get("/registry/horizontalpodautoscalers/default/web")
        .expect("etcdctl get")
        .expect("stored");
    let stored: Value = serde_json::from_str(&stored)
        .unwrap_or_else(|e| panic!("stored value is not JSON ({e}): {stored}"));
    assert_eq!(stored["apiVersion"], "autoscaling/v2");
    assert_eq!(
        stored["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        60
    );
    assert!(
        stored["spec"]
            .get("targetCPUUtilizationPercentage")
            .is_none(),
        "{stored}"
    );

    // kubectl apply of a v1 manifest, then a change to it.
    let out = kubectl_stdin(api, &["apply", "-f", "-"], V1_MANIFEST);
    assert!(
        out.assert_success()
            .stdout
            .contains("horizontalpodautoscaler.autoscaling/api created"),
        "{out}"
    );
    let changed = V1_MANIFEST
        .replace("maxReplicas: 3", "maxReplicas: 4")
        .replace("Percentage: 50", "Percentage: 70");
    let out = kubectl_stdin(api, &["apply", "-f", "-"], &changed);
    assert!(
        out.assert_success()
            .stdout
            .contains("horizontalpodautoscaler.autoscaling/api configured"),
        "{out}"
    );
    let v2 = json_of(&kubectl(api, &["get", "hpa", "api", "-o", "json"]));
    assert_eq!(v2["spec"]["maxReplicas"], 4);
    assert_eq!(
        v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        70
    );
    let out = kubectl(
        api,
        &[
            "get",
            V1_HPA,
            "api",
            "-o",
            "jsonpath={.spec.targetCPUUtilizationPercentage}",
        ],
    );
    assert_eq!(out.assert_success().stdout.trim(), "70", "{out}");
    // Re-applying the same manifest changes nothing.
    let out = kubectl_stdin(api, &["apply", "-f", "-"], &changed);
    assert!(
        out.assert_success()
            .stdout
            .contains("horizontalpodautoscaler.autoscaling/api unchanged"),
        "{out}"
    );

    // A v2 object with a second metric keeps it when edited through v1.
    let patch = r#"{"spec":{"metrics":[{"type":"Resource","resource":{"name":"cpu","target":{"type":"Utilization","averageUtilization":70}}},{"type":"Resource","resource":{"name":"memory","target":{"type":"AverageValue","averageValue":"100Mi"}}}]}}"#;
    kubectl(api, &["patch", "hpa", "api", "--type=merge", "-p", patch]).assert_success();
    let v1 = json_of(&kubectl(api, &["get", V1_HPA, "api", "-o", "json"]));
    assert!(
        v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/metrics"]
            .as_str()
            .is_some_and(|a| a.contains("memory")),
        "{v1}"
    );
    kubectl(
        api,
        &[
            "patch",
            V1_HPA,
            "api",
            "--type=merge",
            "-p",
            r#"{"spec":{"targetCPUUtilizationPercentage":75}}"#,
        ],
    )
    .assert_success();
    let v2 = json_of(&kubectl(api, &["get", "hpa", "api", "-o", "json"]));
    let metrics = v2["spec"]["metrics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(metrics.len(), 2, "{v2}");
    assert!(
        metrics.iter().any(|m| m["resource"]["name"] == "memory"
            && m["resource"]["target"]["averageValue"] == "100Mi"),
        "{v2}"
    );
    assert!(
        metrics.iter().any(|m| m["resource"]["name"] == "cpu"
            && m["resource"]["target"]["averageUtilization"] == 75),
        "{v2}"
    );

    // Discovery keeps v2 preferred; explain reads the v1 schema.
    let out = kubectl(api, &["api-versions"]);
    let text = &out.assert_success().stdout;
    assert!(
        text.contains("autoscaling/v1") && text.contains("autoscaling/v2"),
        "{out}"
    );
    let out = kubectl(api, &["get", "--raw", "/apis/autoscaling"]);
    let group: Value = serde_json::from_str(&out.assert_success().stdout).expect("APIGroup JSON");
    assert_eq!(group["preferredVersion"]["version"], "v2", "{group}");
    let out = kubectl(
        api,
        &[
            "explain",
            "horizontalpodautoscalers.spec.targetCPUUtilizationPercentage",
            "--api-version=autoscaling/v1",
        ],
    );
    assert!(
        out.assert_success()
            .stdout
            .contains("targetCPUUtilizationPercentage"),
        "{out}"
    );

    kubectl(api, &["delete", V1_HPA, "api"]).assert_success();
    let out = kubectl(api, &["get", "hpa", "api"]);
    assert!(!out.success() && out.stderr.contains("NotFound"), "{out}");
}
