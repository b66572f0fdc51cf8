//! `describe deployment|replicaset|replicationcontroller`.

use serde_json::Value;

use super::template::name_and_namespace;
use super::template::{annotations_multiline, describe_pod_template, labels_multiline};
use super::writer::{PrefixWriter, LEVEL_0, LEVEL_1};
use super::{events, field, format_labels, int, int_or_string};
use crate::cmd::rollout::{replica_sets, selector_string};
use crate::context::Context;
use crate::errors::Result;

/// `metav1.FormatLabelSelector`.
fn format_selector(selector: &Value) -> String {
    let s = selector_string(selector);
    if s.is_empty() {
        "<none>".into()
    } else {
        s
    }
}

fn conditions(obj: &Value, w: &mut PrefixWriter) {
    if let Some(conditions) = obj["status"]["conditions"]
        .as_array()
        .filter(|c| !c.is_empty())
    {
        w.write(LEVEL_0, "Conditions:\n  Type\tStatus\tReason\n");
        w.write(LEVEL_1, "----\t------\t------\n");
        for c in conditions {
            w.write(
                LEVEL_1,
                &format!(
                    "{} \t{}\t{}\n",
                    field(c, "/type"),
                    field(c, "/status"),
                    field(c, "/reason")
                ),
            );
        }
    }
}

fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
        labels.remove("pod-template-hash");
    }
    t
}

fn replica_sets_text(sets: &[&Value]) -> String {
    if sets.is_empty() {
        return "<none>".into();
    }
    sets.iter()
        .map(|rs| {
            format!(
                "{} ({}/{} replicas created)",
                field(rs, "/metadata/name"),
                int(&rs["status"]["replicas"]),
                int(&rs["spec"]["replicas"])
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn deployment(ctx: &Context, d: &Value, events: Option<&Vec<Value>>) -> Result<String> {
    let meta = &d["metadata"];
    let spec = &d["spec"];
    let status = &d["status"];
    let mut w = PrefixWriter::new();
    name_and_namespace(&mut w, d);
    w.write(
        LEVEL_0,
        &format!(
            "CreationTimestamp:\t{}\n",
            super::pod::rfc1123z(field(d, "/metadata/creationTimestamp"))
        ),
    );
    labels_multiline(&mut w, "", "Labels", &meta["labels"]);
    annotations_multiline(&mut w, "Annotations", &meta["annotations"]);
    w.write(
        LEVEL_0,
        &format!("Selector:\t{}\n", format_selector(&spec["selector"])),
    );
    w.write(
        LEVEL_0,
        &format!(
            "Replicas:\t{} desired | {} updated | {} total | {} available | {} unavailable\n",
            int(&spec["replicas"]),
            int(&status["updatedReplicas"]),
            int(&status["replicas"]),
            int(&status["availableReplicas"]),
            int(&status["unavailableReplicas"])
        ),
    );
    w.write(
        LEVEL_0,
        &format!("StrategyType:\t{}\n", field(spec, "/strategy/type")),
    );
    w.write(
        LEVEL_0,
        &format!("MinReadySeconds:\t{}\n", int(&spec["minReadySeconds"])),
    );
    let ru = &spec["strategy"]["rollingUpdate"];
    if ru.is_object() {
        w.write(
            LEVEL_0,
            &format!(
                "RollingUpdateStrategy:\t{} max unavailable, {} max surge\n",
                int_or_string(&ru["maxUnavailable"], "0"),
                int_or_string(&ru["maxSurge"], "0")
            ),
        );
    }
    describe_pod_template(&spec["template"], &mut w);
    conditions(d, &mut w);
    // upstream prints nothing here when the deployment owns no ReplicaSet yet
    if let Some(mut sets) = replica_sets(ctx, d).await.ok().filter(|s| !s.is_empty()) {
        sets.sort_by(|a, b| {
            field(a, "/metadata/creationTimestamp")
                .cmp(field(b, "/metadata/creationTimestamp"))
                .then(field(a, "/metadata/name").cmp(field(b, "/metadata/name")))
        });
        let template = without_hash(&spec["template"]);
        let new_index = sets
            .iter()
            .position(|rs| without_hash(&rs["spec"]["template"]) == template);
        let old: Vec<&Value> = sets
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != new_index)
            .map(|(_, rs)| rs)
            .collect();
        let new: Vec<&Value> = new_index.map(|i| &sets[i]).into_iter().collect();
        w.write(
            LEVEL_0,
            &format!("OldReplicaSets:\t{}\n", replica_sets_text(&old)),
        );
        w.write(
            LEVEL_0,
            &format!("NewReplicaSet:\t{}\n", replica_sets_text(&new)),
        );
    }
    events::describe(events, &mut w);
    Ok(w.aligned())
}

/// Running / Waiting / Succeeded / Failed pods controlled by `obj`.
pub(super) async fn pod_counts(
    ctx: &Context,
    obj: &Value,
    selector: &str,
) -> Result<(i64, i64, i64, i64)> {
    let client = ctx.client().await?;
    let path = format!(
        "/api/v1/namespaces/{}/pods?labelSelector={}",
        field(obj, "/metadata/namespace"),
        crate::client::encode(selector)
    );
    let pods = client.get(&path).await?;
    let uid = &obj["metadata"]["uid"];
    let mut counts = (0, 0, 0, 0);
    for pod in pods["items"].as_array().cloned().unwrap_or_default() {
        let owned = pod["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|refs| {
                refs.iter()
                    .any(|r| r["controller"] == true && &r["uid"] == uid)
            });
        if !owned {
            continue;
        }
        match field(&pod, "/status/phase") {
            "Running" => counts.0 += 1,
            "Pending" => counts.1 += 1,
            "Succeeded" => counts.2 += 1,
            "Failed" => counts.3 += 1,
            _ => {}
        }
    }
    Ok(counts)
}

pub async fn replica_set(ctx: &Context, rs: &Value, events: Option<&Vec<Value>>) -> Result<String> {
    let meta = &rs["metadata"];
    let spec = &rs["spec"];
    let mut w = PrefixWriter::new();
    name_and_namespace(&mut w, rs);
    w.write(
        LEVEL_0,
        &format!("Selector:\t{}\n", format_selector(&spec["selector"])),
    );
    labels_multiline(&mut w, "", "Labels", &meta["labels"]);
    annotations_multiline(&mut w, "Annotations", &meta["annotations"]);
    if let Some(c) = super::controller(rs) {
        w.write(LEVEL_0, &format!("Controlled By:\t{c}\n"));
    }
    w.write(
        LEVEL_0,
        &format!(
            "Replicas:\t{} current / {} desired\n",
            int(&rs["status"]["replicas"]),
            int(&spec["replicas"])
        ),
    );
    w.write(LEVEL_0, "Pods Status:\t");
    match pod_counts(ctx, rs, &selector_string(&spec["selector"])).await {
        Ok((r, wt, s, f)) => w.write(
            LEVEL_0,
            &format!("{r} Running / {wt} Waiting / {s} Succeeded / {f} Failed\n"),
        ),
        Err(e) => w.write(LEVEL_0, &format!("error in fetching pods: {e}\n")),
    }
    describe_pod_template(&spec["template"], &mut w);
    conditions(rs, &mut w);
    events::describe(events, &mut w);
    Ok(w.aligned())
}

pub async fn replication_controller(
    ctx: &Context,
    rc: &Value,
    events: Option<&Vec<Value>>,
) -> Result<String> {
    let meta = &rc["metadata"];
    let spec = &rc["spec"];
    let mut w = PrefixWriter::new();
    name_and_namespace(&mut w, rc);
    let selector = format_labels(&spec["selector"]);
    w.write(LEVEL_0, &format!("Selector:\t{selector}\n"));
    labels_multiline(&mut w, "", "Labels", &meta["labels"]);
    annotations_multiline(&mut w, "Annotations", &meta["annotations"]);
    w.write(
        LEVEL_0,
        &format!(
            "Replicas:\t{} current / {} desired\n",
            int(&rc["status"]["replicas"]),
            int(&spec["replicas"])
        ),
    );
    let (r, wt, s, f) = pod_counts(ctx, rc, &selector).await?;
    w.write(
        LEVEL_0,
        &format!("Pods Status:\t{r} Running / {wt} Waiting / {s} Succeeded / {f} Failed\n"),
    );
    describe_pod_template(&spec["template"], &mut w);
    conditions(rc, &mut w);
    events::describe(events, &mut w);
    Ok(w.aligned())
}
