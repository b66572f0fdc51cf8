//! Tests of upstream defaulting.

use serde_json::{json, Value};

use super::*;
use crate::registry::{lookup_kind, RESOURCES};

fn defaulted(api_version: &str, kind: &str, mut obj: Value) -> Value {
    let info = lookup_kind(api_version, kind).expect("registered kind");
    apply_defaults(info, &mut obj);
    obj
}

#[test]
fn pod_defaults_match_upstream() {
    let pod = defaulted(
        "v1",
        "Pod",
        json!({
            "metadata": {"name": "p"},
            "spec": {
                "containers": [{
                    "name": "c", "image": "nginx",
                    "ports": [{"containerPort": 80}],
                    "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                    "livenessProbe": {"httpGet": {"port": 80}},
                    "resources": {"limits": {"cpu": "0.5", "memory": "1024Mi"}},
                }],
                "initContainers": [{"name": "i", "image": "busybox:1.36"}],
                "volumes": [{"name": "cfg", "configMap": {"name": "x"}}, {"name": "scratch"}],
            }
        }),
    );
    let spec = &pod["spec"];
    assert_eq!(spec["restartPolicy"], "Always");
    assert_eq!(spec["dnsPolicy"], "ClusterFirst");
    assert_eq!(spec["schedulerName"], "default-scheduler");
    assert_eq!(spec["terminationGracePeriodSeconds"], 30);
    assert_eq!(spec["securityContext"], json!({}));
    assert_eq!(spec["enableServiceLinks"], true);
    let c = &spec["containers"][0];
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
    assert_eq!(
        c["livenessProbe"],
        json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
               "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(
        c["resources"]["limits"],
        json!({"cpu": "500m", "memory": "1Gi"})
    );
    assert_eq!(
        c["resources"]["requests"],
        json!({"cpu": "500m", "memory": "1Gi"}),
        "requests default to limits"
    );
    assert_eq!(spec["initContainers"][0]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(spec["volumes"][0]["configMap"]["defaultMode"], 420);
    assert_eq!(spec["volumes"][1]["emptyDir"], json!({}));
}

#[test]
fn pull_policy_follows_the_tag() {
    assert_eq!(default_pull_policy("nginx"), "Always");
    assert_eq!(default_pull_policy("nginx:latest"), "Always");
    assert_eq!(default_pull_policy("nginx:1.25"), "IfNotPresent");
    assert_eq!(default_pull_policy("localhost:5000/app"), "Always");
    assert_eq!(default_pull_policy("localhost:5000/app:v1"), "IfNotPresent");
    assert_eq!(default_pull_policy("app@sha256:abcd"), "IfNotPresent");
}

#[test]
fn host_network_ports_default_host_port() {
    let pod = defaulted(
        "v1",
        "Pod",
        json!({"spec": {"hostNetwork": true,
        "containers": [{"name": "c", "image": "x:1", "ports": [{"containerPort": 8080}]}]}}),
    );
    assert_eq!(pod["spec"]["containers"][0]["ports"][0]["hostPort"], 8080);
}

#[test]
fn templates_get_pod_spec_defaults_but_not_pod_only_ones() {
    let d = defaulted(
        "apps/v1",
        "Deployment",
        json!({"spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": "x:1", "resources": {"limits": {"cpu": "1"}}}]}}}}),
    );
    let spec = &d["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    let pod_spec = &spec["template"]["spec"];
    assert_eq!(pod_spec["restartPolicy"], "Always");
    assert!(pod_spec.get("enableServiceLinks").is_none());
    assert!(pod_spec["containers"][0]["resources"]
        .get("requests")
        .is_none());

    let recreate = defaulted(
        "apps/v1",
        "Deployment",
        json!({"spec": {"strategy": {"type": "Recreate"}}}),
    );
    assert!(recreate["spec"]["strategy"].get("rollingUpdate").is_none());
}

#[test]
fn job_and_cronjob_defaults() {
    let job = defaulted(
        "batch/v1",
        "Job",
        json!({"spec": {"template": {"metadata": {"labels": {"a": "b"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x:1"}]}}}}),
    );
    let spec = &job["spec"];
    assert_eq!(spec["completions"], 1);
    assert_eq!(spec["parallelism"], 1);
    assert_eq!(spec["backoffLimit"], 6);
    assert_eq!(spec["completionMode"], "NonIndexed");
    assert_eq!(spec["suspend"], false);
    assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
    assert!(spec.get("manualSelector").is_none());
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");
    assert_eq!(job["metadata"]["labels"], json!({"a": "b"}));

    let parallel = defaulted("batch/v1", "Job", json!({"spec": {"parallelism": 3}}));
    assert!(parallel["spec"].get("completions").is_none());

    let cj = defaulted(
        "batch/v1",
        "CronJob",
        json!({"spec": {"schedule": "* * * * *",
        "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x:1"}]}}}}}}),
    );
    let spec = &cj["spec"];
    assert_eq!(spec["concurrencyPolicy"], "Allow");
    assert_eq!(spec["suspend"], false);
    assert_eq!(spec["successfulJobsHistoryLimit"], 3);
    assert_eq!(spec["failedJobsHistoryLimit"], 1);
    assert_eq!(
        spec["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"],
        "ClusterFirst"
    );
    assert!(
        spec["jobTemplate"]["spec"].get("backoffLimit").is_none(),
        "Job defaults are not applied to templates"
    );
}

#[test]
fn generated_job_selector() {
    let mut job =
        json!({"metadata": {"name": "pi", "uid": "u-1"}, "spec": {"template": {"spec": {}}}});
    generate_job_selector(&mut job);
    assert_eq!(
        job["spec"]["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}})
    );
    assert_eq!(
        job["spec"]["template"]["metadata"]["labels"]["job-name"],
        "pi"
    );
    assert_eq!(
        job["spec"]["template"]["metadata"]["labels"]["controller-uid"],
        "u-1"
    );
    let mut manual = json!({"metadata": {"name": "pi"}, "spec": {"manualSelector": true}});
    generate_job_selector(&mut manual);
    assert!(manual["spec"].get("selector").is_none());
}

#[test]
fn apps_defaults() {
    let ds = defaulted("apps/v1", "DaemonSet", json!({"spec": {}}));
    assert_eq!(
        ds["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);
    let sts = defaulted(
        "apps/v1",
        "StatefulSet",
        json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "d"}, "spec": {}}]}}),
    );
    let spec = &sts["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        spec["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(
        spec["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    assert_eq!(
        spec["volumeClaimTemplates"][0]["spec"]["volumeMode"],
        "Filesystem"
    );
    let rs = defaulted("apps/v1", "ReplicaSet", json!({"spec": {}}));
    assert_eq!(rs["spec"]["replicas"], 1);
}

#[test]
fn replication_controller_takes_template_labels() {
    let rc = defaulted(
        "v1",
        "ReplicationController",
        json!({"metadata": {"name": "r"},
        "spec": {"template": {"metadata": {"labels": {"app": "r"}}, "spec": {}}}}),
    );
    assert_eq!(rc["spec"]["selector"], json!({"app": "r"}));
    assert_eq!(rc["metadata"]["labels"], json!({"app": "r"}));
    assert_eq!(rc["spec"]["replicas"], 1);
    let explicit = defaulted(
        "v1",
        "ReplicationController",
        json!({"metadata": {"labels": {"x": "y"}},
        "spec": {"selector": {"app": "s"}, "template": {"metadata": {"labels": {"app": "r"}}}}}),
    );
    assert_eq!(explicit["spec"]["selector"], json!({"app": "s"}));
    assert_eq!(explicit["metadata"]["labels"], json!({"x": "y"}));
}

#[test]
fn service_defaults() {
    let svc = defaulted(
        "v1",
        "Service",
        json!({"spec": {"ports": [{"port": 80}, {"port": 443, "targetPort": "https"}]}}),
    );
    let spec = &svc["spec"];
    assert_eq!(spec["type"], "ClusterIP");
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(
        spec["ports"][0],
        json!({"port": 80, "protocol": "TCP", "targetPort": 80})
    );
    assert_eq!(spec["ports"][1]["targetPort"], "https");
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    assert!(spec.get("externalTrafficPolicy").is_none());
    assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack");

    let np = defaulted(
        "v1",
        "Service",
        json!({"spec": {"type": "NodePort", "sessionAffinity": "ClientIP", "clusterIP": "10.0.0.9"}}),
    );
    assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(
        np["spec"]["sessionAffinityConfig"],
        json!({"clientIP": {"timeoutSeconds": 10800}})
    );
    assert_eq!(np["spec"]["clusterIPs"], json!(["10.0.0.9"]));

    let ext = defaulted(
        "v1",
        "Service",
        json!({"spec": {"type": "ExternalName", "externalName": "example.com"}}),
    );
    assert!(ext["spec"].get("ipFamilies").is_none());
    assert!(ext["spec"].get("ipFamilyPolicy").is_none());
    assert!(ext["spec"].get("internalTrafficPolicy").is_none());
}

#[test]
fn core_kinds() {
    let ns = defaulted("v1", "Namespace", json!({"metadata": {"name": "team"}}));
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "team"
    );
    assert_eq!(defaulted("v1", "Secret", json!({}))["type"], "Opaque");
    assert_eq!(
        defaulted("v1", "Secret", json!({"type": "kubernetes.io/tls"}))["type"],
        "kubernetes.io/tls"
    );
    let pv = defaulted("v1", "PersistentVolume", json!({"spec": {}}));
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    assert_eq!(pv["spec"]["volumeMode"], "Filesystem");
    assert_eq!(pv["status"]["phase"], "Pending");
    let pvc = defaulted("v1", "PersistentVolumeClaim", json!({"spec": {}}));
    assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
    assert_eq!(pvc["status"]["phase"], "Pending");
    let ep = defaulted(
        "v1",
        "Endpoints",
        json!({"subsets": [{"ports": [{"port": 80}]}]}),
    );
    assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], "TCP");
    let slice = defaulted(
        "discovery.k8s.io/v1",
        "EndpointSlice",
        json!({"ports": [{"port": 80}]}),
    );
    assert_eq!(
        slice["ports"][0],
        json!({"port": 80, "name": "", "protocol": "TCP"})
    );
    let node = defaulted("v1", "Node", json!({"status": {"capacity": {"cpu": "2"}}}));
    assert_eq!(node["status"]["allocatable"], json!({"cpu": "2"}));
}

#[test]
fn defaulting_is_idempotent_for_every_kind() {
    let samples = [
        json!({"metadata": {"name": "x", "labels": {"app": "x"}}, "spec": {
            "selector": {"matchLabels": {"app": "x"}},
            "ports": [{"port": 80}], "type": "NodePort", "sessionAffinity": "ClientIP", "clusterIP": "10.0.0.1",
            "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"hostNetwork": true,
                "containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 1}],
                    "readinessProbe": {"tcpSocket": {"port": 1}},
                    "resources": {"limits": {"cpu": "0.25"}}}],
                "volumes": [{"name": "v"}, {"name": "s", "secret": {"secretName": "s"}}]}},
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "y:1"}]}}}},
            "containers": [{"name": "c", "image": "x", "resources": {"limits": {"memory": "1.5Gi"}}}],
            "volumeClaimTemplates": [{"spec": {}}],
        }, "subsets": [{"ports": [{"port": 1}]}], "ports": [{"port": 1}],
           "status": {"capacity": {"cpu": "1"}}}),
        json!({}),
    ];
    for info in RESOURCES {
        for sample in &samples {
            let mut once = sample.clone();
            apply_defaults(info, &mut once);
            let mut twice = once.clone();
            apply_defaults(info, &mut twice);
            assert_eq!(once, twice, "{} defaults are not idempotent", info.kind);
        }
    }
}

#[test]
fn hpa_defaults_apply_to_v2_and_v1_forms() {
    let v2 =
        crate::registry::lookup("autoscaling", "v2", "horizontalpodautoscalers").expect("v2 hpa");
    let mut obj = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"},
        "spec": {"maxReplicas": 3, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}});
    apply_defaults(v2, &mut obj);
    assert_eq!(obj["spec"]["minReplicas"], 1);
    assert_eq!(
        obj["spec"]["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}])
    );
    assert_eq!(
        obj["spec"]["behavior"]["scaleUp"]["policies"][0],
        json!({"type": "Pods", "value": 4, "periodSeconds": 15})
    );
    assert_eq!(
        obj["spec"]["behavior"]["scaleUp"]["stabilizationWindowSeconds"],
        0
    );
    assert_eq!(
        obj["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
        60
    );
    assert_eq!(obj["spec"]["behavior"]["scaleDown"]["selectPolicy"], "Max");
    let before = obj.clone();
    apply_defaults(v2, &mut obj);
    assert_eq!(obj, before);

    let v1 =
        crate::registry::lookup("autoscaling", "v1", "horizontalpodautoscalers").expect("v1 hpa");
    let mut obj = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 3}});
    apply_defaults(v1, &mut obj);
    assert_eq!(obj["apiVersion"], "autoscaling/v1");
    assert_eq!(obj["spec"]["minReplicas"], 1);
    assert_eq!(obj["spec"]["targetCPUUtilizationPercentage"], 80);
    let before = obj.clone();
    apply_defaults(v1, &mut obj);
    assert_eq!(obj, before);
}

#[test]
fn embedded_object_meta_carries_a_null_creation_timestamp() {
    let d = defaulted(
        "apps/v1",
        "Deployment",
        json!({"metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
    );
    assert_eq!(
        d["spec"]["template"]["metadata"],
        json!({"creationTimestamp": null})
    );
    assert!(
        d["metadata"].get("creationTimestamp").is_none(),
        "only embedded metadata"
    );

    let cj = defaulted(
        "batch/v1",
        "CronJob",
        json!({"metadata": {"name": "c"}, "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {
            "metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}}}),
    );
    assert_eq!(
        cj["spec"]["jobTemplate"]["metadata"],
        json!({"creationTimestamp": null})
    );
    assert_eq!(
        cj["spec"]["jobTemplate"]["spec"]["template"]["metadata"],
        json!({"labels": {"a": "b"}, "creationTimestamp": null})
    );

    let sts = defaulted(
        "apps/v1",
        "StatefulSet",
        json!({"metadata": {"name": "s"}, "spec": {"selector": {}, "template": {"spec": {"containers": []}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {}}]}}),
    );
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0]["metadata"],
        json!({"name": "data", "creationTimestamp": null})
    );

    // an invalid metadata is left for validation to report
    let bad = defaulted(
        "apps/v1",
        "Deployment",
        json!({"metadata": {"name": "d"}, "spec": {"template": {"metadata": "x", "spec": {}}}}),
    );
    assert_eq!(bad["spec"]["template"]["metadata"], "x");
}
