//! Pod and pod-template validation (upstream `ValidatePodSpec`, `ValidatePodUpdate`).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::field::{
    duplicate, forbidden, invalid, invalid_int, invalid_str, not_found, not_supported, required,
    Path,
};
use super::resources::validate_resource_requirements;
use super::{
    get_i64, get_list, get_obj, get_str, names, nonnegative, objectmeta, IS_NEGATIVE_ERROR_MSG,
};
use crate::status::StatusCause;

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const TERMINATION_MESSAGE_POLICIES: &[&str] = &["File", "FallbackToLogsOnError"];
const FILE_MODE_ERROR: &str = "must be a number between 0 and 0777 (octal), both inclusive";
const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

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

/// The pod updates upstream allows, as printed in its Forbidden message.
pub const POD_UPDATABLE_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

pub fn validate_pod(pod: &Value) -> Vec<StatusCause> {
    let spec = pod
        .get("spec")
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    validate_pod_spec(&spec, &Path::new("spec"))
}

/// A `PodTemplateSpec` at `path` (`spec.template`): labels at `<path>.labels` and
/// annotations at `<path>.annotations`, as upstream prints them, then the pod spec.
pub fn validate_pod_template(template: Option<&Value>, path: &Path) -> Vec<StatusCause> {
    let Some(template) = template.filter(|t| t.is_object()) else {
        return vec![required(path, "")];
    };
    let meta = template.get("metadata");
    let mut errs =
        objectmeta::validate_labels(meta.and_then(|m| m.get("labels")), &path.child("labels"));
    errs.extend(objectmeta::validate_annotations(
        meta.and_then(|m| m.get("annotations")),
        &path.child("annotations"),
    ));
    let spec = template
        .get("spec")
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    errs.extend(validate_pod_spec(&spec, &path.child("spec")));
    if !get_list(&spec, "ephemeralContainers").is_empty() {
        errs.push(forbidden(
            &path.children(&["spec", "ephemeralContainers"]),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// `ValidatePodSpec` for the spec at `path`.
pub fn validate_pod_spec(spec: &Value, path: &Path) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    let volumes = validate_volumes(get_list(spec, "volumes"), &path.child("volumes"), &mut errs);
    let host_network = spec
        .get("hostNetwork")
        .and_then(Value::as_bool)
        .unwrap_or(false);

    let containers = get_list(spec, "containers");
    let containers_path = path.child("containers");
    if containers.is_empty() {
        errs.push(required(&containers_path, ""));
    }
    let mut all_names = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        let cp = containers_path.index(i);
        validate_container(c, &volumes, &cp, host_network, false, &mut errs);
        let name = get_str(c, "name");
        if !all_names.insert(name.to_string()) {
            errs.push(duplicate(
                &cp.child("name"),
                &Value::String(name.to_string()),
            ));
        }
        if c.get("restartPolicy").is_some_and(|v| !v.is_null()) {
            errs.push(forbidden(
                &cp.child("restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    let init_path = path.child("initContainers");
    for (i, c) in get_list(spec, "initContainers").iter().enumerate() {
        let cp = init_path.index(i);
        validate_container(c, &volumes, &cp, host_network, true, &mut errs);
        let name = get_str(c, "name");
        if all_names.contains(name) {
            errs.push(duplicate(
                &cp.child("name"),
                &Value::String(name.to_string()),
            ));
        } else if !name.is_empty() {
            all_names.insert(name.to_string());
        }
    }

    let restart_policy = spec
        .get("restartPolicy")
        .cloned()
        .unwrap_or(Value::String(String::new()));
    match restart_policy.as_str() {
        Some("") | None => errs.push(required(&path.child("restartPolicy"), "")),
        Some(p) if RESTART_POLICIES.contains(&p) => {}
        _ => errs.push(not_supported(
            &path.child("restartPolicy"),
            &restart_policy,
            RESTART_POLICIES,
        )),
    }
    let dns_policy = spec
        .get("dnsPolicy")
        .cloned()
        .unwrap_or(Value::String(String::new()));
    match dns_policy.as_str() {
        Some("") | None => errs.push(required(&path.child("dnsPolicy"), "")),
        Some(p) if DNS_POLICIES.contains(&p) => {}
        _ => errs.push(not_supported(
            &path.child("dnsPolicy"),
            &dns_policy,
            DNS_POLICIES,
        )),
    }
    if dns_policy.as_str() == Some("None") && get_obj(spec, "dnsConfig").is_none() {
        errs.push(required(
            &path.child("dnsConfig"),
            "must provide `dnsConfig` when `dnsPolicy` is None",
        ));
    }
    errs.extend(objectmeta::validate_labels(
        spec.get("nodeSelector"),
        &path.child("nodeSelector"),
    ));
    for (field, validator) in [
        (
            "serviceAccountName",
            names::name_is_dns_subdomain as names::NameValidator,
        ),
        ("nodeName", names::name_is_dns_subdomain),
        ("priorityClassName", names::name_is_dns_subdomain),
    ] {
        let value = get_str(spec, field);
        if !value.is_empty() {
            for msg in validator(value, false) {
                errs.push(invalid_str(&path.child(field), value, &msg));
            }
        }
    }
    if let Some(ads) = get_i64(spec, "activeDeadlineSeconds") {
        if !(1..=i64::from(i32::MAX)).contains(&ads) {
            errs.push(invalid_int(
                &path.child("activeDeadlineSeconds"),
                ads,
                &names::inclusive_range_error(1, i64::from(i32::MAX)),
            ));
        }
    }
    nonnegative(spec, "terminationGracePeriodSeconds", path, &mut errs);
    for field in ["hostname", "subdomain"] {
        let value = get_str(spec, field);
        if !value.is_empty() {
            for msg in names::is_dns1123_label(value) {
                errs.push(invalid_str(&path.child(field), value, &msg));
            }
        }
    }
    validate_tolerations(
        get_list(spec, "tolerations"),
        &path.child("tolerations"),
        &mut errs,
    );
    errs
}

fn validate_container(
    c: &Value,
    volumes: &BTreeSet<String>,
    path: &Path,
    host_network: bool,
    is_init: bool,
    errs: &mut Vec<StatusCause>,
) {
    let name = get_str(c, "name");
    if name.is_empty() {
        errs.push(required(&path.child("name"), ""));
    } else {
        for msg in names::is_dns1123_label(name) {
            errs.push(invalid_str(&path.child("name"), name, &msg));
        }
    }
    let image = get_str(c, "image");
    if image.is_empty() {
        errs.push(required(&path.child("image"), ""));
    } else if image.trim() != image {
        errs.push(invalid_str(
            &path.child("image"),
            image,
            "must not have leading or trailing whitespace",
        ));
    }
    validate_ports(
        get_list(c, "ports"),
        &path.child("ports"),
        host_network,
        errs,
    );
    validate_env(get_list(c, "env"), &path.child("env"), errs);
    validate_env_from(get_list(c, "envFrom"), &path.child("envFrom"), errs);
    validate_volume_mounts(get_list(c, "volumeMounts"), volumes, path, errs);
    validate_enum(c, "imagePullPolicy", PULL_POLICIES, path, errs);
    errs.extend(validate_resource_requirements(
        c.get("resources"),
        &path.child("resources"),
    ));
    validate_enum(
        c,
        "terminationMessagePolicy",
        TERMINATION_MESSAGE_POLICIES,
        path,
        errs,
    );

    let sidecar = is_init && get_str(c, "restartPolicy") == "Always";
    if is_init {
        match c.get("restartPolicy") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s == "Always" => {}
            Some(other) => errs.push(not_supported(
                &path.child("restartPolicy"),
                other,
                &["Always"],
            )),
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let Some(p) = get_obj(c, probe) else { continue };
        let pp = path.child(probe);
        if is_init && !sidecar {
            errs.push(forbidden(
                &pp,
                "may not be set for init containers without restartPolicy=Always",
            ));
            continue;
        }
        validate_probe(p, &pp, errs);
        if probe != "readinessProbe" {
            if let Some(st) = get_i64(p, "successThreshold") {
                if st != 1 {
                    errs.push(invalid_int(&pp.child("successThreshold"), st, "must be 1"));
                }
            }
        } else if p
            .get("terminationGracePeriodSeconds")
            .is_some_and(|v| !v.is_null())
        {
            errs.push(invalid(
                &pp.child("terminationGracePeriodSeconds"),
                &p["terminationGracePeriodSeconds"],
                "must not be set for readinessProbes",
            ));
        }
    }
    if let Some(lifecycle) = get_obj(c, "lifecycle") {
        let lp = path.child("lifecycle");
        if is_init && !sidecar {
            errs.push(forbidden(
                &lp,
                "may not be set for init containers without restartPolicy=Always",
            ));
        } else {
            for hook in ["postStart", "preStop"] {
                if let Some(h) = get_obj(lifecycle, hook) {
                    validate_handler(
                        h,
                        &["exec", "httpGet", "tcpSocket", "sleep"],
                        &lp.child(hook),
                        errs,
                    );
                }
            }
        }
    }
}

fn validate_enum(v: &Value, key: &str, allowed: &[&str], path: &Path, errs: &mut Vec<StatusCause>) {
    let value = v.get(key).cloned().unwrap_or(Value::String(String::new()));
    match value.as_str() {
        Some("") | None => errs.push(required(&path.child(key), "")),
        Some(s) if allowed.contains(&s) => {}
        _ => errs.push(not_supported(&path.child(key), &value, allowed)),
    }
}

fn validate_ports(ports: &[Value], path: &Path, host_network: bool, errs: &mut Vec<StatusCause>) {
    let mut names_seen = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let pp = path.index(i);
        let name = get_str(port, "name");
        if !name.is_empty() {
            let msgs = names::is_valid_port_name(name);
            if !msgs.is_empty() {
                for msg in msgs {
                    errs.push(invalid_str(&pp.child("name"), name, &msg));
                }
            } else if !names_seen.insert(name.to_string()) {
                errs.push(duplicate(
                    &pp.child("name"),
                    &Value::String(name.to_string()),
                ));
            }
        }
        let container_port = get_i64(port, "containerPort").unwrap_or(0);
        if container_port == 0 {
            errs.push(required(&pp.child("containerPort"), ""));
        } else {
            for msg in names::is_valid_port_num(container_port) {
                errs.push(invalid_int(
                    &pp.child("containerPort"),
                    container_port,
                    &msg,
                ));
            }
        }
        let host_port = get_i64(port, "hostPort").unwrap_or(0);
        if host_port != 0 {
            for msg in names::is_valid_port_num(host_port) {
                errs.push(invalid_int(&pp.child("hostPort"), host_port, &msg));
            }
        }
        if host_network && host_port != 0 && host_port != container_port {
            errs.push(invalid_int(
                &pp.child("hostPort"),
                host_port,
                "must match `containerPort` when `hostNetwork` is true",
            ));
        }
        validate_enum(port, "protocol", PROTOCOLS, &pp, errs);
        let host_ip = get_str(port, "hostIP");
        if !host_ip.is_empty() {
            for msg in names::is_valid_ip(host_ip) {
                errs.push(invalid_str(&pp.child("hostIP"), host_ip, &msg));
            }
        }
    }
}

fn validate_env(env: &[Value], path: &Path, errs: &mut Vec<StatusCause>) {
    for (i, ev) in env.iter().enumerate() {
        let ep = path.index(i);
        let name = get_str(ev, "name");
        if name.is_empty() {
            errs.push(required(&ep.child("name"), ""));
        } else {
            for msg in names::is_env_var_name(name) {
                errs.push(invalid_str(&ep.child("name"), name, &msg));
            }
        }
        let Some(from) = get_obj(ev, "valueFrom") else {
            continue;
        };
        let fp = ep.child("valueFrom");
        let mut sources = 0;
        if let Some(fr) = get_obj(from, "fieldRef") {
            sources += 1;
            validate_object_field_selector(fr, &fp.child("fieldRef"), errs);
        }
        if let Some(rr) = get_obj(from, "resourceFieldRef") {
            sources += 1;
            if get_str(rr, "resource").is_empty() {
                errs.push(required(
                    &fp.children(&["resourceFieldRef", "resource"]),
                    "",
                ));
            }
        }
        for (key, name_field) in [("configMapKeyRef", "name"), ("secretKeyRef", "name")] {
            if let Some(sel) = get_obj(from, key) {
                sources += 1;
                let sp = fp.child(key);
                let n = get_str(sel, name_field);
                for msg in names::name_is_dns_subdomain(n, false) {
                    errs.push(invalid_str(&sp.child("name"), n, &msg));
                }
                let k = get_str(sel, "key");
                if k.is_empty() {
                    errs.push(required(&sp.child("key"), ""));
                } else {
                    for msg in names::is_config_map_key(k) {
                        errs.push(invalid_str(&sp.child("key"), k, &msg));
                    }
                }
            }
        }
        let empty = Value::String(String::new());
        if sources == 0 {
            errs.push(invalid(&fp, &empty, "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"));
        } else if !get_str(ev, "value").is_empty() {
            errs.push(invalid(
                &fp,
                &empty,
                "may not be specified when `value` is not empty",
            ));
        } else if sources > 1 {
            errs.push(invalid(
                &fp,
                &empty,
                "may not have more than one field specified at a time",
            ));
        }
    }
}

fn validate_object_field_selector(fr: &Value, path: &Path, errs: &mut Vec<StatusCause>) {
    if get_str(fr, "apiVersion").is_empty() {
        errs.push(required(&path.child("apiVersion"), ""));
        return;
    }
    let field_path = get_str(fr, "fieldPath");
    if field_path.is_empty() {
        errs.push(required(&path.child("fieldPath"), ""));
        return;
    }
    // `metadata.labels['key']` selects one label; the subscript is checked as a key.
    let (base, subscript) = match field_path.split_once('[') {
        Some((b, rest)) => (b, Some(rest)),
        None => (field_path, None),
    };
    if let Some(rest) = subscript {
        let ok = matches!(base, "metadata.labels" | "metadata.annotations")
            && rest.len() > 3
            && rest.starts_with('\'')
            && rest.ends_with("']");
        if !ok {
            errs.push(invalid_str(
                &path.child("fieldPath"),
                field_path,
                "error converting fieldPath: field label not supported",
            ));
        }
        return;
    }
    if !ENV_FIELD_PATHS.contains(&base) {
        errs.push(not_supported(
            &path.child("fieldPath"),
            &Value::String(field_path.to_string()),
            ENV_FIELD_PATHS,
        ));
    }
}

fn validate_env_from(list: &[Value], path: &Path, errs: &mut Vec<StatusCause>) {
    for (i, ef) in list.iter().enumerate() {
        let ep = path.index(i);
        let prefix = get_str(ef, "prefix");
        if !prefix.is_empty() {
            for msg in names::is_env_var_name(prefix) {
                errs.push(invalid_str(&ep.child("prefix"), prefix, &msg));
            }
        }
        let mut sources = 0;
        for key in ["configMapRef", "secretRef"] {
            if let Some(r) = get_obj(ef, key) {
                sources += 1;
                let n = get_str(r, "name");
                for msg in names::name_is_dns_subdomain(n, false) {
                    errs.push(invalid_str(&ep.children(&[key, "name"]), n, &msg));
                }
            }
        }
        let empty = Value::String(String::new());
        if sources == 0 {
            errs.push(invalid(
                &ep,
                &empty,
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if sources > 1 {
            errs.push(invalid(
                &ep,
                &empty,
                "may not have more than one field specified at a time",
            ));
        }
    }
}

fn validate_volume_mounts(
    mounts: &[Value],
    volumes: &BTreeSet<String>,
    container: &Path,
    errs: &mut Vec<StatusCause>,
) {
    let path = container.child("volumeMounts");
    let mut mount_points = BTreeSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let mp = path.index(i);
        let name = get_str(m, "name");
        if name.is_empty() {
            errs.push(required(&mp.child("name"), ""));
        }
        if !volumes.contains(name) {
            errs.push(not_found(
                &mp.child("name"),
                &Value::String(name.to_string()),
            ));
        }
        let mount_path = get_str(m, "mountPath");
        if mount_path.is_empty() {
            errs.push(required(&mp.child("mountPath"), ""));
        }
        if !mount_points.insert(mount_path.to_string()) {
            errs.push(invalid_str(
                &mp.child("mountPath"),
                mount_path,
                "must be unique",
            ));
        }
        let sub_path = get_str(m, "subPath");
        if !sub_path.is_empty() {
            validate_local_descending_path(sub_path, &path.child("subPath"), errs);
        }
    }
}

fn validate_local_descending_path(p: &str, path: &Path, errs: &mut Vec<StatusCause>) {
    if p.starts_with('/') {
        errs.push(invalid_str(path, p, "must be a relative path"));
    }
    if p.split('/').any(|part| part == "..") {
        errs.push(invalid_str(path, p, "must not contain '..'"));
    }
}

fn validate_probe(probe: &Value, path: &Path, errs: &mut Vec<StatusCause>) {
    validate_handler(probe, &["exec", "httpGet", "tcpSocket", "grpc"], path, errs);
    for field in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        nonnegative(probe, field, path, errs);
    }
    if let Some(t) = get_i64(probe, "terminationGracePeriodSeconds") {
        if t <= 0 {
            errs.push(invalid_int(
                &path.child("terminationGracePeriodSeconds"),
                t,
                "must be greater than 0",
            ));
        }
    }
}

/// Exactly one handler among `kinds`.
fn validate_handler(handler: &Value, kinds: &[&str], path: &Path, errs: &mut Vec<StatusCause>) {
    let mut count = 0;
    for kind in kinds {
        let Some(h) = handler.get(*kind).filter(|v| !v.is_null()) else {
            continue;
        };
        let hp = path.child(kind);
        if count > 0 {
            errs.push(forbidden(&hp, "may not specify more than 1 handler type"));
            continue;
        }
        count += 1;
        match *kind {
            "exec" if get_list(h, "command").is_empty() => {
                errs.push(required(&hp.child("command"), ""))
            }
            "httpGet" => {
                if get_str(h, "path").is_empty() {
                    errs.push(required(&hp.child("path"), ""));
                }
                validate_port_num_or_name(h.get("port"), &hp.child("port"), errs);
                let scheme = h
                    .get("scheme")
                    .cloned()
                    .unwrap_or(Value::String("HTTP".into()));
                if !matches!(scheme.as_str(), Some("HTTP" | "HTTPS")) {
                    errs.push(not_supported(
                        &hp.child("scheme"),
                        &scheme,
                        &["HTTP", "HTTPS"],
                    ));
                }
            }
            "tcpSocket" => validate_port_num_or_name(h.get("port"), &hp.child("port"), errs),
            "grpc" => {
                let port = get_i64(h, "port").unwrap_or(0);
                for msg in names::is_valid_port_num(port) {
                    errs.push(invalid_int(&hp.child("port"), port, &msg));
                }
            }
            "sleep" if get_i64(h, "seconds").is_some_and(|s| s < 0) => {
                errs.push(invalid(
                    &hp.child("seconds"),
                    &h["seconds"],
                    IS_NEGATIVE_ERROR_MSG,
                ));
            }
            _ => {}
        }
    }
    if count == 0 {
        errs.push(required(path, "must specify a handler type"));
    }
}

/// An IntOrString port: a number in 1-65535 or an IANA service name.
pub(super) fn validate_port_num_or_name(
    port: Option<&Value>,
    path: &Path,
    errs: &mut Vec<StatusCause>,
) {
    match port {
        Some(Value::Number(n)) => {
            let n = n.as_i64().unwrap_or(0);
            for msg in names::is_valid_port_num(n) {
                errs.push(invalid_int(path, n, &msg));
            }
        }
        Some(Value::String(s)) => {
            for msg in names::is_valid_port_name(s) {
                errs.push(invalid_str(path, s, &msg));
            }
        }
        _ => errs.push(required(path, "")),
    }
}

/// Validates volumes and returns the set of valid names for volume mounts.
fn validate_volumes(
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
        let Some(src) = vol.get(*kind).filter(|v| !v.is_null()) else {
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
            let missing = match src.get(f) {
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
        for (j, item) in get_list(src, "items").iter().enumerate() {
            let ip = sp.child("items").index(j);
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

fn validate_tolerations(tolerations: &[Value], path: &Path, errs: &mut Vec<StatusCause>) {
    for (i, t) in tolerations.iter().enumerate() {
        let tp = path.index(i);
        let key = get_str(t, "key");
        if !key.is_empty() {
            for msg in names::is_qualified_name(key) {
                errs.push(invalid_str(&tp.child("key"), key, &msg));
            }
        }
        let operator = get_str(t, "operator");
        if key.is_empty() && operator != "Exists" {
            errs.push(invalid_str(&tp.child("operator"), operator, "operator must be Exists when `key` is empty, which means \"match all values and all keys\""));
        }
        let effect = get_str(t, "effect");
        if t.get("tolerationSeconds").is_some_and(|v| !v.is_null()) && effect != "NoExecute" {
            errs.push(invalid_str(
                &tp.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        let value = get_str(t, "value");
        match operator {
            "" | "Equal" => {
                let msgs = names::is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(invalid_str(&tp.child("operator"), value, &msgs.join(";")));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(invalid(
                        &tp.child("operator"),
                        t,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(not_supported(
                &tp.child("operator"),
                &Value::String(other.to_string()),
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute")
        {
            errs.push(not_supported(
                &tp.child("effect"),
                &Value::String(effect.to_string()),
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
}

/// `ValidatePodUpdate`: only images, activeDeadlineSeconds (shortened), added
/// tolerations and a negative grace period bumped to 1 may change.
pub fn validate_pod_update(new: &Value, old: &Value) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    let spec_path = Path::new("spec");
    let empty = Value::Object(Map::new());
    let new_spec = new.get("spec").unwrap_or(&empty);
    let old_spec = old.get("spec").unwrap_or(&empty);

    let ads_path = spec_path.child("activeDeadlineSeconds");
    match (
        get_i64(new_spec, "activeDeadlineSeconds"),
        get_i64(old_spec, "activeDeadlineSeconds"),
    ) {
        (Some(n), Some(o)) if n > o => {
            errs.push(invalid_int(
                &ads_path,
                n,
                "must be less than or equal to previous value",
            ));
        }
        (None, Some(_)) => errs.push(invalid(
            &ads_path,
            &Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    // Tolerations may only be added to.
    let new_tols = get_list(new_spec, "tolerations");
    for (i, old_tol) in get_list(old_spec, "tolerations").iter().enumerate() {
        if !new_tols
            .iter()
            .any(|t| normalized(t) == normalized(old_tol))
        {
            errs.push(forbidden(
                &spec_path.child("tolerations").index(i),
                "existing toleration can not be modified except its tolerationSeconds",
            ));
        }
    }

    // Mask the fields that may change, then compare what is left.
    let mut munged = new_spec.clone();
    if let Some(m) = munged.as_object_mut() {
        for list in ["containers", "initContainers"] {
            let old_list = get_list(old_spec, list);
            if let Some(Value::Array(items)) = m.get_mut(list) {
                if items.len() == old_list.len() {
                    for (item, old_item) in items.iter_mut().zip(old_list) {
                        if let (Some(obj), Some(old_image)) =
                            (item.as_object_mut(), old_item.get("image"))
                        {
                            obj.insert("image".into(), old_image.clone());
                        }
                    }
                }
            }
        }
        for field in ["activeDeadlineSeconds", "tolerations"] {
            match old_spec.get(field) {
                Some(v) => m.insert(field.into(), v.clone()),
                None => m.remove(field),
            };
        }
        let old_grace = get_i64(old_spec, "terminationGracePeriodSeconds");
        if old_grace.is_some_and(|g| g < 0)
            && get_i64(new_spec, "terminationGracePeriodSeconds") == Some(1)
        {
            m.insert(
                "terminationGracePeriodSeconds".into(),
                old_spec["terminationGracePeriodSeconds"].clone(),
            );
        }
    }
    if normalized(&munged) != normalized(old_spec) {
        let changed = changed_fields(&normalized(&munged), &normalized(old_spec));
        errs.push(forbidden(
            &spec_path,
            &format!("pod updates may not change fields other than {POD_UPDATABLE_FIELDS}\n  core.PodSpec{{\n{}  }}", changed),
        ));
    }
    errs
}

/// Drops nulls, empty strings, `false`, empty maps and lists: Go's semantic equality
/// treats those as equal to absent for the fields a pod spec round-trips.
fn normalized(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), normalized(v)))
                .filter(|(_, v)| !is_empty_value(v))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalized).collect()),
        other => other.clone(),
    }
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Number(_) => false,
    }
}

/// A short diff of top-level spec fields, in the spirit of upstream's `cmp.Diff`.
fn changed_fields(new: &Value, old: &Value) -> String {
    let (Some(n), Some(o)) = (new.as_object(), old.as_object()) else {
        return String::new();
    };
    let keys: BTreeSet<&String> = n.keys().chain(o.keys()).collect();
    let mut out = String::new();
    for k in keys {
        if n.get(k) != o.get(k) {
            if let Some(v) = o.get(k) {
                out.push_str(&format!("-   {k}: {v}\n"));
            }
            if let Some(v) = n.get(k) {
                out.push_str(&format!("+   {k}: {v}\n"));
            }
        }
    }
    out
}
