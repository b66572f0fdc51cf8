//! Pod volume validation (upstream `ValidateVolumes` / `validateVolumeSource`).

use std::collections::BTreeSet;

use serde_json::Value;

use super::field::{duplicate, forbidden, invalid_int, invalid_str, required, Path};
use super::{get_i64, get_list, get_str, names};

const FILE_MODE_ERROR: &str = "must be a number between 0 and 0777 (octal), both inclusive";
use crate::status::StatusCause;

/// Volume source fields in the order upstream's `validateVolumeSource` checks them.
const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flocker",
    "persistentVolumeClaim",
    "rbd",
    "cinder",
    "cephfs",
    "quobyte",
    "downwardAPI",
    "fc",
    "flexVolume",
    "configMap",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "storageos",
    "projected",
    "scaleIO",
    "csi",
    "ephemeral",
    "image",
];

/// Validates volumes and returns the set of valid names for volume mounts.
pub(super) fn validate_volumes(
    volumes: &[Value],
    path: &Path,
    errs: &mut Vec<StatusCause>,
) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for (i, vol) in volumes.iter().enumerate() {
        let vp = path.index(i);
        let mut vol_errs = Vec::new();
        validate_volume_source(vol, &vp, &mut vol_errs);
        let name = get_str(vol, "name");
        if name.is_empty() {
            vol_errs.push(required(&vp.child("name"), ""));
        } else {
            for msg in names::is_dns1123_label(name) {
                vol_errs.push(invalid_str(&vp.child("name"), name, &msg));
            }
        }
        if all.contains(name) {
            vol_errs.push(duplicate(
                &vp.child("name"),
                &Value::String(name.to_string()),
            ));
        }
        if vol_errs.is_empty() {
            all.insert(name.to_string());
        }
        errs.extend(vol_errs);
    }
    all
}

fn validate_volume_source(vol: &Value, path: &Path, errs: &mut Vec<StatusCause>) {
    let mut count = 0;
    for kind in VOLUME_SOURCES {
        let Some(src) = crate::meta::field(vol, kind).filter(|v| !v.is_null()) else {
            continue;
        };
        let sp = path.child(kind);
        if count > 0 {
            errs.push(forbidden(&sp, "may not specify more than 1 volume type"));
            continue;
        }
        count += 1;
        let required_field = match *kind {
            "hostPath" | "nfs" => Some("path"),
            "secret" => Some("secretName"),
            "configMap" => Some("name"),
            "persistentVolumeClaim" => Some("claimName"),
            "csi" => Some("driver"),
            "ephemeral" => Some("volumeClaimTemplate"),
            _ => None,
        };
        if let Some(f) = required_field {
            let missing = match crate::meta::field(src, f) {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.is_empty(),
                Some(_) => false,
            };
            if missing {
                errs.push(required(&sp.child(f), ""));
            }
        }
        if *kind == "nfs" {
            let p = get_str(src, "path");
            if !p.is_empty() && !p.starts_with('/') {
                errs.push(invalid_str(
                    &sp.child("path"),
                    p,
                    "must be an absolute path",
                ));
            }
            if get_str(src, "server").is_empty() {
                errs.push(required(&sp.child("server"), ""));
            }
        }
        if let Some(mode) = get_i64(src, "defaultMode") {
            if !(0..=0o777).contains(&mode) {
                errs.push(invalid_int(&sp.child("defaultMode"), mode, FILE_MODE_ERROR));
            }
        }
        let items = sp.child("items");
        for (j, item) in get_list(src, "items").iter().enumerate() {
            let ip = items.index(j);
            if matches!(*kind, "secret" | "configMap") && get_str(item, "key").is_empty() {
                errs.push(required(&ip.child("key"), ""));
            }
            let p = get_str(item, "path");
            if p.is_empty() {
                errs.push(required(&ip.child("path"), ""));
            } else {
                validate_local_descending_path(p, &ip.child("path"), errs);
            }
            if let Some(mode) = get_i64(item, "mode") {
                if !(0..=0o777).contains(&mode) {
                    errs.push(invalid_int(&ip.child("mode"), mode, FILE_MODE_ERROR));
                }
            }
        }
    }
    if count == 0 {
        errs.push(required(path, "must specify a volume type"));
    }
}

pub(super) fn validate_local_descending_path(p: &str, path: &Path, errs: &mut Vec<StatusCause>) {
    if p.starts_with('/') {
        errs.push(invalid_str(path, p, "must be a relative path"));
    }
    if p.split('/').any(|part| part == "..") {
        errs.push(invalid_str(path, p, "must not contain '..'"));
    }
}
