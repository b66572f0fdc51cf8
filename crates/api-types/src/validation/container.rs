//! Container validation inside a pod spec (upstream `validateContainerCommon` and
//! the port, env, volume-mount, probe and handler checks it calls).

use std::collections::BTreeSet;

use serde_json::Value;

use super::field::{
    duplicate, forbidden, invalid, invalid_int, invalid_str, not_found, not_supported, required,
    Path,
};
use super::resources::validate_resource_requirements;
use super::volumes::validate_local_descending_path;
use super::{get_i64, get_list, get_obj, get_str, names, nonnegative, IS_NEGATIVE_ERROR_MSG};
use crate::status::StatusCause;

const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const TERMINATION_MESSAGE_POLICIES: &[&str] = &["File", "FallbackToLogsOnError"];
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

pub(super) fn validate_container(
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
        crate::meta::field(c, "resources"),
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
        match crate::meta::field(c, "restartPolicy") {
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
    let value = crate::meta::field(v, key)
        .cloned()
        .unwrap_or(Value::String(String::new()));
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
        let Some(h) = crate::meta::field(handler, kind).filter(|v| !v.is_null()) else {
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
                validate_port_num_or_name(crate::meta::field(h, "port"), &hp.child("port"), errs);
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
            "tcpSocket" => {
                validate_port_num_or_name(crate::meta::field(h, "port"), &hp.child("port"), errs)
            }
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
