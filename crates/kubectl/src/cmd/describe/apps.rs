//! `describe daemonset|statefulset`.

use serde_json::Value;

use super::template::name_and_namespace;
use super::template::{annotations_multiline, describe_pod_template, labels_multiline};
use super::workloads::pod_counts;
use super::writer::{PrefixWriter, LEVEL_0, LEVEL_1};
use super::{events, field, format_labels, int, int_or_string};
use crate::cmd::rollout::selector_string;
use crate::context::Context;
use crate::errors::Result;

fn header(w: &mut PrefixWriter, obj: &Value) {
    name_and_namespace(w, obj);
}

pub async fn daemon_set(ctx: &Context, ds: &Value, events: Option<&Vec<Value>>) -> Result<String> {
    let spec = &ds["spec"];
    let status = &ds["status"];
    let selector = selector_string(&spec["selector"]);
    let (running, waiting, succeeded, failed) = pod_counts(ctx, ds, &selector).await?;
    let mut w = PrefixWriter::new();
    // kubectl 1.32 prints no Namespace line for daemon sets
    w.write(
        LEVEL_0,
        &format!("Name:\t{}\n", field(ds, "/metadata/name")),
    );
    w.write(LEVEL_0, &format!("Selector:\t{selector}\n"));
    w.write(
        LEVEL_0,
        &format!(
            "Node-Selector:\t{}\n",
            format_labels(&spec["template"]["spec"]["nodeSelector"])
        ),
    );
    labels_multiline(&mut w, "", "Labels", &ds["metadata"]["labels"]);
    annotations_multiline(&mut w, "Annotations", &ds["metadata"]["annotations"]);
    for (title, key) in [
        (
            "Desired Number of Nodes Scheduled",
            "desiredNumberScheduled",
        ),
        (
            "Current Number of Nodes Scheduled",
            "currentNumberScheduled",
        ),
        (
            "Number of Nodes Scheduled with Up-to-date Pods",
            "updatedNumberScheduled",
        ),
        (
            "Number of Nodes Scheduled with Available Pods",
            "numberAvailable",
        ),
        ("Number of Nodes Misscheduled", "numberMisscheduled"),
    ] {
        w.write(LEVEL_0, &format!("{title}: {}\n", int(&status[key])));
    }
    w.write(
        LEVEL_0,
        &format!(
            "Pods Status:\t{running} Running / {waiting} Waiting / {succeeded} Succeeded / {failed} Failed\n"
        ),
    );
    describe_pod_template(&spec["template"], &mut w);
    events::describe(events, &mut w);
    Ok(w.aligned())
}

/// `storageutil.GetPersistentVolumeClaimClass`.
fn claim_class(pvc: &Value) -> &str {
    match pvc["metadata"]["annotations"]["volume.beta.kubernetes.io/storage-class"].as_str() {
        Some(class) => class,
        None => field(pvc, "/spec/storageClassName"),
    }
}

fn go_list(v: &Value) -> String {
    let items: Vec<&str> = v
        .as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap_or_default()).collect())
        .unwrap_or_default();
    format!("[{}]", items.join(" "))
}

/// `describeVolumeClaimTemplates`.
fn volume_claim_templates(templates: &Value, w: &mut PrefixWriter) {
    let list = templates.as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        w.write(LEVEL_0, "Volume Claims:\t<none>\n");
        return;
    }
    w.write(LEVEL_0, "Volume Claims:\n");
    for pvc in &list {
        w.write(
            LEVEL_1,
            &format!("Name:\t{}\n", field(pvc, "/metadata/name")),
        );
        w.write(LEVEL_1, &format!("StorageClass:\t{}\n", claim_class(pvc)));
        labels_multiline(w, "  ", "Labels", &pvc["metadata"]["labels"]);
        labels_multiline(w, "  ", "Annotations", &pvc["metadata"]["annotations"]);
        match pvc["spec"]["resources"]["requests"]["storage"].as_str() {
            Some(c) => w.write(LEVEL_1, &format!("Capacity:\t{c}\n")),
            None => w.write(LEVEL_1, "Capacity:\t<default>\n"),
        }
        w.write(
            LEVEL_1,
            &format!("Access Modes:\t{}\n", go_list(&pvc["spec"]["accessModes"])),
        );
    }
}

pub async fn stateful_set(
    ctx: &Context,
    ss: &Value,
    events: Option<&Vec<Value>>,
) -> Result<String> {
    let spec = &ss["spec"];
    let selector = selector_string(&spec["selector"]);
    let (running, waiting, succeeded, failed) = pod_counts(ctx, ss, &selector).await?;
    let mut w = PrefixWriter::new();
    header(&mut w, ss);
    w.write(
        LEVEL_0,
        &format!(
            "CreationTimestamp:\t{}\n",
            super::pod::rfc1123z(field(ss, "/metadata/creationTimestamp"))
        ),
    );
    w.write(LEVEL_0, &format!("Selector:\t{selector}\n"));
    labels_multiline(&mut w, "", "Labels", &ss["metadata"]["labels"]);
    annotations_multiline(&mut w, "Annotations", &ss["metadata"]["annotations"]);
    w.write(
        LEVEL_0,
        &format!(
            "Replicas:\t{} desired | {} total\n",
            int(&spec["replicas"]),
            int(&ss["status"]["replicas"])
        ),
    );
    w.write(
        LEVEL_0,
        &format!(
            "Update Strategy:\t{}\n",
            field(spec, "/updateStrategy/type")
        ),
    );
    let ru = &spec["updateStrategy"]["rollingUpdate"];
    if let Some(partition) = ru["partition"].as_i64() {
        w.write(LEVEL_1, &format!("Partition:\t{partition}\n"));
        if !ru["maxUnavailable"].is_null() {
            w.write(
                LEVEL_1,
                &format!(
                    "MaxUnavailable:\t{}\n",
                    int_or_string(&ru["maxUnavailable"], "")
                ),
            );
        }
    }
    w.write(
        LEVEL_0,
        &format!(
            "Pods Status:\t{running} Running / {waiting} Waiting / {succeeded} Succeeded / {failed} Failed\n"
        ),
    );
    describe_pod_template(&spec["template"], &mut w);
    volume_claim_templates(&spec["volumeClaimTemplates"], &mut w);
    events::describe(events, &mut w);
    Ok(w.aligned())
}
