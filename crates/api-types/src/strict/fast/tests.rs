//! The fast path against the typed decode: clean objects, systematic mutations,
//! every schema property, the decoder's quirks, and a timing comparison.

use super::super::{check_fields, typed_for};
use super::*;
use crate::registry::{lookup_kind, ResourceInfo, RESOURCES};
use serde_json::json;

fn info(api_version: &str, kind: &str) -> &'static ResourceInfo {
    lookup_kind(api_version, kind).expect("registered kind")
}

fn fast(info: &ResourceInfo, obj: &Value) -> bool {
    typed_for(info).is_some_and(|(i, _)| is_clean(i, obj))
}

fn typed(info: &ResourceInfo, obj: &Value) -> Result<Vec<String>, String> {
    typed_for(info).map_or(Ok(vec![]), |(_, t)| (t.decode)(info, obj))
}

/// The contract: the fast path says clean only when the typed decode does.
fn assert_sound(info: &ResourceInfo, obj: &Value, what: &str) {
    if fast(info, obj) {
        assert_eq!(typed(info, obj), Ok(vec![]), "{} {what}: {obj}", info.kind);
    }
}

fn bench_pod() -> Value {
    let env: Vec<Value> = (0..24)
        .map(|i| json!({"name": format!("VAR_{i}"), "value": format!("value-{i}")}))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "bench-0", "namespace": "default",
            "labels": {"app": "bench", "tier": "web", "run": "r1"},
            "annotations": {"a.example.com/one": "1", "b.example.com/two": "two"}},
        "spec": {
            "containers": [{
                "name": "app", "image": "registry.local/app:1.0",
                "command": ["/bin/app", "--port", "8080"],
                "ports": [{"containerPort": 8080, "name": "http"}],
                "env": env,
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                              "limits": {"cpu": "500m", "memory": "128Mi"}},
                "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 5},
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            }],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "restartPolicy": "Always",
        },
    })
}

/// The bench pod as the apiserver has it after defaulting.
fn bench_pod_defaulted() -> Value {
    let mut pod = bench_pod();
    let c = &mut pod["spec"]["containers"][0];
    c["imagePullPolicy"] = json!("IfNotPresent");
    c["terminationMessagePath"] = json!("/dev/termination-log");
    c["terminationMessagePolicy"] = json!("File");
    c["ports"][0]["protocol"] = json!("TCP");
    let probe = &mut c["readinessProbe"];
    probe["httpGet"]["scheme"] = json!("HTTP");
    probe["timeoutSeconds"] = json!(1);
    probe["successThreshold"] = json!(1);
    probe["failureThreshold"] = json!(3);
    let spec = &mut pod["spec"];
    spec["dnsPolicy"] = json!("ClusterFirst");
    spec["schedulerName"] = json!("default-scheduler");
    spec["securityContext"] = json!({});
    spec["terminationGracePeriodSeconds"] = json!(30);
    spec["enableServiceLinks"] = json!(true);
    spec["preemptionPolicy"] = json!("PreemptLowerPriority");
    spec["priority"] = json!(0);
    spec["serviceAccountName"] = json!("default");
    spec["tolerations"] = json!([
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]);
    pod["status"] = json!({"phase": "Pending", "qosClass": "Burstable"});
    pod
}

fn pod_spec(i: usize) -> Value {
    let mut c = json!({"name": format!("c{i}"), "image": "busybox:1.36",
        "args": ["sh", "-c", "sleep 3600"],
        "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k", "optional": true}}}],
        "resources": {"requests": {"cpu": 0.5, "memory": 67108864}, "limits": {"cpu": 1}},
        "livenessProbe": {"exec": {"command": ["true"]}, "initialDelaySeconds": 3},
        "securityContext": {"runAsUser": 1000, "runAsNonRoot": true, "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]}, "allowPrivilegeEscalation": false}});
    if i == 0 {
        c["ports"] = json!([{"containerPort": 80, "protocol": "UDP", "hostPort": 8080}]);
        c["startupProbe"] = json!({"tcpSocket": {"port": "http"}, "periodSeconds": 2});
    }
    json!({"containers": [c],
        "initContainers": [{"name": "init", "image": "busybox", "command": ["true"]}],
        "volumes": [{"name": "cfg", "configMap": {"name": "cm", "defaultMode": 420, "items": [{"key": "a", "path": "a"}]}},
                    {"name": "sec", "secret": {"secretName": "s"}},
                    {"name": "proj", "projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]}}],
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                "labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["x"]}]}}}]}},
        "hostAliases": [{"ip": "127.0.0.1", "hostnames": ["a"]}],
        "securityContext": {"fsGroup": 2000, "supplementalGroups": [1, 2]},
        "restartPolicy": if i == 0 { "Always" } else { "OnFailure" }})
}

fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": "ns", "labels": {"app": name}, "annotations": {"note": "x"}})
}

/// Stored objects carry server-set metadata: timestamps, uid, managedFields, owners.
fn stored_meta(name: &str) -> Value {
    let mut m = meta(name);
    m["uid"] = json!("6f1e2c3a-0000-4000-8000-000000000001");
    m["resourceVersion"] = json!("12345");
    m["generation"] = json!(3);
    m["creationTimestamp"] = json!("2026-11-22T19:00:00Z");
    m["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
        "uid": "6f1e2c3a-0000-4000-8000-000000000002", "controller": true, "blockOwnerDeletion": true}]);
    m["managedFields"] = json!([{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
        "time": "2026-11-22T19:00:00Z", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}}]);
    m["finalizers"] = json!(["example.com/f"]);
    m
}

/// A realistic set of clean objects of the main kinds: (apiVersion, kind, object).
fn corpus() -> Vec<(&'static str, &'static str, Value)> {
    let mut out = vec![
        ("v1", "Pod", bench_pod()),
        ("v1", "Pod", bench_pod_defaulted()),
    ];
    for i in 0..2 {
        let n = format!("o{i}");
        let m = if i == 0 { meta(&n) } else { stored_meta(&n) };
        let template = json!({"metadata": {"labels": {"app": n}}, "spec": pod_spec(i)});
        out.extend([
            ("v1", "Pod", json!({"apiVersion": "v1", "kind": "Pod", "metadata": m, "spec": pod_spec(i),
                "status": {"phase": "Running", "podIP": "10.0.0.5", "startTime": "2026-11-22T19:00:01Z",
                    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-22T19:00:02Z", "lastProbeTime": null}],
                    "containerStatuses": [{"name": "c", "image": "busybox", "imageID": "", "ready": true, "restartCount": 0,
                        "started": true, "state": {"running": {"startedAt": "2026-11-22T19:00:03Z"}}}]}})),
            ("v1", "Service", json!({"apiVersion": "v1", "kind": "Service", "metadata": m,
                "spec": {"selector": {"app": n}, "type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                    "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP", "nodePort": 30080},
                              {"name": "m", "port": 9090, "targetPort": 9090}],
                    "sessionAffinity": "None", "ipFamilies": ["IPv4"]},
                "status": {"loadBalancer": {}}})),
            ("apps/v1", "Deployment", json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": m,
                "spec": {"replicas": 3, "selector": {"matchLabels": {"app": n}}, "template": template,
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
                    "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
                "status": {"replicas": 3, "readyReplicas": 3, "observedGeneration": 3,
                    "conditions": [{"type": "Available", "status": "True", "lastUpdateTime": "2026-11-22T19:00:00Z",
                        "lastTransitionTime": "2026-11-22T19:00:00Z", "reason": "MinimumReplicasAvailable", "message": "ok"}]}})),
            ("apps/v1", "StatefulSet", json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": m,
                "spec": {"serviceName": "s", "replicas": 1, "selector": {"matchLabels": {"app": n}}, "template": template,
                    "volumeClaimTemplates": [{"metadata": {"name": "d"}, "spec": {"accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}}}}]}})),
            ("apps/v1", "DaemonSet", json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": m,
                "spec": {"selector": {"matchLabels": {"app": n}}, "template": template,
                    "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}}})),
            ("v1", "ConfigMap", json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": m,
                "data": {"a": "1", "config.yaml": "x: 1\n"}, "binaryData": {"b": "AAEC"}, "immutable": false})),
            ("v1", "Secret", json!({"apiVersion": "v1", "kind": "Secret", "metadata": m, "type": "Opaque",
                "data": {"password": "c2VjcmV0", "empty": ""}, "stringData": {"user": "admin"}})),
            ("batch/v1", "Job", json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": m,
                "spec": {"backoffLimit": 4, "completions": 1, "parallelism": 1, "ttlSecondsAfterFinished": 100,
                    "template": {"spec": pod_spec(1)}},
                "status": {"active": 1, "startTime": "2026-11-22T19:00:00Z"}})),
            ("batch/v1", "CronJob", json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": m,
                "spec": {"schedule": "*/5 * * * *", "concurrencyPolicy": "Forbid", "successfulJobsHistoryLimit": 3,
                    "jobTemplate": {"spec": {"template": {"spec": pod_spec(1)}}}}})),
            ("rbac.authorization.k8s.io/v1", "Role", json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": m, "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]}]})),
            ("rbac.authorization.k8s.io/v1", "ClusterRole", json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": n}, "rules": [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}],
                "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "true"}}]}})),
            ("rbac.authorization.k8s.io/v1", "RoleBinding", json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": m, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
                "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "ns"},
                             {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}]})),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", json!({"apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding", "metadata": {"name": n},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "r"},
                "subjects": [{"kind": "Group", "name": "g", "apiGroup": "rbac.authorization.k8s.io"}]})),
            ("v1", "ServiceAccount", json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": m,
                "secrets": [{"name": "t"}], "automountServiceAccountToken": false})),
            ("v1", "Namespace", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})),
            ("networking.k8s.io/v1", "Ingress", json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": m,
                "spec": {"ingressClassName": "nginx", "rules": [{"host": "a.example.com", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}}]}})),
            ("policy/v1", "PodDisruptionBudget", json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": m,
                "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": n}}}})),
            ("autoscaling/v2", "HorizontalPodAutoscaler", json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": m, "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": n},
                    "minReplicas": 1, "maxReplicas": 5, "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 80}}}]}})),
            ("coordination.k8s.io/v1", "Lease", json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": m,
                "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40, "renewTime": "2026-11-22T19:00:00.123456Z"}})),
            ("v1", "Node", json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n, "labels": {"a": "b"}},
                "spec": {"podCIDR": "10.244.0.0/24", "taints": [{"key": "k", "effect": "NoSchedule"}]},
                "status": {"capacity": {"cpu": "2", "memory": "24Gi", "pods": "110"}, "allocatable": {"cpu": "2"},
                    "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                    "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-11-22T19:00:00Z",
                        "lastTransitionTime": "2026-11-22T19:00:00Z", "reason": "KubeletReady", "message": "ok"}],
                    "nodeInfo": {"machineID": "m", "systemUUID": "s", "bootID": "b", "kernelVersion": "6", "osImage": "d",
                        "containerRuntimeVersion": "containerd://1.6", "kubeletVersion": "v1.33.0", "kubeProxyVersion": "",
                        "operatingSystem": "linux", "architecture": "amd64"}}})),
            ("v1", "PersistentVolumeClaim", json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": m,
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Filesystem"}})),
            ("discovery.k8s.io/v1", "EndpointSlice", json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": m,
                "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.5"], "conditions": {"ready": true},
                    "targetRef": {"kind": "Pod", "name": "p", "namespace": "ns"}}],
                "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]})),
            ("v1", "Endpoints", json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": m,
                "subsets": [{"addresses": [{"ip": "10.0.0.5"}], "ports": [{"port": 80}]}]})),
            ("certificates.k8s.io/v1", "CertificateSigningRequest", json!({"apiVersion": "certificates.k8s.io/v1",
                "kind": "CertificateSigningRequest", "metadata": {"name": n},
                "spec": {"request": "LS0tLS1CRUdJTg==", "signerName": "kubernetes.io/kube-apiserver-client", "usages": ["client auth"]}})),
            ("v1", "Event", json!({"apiVersion": "v1", "kind": "Event", "metadata": m,
                "involvedObject": {"kind": "Pod", "name": "p", "namespace": "ns"}, "reason": "Started", "message": "m",
                "type": "Normal", "count": 1, "firstTimestamp": "2026-11-22T19:00:00Z", "source": {"component": "kubelet"}})),
        ]);
    }
    out
}

#[test]
fn fast_path_answers_clean_objects_without_the_typed_decode() {
    for (api_version, kind, obj) in corpus() {
        let info = info(api_version, kind);
        assert_eq!(
            typed(info, &obj),
            Ok(vec![]),
            "corpus object must be clean: {obj}"
        );
        assert!(
            fast(info, &obj),
            "fast path fell back on a clean {kind}: {obj}"
        );
        assert_eq!(check_fields(info, &obj), Ok(vec![]));
    }
}

/// Every JSON pointer in `v` (the root excluded).
fn pointers(v: &Value, at: &str, out: &mut Vec<String>) {
    let children: Vec<(String, &Value)> = match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| (k.replace('~', "~0").replace('/', "~1"), v))
            .collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => return,
    };
    for (seg, child) in children {
        let p = format!("{at}/{seg}");
        out.push(p.clone());
        pointers(child, &p, out);
    }
}

fn replacements() -> Vec<Value> {
    vec![
        json!(null),
        json!(true),
        json!(false),
        json!(0),
        json!(1),
        json!(-1),
        json!(1.5),
        json!(3.0),
        json!(2_147_483_648_i64),
        json!(-2_147_483_649_i64),
        json!(9_223_372_036_854_775_808_u64),
        json!(-1e19),
        json!(1e30),
        json!("s"),
        json!(""),
        json!("2024-01-02T03:04:05Z"),
        json!("2024-01-02 03:04:05"),
        json!("not base64!"),
        json!("eA=="),
        json!("50%"),
        json!("1Gi"),
        json!([]),
        json!(["s"]),
        json!([null]),
        json!([1]),
        json!({}),
        json!({"k": "s"}),
        json!({"k": null}),
        json!({"k": 1}),
        json!({"name": "x"}),
    ]
}

/// Systematic mutations of `obj`: every node replaced by values of every JSON type,
/// an unknown key at every object, every key removed, every list element dropped.
/// Returns how many mutations the fast path still judged clean.
fn mutate_all(info: &ResourceInfo, obj: &Value, values: &[Value], ptrs: &[String]) -> usize {
    let mut work = obj.clone();
    let mut clean = 0;
    let mut check = |work: &Value, what: &str| {
        assert_sound(info, work, what);
        clean += usize::from(fast(info, work));
    };
    for root in [json!(null), json!([]), json!("x"), json!(1)] {
        check(&root, "non-object root");
    }
    for p in std::iter::once(String::new()).chain(ptrs.iter().cloned()) {
        if !p.is_empty() {
            for v in values {
                let Some(slot) = work.pointer_mut(&p) else {
                    continue;
                };
                let orig = std::mem::replace(slot, v.clone());
                check(&work, &format!("{p} = {v}"));
                if let Some(slot) = work.pointer_mut(&p) {
                    *slot = orig;
                }
            }
        }
        match work.pointer_mut(&p) {
            Some(Value::Object(m)) => {
                let keys: Vec<String> = m.keys().cloned().collect();
                m.insert("zzUnknownField".into(), json!(1));
                check(&work, &format!("unknown key in {p}"));
                for key in keys {
                    let Some(Value::Object(m)) = work.pointer_mut(&p) else {
                        break;
                    };
                    m.remove("zzUnknownField");
                    let Some(orig) = m.remove(&key) else { continue };
                    check(&work, &format!("{p}/{key} removed"));
                    if let Some(Value::Object(m)) = work.pointer_mut(&p) {
                        m.insert(key, orig);
                    }
                }
            }
            Some(Value::Array(a)) => {
                for i in 0..a.len() {
                    let Some(Value::Array(a)) = work.pointer_mut(&p) else {
                        break;
                    };
                    let orig = a.remove(i);
                    check(&work, &format!("{p}/{i} dropped"));
                    if let Some(Value::Array(a)) = work.pointer_mut(&p) {
                        a.insert(i, orig);
                    }
                }
            }
            _ => {}
        }
    }
    clean
}

#[test]
fn fast_path_is_never_cleaner_than_the_typed_decode() {
    let values = replacements();
    let mut clean = 0;
    for (api_version, kind, obj) in corpus() {
        let mut ptrs = Vec::new();
        pointers(&obj, "", &mut ptrs);
        clean += mutate_all(info(api_version, kind), &obj, &values, &ptrs);
    }
    // Some mutations are still clean (a null optional field, a number for a
    // quantity, a dropped list element): the fast path must find those too.
    assert!(clean > 100, "{clean}");
}

/// A sample value of `ty` from the graph; records in `ptrs` the pointer of each
/// (definition, field) the first time it is filled, for the mutations.
fn sample(
    graph: &Graph,
    ty: &Ty,
    at: &str,
    seen: &mut Seen,
    ptrs: &mut Vec<String>,
) -> Option<Value> {
    let leaves = [
        json!("2024-01-02T03:04:05Z"),
        json!("eA=="),
        json!(7),
        json!(true),
    ];
    match ty {
        Ty::Leaf(ok) => leaves.into_iter().find(ok),
        Ty::Struct(def) if at.matches('/').count() < 40 => {
            Some(sample_def(graph, *def, at, seen, ptrs))
        }
        Ty::List(inner) => sample(graph, inner, &format!("{at}/0"), seen, ptrs).map(|v| json!([v])),
        Ty::Map(inner) => {
            sample(graph, inner, &format!("{at}/k"), seen, ptrs).map(|v| json!({"k": v}))
        }
        Ty::Struct(_) | Ty::Unsure => None,
    }
}

type Seen = std::collections::HashSet<(usize, String)>;

fn sample_def(
    graph: &Graph,
    def: usize,
    at: &str,
    seen: &mut Seen,
    ptrs: &mut Vec<String>,
) -> Value {
    let mut out = Map::new();
    for (k, f) in &graph.defs[def].fields {
        let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
        if seen.insert((def, k.clone())) {
            ptrs.push(p.clone());
        }
        if let Some(v) = sample(graph, &f.ty, &p, seen, ptrs) {
            out.insert(k.clone(), v);
        }
    }
    Value::Object(out)
}

/// Each typed kind with every property the schema has, filled from the graph: the
/// typed decode knows every key and accepts every value the graph calls clean; then
/// each (definition, field) once mutated.
#[test]
fn fully_populated_objects_agree_with_the_typed_decode() {
    let graph = &*GRAPH;
    let values = [
        json!(null),
        json!(1.5),
        json!(-2_147_483_649_i64),
        json!("s"),
        json!({}),
        json!([]),
        json!(true),
    ];
    let mut seen = Seen::new();
    for (index, typed_kind) in TYPED.iter().enumerate() {
        let info = RESOURCES
            .iter()
            .find(|r| typed_for(r).is_some_and(|(i, _)| i == index))
            .unwrap_or_else(|| panic!("no resource for {}", typed_kind.kind));
        let root = graph.roots[index].expect("root definition");
        let mut ptrs = Vec::new();
        let mut obj = sample_def(graph, root, "", &mut seen, &mut ptrs);
        obj["apiVersion"] = json!(info.api_version());
        obj["kind"] = json!(info.kind);
        assert_eq!(typed(info, &obj), Ok(vec![]), "{}: {obj}", info.kind);
        assert!(fast(info, &obj), "{}: {obj}", info.kind);
        mutate_all(info, &obj, &values, &ptrs);
    }
}

/// `cargo test --release -p api-types --lib strict::fast::tests::timing -- --ignored --nocapture`
#[test]
#[ignore = "timing, not a check: run in release"]
fn timing_bench_pod() {
    let info = info("v1", "Pod");
    for (name, pod) in [
        ("bench pod", bench_pod()),
        ("defaulted", bench_pod_defaulted()),
    ] {
        assert!(fast(info, &pod));
        let rounds = 20_000u32;
        let time = |f: &dyn Fn() -> bool| {
            let start = std::time::Instant::now();
            for _ in 0..rounds {
                assert!(std::hint::black_box(f()));
            }
            start.elapsed().as_nanos() / u128::from(rounds)
        };
        let typed_ns = time(&|| typed(info, std::hint::black_box(&pod)).is_ok());
        let fast_ns = time(&|| check_fields(info, std::hint::black_box(&pod)).is_ok());
        println!(
            "{name}: typed decode {typed_ns} ns/check, check_fields (fast path) {fast_ns} ns/check"
        );
    }
}

/// The decoder's own rules, seen from both sides: (object, typed decode clean?,
/// fast path clean?).
#[test]
fn decoder_quirks_are_mirrored() {
    let pod = |spec: Value| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec});
    let c = |extra: Value| {
        let mut c = json!({"name": "c", "image": "i"});
        if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(extra.clone());
        }
        pod(json!({"containers": [c]}))
    };
    let pods = [
        // Quantities take JSON numbers too.
        (
            c(json!({"resources": {"limits": {"cpu": 1.5, "memory": 67_108_864}}})),
            true,
            true,
        ),
        // A required string absent decodes as its default.
        (pod(json!({"containers": [{"image": "i"}]})), true, true),
        (
            c(json!({"ports": [{"containerPort": 2_147_483_648_i64}]})),
            false,
            false,
        ),
        (
            c(json!({"ports": [{"containerPort": 8080.0}]})),
            false,
            false,
        ),
        (c(json!({"ports": [{"containerPort": -1}]})), true, true),
        (c(json!({"env": [null]})), false, false),
        (c(json!({"env": null, "command": null})), true, true),
        (
            c(json!({"readinessProbe": {"httpGet": {"port": "http"}}})),
            true,
            true,
        ),
        (
            c(json!({"readinessProbe": {"httpGet": {"port": 1.5}}})),
            false,
            false,
        ),
        (
            pod(json!({"containers": [], "nodeSelector": {"a": null}})),
            false,
            false,
        ),
    ];
    let pod_info = info("v1", "Pod");
    for (obj, typed_clean, fast_clean) in pods {
        assert_eq!(typed(pod_info, &obj) == Ok(vec![]), typed_clean, "{obj}");
        assert_eq!(fast(pod_info, &obj), fast_clean, "{obj}");
    }
    let meta = |m: Value| json!({"apiVersion": "v9", "kind": "Nope", "metadata": m});
    let cm_info = info("v1", "ConfigMap");
    for (obj, clean) in [
        (
            meta(json!({"name": "c", "creationTimestamp": "2024-01-02T03:04:05Z"})),
            true,
        ),
        (
            meta(json!({"name": "c", "creationTimestamp": "2024-01-02 03:04:05"})),
            false,
        ),
        (
            meta(json!({"name": "c", "creationTimestamp": null, "labels": null})),
            true,
        ),
        (
            meta(json!({"name": "c", "managedFields": [{"fieldsV1": {"f:x": {}}, "time": null}]})),
            true,
        ),
    ] {
        assert_eq!(typed(cm_info, &obj) == Ok(vec![]), clean, "{obj}");
        assert_eq!(fast(cm_info, &obj), clean, "{obj}");
    }
    // ByteString: base64 checked as the decoder does; null decodes as empty.
    let secret_info = info("v1", "Secret");
    for (data, clean) in [
        (json!({"k": null}), true),
        (json!({"k": "eA=="}), true),
        (json!({"k": "eA="}), false),
    ] {
        let obj = json!({"metadata": {"name": "s"}, "data": data});
        assert_eq!(typed(secret_info, &obj) == Ok(vec![]), clean, "{obj}");
        assert_eq!(fast(secret_info, &obj), clean, "{obj}");
    }
    // A required MicroTime (no default): absent fails the decode, so never clean.
    let event_info = info("events.k8s.io/v1", "Event");
    let event = json!({"metadata": {"name": "e"}, "eventTime": "2024-01-02T03:04:05.000001Z", "series": {"count": 2}});
    assert_ne!(typed(event_info, &event), Ok(vec![]));
    assert!(!fast(event_info, &event));
    let mut event = event;
    event["series"]["lastObservedTime"] = json!("2024-01-02T03:04:05.000002Z");
    assert_eq!(typed(event_info, &event), Ok(vec![]));
    assert!(fast(event_info, &event));
}

/// Every field reachable from a typed kind is modelled (but the apiVersion and kind of
/// resources: the roots' are skipped by the walk, those of a resource nested in another
/// — a StatefulSet's PVC templates — are checked against the nested type's own values
/// by the decoder, so the walk falls back on them): a new schema shape would otherwise
/// make the fast path fall back silently for whole kinds.
#[test]
fn every_reachable_field_is_modelled() {
    fn walk(g: &Graph, ty: &Ty, path: &str, seen: &mut Vec<bool>, unsure: &mut Vec<String>) {
        match ty {
            Ty::Struct(d) if !seen[*d] => {
                seen[*d] = true;
                if g.defs[*d].unsure {
                    unsure.push(path.to_string());
                }
                for (k, f) in &g.defs[*d].fields {
                    walk(g, &f.ty, &format!("{path}.{k}"), seen, unsure);
                }
            }
            Ty::List(t) | Ty::Map(t) => walk(g, t, &format!("{path}[]"), seen, unsure),
            Ty::Unsure => unsure.push(path.to_string()),
            Ty::Struct(_) | Ty::Leaf(_) => {}
        }
    }
    let g = &*GRAPH;
    let mut seen = vec![false; g.defs.len()];
    let mut unsure = Vec::new();
    for (root, typed) in g.roots.iter().zip(TYPED) {
        let root = root.unwrap_or_else(|| panic!("no schema for {}", typed.kind));
        for (k, f) in &g.defs[root].fields {
            if k != "apiVersion" && k != "kind" {
                walk(
                    g,
                    &f.ty,
                    &format!("{}.{k}", typed.kind),
                    &mut seen,
                    &mut unsure,
                );
            }
        }
    }
    unsure.sort();
    assert_eq!(
        unsure,
        [
            "StatefulSet.spec.volumeClaimTemplates[].apiVersion",
            "StatefulSet.spec.volumeClaimTemplates[].kind"
        ]
    );
    // Pods reach containers, probes, volumes and metadata.
    assert!(seen.iter().filter(|s| **s).count() > 150);
}
