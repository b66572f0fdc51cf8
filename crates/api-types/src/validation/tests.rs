//! Validation tests through the public entry points, on defaulted objects.

use serde_json::{json, Value};

use super::*;
use crate::defaults::apply_defaults;
use crate::registry::lookup_kind;

fn info(api_version: &str, kind: &str) -> &'static ResourceInfo {
    lookup_kind(api_version, kind).expect("registered kind")
}

fn create(api_version: &str, kind: &str, mut obj: Value) -> Vec<StatusCause> {
    let info = info(api_version, kind);
    apply_defaults(info, &mut obj);
    validate_create(info, &obj)
}

fn fields(errs: &[StatusCause]) -> Vec<&str> {
    errs.iter().map(|e| e.field.as_str()).collect()
}

fn find<'a>(errs: &'a [StatusCause], field: &str) -> &'a StatusCause {
    errs.iter()
        .find(|e| e.field == field)
        .unwrap_or_else(|| panic!("no error at {field}: {errs:?}"))
}

fn pod(spec: Value) -> Value {
    json!({"metadata": {"name": "p", "namespace": "default"}, "spec": spec})
}

#[test]
fn valid_pod_passes() {
    let errs = create(
        "v1",
        "Pod",
        pod(json!({"containers": [{"name": "web", "image": "nginx",
        "ports": [{"name": "http", "containerPort": 80}],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        "resources": {"limits": {"cpu": "500m"}, "requests": {"cpu": "250m"}},
        "livenessProbe": {"httpGet": {"port": "http"}}}],
        "volumes": [{"name": "data", "emptyDir": {}}]})),
    );
    assert!(errs.is_empty(), "{errs:?}");
}

#[test]
fn pod_name_must_be_a_subdomain() {
    let mut obj = pod(json!({"containers": [{"name": "c", "image": "x"}]}));
    obj["metadata"]["name"] = json!("Bad_Name");
    let errs = create("v1", "Pod", obj);
    assert_eq!(fields(&errs), vec!["metadata.name"]);
    assert_eq!(errs[0].message, "Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')");
}

#[test]
fn pod_container_errors() {
    let errs = create("v1", "Pod", pod(json!({"containers": []})));
    assert_eq!(find(&errs, "spec.containers").message, "Required value");

    let errs = create(
        "v1",
        "Pod",
        pod(json!({
            "containers": [
                {"name": "app", "image": "", "ports": [{"containerPort": 70000, "protocol": "XTP"}, {"name": "p", "containerPort": 1}, {"name": "p", "containerPort": 2}]},
                {"name": "app", "image": "x", "volumeMounts": [{"name": "missing", "mountPath": "/m"}]},
                {"name": "Bad", "image": "x", "resources": {"limits": {"cpu": "500m"}, "requests": {"cpu": "1"}}},
            ],
            "initContainers": [{"name": "app", "image": "x"}],
            "restartPolicy": "Sometimes",
            "terminationGracePeriodSeconds": -1,
        })),
    );
    assert_eq!(
        find(&errs, "spec.containers[0].image").message,
        "Required value"
    );
    assert_eq!(
        find(&errs, "spec.containers[0].ports[0].containerPort").message,
        "Invalid value: 70000: must be between 1 and 65535, inclusive"
    );
    assert_eq!(
        find(&errs, "spec.containers[0].ports[0].protocol").message,
        "Unsupported value: \"XTP\": supported values: \"SCTP\", \"TCP\", \"UDP\""
    );
    assert_eq!(
        find(&errs, "spec.containers[0].ports[2].name").message,
        "Duplicate value: \"p\""
    );
    assert_eq!(
        find(&errs, "spec.containers[1].name").message,
        "Duplicate value: \"app\""
    );
    assert_eq!(
        find(&errs, "spec.containers[1].volumeMounts[0].name").message,
        "Not found: \"missing\""
    );
    assert!(find(&errs, "spec.containers[2].name")
        .message
        .contains("a lowercase RFC 1123 label must consist of"));
    assert_eq!(
        find(&errs, "spec.containers[2].resources.requests[cpu]").message,
        "Invalid value: \"1\": must be less than or equal to cpu limit of 500m"
    );
    assert_eq!(
        find(&errs, "spec.initContainers[0].name").message,
        "Duplicate value: \"app\""
    );
    assert_eq!(
        find(&errs, "spec.restartPolicy").message,
        "Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""
    );
    assert_eq!(
        find(&errs, "spec.terminationGracePeriodSeconds").message,
        "Invalid value: -1: must be greater than or equal to 0"
    );
}

#[test]
fn pod_probes_volumes_env() {
    let errs = create(
        "v1",
        "Pod",
        pod(json!({
            "containers": [{"name": "c", "image": "x",
                "livenessProbe": {},
                "readinessProbe": {"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}},
                "startupProbe": {"exec": {"command": ["true"]}, "successThreshold": 2},
                "env": [{"name": "A=B", "value": "x"}, {"name": "", "valueFrom": {}}]}],
            "volumes": [{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}, {"name": "w", "emptyDir": {}, "hostPath": {"path": "/x"}}],
            "dnsPolicy": "Sometimes",
        })),
    );
    assert_eq!(
        find(&errs, "spec.containers[0].livenessProbe").message,
        "Required value: must specify a handler type"
    );
    assert_eq!(
        find(&errs, "spec.containers[0].readinessProbe.tcpSocket").message,
        "Forbidden: may not specify more than 1 handler type"
    );
    assert_eq!(
        find(&errs, "spec.containers[0].startupProbe.successThreshold").message,
        "Invalid value: 2: must be 1"
    );
    assert_eq!(find(&errs, "spec.containers[0].env[0].name").message, "Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='");
    assert_eq!(
        find(&errs, "spec.containers[0].env[1].name").message,
        "Required value"
    );
    assert_eq!(find(&errs, "spec.containers[0].env[1].valueFrom").message, "Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`");
    // hostPath is checked first upstream, so the emptyDir is the extra one.
    assert_eq!(
        find(&errs, "spec.volumes[2].emptyDir").message,
        "Forbidden: may not specify more than 1 volume type"
    );
    assert_eq!(
        find(&errs, "spec.volumes[1].name").message,
        "Duplicate value: \"v\""
    );
    assert!(find(&errs, "spec.dnsPolicy")
        .message
        .starts_with("Unsupported value: \"Sometimes\""));
}

#[test]
fn cluster_scoped_kinds_reject_namespace() {
    let errs = create(
        "v1",
        "Namespace",
        json!({"metadata": {"name": "a", "namespace": "b"}}),
    );
    assert_eq!(
        find(&errs, "metadata.namespace").message,
        "Forbidden: not allowed on this type"
    );
    let errs = create("v1", "Namespace", json!({"metadata": {"name": "a.b"}}));
    assert_eq!(
        find(&errs, "metadata.name").message,
        "Invalid value: \"a.b\": must not contain dots"
    );
}

#[test]
fn service_rules() {
    let svc = |spec: Value| json!({"metadata": {"name": "web", "namespace": "d"}, "spec": spec});
    assert!(create(
        "v1",
        "Service",
        svc(json!({"ports": [{"port": 80}], "selector": {"app": "web"}}))
    )
    .is_empty());
    let errs = create("v1", "Service", svc(json!({})));
    assert_eq!(fields(&errs), vec!["spec.ports"]);
    assert!(create("v1", "Service", svc(json!({"clusterIP": "None"}))).is_empty());
    assert!(create(
        "v1",
        "Service",
        svc(json!({"type": "ExternalName", "externalName": "example.com"}))
    )
    .is_empty());

    let errs = create(
        "v1",
        "Service",
        svc(json!({"type": "Fancy", "clusterIP": "1.2.3",
        "ports": [{"port": 80}, {"port": 0, "name": "b", "nodePort": 30000}]})),
    );
    assert_eq!(find(&errs, "spec.ports[0].name").message, "Required value");
    assert_eq!(
        find(&errs, "spec.ports[1].port").message,
        "Invalid value: 0: must be between 1 and 65535, inclusive"
    );
    assert_eq!(find(&errs, "spec.type").message, "Unsupported value: \"Fancy\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"");
    assert_eq!(
        find(&errs, "spec.clusterIPs[0]").message,
        "Invalid value: \"1.2.3\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
    );

    let errs = create(
        "v1",
        "Service",
        svc(json!({"ports": [{"port": 80, "nodePort": 30001}]})),
    );
    assert_eq!(
        find(&errs, "spec.ports[0].nodePort").message,
        "Forbidden: may not be used when `type` is 'ClusterIP'"
    );
    let mut bad_name = svc(json!({"ports": [{"port": 80}]}));
    bad_name["metadata"]["name"] = json!("1web");
    assert!(find(&create("v1", "Service", bad_name), "metadata.name")
        .message
        .contains("a DNS-1035 label"));
}

#[test]
fn service_cluster_ip_is_immutable() {
    let info = info("v1", "Service");
    let mut old = json!({"metadata": {"name": "s", "namespace": "d"}, "spec": {"clusterIP": "10.0.0.1", "ports": [{"port": 80}]}});
    apply_defaults(info, &mut old);
    let mut new = old.clone();
    new["spec"]["clusterIP"] = json!("10.0.0.2");
    new["spec"]["clusterIPs"] = json!(["10.0.0.2"]);
    let errs = validate_update(info, &new, &old);
    assert_eq!(
        find(&errs, "spec.clusterIPs[0]").message,
        "Invalid value: []string{\"10.0.0.2\"}: may not change once set"
    );
    let mut same = old.clone();
    same["spec"]["ports"][0]["port"] = json!(81);
    same["spec"]["ports"][0]["targetPort"] = json!(81);
    assert!(validate_update(info, &same, &old).is_empty());
}

fn deployment(selector: Value, labels: Value) -> Value {
    json!({"metadata": {"name": "web", "namespace": "d"}, "spec": {
        "selector": selector,
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}})
}

#[test]
fn deployment_selector_must_match_template() {
    assert!(create(
        "apps/v1",
        "Deployment",
        deployment(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "web"})
        )
    )
    .is_empty());
    let errs = create(
        "apps/v1",
        "Deployment",
        deployment(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "api", "tier": "x"}),
        ),
    );
    let e = find(&errs, "spec.template.metadata.labels");
    assert_eq!(e.message, "Invalid value: map[string]string{\"app\":\"api\", \"tier\":\"x\"}: `selector` does not match template `labels`");
    let errs = create(
        "apps/v1",
        "Deployment",
        deployment(Value::Null, json!({"app": "web"})),
    );
    assert_eq!(find(&errs, "spec.selector").message, "Required value");
    let errs = create(
        "apps/v1",
        "Deployment",
        deployment(json!({}), json!({"app": "web"})),
    );
    assert!(find(&errs, "spec.selector")
        .message
        .ends_with("empty selector is invalid for deployment"));
    let mut d = deployment(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    d["spec"]["replicas"] = json!(-1);
    d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("");
    d["spec"]["strategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}});
    let errs = create("apps/v1", "Deployment", d);
    assert_eq!(
        find(&errs, "spec.replicas").message,
        "Invalid value: -1: must be greater than or equal to 0"
    );
    assert_eq!(
        find(&errs, "spec.template.spec.restartPolicy").message,
        "Unsupported value: \"Never\": supported values: \"Always\""
    );
    assert_eq!(
        find(&errs, "spec.template.spec.containers[0].image").message,
        "Required value"
    );
    assert_eq!(
        find(&errs, "spec.strategy.rollingUpdate.maxUnavailable").message,
        "Invalid value: 0: may not be 0 when `maxSurge` is 0"
    );
}

#[test]
fn deployment_selector_is_immutable() {
    let info = info("apps/v1", "Deployment");
    let mut old = deployment(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web", "v": "2"}),
    );
    apply_defaults(info, &mut old);
    let mut new = old.clone();
    new["spec"]["selector"] = json!({"matchLabels": {"app": "web", "v": "2"}});
    let errs = validate_update(info, &new, &old);
    assert_eq!(
        find(&errs, "spec.selector").message,
        "Invalid value: &v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", \"v\":\"2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
    );
    let mut scaled = old.clone();
    scaled["spec"]["replicas"] = json!(5);
    assert!(validate_update(info, &scaled, &old).is_empty());
}

#[test]
fn replication_controller_defaults_selector() {
    let rc = json!({"metadata": {"name": "r", "namespace": "d"}, "spec": {"template": {
        "metadata": {"labels": {"app": "r"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}});
    assert!(create("v1", "ReplicationController", rc).is_empty());
    let rc = json!({"metadata": {"name": "r", "namespace": "d"}, "spec": {"selector": {"app": "other"}, "template": {
        "metadata": {"labels": {"app": "r"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}});
    let errs = create("v1", "ReplicationController", rc);
    assert_eq!(fields(&errs), vec!["spec.template.metadata.labels"]);
}

#[test]
fn job_restart_policy_and_selector() {
    let job = |policy: Value| {
        json!({"metadata": {"name": "j", "namespace": "d", "uid": "u"}, "spec": {"template": {
        "spec": {"restartPolicy": policy, "containers": [{"name": "c", "image": "x"}]}}}})
    };
    let info = info("batch/v1", "Job");
    let mut ok = job(json!("Never"));
    apply_defaults(info, &mut ok);
    crate::defaults::generate_job_selector(&mut ok);
    assert!(
        validate_create(info, &ok).is_empty(),
        "{:?}",
        validate_create(info, &ok)
    );

    let mut missing = job(Value::Null);
    apply_defaults(info, &mut missing);
    crate::defaults::generate_job_selector(&mut missing);
    let errs = validate_create(info, &missing);
    assert_eq!(
        find(&errs, "spec.template.spec.restartPolicy").message,
        "Required value: valid values: \"OnFailure\", \"Never\""
    );

    let mut no_selector = job(json!("OnFailure"));
    apply_defaults(info, &mut no_selector);
    assert_eq!(
        find(&validate_create(info, &no_selector), "spec.selector").message,
        "Required value"
    );

    let mut changed = ok.clone();
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("y");
    let errs = validate_update(info, &changed, &ok);
    assert!(find(&errs, "spec.template")
        .message
        .ends_with("field is immutable"));
}

#[test]
fn cron_job_rules() {
    let cj = |schedule: &str| {
        json!({"metadata": {"name": "c", "namespace": "d"}, "spec": {"schedule": schedule,
        "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "x"}]}}}}}})
    };
    assert!(create("batch/v1", "CronJob", cj("*/5 * * * *")).is_empty());
    assert!(create("batch/v1", "CronJob", cj("@hourly")).is_empty());
    let errs = create("batch/v1", "CronJob", cj("every minute"));
    assert_eq!(
        find(&errs, "spec.schedule").message,
        "Invalid value: \"every minute\": expected exactly 5 fields, found 2: [every minute]"
    );
}

#[test]
fn config_map_and_secret_keys() {
    let errs = create(
        "v1",
        "ConfigMap",
        json!({"metadata": {"name": "c", "namespace": "d"}, "data": {"ok.key": "", "bad/key": ""}}),
    );
    assert_eq!(fields(&errs), vec!["data[bad/key]"]);
    assert!(errs[0].message.starts_with("Invalid value: \"bad/key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.'"));
    let errs = create(
        "v1",
        "Secret",
        json!({"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/tls", "data": {"tls.crt": ""}}),
    );
    assert_eq!(fields(&errs), vec!["data[tls.key]"]);
    let info = info("v1", "Secret");
    let old = json!({"metadata": {"name": "s", "namespace": "d"}, "type": "Opaque", "immutable": true, "data": {"a": "YQ=="}});
    let mut new = old.clone();
    new["data"]["a"] = json!("Yg==");
    new["type"] = json!("kubernetes.io/basic-auth");
    new["data"]["username"] = json!("dQ==");
    let errs = validate_update(info, &new, &old);
    assert_eq!(
        find(&errs, "type").message,
        "Invalid value: \"kubernetes.io/basic-auth\": field is immutable"
    );
    assert_eq!(
        find(&errs, "data").message,
        "Forbidden: field is immutable when `immutable` is set"
    );
}

#[test]
fn pod_update_only_allows_image_changes() {
    let info = info("v1", "Pod");
    let mut old = pod(json!({"containers": [{"name": "c", "image": "x:1"}], "nodeName": "n1"}));
    apply_defaults(info, &mut old);
    let mut image = old.clone();
    image["spec"]["containers"][0]["image"] = json!("x:2");
    image["metadata"]["labels"] = json!({"new": "label"});
    assert!(validate_update(info, &image, &old).is_empty());

    let mut env = old.clone();
    env["spec"]["containers"][0]["env"] = json!([{"name": "A", "value": "b"}]);
    let errs = validate_update(info, &env, &old);
    let e = find(&errs, "spec");
    assert_eq!(e.reason, "FieldValueForbidden");
    assert!(e.message.starts_with("Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds`"), "{}", e.message);

    let mut tolerations = old.clone();
    tolerations["spec"]["tolerations"] = json!([{"key": "k", "operator": "Exists"}]);
    assert!(validate_update(info, &tolerations, &old).is_empty());

    let mut renamed = old.clone();
    renamed["metadata"]["name"] = json!("q");
    assert_eq!(
        find(&validate_update(info, &renamed, &old), "metadata.name").message,
        "Invalid value: \"q\": field is immutable"
    );
}

#[test]
fn stateful_set_spec_updates_are_limited() {
    let info = info("apps/v1", "StatefulSet");
    let mut old = json!({"metadata": {"name": "s", "namespace": "d"}, "spec": {"serviceName": "s",
        "selector": {"matchLabels": {"app": "s"}},
        "template": {"metadata": {"labels": {"app": "s"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}});
    apply_defaults(info, &mut old);
    assert!(
        validate_create(info, &old).is_empty(),
        "{:?}",
        validate_create(info, &old)
    );
    let mut scaled = old.clone();
    scaled["spec"]["replicas"] = json!(3);
    assert!(validate_update(info, &scaled, &old).is_empty());
    let mut renamed = old.clone();
    renamed["spec"]["serviceName"] = json!("other");
    assert!(find(&validate_update(info, &renamed, &old), "spec")
        .message
        .starts_with("Forbidden: updates to statefulset spec for fields other than"));
}

#[test]
fn unknown_kinds_get_metadata_validation_only() {
    let lease = info("coordination.k8s.io/v1", "Lease");
    let errs = validate_create(
        lease,
        &json!({"metadata": {"namespace": "d"}, "spec": {"anything": -1}}),
    );
    assert_eq!(fields(&errs), vec!["metadata.name"]);
    let role = info("rbac.authorization.k8s.io/v1", "ClusterRole");
    assert!(
        validate_create(role, &json!({"metadata": {"name": "system:controller:x"}})).is_empty()
    );
}

#[test]
fn stateful_set_mounts_may_name_claim_templates() {
    let sts = |mount: &str| {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s", "namespace": "default"},
            "spec": {"serviceName": "s", "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "busybox",
                    "volumeMounts": [{"name": mount, "mountPath": "/data"}]}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}})
    };
    let ok = create("apps/v1", "StatefulSet", sts("data"));
    assert!(ok.is_empty(), "{ok:?}");
    let bad = create("apps/v1", "StatefulSet", sts("nope"));
    assert_eq!(
        fields(&bad),
        ["spec.template.spec.containers[0].volumeMounts[0].name"],
        "{bad:?}"
    );
}

#[test]
fn grpc_probe_service_defaults_to_empty() {
    let mut p = pod(
        json!({"containers": [{"name": "c", "image": "i", "livenessProbe": {"grpc": {"port": 9000}}}]}),
    );
    apply_defaults(info("v1", "Pod"), &mut p);
    assert_eq!(
        p["spec"]["containers"][0]["livenessProbe"]["grpc"],
        json!({"port": 9000, "service": ""})
    );
}
