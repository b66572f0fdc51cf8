//! `kubectl top pods|nodes`: reads `metrics.k8s.io`; without it, upstream's
//! `error: Metrics API not available`.

use crate::context::Context;
use crate::errors::{Error, Result};
use crate::printers::tabwrite;
use api_types::quantity::ParsedQuantity;

#[derive(Debug, clap::Subcommand)]
pub enum TopCommand {
    /// Display resource (CPU/memory) usage of nodes
    #[command(alias = "nodes", alias = "no")]
    Node(TopArgs),
    /// Display resource (CPU/memory) usage of pods
    #[command(alias = "pods", alias = "po")]
    Pod(TopArgs),
}

#[derive(Debug, clap::Args)]
pub struct TopArgs {
    /// NAME
    pub name: Option<String>,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// If present, list the requested object(s) across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// If present, print output without headers
    #[arg(long)]
    pub no_headers: bool,
}

/// CPU `123456n` → millicores; memory `1024Ki` → MiB.
fn cpu_millis(q: &str) -> i64 {
    ParsedQuantity::parse(q).map_or(0, |v| v.milli_value())
}

fn mem_mib(q: &str) -> i64 {
    ParsedQuantity::parse(q).map_or(0, |v| v.value() / (1024 * 1024))
}

pub async fn run(ctx: &Context, command: TopCommand) -> Result<()> {
    let discovery = ctx.discovery().await?;
    if !discovery
        .group_versions
        .iter()
        .any(|gv| gv.starts_with("metrics.k8s.io/"))
    {
        return Err(Error::usage("Metrics API not available"));
    }
    let client = ctx.client().await?;
    let (is_pods, args) = match command {
        TopCommand::Pod(a) => (true, a),
        TopCommand::Node(a) => (false, a),
    };
    let mut path = if is_pods {
        if args.all_namespaces {
            "/apis/metrics.k8s.io/v1beta1/pods".to_string()
        } else {
            format!(
                "/apis/metrics.k8s.io/v1beta1/namespaces/{}/pods",
                ctx.namespace()
            )
        }
    } else {
        "/apis/metrics.k8s.io/v1beta1/nodes".to_string()
    };
    if let Some(name) = &args.name {
        path = format!("{path}/{name}");
    } else {
        path.push_str(&crate::cmd::list_query(args.selector.as_deref(), None));
    }
    let data = client.get(&path).await?;
    let items = match data["items"].as_array() {
        Some(items) => items.clone(),
        None => vec![data],
    };
    if items.is_empty() && args.name.is_none() {
        // upstream: no node metrics is an error; no pod metrics is one only when
        // there are pods whose metrics should exist
        if !is_pods {
            return Err(Error::usage("metrics not available yet"));
        }
        let pods_path = if args.all_namespaces {
            "/api/v1/pods".to_string()
        } else {
            format!("/api/v1/namespaces/{}/pods", ctx.namespace())
        };
        let pods = client
            .get(&format!(
                "{pods_path}{}",
                crate::cmd::list_query(args.selector.as_deref(), None)
            ))
            .await?;
        if pods["items"].as_array().is_some_and(|p| !p.is_empty()) {
            return Err(Error::usage("metrics not available yet"));
        }
        if args.all_namespaces {
            eprintln!("No resources found");
        } else {
            eprintln!("No resources found in {} namespace.", ctx.namespace());
        }
        return Ok(());
    }
    let mut rows = Vec::new();
    if !args.no_headers {
        let mut header = vec![];
        if is_pods && args.all_namespaces {
            header.push("NAMESPACE".to_string());
        }
        header.push("NAME".into());
        header.push("CPU(cores)".into());
        header.push("MEMORY(bytes)".into());
        rows.push(header);
    }
    for item in items {
        let (cpu, mem) = if is_pods {
            item["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .fold((0, 0), |(c, m), x| {
                    (
                        c + cpu_millis(x["usage"]["cpu"].as_str().unwrap_or("0")),
                        m + mem_mib(x["usage"]["memory"].as_str().unwrap_or("0")),
                    )
                })
        } else {
            (
                cpu_millis(item["usage"]["cpu"].as_str().unwrap_or("0")),
                mem_mib(item["usage"]["memory"].as_str().unwrap_or("0")),
            )
        };
        let mut row = vec![];
        if is_pods && args.all_namespaces {
            row.push(
                item["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        row.push(crate::cmd::name_of(&item).to_string());
        row.push(format!("{cpu}m"));
        row.push(format!("{mem}Mi"));
        rows.push(row);
    }
    print!("{}", tabwrite(&rows));
    Ok(())
}
