//! `kubectl expose (TYPE NAME | TYPE/NAME) [--port] [--target-port] [--name]
//! [--type] [--protocol] [--selector]`: a Service in front of a pod, service,
//! replication controller, deployment or replica set (upstream `createService`).

use serde_json::{json, Map, Value};

use crate::cmd::exec::selector_of;
use crate::cmd::parse_targets;
use crate::context::Context;
use crate::errors::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct ExposeArgs {
    /// (TYPE NAME | TYPE/NAME)
    pub resources: Vec<String>,
    /// The port that the service should serve on.
    #[arg(long)]
    pub port: Option<String>,
    /// Name or number for the port on the container that the service should direct traffic to.
    #[arg(long)]
    pub target_port: Option<String>,
    /// The name for the newly created object.
    #[arg(long)]
    pub name: Option<String>,
    /// Type for this service: ClusterIP, NodePort, LoadBalancer, or ExternalName.
    #[arg(long = "type")]
    pub service_type: Option<String>,
    /// The network protocol for the service to be created.
    #[arg(long)]
    pub protocol: Option<String>,
    /// A label selector to use for this service.
    #[arg(long)]
    pub selector: Option<String>,
    /// Labels to apply to the service created by this call.
    #[arg(short = 'l', long)]
    pub labels: Option<String>,
    /// ClusterIP to be assigned to the service.
    #[arg(long)]
    pub cluster_ip: Option<String>,
    /// Additional external IP address (not managed by Kubernetes) to accept for the service.
    #[arg(long)]
    pub external_ip: Option<String>,
}

const EXPOSABLE: [&str; 5] = [
    "Pod",
    "Service",
    "ReplicationController",
    "Deployment",
    "ReplicaSet",
];

/// `a=b,c=d` as a JSON map.
fn parse_map(text: &str, what: &str) -> Result<Map<String, Value>> {
    let mut map = Map::new();
    for pair in text.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| Error::usage(format!("invalid {what}: {pair:?}")))?;
        map.insert(k.to_string(), json!(v));
    }
    Ok(map)
}

/// Container ports of the source object: `(port, protocol, name)`.
fn ports_of(obj: &Value, kind: &str) -> Vec<(i64, String, String)> {
    if kind == "Service" {
        return obj["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some((
                    p["port"].as_i64()?,
                    p["protocol"].as_str().unwrap_or("TCP").to_string(),
                    p["name"].as_str().unwrap_or_default().to_string(),
                ))
            })
            .collect();
    }
    let spec = if kind == "Pod" {
        &obj["spec"]
    } else {
        &obj["spec"]["template"]["spec"]
    };
    spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| {
            Some((
                p["containerPort"].as_i64()?,
                p["protocol"].as_str().unwrap_or("TCP").to_string(),
                p["name"].as_str().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

/// The Service upstream builds for `obj`.
fn build_service(args: &ExposeArgs, obj: &Value, kind: &str) -> Result<Value> {
    let name = args.name.clone().unwrap_or_else(|| {
        obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    let selector = match &args.selector {
        Some(s) => parse_map(s, "selector")?,
        None => {
            if kind != "Service"
                && kind != "Pod"
                && obj["spec"]["selector"]["matchExpressions"]
                    .as_array()
                    .is_some_and(|m| !m.is_empty())
            {
                return Err(Error::usage(
                    "couldn't retrieve selectors via --selector flag or introspection: couldn't convert expressions - \"&LabelSelector{...}\" to map-based selector format",
                ));
            }
            let map = if kind == "Pod" {
                obj["metadata"]["labels"].as_object().cloned()
            } else {
                selector_of(obj)
                    .map(|s| parse_map(&s, "selector"))
                    .transpose()?
            };
            match map {
                Some(m) if !m.is_empty() => m,
                _ => {
                    let why = if kind == "Service" {
                        "the service has no pod selector set"
                    } else {
                        "the object has no selector"
                    };
                    return Err(Error::usage(format!(
                        "couldn't retrieve selectors via --selector flag or introspection: {why}"
                    )));
                }
            }
        }
    };
    let labels = match &args.labels {
        Some(l) => parse_map(l, "labels")?,
        None => obj["metadata"]["labels"]
            .as_object()
            .cloned()
            .unwrap_or_default(),
    };
    let introspected = ports_of(obj, kind);
    let ports: Vec<(i64, String)> = match &args.port {
        Some(p) => p
            .split(',')
            .map(|one| {
                let port: i64 = one
                    .parse()
                    .map_err(|_| Error::usage(format!("invalid port: {one}")))?;
                let proto = introspected
                    .iter()
                    .find(|(n, _, _)| *n == port)
                    .map(|(_, proto, _)| proto.clone());
                Ok((port, proto.unwrap_or_default()))
            })
            .collect::<Result<_>>()?,
        None => introspected
            .iter()
            .map(|(p, proto, _)| (*p, proto.clone()))
            .collect(),
    };
    if ports.is_empty() {
        return Err(Error::usage(
            "couldn't find port via --port flag or introspection",
        ));
    }
    let multiple = ports.len() > 1;
    let mut service_ports = Vec::new();
    for (i, (port, proto)) in ports.iter().enumerate() {
        let protocol = args
            .protocol
            .clone()
            .or_else(|| (!proto.is_empty()).then(|| proto.clone()))
            .unwrap_or_else(|| "TCP".to_string());
        let target = match &args.target_port {
            Some(t) => match t.parse::<i64>() {
                Ok(n) => json!(n),
                Err(_) => json!(t),
            },
            None => json!(port),
        };
        let mut sp = json!({"port": port, "protocol": protocol, "targetPort": target});
        if multiple {
            sp["name"] = json!(format!("port-{}", i + 1));
        }
        service_ports.push(sp);
    }
    let mut metadata = json!({"name": name});
    if !labels.is_empty() {
        metadata["labels"] = Value::Object(labels);
    }
    let mut spec = json!({"ports": service_ports, "selector": selector});
    if let Some(t) = &args.service_type {
        spec["type"] = json!(t);
    }
    if let Some(ip) = &args.cluster_ip {
        spec["clusterIP"] = json!(ip);
    }
    if let Some(ip) = &args.external_ip {
        spec["externalIPs"] = json!([ip]);
    }
    Ok(json!({"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}))
}

pub async fn run(ctx: &Context, args: ExposeArgs) -> Result<()> {
    if args.resources.is_empty() {
        return Err(Error::usage(
            "You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'",
        ));
    }
    let discovery = ctx.discovery().await?;
    let targets = parse_targets(discovery, &args.resources)?;
    let client = ctx.client().await?;
    let namespace = ctx.namespace();
    for target in targets {
        if target.names.is_empty() {
            return Err(Error::usage(
                "resource(s) were provided, but no name was specified",
            ));
        }
        let kind = target.resource.kind.clone();
        for name in &target.names {
            let obj = client
                .get(&target.resource.object_path(&namespace, name))
                .await?;
            if !EXPOSABLE.contains(&kind.as_str()) {
                return Err(Error::usage(format!("cannot expose a {kind}")));
            }
            let service = build_service(&args, &obj, &kind)?;
            let created = client
                .send_json(
                    http::Method::POST,
                    &format!("/api/v1/namespaces/{namespace}/services"),
                    &service,
                )
                .await?;
            println!(
                "service/{} exposed",
                created["metadata"]["name"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: ExposeArgs,
    }

    fn args(list: &[&str]) -> ExposeArgs {
        let mut all = vec!["expose"];
        all.extend_from_slice(list);
        Wrap::parse_from(all).args
    }

    #[test]
    fn deployment_selector_and_ports() {
        let deploy = json!({
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}]}]}}}
        });
        let svc = build_service(&args(&["deployment", "web"]), &deploy, "Deployment").expect("svc");
        assert_eq!(svc["metadata"]["name"], "web");
        assert_eq!(svc["spec"]["selector"], json!({"app": "web"}));
        assert_eq!(
            svc["spec"]["ports"],
            json!([{"name": "port-1", "port": 80, "protocol": "TCP", "targetPort": 80},
                   {"name": "port-2", "port": 53, "protocol": "UDP", "targetPort": 53}])
        );
        let svc = build_service(
            &args(&[
                "deployment",
                "web",
                "--port=8080",
                "--target-port=http",
                "--name=x",
                "--type=NodePort",
            ]),
            &deploy,
            "Deployment",
        )
        .expect("svc");
        assert_eq!(svc["metadata"]["name"], "x");
        assert_eq!(svc["spec"]["type"], "NodePort");
        assert_eq!(
            svc["spec"]["ports"],
            json!([{"port": 8080, "protocol": "TCP", "targetPort": "http"}])
        );
    }

    #[test]
    fn no_port_is_an_error() {
        let pod = json!({"metadata": {"name": "p", "labels": {"run": "p"}}, "spec": {"containers": [{"name": "c"}]}});
        let err = build_service(&args(&["pod", "p"]), &pod, "Pod").expect_err("no port");
        assert_eq!(
            err.to_string(),
            "error: couldn't find port via --port flag or introspection"
        );
    }
}
