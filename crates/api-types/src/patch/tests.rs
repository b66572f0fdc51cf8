use serde_json::json;

use super::*;
use crate::registry::lookup_kind;

fn deployments() -> &'static ResourceInfo {
    lookup_kind("apps/v1", "Deployment").expect("deployments registered")
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}},
        "spec": {
            "replicas": 2,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "nginx", "image": "nginx:1.25",
                         "ports": [{"containerPort": 80}],
                         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                        {"name": "sidecar", "image": "busybox"}
                    ],
                    "tolerations": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}],
                    "volumes": [{"name": "data", "emptyDir": {}}]
                }
            }
        }
    })
}

fn smp(patch: Value) -> Value {
    apply_patch(
        deployments(),
        &deployment(),
        PatchType::StrategicMerge,
        &patch,
    )
    .expect("patch applies")
}

fn containers(obj: &Value) -> &Vec<Value> {
    obj["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
}

#[test]
fn content_types_map_to_patch_types() {
    assert_eq!(
        PatchType::from_content_type("application/json-patch+json"),
        Some(PatchType::Json)
    );
    assert_eq!(
        PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
        Some(PatchType::Merge)
    );
    assert_eq!(
        PatchType::from_content_type("application/strategic-merge-patch+json"),
        Some(PatchType::StrategicMerge)
    );
    assert_eq!(
        PatchType::from_content_type("application/apply-patch+yaml"),
        Some(PatchType::Apply)
    );
    assert_eq!(
        PatchType::from_content_type("application/apply-patch+cbor"),
        None
    );
    assert_eq!(PatchType::from_content_type("application/json"), None);
}

#[test]
fn smp_changes_one_container_and_keeps_the_others() {
    let out = smp(
        json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}}}),
    );
    let c = containers(&out);
    assert_eq!(c.len(), 2);
    assert_eq!(c[0]["name"], "nginx");
    assert_eq!(c[0]["image"], "nginx:1.27");
    assert_eq!(
        c[0]["ports"],
        json!([{"containerPort": 80}]),
        "untouched fields survive"
    );
    assert_eq!(c[1], json!({"name": "sidecar", "image": "busybox"}));
}

#[test]
fn smp_delete_directive_removes_a_container() {
    let out = smp(
        json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}}),
    );
    let c = containers(&out);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0]["name"], "nginx");
}

#[test]
fn smp_adds_a_container_in_upstream_order() {
    // Upstream `mergeSortedSlice`: a patch item unknown to the live list goes before the
    // server-only items it cannot be compared with (kubectl sends $setElementOrder to
    // control this).
    let out = smp(
        json!({"spec": {"template": {"spec": {"containers": [{"name": "log", "image": "fluent"}]}}}}),
    );
    let names: Vec<&str> = containers(&out)
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["log", "nginx", "sidecar"]);
    let out = smp(json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}, {"name": "log"}],
        "containers": [{"name": "log", "image": "fluent"}]
    }}}}));
    let names: Vec<&str> = containers(&out)
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["nginx", "sidecar", "log"]);
}

#[test]
fn smp_set_element_order_reorders_the_list() {
    let out = smp(json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "nginx"}],
        "containers": [{"name": "nginx", "image": "nginx:2"}]
    }}}}));
    let c = containers(&out);
    let names: Vec<&str> = c.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["sidecar", "nginx"]);
    assert_eq!(c[1]["image"], "nginx:2");
    assert!(out["spec"]["template"]["spec"]
        .get("$setElementOrder/containers")
        .is_none());
}

#[test]
fn smp_set_element_order_out_of_order_patch_is_rejected() {
    let err = apply_patch(
        deployments(),
        &deployment(),
        PatchType::StrategicMerge,
        &json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
            "containers": [{"name": "sidecar", "image": "x"}, {"name": "nginx", "image": "y"}]
        }}}}),
    )
    .expect_err("order mismatch");
    assert_eq!(err.code, 400);
}

#[test]
fn smp_merges_env_by_name_and_ports_by_container_port() {
    let out = smp(json!({"spec": {"template": {"spec": {"containers": [{
        "name": "nginx",
        "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}],
        "ports": [{"containerPort": 443}]
    }]}}}}));
    let c = &containers(&out)[0];
    assert_eq!(
        c["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "20"}, {"name": "C", "value": "3"}])
    );
    assert_eq!(
        c["ports"],
        json!([{"containerPort": 443}, {"containerPort": 80}])
    );
}

#[test]
fn smp_null_deletes_a_label() {
    let out = smp(json!({"metadata": {"labels": {"tier": null, "new": "x"}}}));
    assert_eq!(out["metadata"]["labels"], json!({"app": "web", "new": "x"}));
}

#[test]
fn smp_replaces_tolerations() {
    let out = smp(
        json!({"spec": {"template": {"spec": {"tolerations": [{"key": "c", "operator": "Exists"}]}}}}),
    );
    assert_eq!(
        out["spec"]["template"]["spec"]["tolerations"],
        json!([{"key": "c", "operator": "Exists"}])
    );
}

#[test]
fn smp_retain_keys_clears_the_other_strategy_fields() {
    let out = smp(json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}));
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn smp_patch_replace_on_a_map_and_a_list() {
    let out = smp(json!({"metadata": {"labels": {"$patch": "replace", "only": "this"}}}));
    assert_eq!(out["metadata"]["labels"], json!({"only": "this"}));
    let out = smp(json!({"spec": {"template": {"spec": {"containers": [
        {"name": "solo", "image": "x"}, {"$patch": "replace"}
    ]}}}}));
    assert_eq!(
        containers(&out),
        &vec![json!({"name": "solo", "image": "x"})]
    );
}

#[test]
fn smp_primitive_lists_merge_and_delete_from_primitive_list() {
    let info = lookup_kind("v1", "Pod").expect("pods");
    let pod = json!({"metadata": {"name": "p", "finalizers": ["a", "b"]}});
    let out = apply_patch(
        info,
        &pod,
        PatchType::StrategicMerge,
        &json!({"metadata": {"finalizers": ["c", "a"]}}),
    )
    .expect("patch");
    assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
    let out = apply_patch(
        info,
        &pod,
        PatchType::StrategicMerge,
        &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
    )
    .expect("patch");
    assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
}

#[test]
fn smp_missing_merge_key_is_bad_request() {
    let err = apply_patch(
        deployments(),
        &deployment(),
        PatchType::StrategicMerge,
        &json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
    )
    .expect_err("no merge key");
    assert_eq!(err.code, 400);
    assert!(
        err.message
            .contains("does not contain declared merge key: name"),
        "{}",
        err.message
    );
}

#[test]
fn smp_new_list_drops_delete_directives() {
    let info = lookup_kind("v1", "Pod").expect("pods");
    let pod = json!({"metadata": {"name": "p"}, "spec": {}});
    let out = apply_patch(
        info,
        &pod,
        PatchType::StrategicMerge,
        &json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "$patch": "delete"}]}}),
    )
    .expect("patch");
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "a", "image": "x"}])
    );
}

#[test]
fn smp_service_ports_merge_by_port() {
    let info = lookup_kind("v1", "Service").expect("services");
    let svc = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}]}});
    let out = apply_patch(
        info,
        &svc,
        PatchType::StrategicMerge,
        &json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443}]}}),
    )
    .expect("patch");
    assert_eq!(
        out["spec"]["ports"],
        json!([{"port": 80, "targetPort": 9090}, {"port": 443}])
    );
}

#[test]
fn json_patch_add_replace_remove() {
    let patch = json!([
        {"op": "replace", "path": "/spec/replicas", "value": 5},
        {"op": "add", "path": "/metadata/labels/new", "value": "x"},
        {"op": "remove", "path": "/metadata/labels/tier"}
    ]);
    let out = apply_patch(deployments(), &deployment(), PatchType::Json, &patch).expect("patch");
    assert_eq!(out["spec"]["replicas"], 5);
    assert_eq!(out["metadata"]["labels"], json!({"app": "web", "new": "x"}));
}

#[test]
fn json_patch_failed_test_is_422_and_leaves_nothing_applied() {
    let patch = json!([
        {"op": "test", "path": "/spec/replicas", "value": 9},
        {"op": "replace", "path": "/spec/replicas", "value": 5}
    ]);
    let err =
        apply_patch(deployments(), &deployment(), PatchType::Json, &patch).expect_err("test fails");
    assert_eq!(err.code, 422);
    assert_eq!(err.reason, "Invalid");
    assert_eq!(
        err.message,
        "the server rejected our request due to an error in our request"
    );
}

#[test]
fn json_patch_that_does_not_decode_is_400() {
    let err = apply_patch(
        deployments(),
        &deployment(),
        PatchType::Json,
        &json!({"op": "add"}),
    )
    .expect_err("not a list");
    assert_eq!(err.code, 400);
    assert_eq!(err.reason, "BadRequest");
}

#[test]
fn merge_patch_replaces_lists_and_deletes_nulls() {
    let patch = json!({"metadata": {"labels": {"tier": null}},
        "spec": {"template": {"spec": {"containers": [{"name": "only", "image": "x"}]}}}});
    let out = apply_patch(deployments(), &deployment(), PatchType::Merge, &patch).expect("patch");
    assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(
        containers(&out),
        &vec![json!({"name": "only", "image": "x"})]
    );
    assert_eq!(out["spec"]["replicas"], 2);
}
