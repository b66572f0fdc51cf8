//! `describe endpoints|endpointslice`.

use serde_json::Value;

use super::template::object_header;
use super::writer::{PrefixWriter, LEVEL_0, LEVEL_1, LEVEL_2, LEVEL_3};
use super::{events, field};

fn ips(addresses: &Value) -> String {
    let list: Vec<&str> = addresses
        .as_array()
        .map(|a| a.iter().map(|addr| field(addr, "/ip")).collect())
        .unwrap_or_default();
    if list.is_empty() {
        "<none>".into()
    } else {
        list.join(",")
    }
}

pub fn endpoints(ep: &Value, events: Option<&Vec<Value>>) -> String {
    let mut w = PrefixWriter::new();
    object_header(&mut w, ep);
    w.write(LEVEL_0, "Subsets:\n");
    for subset in ep["subsets"].as_array().cloned().unwrap_or_default() {
        w.write(
            LEVEL_1,
            &format!("Addresses:\t{}\n", ips(&subset["addresses"])),
        );
        w.write(
            LEVEL_1,
            &format!(
                "NotReadyAddresses:\t{}\n",
                ips(&subset["notReadyAddresses"])
            ),
        );
        if let Some(ports) = subset["ports"].as_array().filter(|p| !p.is_empty()) {
            w.write(LEVEL_1, "Ports:\n");
            w.write(LEVEL_2, "Name\tPort\tProtocol\n");
            w.write(LEVEL_2, "----\t----\t--------\n");
            for p in ports {
                let name = p["name"]
                    .as_str()
                    .filter(|n| !n.is_empty())
                    .unwrap_or("<unset>");
                w.write(
                    LEVEL_2,
                    &format!(
                        "{name}\t{}\t{}\n",
                        p["port"].as_i64().unwrap_or(0),
                        field(p, "/protocol")
                    ),
                );
            }
        }
        w.write(LEVEL_0, "\n");
    }
    events::describe(events, &mut w);
    w.aligned()
}

pub fn endpoint_slice(eps: &Value, events: Option<&Vec<Value>>) -> String {
    let mut w = PrefixWriter::new();
    object_header(&mut w, eps);
    w.write(
        LEVEL_0,
        &format!("AddressType:\t{}\n", field(eps, "/addressType")),
    );
    let ports = eps["ports"].as_array().cloned().unwrap_or_default();
    if ports.is_empty() {
        w.write(LEVEL_0, "Ports: <unset>\n");
    } else {
        w.write(LEVEL_0, "Ports:\n");
        w.write(LEVEL_1, "Name\tPort\tProtocol\n");
        w.write(LEVEL_1, "----\t----\t--------\n");
        for p in &ports {
            let name = p["name"]
                .as_str()
                .filter(|n| !n.is_empty())
                .unwrap_or("<unset>");
            let port = p["port"]
                .as_i64()
                .map_or("<unset>".to_string(), |n| n.to_string());
            w.write(
                LEVEL_1,
                &format!("{name}\t{port}\t{}\n", field(p, "/protocol")),
            );
        }
    }
    let endpoints = eps["endpoints"].as_array().cloned().unwrap_or_default();
    if endpoints.is_empty() {
        w.write(LEVEL_0, "Endpoints: <none>\n");
    } else {
        w.write(LEVEL_0, "Endpoints:\n");
        for e in &endpoints {
            let addresses: Vec<&str> = e["addresses"]
                .as_array()
                .map(|a| a.iter().map(|s| s.as_str().unwrap_or_default()).collect())
                .unwrap_or_default();
            let addresses = if addresses.is_empty() {
                "<none>".to_string()
            } else {
                addresses.join(", ")
            };
            w.write(LEVEL_1, &format!("- Addresses:\t{addresses}\n"));
            w.write(LEVEL_2, "Conditions:\n");
            let ready = e["conditions"]["ready"]
                .as_bool()
                .map_or("<unset>".to_string(), |b| b.to_string());
            w.write(LEVEL_3, &format!("Ready:\t{ready}\n"));
            let unset = |key: &str| e[key].as_str().unwrap_or("<unset>").to_string();
            w.write(LEVEL_2, &format!("Hostname:\t{}\n", unset("hostname")));
            if e["targetRef"].is_object() {
                w.write(
                    LEVEL_2,
                    &format!(
                        "TargetRef:\t{}/{}\n",
                        field(&e["targetRef"], "/kind"),
                        field(&e["targetRef"], "/name")
                    ),
                );
            }
            w.write(LEVEL_2, &format!("NodeName:\t{}\n", unset("nodeName")));
            w.write(LEVEL_2, &format!("Zone:\t{}\n", unset("zone")));
        }
    }
    events::describe(events, &mut w);
    w.aligned()
}
