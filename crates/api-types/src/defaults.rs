//! Defaulting, as upstream's `SetDefaults_*` functions in `pkg/apis/*/v1/defaults.go`
//! (plus the few strategy-level fills noted below). Applied to every object the
//! apiserver accepts, before validation; applying twice changes nothing.

use serde_json::{json, Map, Value};

use crate::conversion::hpa;
use crate::meta::{field, field_mut, map_field};
use crate::quantity::ParsedQuantity;
use crate::registry::ResourceInfo;

/// Applies upstream's defaults for `info`'s kind to `obj`.
pub fn apply_defaults(info: &ResourceInfo, obj: &mut Value) {
    if !obj.is_object() {
        return;
    }
    match (info.group, info.kind) {
        ("", "Pod") => default_pod(obj),
        ("", "Service") => default_service(obj),
        ("", "ReplicationController") => default_replication_controller(obj),
        ("", "Namespace") => default_namespace(obj),
        ("", "Secret") => set_default(obj, "type", json!("Opaque")),
        ("", "Node") => default_node(obj),
        ("", "PersistentVolume") => default_persistent_volume(obj),
        ("", "PersistentVolumeClaim") => default_pvc(obj),
        ("", "Endpoints") => {
            for subset in array_mut(obj, "subsets") {
                for port in array_mut(subset, "ports") {
                    set_default(port, "protocol", json!("TCP"));
                }
            }
        }
        ("discovery.k8s.io", "EndpointSlice") => {
            for port in array_mut(obj, "ports") {
                set_default(port, "name", json!(""));
                set_default(port, "protocol", json!("TCP"));
            }
        }
        ("apps", "Deployment") => default_deployment(obj),
        ("apps", "ReplicaSet") => {
            set_default(child(obj, "spec"), "replicas", json!(1));
            default_template(obj, &["spec", "template"]);
        }
        ("apps", "DaemonSet") => default_daemon_set(obj),
        ("apps", "StatefulSet") => default_stateful_set(obj),
        ("batch", "Job") => default_job(obj),
        ("batch", "CronJob") => default_cron_job(obj),
        ("autoscaling", "HorizontalPodAutoscaler") => default_hpa(obj),
        _ => {}
    }
}

/// Upstream's v2 `SetDefaults_HorizontalPodAutoscaler`. An `autoscaling/v1` object is
/// defaulted in its v2 form (as upstream, whose v1 form converts through the same
/// internal object) and converted back.
fn default_hpa(obj: &mut Value) {
    let v1 = obj.get("apiVersion").and_then(Value::as_str) == Some(hpa::API_VERSION_V1);
    hpa::v1_to_v2(obj);
    let spec = child(obj, "spec");
    set_default(spec, "minReplicas", json!(1));
    if spec
        .get("metrics")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        spec["metrics"] = json!([{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": hpa::DEFAULT_CPU_UTILIZATION}}}]);
    }
    if let Some(behavior) = spec.get_mut("behavior").filter(|b| b.is_object()) {
        // GenerateHPAScaleUpRules / GenerateHPAScaleDownRules: unset fields of a rule
        // (or a missing rule) take the defaults; scale-down's window stays unset.
        let up = json!({"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15}]});
        let down = json!({"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]});
        for (key, defaults) in [("scaleUp", up), ("scaleDown", down)] {
            let rules = child(behavior, key);
            if let (Some(rules), Value::Object(defaults)) = (rules.as_object_mut(), defaults) {
                for (field, value) in defaults {
                    if rules.get(&field).is_none_or(Value::is_null) {
                        rules.insert(field, value);
                    }
                }
            }
        }
    }
    if v1 {
        hpa::v2_to_v1(obj);
    }
}

/// Upstream's Job strategy (`generateSelector`): unless `spec.manualSelector` is true,
/// label the template with the job name and uid and select on the uid. Call after
/// `metadata.name` and `metadata.uid` are set, before validation.
pub fn generate_job_selector(job: &mut Value) {
    let manual = job
        .pointer("/spec/manualSelector")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if manual {
        return;
    }
    let name = job
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let uid = job
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let labels = child(
        child(child(child(job, "spec"), "template"), "metadata"),
        "labels",
    );
    for key in ["job-name", "batch.kubernetes.io/job-name"] {
        set_default(labels, key, json!(name));
    }
    for key in ["controller-uid", "batch.kubernetes.io/controller-uid"] {
        set_default(labels, key, json!(uid));
    }
    let match_labels = child(child(child(job, "spec"), "selector"), "matchLabels");
    set_default(
        match_labels,
        "batch.kubernetes.io/controller-uid",
        json!(uid),
    );
}

// ---- JSON helpers -------------------------------------------------------------

/// The object at `key`, created (replacing null or a non-object) if missing.
fn child<'a>(v: &'a mut Value, key: &str) -> &'a mut Value {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    let Value::Object(m) = v else {
        unreachable!("made an object above")
    };
    let entry = m
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    entry
}

/// The object at `key` if it exists and is an object.
fn existing<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    field_mut(v, key).filter(|x| x.is_object())
}

/// Sets `key` unless it is present and non-null.
fn set_default(v: &mut Value, key: &str, value: Value) {
    if let Some(m) = v.as_object_mut() {
        let absent = map_field(m, key).is_none_or(Value::is_null);
        if absent {
            m.insert(key.to_string(), value);
        }
    }
}

/// Sets `key` when missing, null or the empty string (Go's zero value for strings).
fn set_default_str(v: &mut Value, key: &str, value: &str) {
    if let Some(m) = v.as_object_mut() {
        let absent = map_field(m, key).is_none_or(|x| x.is_null() || x.as_str() == Some(""));
        if absent {
            m.insert(key.to_string(), json!(value));
        }
    }
}

/// Sets a numeric `key` when missing, null or 0 (Go's zero value for plain ints).
fn set_default_nonzero(v: &mut Value, key: &str, value: i64) {
    if let Some(m) = v.as_object_mut() {
        let absent = map_field(m, key).is_none_or(|x| x.is_null() || x.as_i64() == Some(0));
        if absent {
            m.insert(key.to_string(), json!(value));
        }
    }
}

fn array_mut<'a>(v: &'a mut Value, key: &str) -> std::slice::IterMut<'a, Value> {
    match field_mut(v, key) {
        Some(Value::Array(a)) => a.iter_mut(),
        _ => [].iter_mut(),
    }
}

fn get_str<'a>(v: &'a Value, key: &str) -> &'a str {
    field(v, key).and_then(Value::as_str).unwrap_or_default()
}

// ---- Pods ---------------------------------------------------------------------

fn default_pod(pod: &mut Value) {
    let spec = child(pod, "spec");
    default_pod_spec(spec);
    set_default(spec, "enableServiceLinks", json!(true));
    // Pods (not templates): requests default to limits.
    for list in ["containers", "initContainers"] {
        for c in array_mut(spec, list) {
            let Some(limits) = field(c, "resources")
                .and_then(|r| field(r, "limits"))
                .and_then(Value::as_object)
                .cloned()
            else {
                continue;
            };
            let requests = child(child(c, "resources"), "requests");
            for (k, v) in limits {
                set_default(requests, &k, v);
            }
        }
    }
    if field(spec, "hostNetwork").and_then(Value::as_bool) == Some(true) {
        default_host_network_ports(spec);
    }
}

/// `SetDefaults_PodSpec` plus the container, probe and volume defaults the generated
/// defaulters apply inside a pod spec.
pub fn default_pod_spec(spec: &mut Value) {
    set_default_str(spec, "dnsPolicy", "ClusterFirst");
    set_default_str(spec, "restartPolicy", "Always");
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default_str(spec, "schedulerName", "default-scheduler");
    if field(spec, "hostNetwork").and_then(Value::as_bool) == Some(true) {
        default_host_network_ports(spec);
    }
    for list in ["containers", "initContainers"] {
        for c in array_mut(spec, list) {
            default_container(c);
        }
    }
    for vol in array_mut(spec, "volumes") {
        default_volume(vol);
    }
}

fn default_host_network_ports(spec: &mut Value) {
    for list in ["containers", "initContainers"] {
        for c in array_mut(spec, list) {
            for port in array_mut(c, "ports") {
                let container_port = port.get("containerPort").cloned().unwrap_or(Value::Null);
                if port.get("hostPort").and_then(Value::as_i64).unwrap_or(0) == 0
                    && !container_port.is_null()
                {
                    if let Some(m) = port.as_object_mut() {
                        m.insert("hostPort".into(), container_port);
                    }
                }
            }
        }
    }
}

/// Upstream's `parsers.ParseImageName` tag rule: `Always` for `:latest` or no tag
/// (unless pinned by digest), otherwise `IfNotPresent`.
pub fn default_pull_policy(image: &str) -> &'static str {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last_segment = name.rsplit('/').next().unwrap_or(name);
    let tag = last_segment.split_once(':').map(|(_, t)| t);
    match (tag, digest) {
        (Some("latest"), _) => "Always",
        (None, None) => "Always",
        _ => "IfNotPresent",
    }
}

fn default_container(c: &mut Value) {
    let image = get_str(c, "image").to_string();
    set_default_str(c, "imagePullPolicy", default_pull_policy(&image));
    set_default_str(c, "terminationMessagePath", "/dev/termination-log");
    set_default_str(c, "terminationMessagePolicy", "File");
    for port in array_mut(c, "ports") {
        set_default_str(port, "protocol", "TCP");
    }
    for env in array_mut(c, "env") {
        if let Some(field_ref) = field_mut(env, "valueFrom").and_then(|v| existing(v, "fieldRef")) {
            set_default_str(field_ref, "apiVersion", "v1");
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = existing(c, probe) {
            set_default_nonzero(p, "timeoutSeconds", 1);
            set_default_nonzero(p, "periodSeconds", 10);
            set_default_nonzero(p, "successThreshold", 1);
            set_default_nonzero(p, "failureThreshold", 3);
            default_http_get(p);
            // SetDefaults_Probe: an unset grpc service is the empty string
            if let Some(grpc) = existing(p, "grpc") {
                set_default_str(grpc, "service", "");
            }
        }
    }
    if let Some(lifecycle) = existing(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = existing(lifecycle, hook) {
                default_http_get(h);
            }
        }
    }
    if let Some(resources) = existing(c, "resources") {
        for list in ["limits", "requests"] {
            if let Some(Value::Object(m)) = field_mut(resources, list) {
                canonicalize_quantities(m);
            }
        }
    }
}

/// Upstream rounds resource quantities up to milli precision (`SetDefaults_ResourceList`)
/// and always serializes them in canonical form (`0.5` → `500m`, `1024Mi` → `1Gi`).
fn canonicalize_quantities(list: &mut Map<String, Value>) {
    for value in list.values_mut() {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => continue,
        };
        if let Ok(q) = ParsedQuantity::parse(&text) {
            *value = Value::String(q.rounded_up_to_milli().canonical());
        }
    }
}

fn default_http_get(handler: &mut Value) {
    if let Some(http) = existing(handler, "httpGet") {
        set_default_str(http, "path", "/");
        set_default_str(http, "scheme", "HTTP");
    }
}

/// Volume source fields; a volume with none of them becomes an `emptyDir`.
const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

fn default_volume(vol: &mut Value) {
    let has_source = VOLUME_SOURCES
        .iter()
        .any(|k| vol.get(*k).is_some_and(|v| !v.is_null()));
    if !has_source {
        set_default(vol, "emptyDir", json!({}));
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = existing(vol, source) {
            set_default(s, "defaultMode", json!(420));
        }
    }
    if let Some(host_path) = existing(vol, "hostPath") {
        set_default(host_path, "type", json!(""));
    }
    if let Some(iscsi) = existing(vol, "iscsi") {
        set_default_str(iscsi, "iscsiInterface", "default");
    }
    if let Some(rbd) = existing(vol, "rbd") {
        set_default_str(rbd, "pool", "rbd");
        set_default_str(rbd, "user", "admin");
        set_default_str(rbd, "keyring", "/etc/ceph/keyring");
    }
    if let Some(downward) = existing(vol, "downwardAPI") {
        default_downward_items(downward);
    }
    if let Some(projected) = existing(vol, "projected") {
        for src in array_mut(projected, "sources") {
            if let Some(downward) = existing(src, "downwardAPI") {
                default_downward_items(downward);
            }
        }
    }
    if let Some(ephemeral) = existing(vol, "ephemeral") {
        if let Some(spec) = ephemeral
            .get_mut("volumeClaimTemplate")
            .and_then(|t| existing(t, "spec"))
        {
            set_default_str(spec, "volumeMode", "Filesystem");
        }
    }
}

fn default_downward_items(downward: &mut Value) {
    for item in array_mut(downward, "items") {
        if let Some(field_ref) = existing(item, "fieldRef") {
            set_default_str(field_ref, "apiVersion", "v1");
        }
    }
}

/// Pod-spec defaults inside the template at `path` (only if the template exists).
fn default_template(obj: &mut Value, path: &[&str]) {
    let mut cur = obj;
    for seg in path {
        match existing(cur, seg) {
            Some(next) => cur = next,
            None => return,
        }
    }
    embedded_meta(cur);
    default_pod_spec(child(cur, "spec"));
}

/// An ObjectMeta embedded in a template: upstream decodes it into a Go struct whose
/// zero `creationTimestamp` serialises as `null`, so stored templates always carry
/// `metadata.creationTimestamp: null` (`kubectl get -o yaml` shows it).
fn embedded_meta(template: &mut Value) {
    // a non-object `metadata` is left for validation to reject
    if template.get("metadata").is_some_and(|m| !m.is_object()) {
        return;
    }
    if let Some(meta) = child(template, "metadata").as_object_mut() {
        meta.entry("creationTimestamp").or_insert(Value::Null);
    }
}

// ---- Services and endpoints ----------------------------------------------------

fn default_service(svc: &mut Value) {
    let spec = child(svc, "spec");
    set_default_str(spec, "sessionAffinity", "None");
    match get_str(spec, "sessionAffinity") {
        "None" => {
            if let Some(m) = spec.as_object_mut() {
                m.remove("sessionAffinityConfig");
            }
        }
        "ClientIP" => {
            let has_timeout = spec
                .pointer("/sessionAffinityConfig/clientIP/timeoutSeconds")
                .is_some_and(|v| !v.is_null());
            if !has_timeout {
                if let Some(m) = spec.as_object_mut() {
                    m.insert(
                        "sessionAffinityConfig".into(),
                        json!({"clientIP": {"timeoutSeconds": 10800}}),
                    );
                }
            }
        }
        _ => {}
    }
    set_default_str(spec, "type", "ClusterIP");
    for port in array_mut(spec, "ports") {
        set_default_str(port, "protocol", "TCP");
        let target_unset = match port.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            Some(_) => false,
        };
        if target_unset {
            if let Some(p) = port.get("port").cloned() {
                if let Some(m) = port.as_object_mut() {
                    m.insert("targetPort".into(), p);
                }
            }
        }
    }
    let svc_type = get_str(spec, "type").to_string();
    let has_external_ips = spec
        .get("externalIPs")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let externally_accessible = matches!(svc_type.as_str(), "NodePort" | "LoadBalancer")
        || (svc_type == "ClusterIP" && has_external_ips);
    if externally_accessible {
        set_default_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if matches!(svc_type.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if svc_type == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    // The service REST strategy's single-stack IPv4 family defaults and its
    // clusterIP → clusterIPs sync (upstream does these outside defaults.go).
    if svc_type != "ExternalName" {
        set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
        set_default(spec, "ipFamilies", json!(["IPv4"]));
        let cluster_ip = get_str(spec, "clusterIP").to_string();
        let no_ips = spec
            .get("clusterIPs")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if !cluster_ip.is_empty() && no_ips {
            if let Some(m) = spec.as_object_mut() {
                m.insert("clusterIPs".into(), json!([cluster_ip]));
            }
        }
    }
}

// ---- Core kinds ----------------------------------------------------------------

fn default_replication_controller(rc: &mut Value) {
    let template_labels = rc
        .pointer("/spec/template/metadata/labels")
        .filter(|l| l.is_object())
        .cloned();
    if let Some(labels) = template_labels {
        let spec = child(rc, "spec");
        let selector_empty = spec
            .get("selector")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty);
        if selector_empty {
            if let Some(m) = spec.as_object_mut() {
                m.insert("selector".into(), labels.clone());
            }
        }
        let meta = child(rc, "metadata");
        let labels_empty = meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty);
        if labels_empty {
            if let Some(m) = meta.as_object_mut() {
                m.insert("labels".into(), labels);
            }
        }
    }
    set_default(child(rc, "spec"), "replicas", json!(1));
    default_template(rc, &["spec", "template"]);
}

fn default_namespace(ns: &mut Value) {
    let name = ns
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !name.is_empty() {
        let labels = child(child(ns, "metadata"), "labels");
        if let Some(m) = labels.as_object_mut() {
            m.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    }
    // The namespace strategy's finalizer (PrepareForCreate) and SetDefaults_NamespaceStatus.
    set_default(child(ns, "spec"), "finalizers", json!(["kubernetes"]));
    set_default_str(child(ns, "status"), "phase", "Active");
}

fn default_node(node: &mut Value) {
    let capacity = node
        .pointer("/status/capacity")
        .filter(|c| c.is_object())
        .cloned();
    if let Some(capacity) = capacity {
        set_default(child(node, "status"), "allocatable", capacity);
    }
}

fn default_persistent_volume(pv: &mut Value) {
    let spec = child(pv, "spec");
    set_default_str(spec, "persistentVolumeReclaimPolicy", "Retain");
    set_default_str(spec, "volumeMode", "Filesystem");
    set_default_str(child(pv, "status"), "phase", "Pending");
}

fn default_pvc(pvc: &mut Value) {
    set_default_str(child(pvc, "spec"), "volumeMode", "Filesystem");
    set_default_str(child(pvc, "status"), "phase", "Pending");
}

// ---- apps/v1 and batch/v1 --------------------------------------------------------

fn default_deployment(d: &mut Value) {
    let spec = child(d, "spec");
    set_default(spec, "replicas", json!(1));
    let strategy = child(spec, "strategy");
    set_default_str(strategy, "type", "RollingUpdate");
    if get_str(strategy, "type") == "RollingUpdate" {
        let ru = child(strategy, "rollingUpdate");
        set_default(ru, "maxUnavailable", json!("25%"));
        set_default(ru, "maxSurge", json!("25%"));
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
    set_default(spec, "progressDeadlineSeconds", json!(600));
    default_template(d, &["spec", "template"]);
}

fn default_daemon_set(ds: &mut Value) {
    let spec = child(ds, "spec");
    let strategy = child(spec, "updateStrategy");
    set_default_str(strategy, "type", "RollingUpdate");
    if get_str(strategy, "type") == "RollingUpdate" {
        let ru = child(strategy, "rollingUpdate");
        set_default(ru, "maxUnavailable", json!(1));
        set_default(ru, "maxSurge", json!(0));
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
    default_template(ds, &["spec", "template"]);
}

fn default_stateful_set(sts: &mut Value) {
    let spec = child(sts, "spec");
    set_default_str(spec, "podManagementPolicy", "OrderedReady");
    let strategy = child(spec, "updateStrategy");
    if get_str(strategy, "type").is_empty() {
        set_default_str(strategy, "type", "RollingUpdate");
        set_default(strategy, "rollingUpdate", json!({}));
    }
    if get_str(strategy, "type") == "RollingUpdate" {
        if let Some(ru) = existing(strategy, "rollingUpdate") {
            set_default(ru, "partition", json!(0));
        }
    }
    let retention = child(spec, "persistentVolumeClaimRetentionPolicy");
    set_default_str(retention, "whenDeleted", "Retain");
    set_default_str(retention, "whenScaled", "Retain");
    set_default(spec, "replicas", json!(1));
    set_default(spec, "revisionHistoryLimit", json!(10));
    for pvc in array_mut(spec, "volumeClaimTemplates") {
        embedded_meta(pvc);
        default_pvc(pvc);
    }
    default_template(sts, &["spec", "template"]);
}

fn default_job(job: &mut Value) {
    let spec = child(job, "spec");
    let unset = |s: &Value, k: &str| s.get(k).is_none_or(Value::is_null);
    if unset(spec, "completions") && unset(spec, "parallelism") {
        set_default(spec, "completions", json!(1));
    }
    set_default(spec, "parallelism", json!(1));
    let per_index = !unset(spec, "backoffLimitPerIndex");
    set_default(
        spec,
        "backoffLimit",
        json!(if per_index { i64::from(i32::MAX) } else { 6 }),
    );
    set_default(spec, "completionMode", json!("NonIndexed"));
    set_default(spec, "suspend", json!(false));
    let has_failure_policy = !unset(spec, "podFailurePolicy");
    set_default(
        spec,
        "podReplacementPolicy",
        json!(if has_failure_policy {
            "Failed"
        } else {
            "TerminatingOrFailed"
        }),
    );
    if let Some(rules) = spec
        .pointer_mut("/podFailurePolicy/rules")
        .and_then(Value::as_array_mut)
    {
        for rule in rules {
            for cond in array_mut(rule, "onPodConditions") {
                set_default_str(cond, "status", "True");
            }
        }
    }
    let template_labels = job
        .pointer("/spec/template/metadata/labels")
        .filter(|l| l.is_object())
        .cloned();
    if let Some(labels) = template_labels {
        let meta = child(job, "metadata");
        if meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
        {
            if let Some(m) = meta.as_object_mut() {
                m.insert("labels".into(), labels);
            }
        }
    }
    default_template(job, &["spec", "template"]);
}

fn default_cron_job(cj: &mut Value) {
    let spec = child(cj, "spec");
    set_default_str(spec, "concurrencyPolicy", "Allow");
    set_default(spec, "suspend", json!(false));
    set_default(spec, "successfulJobsHistoryLimit", json!(3));
    set_default(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(job_template) = existing(spec, "jobTemplate") {
        embedded_meta(job_template);
    }
    default_template(cj, &["spec", "jobTemplate", "spec", "template"]);
}

#[cfg(test)]
mod tests;
