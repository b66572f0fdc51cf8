use serde_json::json;

use super::*;
use crate::patch::schema::{root_shape, root_shape_for};
use crate::registry::lookup_kind;
use crate::ResourceInfo;

const NOW: &str = "2025-01-01T00:00:00Z";

fn info(api_version: &str, kind: &str) -> &'static ResourceInfo {
    lookup_kind(api_version, kind).unwrap_or_else(|| panic!("{kind} registered"))
}

/// Runs the public entry point (fast path) and the general diff on copies of
/// `obj` and asserts the two results serialize to the same bytes.
fn assert_same_as_diff(info: &ResourceInfo, obj: &Value, subresource: Option<&str>) -> Value {
    type Update = fn(&ResourceInfo, Option<&Value>, &mut Value, &str, &str, &str, Option<&str>);
    let run = |update: Update| {
        let mut out = obj.clone();
        update(
            info,
            None,
            &mut out,
            "kubectl-create",
            "Update",
            NOW,
            subresource,
        );
        out
    };
    let fast = run(super::super::update_managed_fields);
    let general = run(super::super::update_managed_fields_by_diff);
    let (f, g) = (
        serde_json::to_string(&fast).expect("json"),
        serde_json::to_string(&general).expect("json"),
    );
    assert_eq!(f, g, "fast path differs from the general path");
    fast
}

/// The encoder alone against the general path's field set, for any shape.
fn assert_fields_same(obj: &Value, shape: &'static Shape, reset: Option<&str>) {
    let fast = created_fields_v1(obj, shape, reset).expect("no duplicates");
    let fast = fast.map_or("null".to_string(), |b| String::from_utf8(b).expect("utf-8"));
    let clean = super::super::without_managed_fields(obj);
    let changed = super::super::walk::compare(&json!({}), &clean, shape).changed();
    let set = super::super::owned_set(changed, reset);
    let general = (!set.is_empty()).then(|| set.to_fields_v1());
    assert_eq!(fast, serde_json::to_string(&general).expect("json"));
}

fn bench_pod() -> Value {
    let env: Vec<Value> = (0..24)
        .map(|i| json!({"name": format!("SETTING_{i}"), "value": format!("value-{i}")}))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "bench", "uid": "u", "creationTimestamp": NOW, "generation": 1,
            "labels": {"app": "bench", "tier": "web"}, "annotations": {"example.com/owner": "team-a"}},
        "spec": {
            "containers": [{
                "name": "web", "image": "busybox", "command": ["sh", "-c", "httpd -f -p 8080"],
                "ports": [{"containerPort": 8080, "name": "http"}, {"containerPort": 53, "protocol": "UDP"}],
                "env": env,
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m"}},
                "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 5},
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                "terminationMessagePath": "/dev/termination-log"
            }, {"name": "sidecar", "image": "pause", "securityContext": {}}],
            "initContainers": [{"name": "init", "image": "busybox", "args": []}],
            "volumes": [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "c", "items": [{"key": "a", "path": "a"}]}}],
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
            "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "nodeSelector": {"disk": "ssd"}
        },
        "status": {"phase": "Pending", "qosClass": "Burstable"}
    })
}

#[test]
fn managed_fields_bytes_are_what_the_value_path_serializes() {
    let pods = info("v1", "Pod");
    for sub in [None, Some("status")] {
        let mut obj = bench_pod();
        let bytes = super::super::created_managed_fields_json(
            pods,
            &obj,
            "kubectl-create",
            "Update",
            NOW,
            sub,
        )
        .expect("fast path")
        .expect("fields owned");
        super::super::update_managed_fields(
            pods,
            None,
            &mut obj,
            "kubectl-create",
            "Update",
            NOW,
            sub,
        );
        let expected = serde_json::to_string(&obj["metadata"]["managedFields"]).expect("json");
        assert_eq!(String::from_utf8(bytes).expect("utf-8"), expected);
    }
    // A body that sent the key (even empty) takes the Value path.
    let mut sent = bench_pod();
    sent["metadata"]["managedFields"] = json!([]);
    assert!(
        super::super::created_managed_fields_json(pods, &sent, "m", "Update", NOW, None).is_err()
    );
    // Nothing owned: no managedFields at all.
    let bare = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
    assert_eq!(
        super::super::created_managed_fields_json(pods, &bare, "m", "Update", NOW, None),
        Ok(None)
    );
    let mut bare_value = bare.clone();
    super::super::update_managed_fields(pods, None, &mut bare_value, "m", "Update", NOW, None);
    assert!(bare_value["metadata"].get("managedFields").is_none());
}

#[test]
fn pods_match_the_general_path() {
    let pods = info("v1", "Pod");
    let out = assert_same_as_diff(pods, &bench_pod(), None);
    let fields = &out["metadata"]["managedFields"][0]["fieldsV1"];
    assert_eq!(
        fields["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:ports"]
            ["k:{\"containerPort\":8080,\"protocol\":\"TCP\"}"],
        json!({".": {}, "f:containerPort": {}, "f:name": {}})
    );
    assert_eq!(
        fields["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:env"]
            ["k:{\"name\":\"SETTING_3\"}"],
        json!({".": {}, "f:name": {}, "f:value": {}})
    );
    assert!(
        fields.get("f:status").is_none(),
        "status is reset through the main resource: {fields}"
    );
    assert!(fields["f:metadata"].get("f:name").is_none());
    // Through /status: spec is not owned.
    assert_same_as_diff(pods, &bench_pod(), Some("status"));
}

#[test]
fn other_kinds_match_the_general_path() {
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a", "b"],
            "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "x", "uid": "1", "controller": true}]},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
            "template": {"metadata": {"name": "t", "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}]}}},
        "status": {"replicas": 3}
    });
    assert_same_as_diff(info("apps/v1", "Deployment"), &deployment, None);
    let service = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "d"},
        "spec": {"type": "NodePort", "clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"],
            "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP", "name": "dns"}],
            "selector": {"app": "x"}},
        "status": {"loadBalancer": {}}
    });
    assert_same_as_diff(info("v1", "Service"), &service, None);
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "annotations": {}},
        "data": {"a": "1", "b": ""}, "binaryData": {}, "immutable": null});
    assert_same_as_diff(info("v1", "ConfigMap"), &cm, None);
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]});
    assert_same_as_diff(info("rbac.authorization.k8s.io/v1", "Role"), &role, None);
}

#[test]
fn edge_cases_match_the_general_path() {
    let ns = info("v1", "Namespace");
    // Only unowned fields: no entry at all.
    let bare = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}});
    let out = assert_same_as_diff(ns, &bare, None);
    assert!(out["metadata"].get("managedFields").is_none());
    assert_same_as_diff(
        ns,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "managedFields": []}}),
        None,
    );
    assert_same_as_diff(
        ns,
        &json!({"kind": "Namespace", "metadata": null, "spec": {"finalizers": []}}),
        None,
    );
    assert_same_as_diff(
        ns,
        &json!({"metadata": {"managedFields": "junk"}, "spec": {}}),
        None,
    );
    assert_same_as_diff(ns, &json!({}), None);
    let pods = info("v1", "Pod");
    // A list-map item without its key makes the list atomic.
    assert_same_as_diff(
        pods,
        &json!({"metadata": {"name": "p"}, "spec": {"containers": [{"image": "x"}, {"name": "a"}], "volumes": [{"name": "v"}]}}),
        None,
    );
    // Unknown fields and odd values.
    assert_same_as_diff(
        pods,
        &json!({"metadata": {"name": {"deep": 1}, "labels": {"a": null}}, "spec": {"bogus": {"x": [1, 2]}, "hostname": 5}}),
        None,
    );
    // Without a schema everything is granular.
    let unknown = root_shape_for("example.com", "Widget");
    assert_fields_same(
        &json!({"apiVersion": "x/v1", "kind": "Widget", "metadata": {"name": {"a": 1}, "labels": {"k": "v"}, "managedFields": []}, "spec": {"a": {"b": [1]}, "c": []}}),
        unknown,
        None,
    );
    assert_fields_same(&bench_pod(), root_shape(pods), Some("status"));
}

#[test]
fn duplicate_list_keys_fall_back_to_the_general_path() {
    let pods = info("v1", "Pod");
    let dup = json!({"metadata": {"name": "p", "finalizers": ["a", "a"]},
        "spec": {"containers": [{"name": "c", "image": "1"}, {"name": "c", "env": [{"name": "E"}]}]}});
    assert!(created_fields_v1(&dup, root_shape(pods), None).is_err());
    let out = assert_same_as_diff(pods, &dup, None);
    let fields = &out["metadata"]["managedFields"][0]["fieldsV1"];
    assert_eq!(
        fields["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]["f:env"]["k:{\"name\":\"E\"}"],
        json!({".": {}, "f:name": {}})
    );
}

#[test]
fn sent_managed_fields_take_the_general_path() {
    let pods = info("v1", "Pod");
    let sent = json!({"metadata": {"name": "p", "managedFields": [{"manager": "other", "operation": "Update", "apiVersion": "v1",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:hostname": {}}}}]}, "spec": {"hostname": "h", "subdomain": "s"}});
    let out = assert_same_as_diff(pods, &sent, None);
    assert_eq!(
        out["metadata"]["managedFields"].as_array().map(Vec::len),
        Some(1),
        "{out}"
    );
}

#[test]
fn empty_children_between_siblings_leave_no_bytes() {
    let widget = root_shape_for("example.com", "Widget");
    // Stripped or emptied children first, in the middle and last, at the root and
    // in metadata: no stray commas, no keys without values.
    assert_fields_same(
        &json!({"apiVersion": "x/v1", "b": 1, "kind": "W", "metadata": {"name": "n"}, "z": {}}),
        widget,
        None,
    );
    assert_fields_same(
        &json!({"a": 1, "metadata": {"managedFields": [], "uid": "u"}, "z": 2}),
        widget,
        None,
    );
    assert_fields_same(
        &json!({"a": 1, "metadata": {"generation": 1, "labels": {"x": "y"}, "name": "n", "uid": "u"}, "z": 2}),
        widget,
        None,
    );
    assert_fields_same(
        &json!({"kind": "W", "metadata": {"namespace": "d", "annotations": {}, "uid": "u"}}),
        widget,
        None,
    );
    assert_fields_same(
        &json!({"spec": {"x": 1}, "status": {"y": 2}, "apiVersion": "v"}),
        widget,
        Some("spec"),
    );
    assert_fields_same(
        &json!({"kind": "W", "metadata": {"name": "n"}, "status": {"y": 2}}),
        widget,
        Some("status"),
    );
    assert_fields_same(&json!({"metadata": {"name": "n"}}), widget, None);
    assert_fields_same(&json!({}), widget, None);
    assert_eq!(
        created_fields_v1(&json!([1]), widget, None).ok(),
        Some(None)
    );
    let pods = info("v1", "Pod");
    let pod = json!({"kind": "Pod", "apiVersion": "v1",
        "metadata": {"uid": "u", "labels": {"a": "b"}, "name": "p", "managedFields": [], "namespace": "d"},
        "spec": {"hostname": "h"}, "status": {}});
    assert_fields_same(&pod, root_shape(pods), None);
    assert_same_as_diff(pods, &pod, None);
    assert_same_as_diff(pods, &pod, Some("status"));
}

#[test]
fn nested_duplicates_are_still_reported() {
    let pods = info("v1", "Pod");
    let deployments = info("apps/v1", "Deployment");
    let nested = [
        // Equal multi-field keys once `protocol` is defaulted.
        (
            pods,
            json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}, {"containerPort": 80, "protocol": "TCP"}]}]}}),
        ),
        (
            pods,
            json!({"spec": {"containers": [{"name": "c", "env": [{"name": "A"}, {"name": "B"}, {"name": "A", "value": "2"}]}]}}),
        ),
        (
            deployments,
            json!({"spec": {"template": {"metadata": {"finalizers": ["x", "y", "x"]}}}}),
        ),
        (
            deployments,
            json!({"spec": {"template": {"spec": {"initContainers": [{"name": "i"}, {"name": "i"}]}}}}),
        ),
    ];
    for (info, obj) in nested {
        assert!(
            created_fields_v1(&obj, root_shape(info), None).is_err(),
            "{obj}"
        );
        assert_same_as_diff(info, &obj, None);
    }
    // Distinct in every field but one: not a duplicate.
    let ports = json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}, {"containerPort": 80, "protocol": "UDP"}]}]}});
    assert_fields_same(&ports, root_shape(pods), None);
}

#[test]
fn list_maps_with_several_key_fields_match_the_general_path() {
    let pods = info("v1", "Pod");
    let pod = json!({"spec": {
        "containers": [{"name": "c", "ports": [
            {"containerPort": 9090, "protocol": "UDP", "name": "b"},
            {"containerPort": 80},
            {"protocol": "SCTP", "containerPort": 80, "hostPort": 8080},
            {"containerPort": 443, "protocol": "TCP"}]}],
        "topologySpreadConstraints": [
            {"topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "maxSkew": 1},
            {"whenUnsatisfiable": "ScheduleAnyway", "topologyKey": "zone"},
            {"topologyKey": "z\"q\\\u{e9}\n\u{1}", "whenUnsatisfiable": {"odd": [1, null, "x"]}},
            {"topologyKey": null, "whenUnsatisfiable": 3}]}});
    assert_fields_same(&pod, root_shape(pods), None);
    assert_same_as_diff(pods, &pod, None);
    let services = info("v1", "Service");
    let svc = json!({"spec": {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53}, {"port": 8, "name": "x"}]}});
    assert_fields_same(&svc, root_shape(services), None);
    // A missing key field without a default makes the list atomic.
    let partial = json!({"spec": {"topologySpreadConstraints": [{"topologyKey": "zone"}, {"topologyKey": "a", "whenUnsatisfiable": "x"}]}});
    assert_fields_same(&partial, root_shape(pods), None);
}

#[test]
fn item_keys_are_what_walk_item_key_gives() {
    let items = [
        json!({"b": 1, "a": "x", "protocol": "UDP"}),
        json!({"a": {"n": [1, "\u{e9}\""]}, "b": null}),
        json!({"a": "q\"\\\n\u{1}", "b": true, "protocol": 2.5}),
    ];
    let keys: &[&[&str]] = &[
        &["a", "b"],
        &["b", "a"],
        &["b", "a", "b"],
        &["protocol", "a"],
        &["a"],
    ];
    for keys in keys {
        let mut enc = Encoder::new(None);
        assert!(enc.item_keys(&items, keys));
        for ((s, m, e, item), expected) in enc.items.iter().zip(&items) {
            let Some(super::super::fieldset::PathElement::Key(k)) =
                super::super::walk::item_key(expected, keys)
            else {
                panic!("item_key of {expected}");
            };
            assert_eq!(std::str::from_utf8(&enc.arena[*s..*m]).expect("utf-8"), k);
            // The escaped copy is what escaping the key text gives.
            let mut escaped = Vec::new();
            crate::json::escape_into(&mut escaped, k.as_bytes());
            assert_eq!(enc.arena[*m..*e], escaped[..], "{k}");
            assert_eq!(*item, expected);
        }
    }
    let mut enc = Encoder::new(None);
    assert!(!enc.item_keys(&items, &["c"]));
}

#[test]
fn sets_of_mixed_scalars_match_the_general_path() {
    let pods = info("v1", "Pod");
    let mixed = json!({"metadata": {"finalizers": ["b", 10, 9, true, false, null, 2.5, -1, "a", "\"q", "\u{e9}", "A", {"x": 1}, [1], "a\nb", 1e300]}});
    assert_fields_same(&mixed, root_shape(pods), None);
    assert_same_as_diff(pods, &mixed, None);
    let nodes = info("v1", "Node");
    assert_fields_same(
        &json!({"spec": {"podCIDRs": ["10.0.1.0/24", "10.0.0.0/24", "fd00::/64"]}}),
        root_shape(nodes),
        None,
    );
}

#[test]
fn escaped_and_unicode_keys_sort_as_the_general_path() {
    // Raw order and escaped order differ: '!' < '"' < '#' raw, but `\"` starts
    // with '\' (after '#'); control characters sort first raw, `\u0001` does not.
    let keys = [
        "a",
        "a!",
        "a\"",
        "a#",
        "a\\",
        "a]",
        "a\u{1}",
        "a\n",
        "a\t",
        "a\u{7f}",
        "a\u{e9}",
        "a\u{10000}",
        "",
        "A",
        "f:x",
        ".",
        "z",
    ];
    let mut map = serde_json::Map::new();
    for (i, k) in keys.iter().rev().enumerate() {
        map.insert((*k).to_string(), json!({"n": i, (*k): {"deep": [i]}}));
    }
    let widget = root_shape_for("example.com", "Widget");
    assert_fields_same(&Value::Object(map.clone()), widget, None);
    let pods = info("v1", "Pod");
    let labels: serde_json::Map<String, Value> =
        keys.iter().map(|k| ((*k).to_string(), json!(k))).collect();
    let pod = json!({"metadata": {"name": "p", "labels": labels, "annotations": map}});
    assert_fields_same(&pod, root_shape(pods), None);
    assert_same_as_diff(pods, &pod, None);
}

/// Objects that differ only where the encoding does not look (names, UIDs, label and
/// annotation values, scalars outside lists) share one memo entry; any change the
/// encoding records misses it, and every answer is the general path's.
#[test]
fn like_objects_share_a_memo_entry_and_unlike_ones_do_not() {
    let pod_info = info("v1", "Pod");
    let shape = root_shape(pod_info);
    let check = |obj: &Value, reset: Option<&str>, hit: bool| {
        let before = memo::hits();
        assert_fields_same(obj, shape, reset);
        assert_eq!(
            memo::hits() - before,
            usize::from(hit),
            "hit expected: {hit} for {obj}"
        );
    };
    let first = bench_pod();
    check(&first, Some("status"), false);
    check(&first, Some("status"), true);
    let mut like = bench_pod();
    like["metadata"]["name"] = json!("other");
    like["metadata"]["uid"] = json!("another-uid");
    like["metadata"]["labels"]["app"] = json!("different");
    like["metadata"]["annotations"]["example.com/owner"] = json!("team-b");
    like["spec"]["restartPolicy"] = json!("Never");
    like["status"]["phase"] = json!("Running");
    check(&like, Some("status"), true);

    // Each change below is one the encoding records, or may record.
    let unlike: Vec<fn(&mut Value)> = vec![
        // A list-map key value; another scalar in a list item.
        (|p| p["spec"]["containers"][0]["env"][3]["name"] = json!("RENAMED")),
        (|p| p["spec"]["containers"][0]["env"][3]["value"] = json!("v")),
        (|p| p["spec"]["containers"][0]["ports"][1]["containerPort"] = json!(54)),
        // A field name, added or removed; a label key.
        (|p| p["spec"]["hostNetwork"] = json!(true)),
        (|p| {
            if let Some(s) = p["spec"].as_object_mut() {
                s.remove("dnsPolicy");
            }
        }),
        (|p| p["metadata"]["labels"]["new"] = json!("x")),
        // An empty map made non-empty; a scalar made a map or a list.
        (|p| p["spec"]["containers"][1]["securityContext"]["privileged"] = json!(true)),
        (|p| p["spec"]["nodeSelector"]["disk"] = json!({"a": 1})),
        (|p| p["spec"]["dnsPolicy"] = json!([])),
        // One more list item; a set of scalars reordered.
        (|p| {
            if let Some(v) = p["spec"]["volumes"].as_array_mut() {
                v.push(json!({"name": "more", "emptyDir": {}}));
            }
        }),
        (|p| p["spec"]["containers"][0]["command"] = json!(["-c", "sh", "httpd -f -p 8080"])),
        // A key whose bytes look like the outline's own markers.
        (|p| p["metadata"]["labels"]["}k]"] = json!("x")),
    ];
    for change in &unlike {
        let mut obj = bench_pod();
        change(&mut obj);
        check(&obj, Some("status"), false);
        check(&obj, Some("status"), true);
    }
    // The same object with another reset field or another shape is another entry.
    check(&first, None, false);
    check(&first, None, true);
    let before = memo::hits();
    assert_fields_same(&first, root_shape(info("v1", "ConfigMap")), None);
    assert_eq!(memo::hits(), before, "another shape must miss");
}

/// `cargo test -p api-types --release created_fields_v1_timing -- --ignored --nocapture`
#[test]
#[ignore = "timing, not an assertion"]
fn created_fields_v1_timing() {
    let pod = bench_pod();
    let shape = root_shape(info("v1", "Pod"));
    let calls = 10_000u32;
    // The fastest of several rounds: the machine is shared.
    let best = (0..7)
        .map(|_| {
            let start = std::time::Instant::now();
            for _ in 0..calls {
                std::hint::black_box(
                    encode(std::hint::black_box(&pod), shape, Some("status")).ok(),
                );
            }
            start.elapsed().as_nanos() / u128::from(calls)
        })
        .min()
        .unwrap_or_default();
    println!("created_fields_v1(bench_pod), not remembered: {best} ns/call");
    let start = std::time::Instant::now();
    for _ in 0..calls {
        std::hint::black_box(
            created_fields_v1(std::hint::black_box(&pod), shape, Some("status")).ok(),
        );
    }
    let remembered = start.elapsed().as_nanos() / u128::from(calls);
    println!("created_fields_v1(bench_pod), remembered: {remembered} ns/call");
}
