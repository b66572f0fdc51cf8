//! `describe service`.

use serde_json::Value;

use super::template::{annotations_multiline, labels_multiline};
use super::writer::{PrefixWriter, LEVEL_0};
use super::{events, field, format_labels, strings};
use crate::context::Context;
use crate::errors::Result;

/// `formatEndpointSlices` for one port name.
fn format_endpoint_slices(slices: &[Value], port_name: &str) -> String {
    if slices.is_empty() {
        return "<none>".into();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for slice in slices {
        let endpoints = slice["endpoints"].as_array().cloned().unwrap_or_default();
        let ports = slice["ports"].as_array().cloned().unwrap_or_default();
        let first_address = |e: &Value| e["addresses"][0].as_str().unwrap_or_default().to_string();
        if ports.is_empty() {
            for e in &endpoints {
                if list.len() == MAX {
                    more = true;
                }
                if !more {
                    list.push(first_address(e));
                }
                count += 1;
            }
            continue;
        }
        for port in &ports {
            if port["name"].as_str().unwrap_or_default() != port_name {
                continue;
            }
            for e in &endpoints {
                if list.len() == MAX {
                    more = true;
                }
                if !more {
                    let addr = first_address(e);
                    let p = port["port"].as_i64().unwrap_or(0);
                    if addr.contains(':') {
                        list.push(format!("[{addr}]:{p}"));
                    } else {
                        list.push(format!("{addr}:{p}"));
                    }
                }
                count += 1;
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

pub async fn describe(ctx: &Context, svc: &Value, events: Option<&Vec<Value>>) -> Result<String> {
    let client = ctx.client().await?;
    let name = field(svc, "/metadata/name");
    let namespace = field(svc, "/metadata/namespace");
    let slices = client
        .get(&format!(
            "/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices?labelSelector={}",
            crate::client::encode(&format!("kubernetes.io/service-name={name}"))
        ))
        .await
        .map(|l| l["items"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default();
    let spec = &svc["spec"];
    let mut w = PrefixWriter::new();
    w.write(LEVEL_0, &format!("Name:\t{name}\n"));
    w.write(LEVEL_0, &format!("Namespace:\t{namespace}\n"));
    labels_multiline(&mut w, "", "Labels", &svc["metadata"]["labels"]);
    annotations_multiline(&mut w, "Annotations", &svc["metadata"]["annotations"]);
    w.write(
        LEVEL_0,
        &format!("Selector:\t{}\n", format_labels(&spec["selector"])),
    );
    w.write(LEVEL_0, &format!("Type:\t{}\n", field(spec, "/type")));
    if let Some(p) = spec["ipFamilyPolicy"].as_str() {
        w.write(LEVEL_0, &format!("IP Family Policy:\t{p}\n"));
    }
    let families = strings(&spec["ipFamilies"]);
    if families.is_empty() {
        w.write(LEVEL_0, "IP Families:\t<none>\n");
    } else {
        w.write(LEVEL_0, &format!("IP Families:\t{}\n", families.join(",")));
    }
    w.write(LEVEL_0, &format!("IP:\t{}\n", field(spec, "/clusterIP")));
    let ips = strings(&spec["clusterIPs"]);
    if ips.is_empty() {
        w.write(LEVEL_0, "IPs:\t<none>\n");
    } else {
        w.write(LEVEL_0, &format!("IPs:\t{}\n", ips.join(",")));
    }
    let external = strings(&spec["externalIPs"]);
    if !external.is_empty() {
        w.write(LEVEL_0, &format!("External IPs:\t{}\n", external.join(",")));
    }
    if !field(spec, "/loadBalancerIP").is_empty() {
        w.write(
            LEVEL_0,
            &format!("IP:\t{}\n", field(spec, "/loadBalancerIP")),
        );
    }
    if !field(spec, "/externalName").is_empty() {
        w.write(
            LEVEL_0,
            &format!("External Name:\t{}\n", field(spec, "/externalName")),
        );
    }
    if let Some(ingress) = svc["status"]["loadBalancer"]["ingress"]
        .as_array()
        .filter(|i| !i.is_empty())
    {
        let list: Vec<String> = ingress
            .iter()
            .map(|i| {
                i["ip"]
                    .as_str()
                    .or(i["hostname"].as_str())
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        w.write(
            LEVEL_0,
            &format!("LoadBalancer Ingress:\t{}\n", list.join(", ")),
        );
    }
    for port in spec["ports"].as_array().cloned().unwrap_or_default() {
        let pname = port["name"].as_str().unwrap_or_default();
        let shown = if pname.is_empty() { "<unset>" } else { pname };
        let proto = port["protocol"].as_str().unwrap_or("TCP");
        w.write(
            LEVEL_0,
            &format!(
                "Port:\t{shown}\t{}/{proto}\n",
                port["port"].as_i64().unwrap_or(0)
            ),
        );
        let target = match &port["targetPort"] {
            Value::String(s) => s.clone(),
            v => v.as_i64().unwrap_or(0).to_string(),
        };
        w.write(LEVEL_0, &format!("TargetPort:\t{target}/{proto}\n"));
        if let Some(np) = port["nodePort"].as_i64().filter(|n| *n != 0) {
            w.write(LEVEL_0, &format!("NodePort:\t{shown}\t{np}/{proto}\n"));
        }
        w.write(
            LEVEL_0,
            &format!("Endpoints:\t{}\n", format_endpoint_slices(&slices, pname)),
        );
    }
    w.write(
        LEVEL_0,
        &format!("Session Affinity:\t{}\n", field(spec, "/sessionAffinity")),
    );
    if !field(spec, "/externalTrafficPolicy").is_empty() {
        w.write(
            LEVEL_0,
            &format!(
                "External Traffic Policy:\t{}\n",
                field(spec, "/externalTrafficPolicy")
            ),
        );
    }
    if let Some(p) = spec["internalTrafficPolicy"].as_str() {
        w.write(LEVEL_0, &format!("Internal Traffic Policy:\t{p}\n"));
    }
    if let Some(p) = spec["healthCheckNodePort"].as_i64().filter(|p| *p != 0) {
        w.write(LEVEL_0, &format!("HealthCheck NodePort:\t{p}\n"));
    }
    let ranges = strings(&spec["loadBalancerSourceRanges"]);
    if !ranges.is_empty() {
        w.write(
            LEVEL_0,
            &format!("LoadBalancer Source Ranges:\t{}\n", ranges.join(",")),
        );
    }
    events::describe(events, &mut w);
    Ok(w.aligned())
}
