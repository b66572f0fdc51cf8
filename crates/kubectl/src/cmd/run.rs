//! `kubectl run NAME --image=IMAGE [--env] [--port] [--labels] [--restart]
//! [--image-pull-policy] [--command] [-- ARGS...]`: one pod (upstream's `run-pod/v1`).

use serde_json::{json, Map, Value};

use crate::context::Context;
use crate::errors::{Error, Result};
use crate::output::OutputFormat;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// NAME
    pub name: Option<String>,
    /// Arguments (or with --command, the command) after `--`.
    #[arg(last = true)]
    pub args: Vec<String>,
    /// The image for the container to run.
    #[arg(long)]
    pub image: Option<String>,
    /// The image pull policy for the container.
    #[arg(long)]
    pub image_pull_policy: Option<String>,
    /// The restart policy for this Pod. Legal values [Always, OnFailure, Never].
    #[arg(long, default_value = "Always")]
    pub restart: String,
    /// Comma separated labels to apply to the pod. Will override previous values.
    #[arg(short = 'l', long)]
    pub labels: Option<String>,
    /// Annotations to apply to the pod.
    #[arg(long = "annotations")]
    pub annotations: Vec<String>,
    /// Environment variables to set in the container.
    #[arg(long)]
    pub env: Vec<String>,
    /// The port that this container exposes.
    #[arg(long)]
    pub port: Option<String>,
    /// If true and extra arguments are present, use them as the 'command' field in the container.
    #[arg(long)]
    pub command: bool,
    /// Keep stdin open on the container in the pod.
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Allocate a TTY for the container in the pod.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Service account to set in the pod spec.
    #[arg(long)]
    pub serviceaccount: Option<String>,
    /// Must be "none", "server", or "client".
    #[arg(long, num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: Option<String>,
    /// Output format.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

fn parse_labels(text: &str) -> Result<Map<String, Value>> {
    let mut map = Map::new();
    for pair in text.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| Error::usage(format!("invalid label spec: {pair}")))?;
        map.insert(k.to_string(), json!(v));
    }
    Ok(map)
}

/// The pod upstream's generator builds.
fn build_pod(name: &str, image: &str, args: &RunArgs) -> Result<Value> {
    let labels = match &args.labels {
        Some(l) => parse_labels(l)?,
        None => {
            let mut m = Map::new();
            m.insert("run".into(), json!(name));
            m
        }
    };
    let mut container = json!({"name": name, "image": image, "resources": {}});
    if let Some(p) = &args.image_pull_policy {
        container["imagePullPolicy"] = json!(p);
    }
    if !args.args.is_empty() {
        let field = if args.command { "command" } else { "args" };
        container[field] = json!(args.args);
    }
    if !args.env.is_empty() {
        let env: Vec<Value> = args
            .env
            .iter()
            .map(|e| {
                let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
                json!({"name": k, "value": v})
            })
            .collect();
        container["env"] = json!(env);
    }
    if let Some(port) = &args.port {
        let n: i64 = port
            .parse()
            .map_err(|_| Error::usage(format!("invalid port: {port}")))?;
        container["ports"] = json!([{"containerPort": n}]);
    }
    if args.stdin {
        container["stdin"] = json!(true);
        container["stdinOnce"] = json!(true);
    }
    if args.tty {
        container["tty"] = json!(true);
    }
    let mut metadata = json!({"name": name, "labels": labels});
    if !args.annotations.is_empty() {
        let mut ann = Map::new();
        for a in &args.annotations {
            let (k, v) = a.split_once('=').unwrap_or((a.as_str(), ""));
            ann.insert(k.to_string(), json!(v));
        }
        metadata["annotations"] = Value::Object(ann);
    }
    let mut spec = json!({
        "containers": [container],
        "restartPolicy": args.restart,
        "dnsPolicy": "ClusterFirst",
    });
    if let Some(sa) = &args.serviceaccount {
        spec["serviceAccountName"] = json!(sa);
    }
    Ok(json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": {}}))
}

pub async fn run(ctx: &Context, args: RunArgs) -> Result<()> {
    let Some(name) = args.name.clone() else {
        return Err(Error::usage(
            "NAME is required for run\nSee 'kubectl run -h' for help and examples",
        ));
    };
    let Some(image) = args.image.clone().filter(|i| !i.is_empty()) else {
        return Err(Error::usage("--image is required"));
    };
    if !["Always", "OnFailure", "Never"].contains(&args.restart.as_str()) {
        return Err(Error::usage(format!(
            "invalid restart policy: {}\nSee 'kubectl run -h' for help and examples",
            args.restart
        )));
    }
    let pod = build_pod(&name, &image, &args)?;
    let namespace = ctx.namespace();
    let dry_run = args.dry_run.as_deref().unwrap_or("none");
    let result = match dry_run {
        "client" => {
            let mut pod = pod;
            pod["metadata"]["creationTimestamp"] = Value::Null;
            pod["metadata"]["namespace"] = json!(namespace);
            pod
        }
        "none" | "server" => {
            let client = ctx.client().await?;
            let query = if dry_run == "server" {
                "?dryRun=All"
            } else {
                ""
            };
            client
                .send_json(
                    http::Method::POST,
                    &format!("/api/v1/namespaces/{namespace}/pods{query}"),
                    &pod,
                )
                .await?
        }
        other => {
            return Err(Error::usage(format!(
                "Invalid dry-run value ({other}). Must be \"none\", \"server\", or \"client\"."
            )))
        }
    };
    match args.output.as_deref() {
        Some(o) if o != "name" => {
            let format = OutputFormat::parse(Some(o))?;
            let mut obj = result;
            obj["apiVersion"] = json!("v1");
            obj["kind"] = json!("Pod");
            let text = crate::output::print_value(&format, &obj)?;
            print!("{text}");
        }
        Some(_) => println!("pod/{name}"),
        None => {
            let suffix = match dry_run {
                "client" => " (dry run)",
                "server" => " (server dry run)",
                _ => "",
            };
            println!("pod/{name} created{suffix}");
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
        args: RunArgs,
    }

    #[test]
    fn builds_upstreams_pod() {
        let args = Wrap::parse_from([
            "run",
            "web",
            "--image=nginx",
            "--port=80",
            "--env=A=1",
            "--restart=Never",
            "--",
            "sleep",
            "10",
        ])
        .args;
        let pod = build_pod("web", "nginx", &args).expect("pod");
        assert_eq!(pod["metadata"]["labels"], json!({"run": "web"}));
        assert_eq!(pod["spec"]["restartPolicy"], "Never");
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["args"], json!(["sleep", "10"]));
        assert_eq!(c["ports"], json!([{"containerPort": 80}]));
        assert_eq!(c["env"], json!([{"name": "A", "value": "1"}]));
    }
}
