//! Bodies are built the way kubectl builds them: the k8s-pb (prost) structs of the object,
//! wrapped in runtime.Unknown after the `k8s\0` magic. Fields that gogo-protobuf always
//! writes (non-pointer Go fields: empty strings, zero numbers, empty structs, the zero
//! creationTimestamp) are set explicitly so the bytes match what kubectl sends.

use std::collections::BTreeMap;

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{RawExtension, TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::{json, Value};

use super::*;

fn envelope(api_version: &str, kind: &str, object: &impl Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(object.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    [MAGIC, &unknown.encode_to_vec()].concat()
}

/// ObjectMeta as kubectl's generators fill it: every non-pointer field written.
fn object_meta(name: &str, namespace: &str, labels: &[(&str, &str)]) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: Some(name.into()),
        generate_name: Some(String::new()),
        namespace: Some(namespace.into()),
        self_link: Some(String::new()),
        uid: Some(String::new()),
        resource_version: Some(String::new()),
        generation: Some(0),
        creation_timestamp: Some(meta::Time::default()),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

fn strings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                Quantity {
                    string: Some(v.to_string()),
                },
            )
        })
        .collect()
}

fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn namespace_from_kubectl_create_namespace() {
    let namespace = core::Namespace {
        metadata: Some(object_meta("team-a", "", &[])),
        spec: Some(core::NamespaceSpec::default()),
        status: Some(core::NamespaceStatus {
            phase: Some(String::new()),
            ..Default::default()
        }),
    };
    let decoded = decode(&envelope("v1", "Namespace", &namespace)).expect("decodes");
    assert_eq!(
        decoded,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}, "spec": {}, "status": {}})
    );
    assert_eq!(
        keys(&decoded),
        ["apiVersion", "kind", "metadata", "spec", "status"]
    );
}

#[test]
fn configmap_and_secret_maps_with_bytes_as_base64() {
    let configmap = core::ConfigMap {
        metadata: Some(object_meta("settings", "default", &[])),
        immutable: None,
        data: strings(&[("a.conf", "x=1\n"), ("empty", "")]),
        binary_data: [("blob".to_string(), vec![0u8, 1, 2, 255])]
            .into_iter()
            .collect(),
    };
    let decoded = decode(&envelope("v1", "ConfigMap", &configmap)).expect("decodes");
    assert_eq!(
        decoded,
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "default"},
            "data": {"a.conf": "x=1\n", "empty": ""},
            "binaryData": {"blob": "AAEC/w=="},
        })
    );

    let secret = core::Secret {
        metadata: Some(object_meta("creds", "default", &[])),
        immutable: Some(false),
        data: [("password".to_string(), b"s3cr3t".to_vec())]
            .into_iter()
            .collect(),
        string_data: BTreeMap::new(),
        r#type: Some("Opaque".into()),
    };
    let decoded = decode(&envelope("v1", "Secret", &secret)).expect("decodes");
    assert_eq!(
        decoded,
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "creds", "namespace": "default"},
            "immutable": false,
            "data": {"password": "czNjcjN0"},
            "type": "Opaque",
        })
    );
}

fn nginx_container() -> core::Container {
    core::Container {
        name: Some("nginx".into()),
        image: Some("nginx:1.27".into()),
        working_dir: Some(String::new()),
        ports: vec![core::ContainerPort {
            name: Some(String::new()),
            host_port: Some(0),
            container_port: Some(80),
            protocol: Some("TCP".into()),
            host_ip: Some(String::new()),
        }],
        resources: Some(core::ResourceRequirements {
            limits: quantities(&[("cpu", "500m"), ("memory", "128Mi")]),
            requests: quantities(&[("cpu", "0")]),
            claims: vec![],
        }),
        termination_message_path: Some(String::new()),
        termination_message_policy: Some(String::new()),
        image_pull_policy: Some(String::new()),
        stdin: Some(false),
        stdin_once: Some(false),
        tty: Some(false),
        ..Default::default()
    }
}

fn pod_spec(containers: Vec<core::Container>) -> core::PodSpec {
    core::PodSpec {
        containers,
        restart_policy: Some(String::new()),
        dns_policy: Some(String::new()),
        service_account_name: Some(String::new()),
        host_network: Some(false),
        host_pid: Some(false),
        host_ipc: Some(false),
        scheduler_name: Some(String::new()),
        ..Default::default()
    }
}

#[test]
fn deployment_with_pod_template_quantities_and_explicit_zero_replicas() {
    let labels = [("app", "web")];
    let deployment = apps::Deployment {
        metadata: Some(object_meta("web", "prod", &labels)),
        spec: Some(apps::DeploymentSpec {
            // A pointer in Go: `--replicas=0` is sent and must survive.
            replicas: Some(0),
            selector: Some(meta::LabelSelector {
                match_labels: strings(&labels),
                match_expressions: vec![],
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(object_meta("", "", &labels)),
                spec: Some(pod_spec(vec![nginx_container()])),
            }),
            strategy: Some(apps::DeploymentStrategy {
                r#type: Some(String::new()),
                rolling_update: None,
            }),
            min_ready_seconds: Some(0),
            paused: Some(false),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus {
            observed_generation: Some(0),
            replicas: Some(0),
            updated_replicas: Some(0),
            ready_replicas: Some(0),
            available_replicas: Some(0),
            unavailable_replicas: Some(0),
            ..Default::default()
        }),
    };
    let decoded = decode(&envelope("apps/v1", "Deployment", &deployment)).expect("decodes");
    let expected = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "prod", "labels": {"app": "web"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "nginx",
                        "image": "nginx:1.27",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "0"}},
                    }],
                },
            },
            "strategy": {},
        },
        "status": {},
    });
    assert_eq!(decoded, expected);
    assert_eq!(
        keys(&decoded["spec"]),
        ["replicas", "selector", "template", "strategy"]
    );
    // The decoded JSON is what k8s-openapi (the JSON API's types) accepts.
    let typed: k8s_openapi::api::apps::v1::Deployment =
        serde_json::from_value(decoded).expect("k8s-openapi form");
    assert_eq!(typed.spec.and_then(|s| s.replicas), Some(0));
}

#[test]
fn service_ports_with_int_or_string_target_ports() {
    let port = |name: &str, number: i32, target: IntOrString| core::ServicePort {
        name: Some(name.into()),
        protocol: Some("TCP".into()),
        app_protocol: None,
        port: Some(number),
        target_port: Some(target),
        node_port: Some(0),
    };
    let service = core::Service {
        metadata: Some(object_meta("web", "default", &[("app", "web")])),
        spec: Some(core::ServiceSpec {
            ports: vec![
                port(
                    "http",
                    80,
                    IntOrString {
                        r#type: Some(0),
                        int_val: Some(8080),
                        str_val: Some(String::new()),
                    },
                ),
                port(
                    "https",
                    443,
                    IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: Some("tls".into()),
                    },
                ),
            ],
            selector: strings(&[("app", "web")]),
            cluster_ip: Some(String::new()),
            r#type: Some("ClusterIP".into()),
            session_affinity: Some(String::new()),
            publish_not_ready_addresses: Some(false),
            health_check_node_port: Some(0),
            ..Default::default()
        }),
        status: Some(core::ServiceStatus {
            load_balancer: Some(core::LoadBalancerStatus::default()),
            conditions: vec![],
        }),
    };
    let decoded = decode(&envelope("v1", "Service", &service)).expect("decodes");
    assert_eq!(
        decoded,
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {
                "ports": [
                    {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
                    {"name": "https", "protocol": "TCP", "port": 443, "targetPort": "tls"},
                ],
                "selector": {"app": "web"},
                "type": "ClusterIP",
            },
            "status": {"loadBalancer": {}},
        })
    );
}

#[test]
fn embedded_go_structs_are_inlined() {
    let mut container = nginx_container();
    container.env = vec![core::EnvVar {
        name: Some("PASSWORD".into()),
        value: Some(String::new()),
        value_from: Some(core::EnvVarSource {
            secret_key_ref: Some(core::SecretKeySelector {
                local_object_reference: Some(core::LocalObjectReference {
                    name: Some("creds".into()),
                }),
                key: Some("password".into()),
                optional: None,
            }),
            ..Default::default()
        }),
    }];
    container.volume_mounts = vec![core::VolumeMount {
        name: Some("config".into()),
        read_only: Some(false),
        mount_path: Some("/etc/app".into()),
        ..Default::default()
    }];
    container.readiness_probe = Some(core::Probe {
        handler: Some(core::ProbeHandler {
            http_get: Some(core::HttpGetAction {
                path: Some("/healthz".into()),
                port: Some(IntOrString {
                    r#type: Some(1),
                    int_val: Some(0),
                    str_val: Some("http".into()),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        initial_delay_seconds: Some(0),
        period_seconds: Some(5),
        ..Default::default()
    });
    let mut spec = pod_spec(vec![container]);
    spec.volumes = vec![core::Volume {
        name: Some("config".into()),
        volume_source: Some(core::VolumeSource {
            config_map: Some(core::ConfigMapVolumeSource {
                local_object_reference: Some(core::LocalObjectReference {
                    name: Some("settings".into()),
                }),
                default_mode: Some(0o644),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }];
    let pod = core::Pod {
        metadata: Some(object_meta("app", "default", &[("run", "app")])),
        spec: Some(spec),
        status: None,
    };
    let decoded = decode(&envelope("v1", "Pod", &pod)).expect("decodes");
    let spec = &decoded["spec"];
    assert_eq!(
        spec["volumes"],
        json!([{"name": "config", "configMap": {"name": "settings", "defaultMode": 420}}])
    );
    let container = &spec["containers"][0];
    assert_eq!(
        container["env"],
        json!([{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}}])
    );
    assert_eq!(
        container["volumeMounts"],
        json!([{"name": "config", "mountPath": "/etc/app"}])
    );
    assert_eq!(
        container["readinessProbe"],
        json!({"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5})
    );

    use k8s_pb::api::networking::v1 as networking;
    let backend = networking::IngressBackend {
        service: Some(networking::IngressServiceBackend {
            name: Some("web".into()),
            port: Some(networking::ServiceBackendPort {
                name: Some("http".into()),
                number: Some(0),
            }),
        }),
        resource: None,
    };
    let ingress = networking::Ingress {
        metadata: Some(object_meta("web", "default", &[])),
        spec: Some(networking::IngressSpec {
            rules: vec![networking::IngressRule {
                host: Some("example.com".into()),
                ingress_rule_value: Some(networking::IngressRuleValue {
                    http: Some(networking::HttpIngressRuleValue {
                        paths: vec![networking::HttpIngressPath {
                            path: Some("/".into()),
                            path_type: Some("Prefix".into()),
                            backend: Some(backend),
                        }],
                    }),
                }),
            }],
            ..Default::default()
        }),
        status: Some(networking::IngressStatus::default()),
    };
    let decoded = decode(&envelope("networking.k8s.io/v1", "Ingress", &ingress)).expect("decodes");
    assert_eq!(
        decoded["spec"],
        json!({"rules": [{"host": "example.com", "http": {"paths": [{
            "path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"name": "http"}}},
        }]}}]})
    );
}

#[test]
fn times_micro_times_and_pointer_bools() {
    let mut metadata = object_meta("node-1", "kube-node-lease", &[]);
    metadata.creation_timestamp = Some(meta::Time {
        seconds: Some(1_795_323_000),
        nanos: Some(0),
    });
    let lease = k8s_pb::api::coordination::v1::Lease {
        metadata: Some(metadata),
        spec: Some(k8s_pb::api::coordination::v1::LeaseSpec {
            holder_identity: Some("node-1".into()),
            lease_duration_seconds: Some(40),
            renew_time: Some(meta::MicroTime {
                seconds: Some(1_795_323_000),
                nanos: Some(123_456_000),
            }),
            lease_transitions: Some(0),
            ..Default::default()
        }),
    };
    let decoded = decode(&envelope("coordination.k8s.io/v1", "Lease", &lease)).expect("decodes");
    assert_eq!(
        decoded["metadata"]["creationTimestamp"],
        json!("2026-11-22T04:50:00Z")
    );
    assert_eq!(
        decoded["spec"],
        json!({
            "holderIdentity": "node-1",
            "leaseDurationSeconds": 40,
            "renewTime": "2026-11-22T04:50:00.123456Z",
            "leaseTransitions": 0,
        })
    );

    let service_account = core::ServiceAccount {
        metadata: Some(object_meta("robot", "default", &[])),
        automount_service_account_token: Some(false),
        ..Default::default()
    };
    let decoded = decode(&envelope("v1", "ServiceAccount", &service_account)).expect("decodes");
    assert_eq!(decoded["automountServiceAccountToken"], json!(false));
}

#[test]
fn raw_extensions_embed_json_and_list_wrappers_become_arrays() {
    let revision = apps::ControllerRevision {
        metadata: Some(object_meta("web-1", "default", &[])),
        data: Some(RawExtension {
            raw: Some(br#"{"spec":{"x":[1,2]}}"#.to_vec()),
        }),
        revision: Some(1),
    };
    let decoded = decode(&envelope("apps/v1", "ControllerRevision", &revision)).expect("decodes");
    assert_eq!(decoded["data"], json!({"spec": {"x": [1, 2]}}));
    assert_eq!(decoded["revision"], json!(1));

    let bad = apps::ControllerRevision {
        data: Some(RawExtension {
            raw: Some(b"{nope".to_vec()),
        }),
        ..revision
    };
    assert!(decode(&envelope("apps/v1", "ControllerRevision", &bad)).is_err());

    use k8s_pb::api::certificates::v1 as certificates;
    let csr = certificates::CertificateSigningRequest {
        metadata: Some(object_meta("csr-1", "", &[])),
        spec: Some(certificates::CertificateSigningRequestSpec {
            request: Some(b"PEM".to_vec()),
            signer_name: Some("kubernetes.io/kube-apiserver-client".into()),
            extra: [(
                "groups".to_string(),
                certificates::ExtraValue {
                    items: vec!["a".into(), "b".into()],
                },
            )]
            .into_iter()
            .collect(),
            ..Default::default()
        }),
        status: None,
    };
    let decoded = decode(&envelope(
        "certificates.k8s.io/v1",
        "CertificateSigningRequest",
        &csr,
    ))
    .expect("decodes");
    assert_eq!(decoded["spec"]["request"], json!("UEVN"));
    assert_eq!(decoded["spec"]["extra"], json!({"groups": ["a", "b"]}));
}

#[test]
fn unknown_fields_are_skipped() {
    let mut raw = core::Namespace {
        metadata: Some(object_meta("x", "", &[])),
        ..Default::default()
    }
    .encode_to_vec();
    raw.extend_from_slice(&[0xf8, 0x06, 0x01]); // field 111, varint 1
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some("v1".into()),
            kind: Some("Namespace".into()),
        }),
        raw: Some(raw),
        ..Default::default()
    };
    let decoded = decode(&[MAGIC, &unknown.encode_to_vec()].concat()).expect("decodes");
    assert_eq!(
        decoded,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})
    );
}

#[test]
fn malformed_bodies_are_bad_requests() {
    let message = |body: &[u8]| {
        let err = decode(body).expect_err("must fail");
        let status = err.to_status();
        assert_eq!(status["code"], json!(400));
        assert_eq!(status["reason"], json!("BadRequest"));
        status["message"].as_str().unwrap_or_default().to_string()
    };
    assert!(message(b"{\"kind\":\"Namespace\"}").contains("expected prefix [107 56 115 0]"));
    let body = envelope("v1", "Namespace", &core::Namespace::default());
    assert!(message(&body[..body.len() - 1]).contains("truncated"));
    assert_eq!(
        message(&envelope("v1", "Foo", &core::Namespace::default())),
        r#"no kind "Foo" is registered for version "v1""#
    );
    assert!(message(&envelope("v1", "", &core::Namespace::default())).contains("'Kind' is missing"));
    let mut gzip = Unknown::decode(&body[MAGIC.len()..]).expect("valid");
    gzip.content_encoding = Some("gzip".into());
    assert!(message(&[MAGIC, &gzip.encode_to_vec()].concat()).contains("gzip"));
}

#[test]
fn every_registry_kind_decodes() {
    for resource in crate::registry::RESOURCES {
        let api_version = match resource.group {
            "" => resource.version.to_string(),
            group => format!("{group}/{}", resource.version),
        };
        let body = envelope(
            &api_version,
            resource.kind,
            &core::Namespace {
                metadata: Some(object_meta("n", "", &[])),
                ..Default::default()
            },
        );
        let decoded =
            decode(&body).unwrap_or_else(|e| panic!("{api_version} {}: {e:?}", resource.kind));
        assert_eq!(decoded["kind"], json!(resource.kind));
        assert_eq!(decoded["metadata"]["name"], json!("n"), "{}", resource.kind);
    }
}

#[test]
fn content_type_detection() {
    assert!(is_protobuf("application/vnd.kubernetes.protobuf"));
    assert!(is_protobuf(
        "application/vnd.kubernetes.protobuf; charset=utf-8"
    ));
    assert!(is_protobuf("Application/VND.Kubernetes.Protobuf"));
    assert!(!is_protobuf("application/json"));
    assert!(!is_protobuf("application/vnd.kubernetes.protobuf+json"));
}

/// Bodies captured from the real kubectl v1.32 (`kubectl create ...` against a stub server),
/// each next to what `kubectl create ... --dry-run=client -o json` prints for the same
/// command (without `creationTimestamp: null` and the namespace, which the URL carries).
#[test]
fn real_kubectl_bodies_decode_to_the_json_form() {
    macro_rules! fixtures {
        ($($name:literal),* $(,)?) => {
            [$(($name, &include_bytes!(concat!("testdata/", $name, ".pb"))[..], include_str!(concat!("testdata/", $name, ".json")))),*]
        };
    }
    let fixtures = fixtures![
        "namespace",
        "configmap",
        "secret-generic",
        "secret-docker",
        "deployment",
        "service-clusterip",
        "service-nodeport",
        "job",
        "job-from",
        "cronjob",
        "role",
        "rolebinding",
        "clusterrole",
        "clusterrolebinding",
        "serviceaccount",
        "quota",
        "priorityclass",
        "pdb",
        "ingress",
    ];
    for (name, body, expected) in fixtures {
        let expected: Value = serde_json::from_str(expected).expect("fixture JSON");
        let decoded = decode(body).unwrap_or_else(|e| panic!("{name}: {:?}", e.to_status()));
        assert_eq!(decoded, expected, "{name}");
        assert_eq!(keys(&decoded)[..2], ["apiVersion", "kind"], "{name}");
    }
}
