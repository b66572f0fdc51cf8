//! Service and Endpoints validation (upstream `ValidateService`, `ValidateServiceUpdate`).

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::container::validate_port_num_or_name;
use super::field::{
    duplicate, forbidden, invalid, invalid_int, invalid_str, not_supported, required, Path,
};
use super::{get_i64, get_list, get_obj, get_str, names, objectmeta};
use crate::status::StatusCause;

const SERVICE_TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const SESSION_AFFINITIES: &[&str] = &["ClientIP", "None"];
const IP_FAMILIES: &[&str] = &["IPv4", "IPv6"];
const IP_FAMILY_POLICIES: &[&str] = &["PreferDualStack", "RequireDualStack", "SingleStack"];
const TRAFFIC_POLICIES: &[&str] = &["Cluster", "Local"];
/// Upstream's `MaxClientIPServiceAffinitySeconds`.
const MAX_CLIENT_IP_AFFINITY_SECONDS: i64 = 86400;

pub fn validate_service(svc: &Value) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    let empty = Value::Object(Map::new());
    let spec = svc.get("spec").unwrap_or(&empty);
    let sp = Path::new("spec");
    let svc_type = get_str(spec, "type");
    let cluster_ip = get_str(spec, "clusterIP");
    let headless = cluster_ip == "None";
    let ports = get_list(spec, "ports");

    if ports.is_empty() && !headless && svc_type != "ExternalName" {
        errs.push(required(&sp.child("ports"), ""));
    }
    if svc_type == "ExternalName" {
        if !get_list(spec, "clusterIPs").is_empty() {
            errs.push(forbidden(
                &sp.child("clusterIPs"),
                "may not be set for ExternalName services",
            ));
        }
        if !get_list(spec, "ipFamilies").is_empty() {
            errs.push(forbidden(
                &sp.child("ipFamilies"),
                "may not be set for ExternalName services",
            ));
        }
        if spec.get("ipFamilyPolicy").is_some_and(|v| !v.is_null()) {
            errs.push(forbidden(
                &sp.child("ipFamilyPolicy"),
                "may not be set for ExternalName services",
            ));
        }
        let cname = get_str(spec, "externalName");
        let cname = cname.strip_suffix('.').unwrap_or(cname);
        if cname.is_empty() {
            errs.push(required(&sp.child("externalName"), ""));
        } else {
            for msg in names::is_dns1123_subdomain(cname) {
                errs.push(invalid_str(&sp.child("externalName"), cname, &msg));
            }
        }
    }
    let mut port_names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        validate_service_port(
            port,
            ports.len() > 1,
            &mut port_names,
            &sp.child("ports").index(i),
            &mut errs,
        );
    }
    if let Some(sel) = spec.get("selector") {
        errs.extend(objectmeta::validate_labels(
            Some(sel),
            &sp.child("selector"),
        ));
    }
    let affinity = get_str(spec, "sessionAffinity");
    if affinity.is_empty() {
        errs.push(required(&sp.child("sessionAffinity"), ""));
    } else if !SESSION_AFFINITIES.contains(&affinity) {
        errs.push(not_supported(
            &sp.child("sessionAffinity"),
            &spec["sessionAffinity"],
            SESSION_AFFINITIES,
        ));
    }
    let affinity_config = get_obj(spec, "sessionAffinityConfig");
    if affinity == "ClientIP" {
        let tp = sp.children(&["sessionAffinityConfig", "clientIP", "timeoutSeconds"]);
        match affinity_config
            .and_then(|c| c.get("clientIP"))
            .and_then(|c| c.get("timeoutSeconds"))
            .and_then(Value::as_i64)
        {
            None => errs.push(required(&tp, "")),
            Some(t) if t <= 0 || t > MAX_CLIENT_IP_AFFINITY_SECONDS => errs.push(invalid_int(
                &tp,
                t,
                &format!("must be greater than 0 and less than {MAX_CLIENT_IP_AFFINITY_SECONDS}"),
            )),
            Some(_) => {}
        }
    } else if affinity == "None" && affinity_config.is_some() {
        errs.push(forbidden(
            &sp.child("sessionAffinityConfig"),
            "must not be set when session affinity is None",
        ));
    }
    validate_cluster_ips(spec, &sp, &mut errs);
    for (i, ip) in get_list(spec, "externalIPs").iter().enumerate() {
        let ip = ip.as_str().unwrap_or_default();
        for msg in names::is_valid_ip(ip) {
            errs.push(invalid_str(&sp.child("externalIPs").index(i), ip, &msg));
        }
    }
    if svc_type.is_empty() {
        errs.push(required(&sp.child("type"), ""));
    } else if !SERVICE_TYPES.contains(&svc_type) {
        errs.push(not_supported(
            &sp.child("type"),
            &spec["type"],
            SERVICE_TYPES,
        ));
    }
    if svc_type == "ClusterIP" {
        for (i, port) in ports.iter().enumerate() {
            if get_i64(port, "nodePort").unwrap_or(0) != 0 {
                errs.push(forbidden(
                    &sp.child("ports").index(i).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut seen = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let key = (
            get_str(port, "protocol").to_string(),
            get_i64(port, "port").unwrap_or(0),
        );
        if !seen.insert(key.clone()) {
            errs.push(duplicate(
                &sp.child("ports").index(i),
                &json!({"port": key.1, "protocol": key.0}),
            ));
        }
    }
    let etp = get_str(spec, "externalTrafficPolicy");
    if !etp.is_empty() {
        if !matches!(svc_type, "NodePort" | "LoadBalancer") {
            errs.push(invalid_str(
                &sp.child("externalTrafficPolicy"),
                etp,
                "may only be set when `type` is 'NodePort' or 'LoadBalancer'",
            ));
        } else if !TRAFFIC_POLICIES.contains(&etp) {
            errs.push(not_supported(
                &sp.child("externalTrafficPolicy"),
                &spec["externalTrafficPolicy"],
                TRAFFIC_POLICIES,
            ));
        }
    }
    let itp = get_str(spec, "internalTrafficPolicy");
    if !itp.is_empty() && !TRAFFIC_POLICIES.contains(&itp) {
        errs.push(not_supported(
            &sp.child("internalTrafficPolicy"),
            &spec["internalTrafficPolicy"],
            TRAFFIC_POLICIES,
        ));
    }
    errs
}

fn validate_service_port(
    port: &Value,
    require_name: bool,
    all_names: &mut BTreeSet<String>,
    pp: &Path,
    errs: &mut Vec<StatusCause>,
) {
    let name = get_str(port, "name");
    if require_name && name.is_empty() {
        errs.push(required(&pp.child("name"), ""));
    } else if !name.is_empty() {
        for msg in names::is_dns1123_label(name) {
            errs.push(invalid_str(&pp.child("name"), name, &msg));
        }
        if !all_names.insert(name.to_string()) {
            errs.push(duplicate(
                &pp.child("name"),
                &Value::String(name.to_string()),
            ));
        }
    }
    let number = get_i64(port, "port").unwrap_or(0);
    for msg in names::is_valid_port_num(number) {
        errs.push(invalid_int(&pp.child("port"), number, &msg));
    }
    let protocol = get_str(port, "protocol");
    if protocol.is_empty() {
        errs.push(required(&pp.child("protocol"), ""));
    } else if !PROTOCOLS.contains(&protocol) {
        errs.push(not_supported(
            &pp.child("protocol"),
            &port["protocol"],
            PROTOCOLS,
        ));
    }
    validate_port_num_or_name(port.get("targetPort"), &pp.child("targetPort"), errs);
}

fn validate_cluster_ips(spec: &Value, sp: &Path, errs: &mut Vec<StatusCause>) {
    if get_str(spec, "type") == "ExternalName" {
        return;
    }
    let ips_path = sp.child("clusterIPs");
    let cluster_ip = get_str(spec, "clusterIP");
    let ips = get_list(spec, "clusterIPs");
    let ips_value = spec
        .get("clusterIPs")
        .cloned()
        .unwrap_or(Value::Array(Vec::new()));
    if !cluster_ip.is_empty() {
        if ips.is_empty() {
            errs.push(required(&ips_path, ""));
        } else if ips[0].as_str() != Some(cluster_ip) {
            errs.push(invalid(
                &ips_path,
                &ips_value,
                "first value must match `clusterIP`",
            ));
        }
    } else if !ips.is_empty() {
        errs.push(invalid(
            &ips_path,
            &ips_value,
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, fam) in get_list(spec, "ipFamilies").iter().enumerate() {
        let f = fam.as_str().unwrap_or_default();
        if !IP_FAMILIES.contains(&f) {
            errs.push(not_supported(
                &sp.child("ipFamilies").index(i),
                fam,
                IP_FAMILIES,
            ));
        }
        if !seen.insert(f.to_string()) {
            errs.push(duplicate(&sp.child("ipFamilies").index(i), fam));
        }
    }
    if let Some(policy) = spec.get("ipFamilyPolicy").filter(|v| !v.is_null()) {
        if !policy
            .as_str()
            .is_some_and(|p| IP_FAMILY_POLICIES.contains(&p))
        {
            errs.push(not_supported(
                &sp.child("ipFamilyPolicy"),
                policy,
                IP_FAMILY_POLICIES,
            ));
        }
    }
    for (i, ip) in ips.iter().enumerate() {
        let ip = ip.as_str().unwrap_or_default();
        if i == 0 && ip == "None" {
            if ips.len() > 1 {
                errs.push(invalid(
                    &ips_path,
                    &ips_value,
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        for msg in names::is_valid_ip(ip) {
            errs.push(invalid_str(&ips_path.index(i), ip, &msg));
        }
    }
}

/// Cluster IPs may not change once allocated (except to or from ExternalName).
pub fn validate_service_update(new: &Value, old: &Value) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    let empty = Value::Object(Map::new());
    let (ns, os) = (
        new.get("spec").unwrap_or(&empty),
        old.get("spec").unwrap_or(&empty),
    );
    if get_str(ns, "type") == "ExternalName" || get_str(os, "type") == "ExternalName" {
        return errs;
    }
    let (new_ips, old_ips) = (get_list(ns, "clusterIPs"), get_list(os, "clusterIPs"));
    if old_ips.is_empty() {
        return errs;
    }
    let headless = |ips: &[Value]| ips.first().and_then(Value::as_str) == Some("None");
    if headless(new_ips) && headless(old_ips) {
        return errs;
    }
    let shown = Value::Array(new_ips.to_vec());
    let spec = Path::new("spec");
    let path = spec.child("clusterIPs");
    if new_ips.is_empty() {
        errs.push(invalid(
            &path.index(0),
            &shown,
            "primary clusterIP can not be unset",
        ));
        return errs;
    }
    for (i, (n, o)) in new_ips.iter().zip(old_ips).enumerate() {
        if n != o {
            errs.push(invalid(&path.index(i), &shown, "may not change once set"));
        }
    }
    errs
}

/// Endpoints: addresses are IPs, ports valid.
pub fn validate_endpoints(ep: &Value) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    let subsets = Path::new("subsets");
    for (i, subset) in get_list(ep, "subsets").iter().enumerate() {
        let sp = subsets.index(i);
        for list in ["addresses", "notReadyAddresses"] {
            for (j, addr) in get_list(subset, list).iter().enumerate() {
                let ip = get_str(addr, "ip");
                for msg in names::is_valid_ip(ip) {
                    errs.push(invalid_str(&sp.child(list).index(j).child("ip"), ip, &msg));
                }
            }
        }
        let ports = sp.child("ports");
        for (j, port) in get_list(subset, "ports").iter().enumerate() {
            let pp = ports.index(j);
            let n = get_i64(port, "port").unwrap_or(0);
            for msg in names::is_valid_port_num(n) {
                errs.push(invalid_int(&pp.child("port"), n, &msg));
            }
            let protocol = get_str(port, "protocol");
            if protocol.is_empty() {
                errs.push(required(&pp.child("protocol"), ""));
            } else if !PROTOCOLS.contains(&protocol) {
                errs.push(not_supported(
                    &pp.child("protocol"),
                    &port["protocol"],
                    PROTOCOLS,
                ));
            }
        }
    }
    errs
}
