//! `kubectl logs (POD | TYPE/NAME) [-c CONTAINER] [-f] [-p] [--tail N]
//! [--timestamps] [--since D] [-l SELECTOR] [--all-containers] [--prefix]`:
//! the `pods/log` subresource, streamed.

use futures::{AsyncBufReadExt, StreamExt};
use serde_json::Value;

use crate::cmd::exec::{pick_container, resolve_pod, selector_of};
use crate::cmd::{list_query, name_of};
use crate::context::Context;
use crate::errors::{Error, Result};

const USAGE: &str = "expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\nPOD or TYPE/NAME is a required argument for the logs command\nSee 'kubectl logs -h' for help and examples";

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// (POD | TYPE/NAME) [CONTAINER]
    pub args: Vec<String>,
    /// Print the logs of this container
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Specify if the logs should be streamed.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// If true, print the logs for the previous instance of the container in a pod if it exists.
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Lines of recent log file to display. Defaults to -1 with no selector, showing all log lines otherwise 10.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,
    /// Include timestamps on each line in the log output
    #[arg(long)]
    pub timestamps: bool,
    /// Only return logs newer than a relative duration like 5s, 2m, or 3h.
    #[arg(long)]
    pub since: Option<String>,
    /// Only return logs after a specific date (RFC3339).
    #[arg(long)]
    pub since_time: Option<String>,
    /// Maximum bytes of logs to return.
    #[arg(long, default_value_t = 0)]
    pub limit_bytes: i64,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Get all containers' logs in the pod(s).
    #[arg(long)]
    pub all_containers: bool,
    /// Prefix each log line with the log source (pod name and container name)
    #[arg(long)]
    pub prefix: bool,
    /// Maximum number of concurrent logs to follow when using by a selector.
    #[arg(long, default_value_t = 5)]
    pub max_log_requests: usize,
    /// Ignore errors while streaming logs.
    #[arg(long)]
    pub ignore_errors: bool,
}

fn log_query(args: &LogsArgs, container: &str, tail: i64) -> Result<String> {
    let mut q = vec![format!("container={}", crate::client::encode(container))];
    if args.follow {
        q.push("follow=true".into());
    }
    if args.previous {
        q.push("previous=true".into());
    }
    if tail >= 0 {
        q.push(format!("tailLines={tail}"));
    }
    if args.timestamps {
        q.push("timestamps=true".into());
    }
    if args.limit_bytes > 0 {
        q.push(format!("limitBytes={}", args.limit_bytes));
    }
    if let Some(since) = &args.since {
        let d = crate::cmd::wait::parse_duration(since)
            .ok_or_else(|| crate::cmd::wait::duration_flag_error("since", since))?;
        q.push(format!("sinceSeconds={}", d.as_secs().max(1)));
    }
    if let Some(t) = &args.since_time {
        q.push(format!("sinceTime={}", crate::client::encode(t)));
    }
    Ok(format!("?{}", q.join("&")))
}

/// Streams one container's log to stdout (prefixed if asked).
async fn stream_one(
    ctx: &Context,
    pod: &Value,
    container: &str,
    args: &LogsArgs,
    tail: i64,
    prefix: bool,
) -> Result<()> {
    let client = ctx.client().await?;
    let ns = pod["metadata"]["namespace"]
        .as_str()
        .map_or_else(|| ctx.namespace(), str::to_string);
    let name = name_of(pod);
    let path = format!(
        "/api/v1/namespaces/{ns}/pods/{name}/log{}",
        log_query(args, container, tail)?
    );
    let reader = match client.stream(&path, "application/json, */*").await {
        Ok(r) => r,
        // A plain-text refusal (the kubelet's words): client-go's generic message.
        Err(Error::Server(e)) if e.code == 400 && e.reason.is_empty() => {
            return Err(Error::Server(crate::errors::ServerError {
                code: 400,
                reason: "BadRequest".into(),
                message: format!(
                    "the server rejected our request for an unknown reason (get pods {name})"
                ),
            }))
        }
        Err(e) => return Err(e),
    };
    let mut lines = reader.lines();
    use std::io::Write;
    while let Some(line) = lines.next().await {
        let line = line?;
        let mut out = std::io::stdout().lock();
        if prefix {
            writeln!(out, "[pod/{name}/{container}] {line}")?;
        } else {
            writeln!(out, "{line}")?;
        }
        out.flush()?;
    }
    Ok(())
}

/// How many pods a `TYPE/NAME` workload selects (upstream's `GetFirstPod`
/// count, which `logs` reports when it picks one of several); 1 for a pod.
async fn pods_behind(ctx: &Context, target: &str) -> Result<usize> {
    let Some((kind, name)) = target.split_once('/') else {
        return Ok(1);
    };
    let discovery = ctx.discovery().await?;
    let Some(resource) = discovery.resolve(kind)?.into_iter().next() else {
        return Ok(1);
    };
    if resource.kind == "Pod" {
        return Ok(1);
    }
    let namespace = ctx.namespace();
    let client = ctx.client().await?;
    let workload = client.get(&resource.object_path(&namespace, name)).await?;
    let Some(selector) = selector_of(&workload) else {
        return Ok(1);
    };
    let list = client
        .get(&format!(
            "/api/v1/namespaces/{namespace}/pods{}",
            list_query(Some(&selector), None)
        ))
        .await?;
    Ok(list["items"].as_array().map_or(0, Vec::len))
}

fn container_names(pod: &Value) -> Vec<String> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|f| pod["spec"][*f].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

pub async fn run(ctx: &Context, args: LogsArgs) -> Result<()> {
    let mut tail = args.tail;
    let pods: Vec<Value> = match (&args.selector, args.args.first()) {
        (Some(_), Some(_)) => {
            return Err(Error::usage(
                "only a selector (-l) or a POD name is allowed",
            ))
        }
        (Some(sel), None) => {
            if tail < 0 {
                tail = 10;
            }
            let client = ctx.client().await?;
            let list = client
                .get(&format!(
                    "/api/v1/namespaces/{}/pods{}",
                    ctx.namespace(),
                    list_query(Some(sel), None)
                ))
                .await?;
            let items = list["items"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                eprintln!("No resources found in {} namespace.", ctx.namespace());
                return Ok(());
            }
            if args.follow && items.len() > args.max_log_requests {
                return Err(Error::usage(format!(
                    "you are attempting to follow {} log streams, but maximum allowed concurrency is {}, use --max-log-requests to increase the limit",
                    items.len(),
                    args.max_log_requests
                )));
            }
            items
        }
        (None, Some(target)) => match resolve_pod(ctx, target).await {
            Err(Error::Server(s)) if s.code == 404 => {
                return Err(Error::usage(format!(
                    "error from server (NotFound): {} in namespace \"{}\"",
                    s.message,
                    ctx.namespace()
                )))
            }
            other => {
                let pod = other?;
                let count = pods_behind(ctx, target).await?;
                if count > 1 {
                    eprintln!("Found {count} pods, using pod/{}", name_of(&pod));
                }
                vec![pod]
            }
        },
        (None, None) => return Err(Error::usage(USAGE)),
    };
    let positional_container = args.args.get(1).cloned();
    if args.args.len() > 2 {
        return Err(Error::usage(USAGE));
    }
    let requested = args.container.clone().or(positional_container);
    let multiple_pods = pods.len() > 1;
    let mut streams = Vec::new();
    for pod in &pods {
        let containers = if args.all_containers {
            container_names(pod)
        } else {
            if let Some(c) = &requested {
                if !container_names(pod).contains(c) {
                    return Err(Error::usage(format!(
                        "container {c} is not valid for pod {}",
                        name_of(pod)
                    )));
                }
            }
            vec![pick_container(pod, requested.as_deref(), multiple_pods)?]
        };
        for c in containers {
            streams.push((pod.clone(), c));
        }
    }
    let prefix = args.prefix;
    if args.follow && streams.len() > 1 {
        let futures = streams
            .iter()
            .map(|(pod, c)| stream_one(ctx, pod, c, &args, tail, prefix));
        let results = futures::future::join_all(futures).await;
        for r in results {
            if let Err(e) = r {
                if !args.ignore_errors {
                    return Err(e);
                }
            }
        }
        return Ok(());
    }
    for (pod, c) in &streams {
        if let Err(e) = stream_one(ctx, pod, c, &args, tail, prefix).await {
            if !args.ignore_errors {
                return Err(e);
            }
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
        args: LogsArgs,
    }

    #[test]
    fn query_carries_the_flags() {
        let args =
            Wrap::parse_from(["logs", "p", "-f", "--tail=5", "--timestamps", "--since=1m"]).args;
        assert_eq!(
            log_query(&args, "c", 5).expect("query"),
            "?container=c&follow=true&tailLines=5&timestamps=true&sinceSeconds=60"
        );
    }
}
