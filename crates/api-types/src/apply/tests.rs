use serde_json::json;

use super::*;
use crate::registry::lookup_kind;

const T1: &str = "2025-01-01T00:00:00Z";
const T2: &str = "2025-01-01T00:01:00Z";

fn deployments() -> &'static ResourceInfo {
    lookup_kind("apps/v1", "Deployment").expect("deployments registered")
}

fn config(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}]}
            }
        }
    })
}

fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> &'a Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .and_then(|l| {
            l.iter()
                .find(|e| e["manager"] == manager && e["operation"] == operation)
        })
        .unwrap_or_else(|| panic!("no {manager}/{operation} entry in {obj}"))
}

#[test]
fn apply_creates_and_records_ownership_in_upstream_encoding() {
    let out = server_side_apply(
        deployments(),
        None,
        &config(2, "nginx:1"),
        "kubectl",
        false,
        T1,
        None,
    )
    .expect("apply");
    assert_eq!(out["spec"]["replicas"], 2);
    let e = entry(&out, "kubectl", "Apply");
    assert_eq!(e["apiVersion"], "apps/v1");
    assert_eq!(e["time"], T1);
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert_eq!(
        e["fieldsV1"],
        json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                        ".": {},
                        "f:image": {},
                        "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}
                    }}}
                }
            }
        })
    );
}

#[test]
fn reapply_changes_a_field_without_conflict() {
    let live = server_side_apply(
        deployments(),
        None,
        &config(2, "nginx:1"),
        "kubectl",
        false,
        T1,
        None,
    )
    .expect("create");
    let out = server_side_apply(
        deployments(),
        Some(&live),
        &config(3, "nginx:2"),
        "kubectl",
        false,
        T2,
        None,
    )
    .expect("reapply");
    assert_eq!(out["spec"]["replicas"], 3);
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:2"
    );
    assert_eq!(
        out["metadata"]["managedFields"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(entry(&out, "kubectl", "Apply")["time"], T2);
}

#[test]
fn fields_dropped_from_the_config_are_removed() {
    let mut first = config(2, "nginx:1");
    first["metadata"]["labels"]["tier"] = json!("front");
    first["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .expect("containers")
        .push(json!({"name": "sidecar", "image": "busybox"}));
    let live =
        server_side_apply(deployments(), None, &first, "kubectl", false, T1, None).expect("create");
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    let out = server_side_apply(
        deployments(),
        Some(&live),
        &config(2, "nginx:1"),
        "kubectl",
        false,
        T2,
        None,
    )
    .expect("reapply");
    assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
    // The dropped item goes whole: nothing of it (not even `{}`) stays behind.
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "nginx", "image": "nginx:1", "ports": [{"containerPort": 80}]}])
    );
    let fields = &entry(&out, "kubectl", "Apply")["fieldsV1"];
    assert!(fields["f:metadata"]["f:labels"].get("f:tier").is_none());
}

#[test]
fn dropped_item_another_manager_has_a_field_of_keeps_its_key() {
    let mut first = config(2, "nginx:1");
    first["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .expect("containers")
        .push(json!({"name": "sidecar", "image": "busybox"}));
    let live =
        server_side_apply(deployments(), None, &first, "a", false, T1, None).expect("a applies");
    // b (an update, as a controller's) owns only the sidecar's args.
    let mut updated = live.clone();
    updated["spec"]["template"]["spec"]["containers"][1]["args"] = json!(["-v"]);
    update_managed_fields(
        deployments(),
        Some(&live),
        &mut updated,
        "b",
        "Update",
        T1,
        None,
    );
    let b_fields = &entry(&updated, "b", "Update")["fieldsV1"];
    let sidecar =
        &b_fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"sidecar\"}"];
    assert_eq!(sidecar, &json!({"f:args": {}}));
    let live = updated;
    let out = server_side_apply(
        deployments(),
        Some(&live),
        &config(2, "nginx:1"),
        "a",
        false,
        T2,
        None,
    )
    .expect("a drops the sidecar");
    // a's image goes; the item stays for b's args, still named.
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][1],
        json!({"name": "sidecar", "args": ["-v"]})
    );
}

#[test]
fn dropped_field_owned_by_another_manager_stays() {
    let mut first = config(2, "nginx:1");
    first["metadata"]["labels"]["tier"] = json!("front");
    let live =
        server_side_apply(deployments(), None, &first, "a", false, T1, None).expect("a applies");
    let live = server_side_apply(deployments(), Some(&live), &first, "b", false, T1, None)
        .expect("b co-owns");
    let out = server_side_apply(
        deployments(),
        Some(&live),
        &config(2, "nginx:1"),
        "a",
        false,
        T2,
        None,
    )
    .expect("a drops tier");
    assert_eq!(out["metadata"]["labels"]["tier"], "front");
}

#[test]
fn conflict_with_an_update_manager_is_409_with_causes() {
    let live = server_side_apply(
        deployments(),
        None,
        &config(2, "nginx:1"),
        "kubectl",
        false,
        T1,
        None,
    )
    .expect("create");
    // `kubectl scale` (an Update) takes spec.replicas.
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(5);
    update_managed_fields(
        deployments(),
        Some(&live),
        &mut scaled,
        "kubectl-scale",
        "Update",
        T2,
        None,
    );
    assert_eq!(
        entry(&scaled, "kubectl-scale", "Update")["fieldsV1"],
        json!({"f:spec": {"f:replicas": {}}})
    );
    assert!(
        entry(&scaled, "kubectl", "Apply")["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_none(),
        "the update took replicas from the applier"
    );

    let err = server_side_apply(
        deployments(),
        Some(&scaled),
        &config(3, "nginx:1"),
        "other",
        false,
        T2,
        None,
    )
    .expect_err("conflict");
    assert_eq!(err.code, 409);
    assert_eq!(err.reason, "Conflict");
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"kubectl-scale\" using apps/v1: .spec.replicas"
    );
    assert_eq!(err.causes.len(), 1);
    assert_eq!(err.causes[0].reason, "FieldManagerConflict");
    assert_eq!(
        err.causes[0].message,
        "conflict with \"kubectl-scale\" using apps/v1"
    );
    assert_eq!(err.causes[0].field, ".spec.replicas");
    let status = err.to_status();
    assert_eq!(status["details"]["causes"][0]["field"], ".spec.replicas");
}

#[test]
fn conflicts_with_several_fields_of_an_applier() {
    let live = server_side_apply(
        deployments(),
        None,
        &config(2, "nginx:1"),
        "a",
        false,
        T1,
        None,
    )
    .expect("a");
    let err = server_side_apply(
        deployments(),
        Some(&live),
        &config(3, "nginx:2"),
        "b",
        false,
        T2,
        None,
    )
    .expect_err("conflicts");
    assert_eq!(
        err.message,
        "Apply failed with 2 conflicts: conflicts with \"a\":\n- .spec.replicas\n- .spec.template.spec.containers[name=\"nginx\"].image"
    );
    assert_eq!(err.causes[1].message, "conflict with \"a\"");
}

#[test]
fn same_value_is_shared_not_a_conflict() {
    let live = server_side_apply(
        deployments(),
        None,
        &config(2, "nginx:1"),
        "a",
        false,
        T1,
        None,
    )
    .expect("a");
    let out = server_side_apply(
        deployments(),
        Some(&live),
        &config(2, "nginx:1"),
        "b",
        false,
        T2,
        None,
    )
    .expect("no conflict");
    assert!(entry(&out, "a", "Apply")["fieldsV1"]["f:spec"]
        .get("f:replicas")
        .is_some());
    assert!(entry(&out, "b", "Apply")["fieldsV1"]["f:spec"]
        .get("f:replicas")
        .is_some());
}

#[test]
fn force_takes_ownership() {
    let live = server_side_apply(
        deployments(),
        None,
        &config(2, "nginx:1"),
        "a",
        false,
        T1,
        None,
    )
    .expect("a");
    let out = server_side_apply(
        deployments(),
        Some(&live),
        &config(4, "nginx:1"),
        "b",
        true,
        T2,
        None,
    )
    .expect("forced");
    assert_eq!(out["spec"]["replicas"], 4);
    assert!(entry(&out, "a", "Apply")["fieldsV1"]["f:spec"]
        .get("f:replicas")
        .is_none());
    assert!(entry(&out, "b", "Apply")["fieldsV1"]["f:spec"]
        .get("f:replicas")
        .is_some());
}

#[test]
fn apply_ignores_status_of_the_main_resource_and_keeps_resource_version() {
    let mut cfg = config(2, "nginx:1");
    cfg["status"] = json!({"replicas": 9});
    cfg["metadata"]["resourceVersion"] = json!("42");
    let out =
        server_side_apply(deployments(), None, &cfg, "kubectl", false, T1, None).expect("apply");
    assert!(out.get("status").is_none());
    assert_eq!(out["metadata"]["resourceVersion"], "42");
    let fields = &entry(&out, "kubectl", "Apply")["fieldsV1"];
    assert!(fields.get("f:status").is_none());
    assert!(fields["f:metadata"].get("f:resourceVersion").is_none());
}

#[test]
fn missing_field_manager_is_invalid() {
    let err = server_side_apply(deployments(), None, &config(1, "x"), "", false, T1, None)
        .expect_err("no manager");
    assert_eq!(err.code, 422);
}

#[test]
fn create_records_every_field_with_map_markers() {
    let mut obj = config(2, "nginx:1");
    update_managed_fields(
        deployments(),
        None,
        &mut obj,
        "kubectl-create",
        "Update",
        T1,
        None,
    );
    let e = entry(&obj, "kubectl-create", "Update");
    assert_eq!(e["time"], T1);
    let f = &e["fieldsV1"];
    assert_eq!(f["f:metadata"]["f:labels"], json!({".": {}, "f:app": {}}));
    assert!(f["f:metadata"].get(".").is_none());
    assert_eq!(f["f:spec"]["f:selector"], json!({}));
    assert_eq!(
        f["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"]["f:image"],
        json!({})
    );
    assert!(f.get("f:apiVersion").is_none() && f.get("f:kind").is_none());
    assert!(f["f:metadata"].get("f:name").is_none());
}

#[test]
fn updates_by_the_same_manager_merge_into_one_entry() {
    let mut obj = config(2, "nginx:1");
    update_managed_fields(deployments(), None, &mut obj, "m", "Update", T1, None);
    let old = obj.clone();
    obj["metadata"]["labels"]["x"] = json!("y");
    update_managed_fields(deployments(), Some(&old), &mut obj, "m", "Update", T2, None);
    let list = obj["metadata"]["managedFields"]
        .as_array()
        .expect("entries");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["time"], T2);
    assert!(list[0]["fieldsV1"]["f:metadata"]["f:labels"]
        .get("f:x")
        .is_some());
    assert!(list[0]["fieldsV1"]["f:spec"].get("f:replicas").is_some());
}

#[test]
fn status_writes_record_the_subresource() {
    let old = config(2, "nginx:1");
    let mut new = old.clone();
    new["status"] = json!({"replicas": 2});
    update_managed_fields(
        deployments(),
        Some(&old),
        &mut new,
        "kube-controller-manager",
        "Update",
        T1,
        Some("status"),
    );
    let e = entry(&new, "kube-controller-manager", "Update");
    assert_eq!(e["subresource"], "status");
    assert_eq!(e["fieldsV1"], json!({"f:status": {"f:replicas": {}}}));
}

/// An object as `kubectl apply` (client-side) leaves it: the configuration in the
/// last-applied annotation, every field owned by `kubectl-client-side-apply`.
fn client_side_applied(image: &str) -> Value {
    let config = config(2, image);
    let mut obj = config.clone();
    obj["metadata"]["annotations"] = json!({
        "kubectl.kubernetes.io/last-applied-configuration": serde_json::to_string(&config).unwrap()
    });
    update_managed_fields(
        deployments(),
        None,
        &mut obj,
        "kubectl-client-side-apply",
        "Update",
        T1,
        None,
    );
    obj
}

/// `manager` applies `config(2, "nginx:2")` to `live`.
fn apply_nginx_2(live: &Value, manager: &str) -> Result<Value, ApiError> {
    server_side_apply(
        deployments(),
        Some(live),
        &config(2, "nginx:2"),
        manager,
        false,
        T2,
        None,
    )
}

#[test]
fn kubectl_takes_over_what_its_client_side_apply_set() {
    let live = client_side_applied("nginx:1");
    // Another manager conflicts as ever.
    let other = apply_nginx_2(&live, "other");
    assert_eq!(other.expect_err("conflict").code, 409);
    // kubectl does not: the image is still what its last client-side apply set.
    let out = apply_nginx_2(&live, "kubectl").expect("kubectl upgrades");
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:2"
    );
    let fields = &entry(&out, "kubectl", "Apply")["fieldsV1"];
    assert!(fields["f:spec"].get("f:replicas").is_some(), "{fields}");
    // The annotation follows the configuration, as Go writes it.
    let last = out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .expect("annotation kept");
    assert!(last.ends_with("}\n"), "{last:?}");
    assert!(
        last.starts_with(r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"labels""#),
        "{last}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(last).unwrap(),
        config(2, "nginx:2")
    );
}

#[test]
fn kubectl_still_conflicts_on_what_changed_since_its_client_side_apply() {
    let mut live = client_side_applied("nginx:1");
    // Someone else set the image since (the annotation still says nginx:1).
    let before = live.clone();
    live["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:5");
    update_managed_fields(
        deployments(),
        Some(&before),
        &mut live,
        "ops",
        "Update",
        T1,
        None,
    );
    let err = apply_nginx_2(&live, "kubectl").expect_err("the image is someone else's now");
    assert_eq!(err.code, 409);
    assert!(format!("{err:?}").contains("ops"), "{err:?}");
}

#[test]
fn a_list_owned_whole_stays_for_the_items_the_configuration_still_sets() {
    // What kubectl's move from client-side apply leaves: its Apply entry owns the
    // containers list itself (`.`) and defaulted fields, as an Update entry would.
    let mut live = client_side_applied("nginx:1");
    for e in live["metadata"]["managedFields"]
        .as_array_mut()
        .expect("entries")
    {
        e["manager"] = json!("kubectl");
        e["operation"] = json!("Apply");
    }
    let out = apply_nginx_2(&live, "kubectl").expect("apply");
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "nginx", "image": "nginx:2", "ports": [{"containerPort": 80}]}])
    );
    assert_eq!(
        out["spec"]["template"]["metadata"]["labels"],
        json!({"app": "web"})
    );
}
