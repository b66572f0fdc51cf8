//! Printers for persistent volumes and persistent volume claims.

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaimSpec, PersistentVolumeClaimStatus, PersistentVolumeSpec,
    PersistentVolumeStatus,
};
use serde_json::Value;

use super::util::{age, arr, at, doc, has_deletion_timestamp, name, opt_s, quantity, s};
use super::{columns, Column, Printer, Row};

pub(crate) fn printer(group: &str, kind: &str) -> Option<Printer> {
    match (group, kind) {
        ("", "PersistentVolume") => Some(Printer {
            columns: pv_columns,
            row: pv_row,
        }),
        ("", "PersistentVolumeClaim") => Some(Printer {
            columns: pvc_columns,
            row: pvc_row,
        }),
        _ => None,
    }
}

fn pv_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new(
            "Capacity",
            "string",
            doc::<PersistentVolumeSpec>("capacity")
        ),
        Column::new(
            "Access Modes",
            "string",
            doc::<PersistentVolumeSpec>("accessModes")
        ),
        Column::new(
            "Reclaim Policy",
            "string",
            doc::<PersistentVolumeSpec>("persistentVolumeReclaimPolicy")
        ),
        Column::new("Status", "string", doc::<PersistentVolumeStatus>("phase")),
        Column::new("Claim", "string", doc::<PersistentVolumeSpec>("claimRef")),
        Column::new("StorageClass", "string", "StorageClass of the pv"),
        Column::new(
            "VolumeAttributesClass",
            "string",
            "VolumeAttributesClass of the pv"
        ),
        Column::new("Reason", "string", doc::<PersistentVolumeStatus>("reason")),
        Column::age(),
        Column::new(
            "VolumeMode",
            "string",
            doc::<PersistentVolumeSpec>("volumeMode")
        )
        .wide(),
    ]
}

/// `helper.GetAccessModesAsString`: RWO, ROX, RWX, RWOP in that order.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The storage class: the beta annotation wins over `spec.storageClassName`.
fn storage_class(v: &Value) -> &str {
    opt_s(
        v,
        &[
            "metadata",
            "annotations",
            "volume.beta.kubernetes.io/storage-class",
        ],
    )
    .unwrap_or_else(|| s(v, &["spec", "storageClassName"]))
}

fn pv_row(pv: &Value, now: DateTime<Utc>) -> Row {
    let claim = match at(pv, &["spec", "claimRef"]).filter(|c| c.is_object()) {
        Some(c) => format!("{}/{}", s(c, &["namespace"]), s(c, &["name"])),
        None => String::new(),
    };
    let phase = if has_deletion_timestamp(pv) {
        "Terminating"
    } else {
        s(pv, &["status", "phase"])
    };
    vec![
        Value::from(name(pv)),
        Value::from(quantity(pv, &["spec", "capacity", "storage"])),
        Value::from(access_modes(arr(pv, &["spec", "accessModes"]))),
        Value::from(s(pv, &["spec", "persistentVolumeReclaimPolicy"])),
        Value::from(phase),
        Value::from(claim),
        Value::from(storage_class(pv)),
        Value::from(opt_s(pv, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
        Value::from(s(pv, &["status", "reason"])),
        age(pv, now),
        Value::from(opt_s(pv, &["spec", "volumeMode"]).unwrap_or("<unset>")),
    ]
    .into()
}

fn pvc_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new(
            "Status",
            "string",
            doc::<PersistentVolumeClaimStatus>("phase")
        ),
        Column::new(
            "Volume",
            "string",
            doc::<PersistentVolumeClaimSpec>("volumeName")
        ),
        Column::new(
            "Capacity",
            "string",
            doc::<PersistentVolumeClaimStatus>("capacity")
        ),
        Column::new(
            "Access Modes",
            "string",
            doc::<PersistentVolumeClaimStatus>("accessModes")
        ),
        Column::new("StorageClass", "string", "StorageClass of the pvc"),
        Column::new(
            "VolumeAttributesClass",
            "string",
            "VolumeAttributesClass of the pvc"
        ),
        Column::age(),
        Column::new(
            "VolumeMode",
            "string",
            doc::<PersistentVolumeClaimSpec>("volumeMode")
        )
        .wide(),
    ]
}

fn pvc_row(pvc: &Value, now: DateTime<Utc>) -> Row {
    let phase = if has_deletion_timestamp(pvc) {
        "Terminating"
    } else {
        s(pvc, &["status", "phase"])
    };
    let volume = s(pvc, &["spec", "volumeName"]);
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(pvc, &["status", "capacity", "storage"]),
            access_modes(arr(pvc, &["status", "accessModes"])),
        )
    };
    vec![
        Value::from(name(pvc)),
        Value::from(phase),
        Value::from(volume),
        Value::from(capacity),
        Value::from(modes),
        Value::from(storage_class(pvc)),
        Value::from(opt_s(pvc, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
        age(pvc, now),
        Value::from(opt_s(pvc, &["spec", "volumeMode"]).unwrap_or("<unset>")),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ago, labeled_column_names as names, meta_aged, print_one};
    use serde_json::{json, Value};

    fn meta(name: &str) -> Value {
        meta_aged(name, 600)
    }

    #[test]
    fn persistent_volumes_and_claims() {
        let pv = json!({
            "metadata": meta("pv-1"),
            "spec": {"capacity": {"storage": "1024Mi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Retain", "claimRef": {"namespace": "default", "name": "data"},
                     "storageClassName": "local", "volumeMode": "Filesystem"},
            "status": {"phase": "Bound"}
        });
        let (t, cells) = print_one("", "PersistentVolume", pv);
        assert_eq!(
            names(&t),
            [
                "Name",
                "Capacity",
                "Access Modes",
                "Reclaim Policy",
                "Status",
                "Claim",
                "StorageClass",
                "VolumeAttributesClass",
                "Reason",
                "Age",
                "VolumeMode(1)"
            ]
        );
        assert_eq!(
            cells,
            vec![
                json!("pv-1"),
                json!("1Gi"),
                json!("RWO,RWX"),
                json!("Retain"),
                json!("Bound"),
                json!("default/data"),
                json!("local"),
                json!("<unset>"),
                json!(""),
                json!("10m"),
                json!("Filesystem")
            ]
        );

        let pvc = json!({
            "metadata": {"name": "data", "creationTimestamp": ago(600), "deletionTimestamp": ago(1),
                         "annotations": {"volume.beta.kubernetes.io/storage-class": "beta"}},
            "spec": {"volumeName": "pv-1", "storageClassName": "local", "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Bound", "capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteOnce"]}
        });
        let (t, cells) = print_one("", "PersistentVolumeClaim", pvc);
        assert_eq!(
            names(&t),
            [
                "Name",
                "Status",
                "Volume",
                "Capacity",
                "Access Modes",
                "StorageClass",
                "VolumeAttributesClass",
                "Age",
                "VolumeMode(1)"
            ]
        );
        assert_eq!(
            cells,
            vec![
                json!("data"),
                json!("Terminating"),
                json!("pv-1"),
                json!("2Gi"),
                json!("RWO"),
                json!("beta"),
                json!("<unset>"),
                json!("10m"),
                json!("<unset>")
            ]
        );
        let pending = json!({"metadata": meta("p"), "spec": {}, "status": {"phase": "Pending"}});
        let cells = print_one("", "PersistentVolumeClaim", pending).1;
        assert_eq!(cells[2..5], [json!(""), json!(""), json!("")]);
    }
}
