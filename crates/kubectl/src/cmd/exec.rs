//! `kubectl exec [-i] [-t] (POD | TYPE/NAME) [-c CONTAINER] -- COMMAND [args...]`.
//!
//! The stream runs over WebSocket (kube-rs `ws`: `v5.channel.k8s.io` then
//! `v4.channel.k8s.io`; our kubelet's runtime answers v4). The remote exit code
//! is propagated as upstream does: `command terminated with exit code N`, exit N.
//!
//! Also the helpers the other pod-streaming verbs share: [`kube_client`],
//! [`resolve_pod`] and [`pick_container`].

use std::io::{IsTerminal, Write};

use kube::api::{Api, AttachParams, AttachedProcess, TerminalSize};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cmd::list_query;
use crate::context::Context;
use crate::errors::{Error, Result, ServerError};

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// POD or TYPE/NAME.
    pub pod: Vec<String>,
    /// The command after `--`.
    #[arg(last = true)]
    pub command: Vec<String>,
    /// Container name. If omitted, use the kubectl.kubernetes.io/default-container annotation.
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Pass stdin to the container
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Stdin is a TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Only print output from the remote session
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// The length of time to wait until at least one pod is running.
    #[arg(long, default_value = "1m0s")]
    pub pod_running_timeout: String,
}

/// A kube-rs client for the upgraded (WebSocket) requests, built from the same
/// effective kubeconfig as [`crate::client::Client`].
pub async fn kube_client(ctx: &Context) -> Result<kube::Client> {
    let effective = ctx.kubeconfig.effective(&ctx.flags)?;
    let parsed: kube::config::Kubeconfig = serde_json::from_value(effective)
        .map_err(|e| Error::usage(format!("invalid configuration: {e}")))?;
    let options = kube::config::KubeConfigOptions {
        context: Some("kubectl".into()),
        cluster: Some("kubectl".into()),
        user: Some("kubectl".into()),
    };
    let config = kube::Config::from_custom_kubeconfig(parsed, &options)
        .await
        .map_err(|e| Error::usage(format!("invalid configuration: {e}")))?;
    kube::Client::try_from(config).map_err(|e| Error::usage(format!("invalid configuration: {e}")))
}

/// Maps a kube-rs failure of a streaming request to our error wording.
pub fn map_kube_error(err: kube::Error) -> Error {
    match err {
        // Not a `Status`: the body of a refused upgrade, as client-go words it.
        kube::Error::Api(status) if status.reason == "Failed to parse error data" => {
            Error::usage(format!("unable to upgrade connection: {}", status.message))
        }
        kube::Error::Api(status) => Error::Server(ServerError {
            code: status.code,
            reason: status.reason.clone(),
            message: status.message.clone(),
        }),
        other => Error::Transport(format!("error: {other}")),
    }
}

/// The pod named by `POD` or `TYPE/NAME` (a workload's first pod by its
/// selector, as upstream's `AttachablePodForObject`).
pub async fn resolve_pod(ctx: &Context, arg: &str) -> Result<Value> {
    let client = ctx.client().await?;
    let namespace = ctx.namespace();
    let Some((kind, name)) = arg.split_once('/') else {
        return client
            .get(&format!("/api/v1/namespaces/{namespace}/pods/{arg}"))
            .await;
    };
    let discovery = ctx.discovery().await?;
    let resource = discovery
        .resolve(kind)?
        .into_iter()
        .next()
        .ok_or_else(|| Error::usage(format!("the server doesn't have a resource type \"{kind}\"")))?;
    let obj = client.get(&resource.object_path(&namespace, name)).await?;
    if resource.kind == "Pod" {
        return Ok(obj);
    }
    let selector = selector_of(&obj).ok_or_else(|| {
        Error::usage(format!(
            "cannot attach to {}: selector for {} not implemented",
            crate::cmd::display_name(&resource, name),
            crate::cmd::display_name(&resource, name)
        ))
    })?;
    let list = client
        .get(&format!(
            "/api/v1/namespaces/{namespace}/pods{}",
            list_query(Some(&selector), None)
        ))
        .await?;
    let mut pods: Vec<Value> = list["items"].as_array().cloned().unwrap_or_default();
    // Upstream sorts active pods first: running and ready before others.
    pods.sort_by_key(|p| {
        let phase = p["status"]["phase"].as_str().unwrap_or_default();
        (phase != "Running", phase != "Pending")
    });
    pods.into_iter()
        .next()
        .ok_or_else(|| Error::usage(format!("no pods found for selector {selector}")))
}

/// The label selector of a workload as a query string (`a=b,c=d`).
pub fn selector_of(obj: &Value) -> Option<String> {
    let spec_sel = &obj["spec"]["selector"];
    let labels = if spec_sel.get("matchLabels").is_some() || spec_sel.get("matchExpressions").is_some() {
        &spec_sel["matchLabels"]
    } else {
        spec_sel
    };
    let map = labels.as_object()?;
    if map.is_empty() {
        return None;
    }
    let mut pairs: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    Some(pairs.join(","))
}

/// All container names of a pod as upstream lists them in `Defaulted container`.
fn all_container_names(pod: &Value) -> Vec<String> {
    let names = |field: &str, suffix: &str| -> Vec<String> {
        pod["spec"][field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .map(|n| format!("{n}{suffix}"))
            .collect()
    };
    let mut all = names("containers", "");
    all.extend(names("ephemeralContainers", " (ephem)"));
    all.extend(names("initContainers", " (init)"));
    all
}

/// The container to use: `-c`, the default-container annotation, else the first
/// (with upstream's `Defaulted container` note when there are several).
pub fn pick_container(pod: &Value, requested: Option<&str>, quiet: bool) -> Result<String> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let all = all_container_names(pod);
    if let Some(c) = requested {
        let known = ["containers", "initContainers", "ephemeralContainers"]
            .iter()
            .flat_map(|f| pod["spec"][*f].as_array().cloned().unwrap_or_default())
            .any(|x| x["name"].as_str() == Some(c));
        if !known {
            return Err(Error::usage(format!("container {c} not found in pod {pod_name}")));
        }
        return Ok(c.to_string());
    }
    if let Some(def) = pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"].as_str() {
        if pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|x| x["name"].as_str() == Some(def))
        {
            return Ok(def.to_string());
        }
    }
    let first = pod["spec"]["containers"][0]["name"]
        .as_str()
        .ok_or_else(|| Error::usage(format!("pod {pod_name} does not have any containers")))?
        .to_string();
    if all.len() > 1 && !quiet {
        eprintln!("Defaulted container \"{first}\" out of: {}", all.join(", "));
    }
    Ok(first)
}

/// Restores the terminal mode when dropped.
struct RawMode {
    saved: rustix::termios::Termios,
}

impl RawMode {
    fn enter() -> Option<RawMode> {
        let stdin = std::io::stdin();
        let saved = rustix::termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

fn terminal_size() -> Option<TerminalSize> {
    let ws = rustix::termios::tcgetwinsize(std::io::stdout()).ok()?;
    Some(TerminalSize {
        width: ws.ws_col,
        height: ws.ws_row,
    })
}

/// Streams an attached process: stdin (if asked) in, stdout/stderr out; the
/// remote exit code (0 on success).
pub async fn stream_process(mut process: AttachedProcess, stdin: bool) -> Result<i32> {
    let status = process.take_status();
    let stdin_task = if stdin {
        process.stdin().map(|mut writer| {
            tokio::spawn(async move {
                let mut input = tokio::io::stdin();
                let mut buf = vec![0u8; 8192];
                loop {
                    match input.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if writer.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                // kube-rs closes the whole connection on stdin EOF under
                // `v4.channel.k8s.io` (no half-close there), losing the output:
                // keep stdin open until the command ends.
                std::future::pending::<()>().await;
                drop(writer);
            })
        })
    } else {
        None
    };
    let stdout = process.stdout().map(|mut reader| {
        tokio::spawn(async move {
            let mut out = tokio::io::stdout();
            let _ = tokio::io::copy(&mut reader, &mut out).await;
            let _ = out.flush().await;
        })
    });
    let stderr = process.stderr().map(|mut reader| {
        tokio::spawn(async move {
            let mut out = tokio::io::stderr();
            let _ = tokio::io::copy(&mut reader, &mut out).await;
            let _ = out.flush().await;
        })
    });
    let status = match status {
        Some(s) => s.await,
        None => None,
    };
    for task in [stdout, stderr].into_iter().flatten() {
        let _ = task.await;
    }
    if let Some(task) = stdin_task {
        task.abort();
    }
    let _ = process.join().await;
    let Some(status) = status else {
        return Ok(0);
    };
    if status.status.as_deref() == Some("Success") {
        return Ok(0);
    }
    if status.reason.as_deref() == Some("NonZeroExitCode") {
        let code = status
            .details
            .as_ref()
            .and_then(|d| d.causes.as_ref())
            .into_iter()
            .flatten()
            .find(|c| c.reason.as_deref() == Some("ExitCode"))
            .and_then(|c| c.message.as_deref())
            .and_then(|m| m.parse::<i32>().ok())
            .unwrap_or(1);
        return Ok(code);
    }
    // Other failures come as a `Status` on the error channel: upstream prints its message.
    Err(Error::usage(status.message.unwrap_or_default()))
}

/// The server refused the upgrade: the same request without it gets the
/// server's `Status` (e.g. `pod x does not have a host assigned`).
async fn refused_upgrade(
    ctx: &Context,
    namespace: &str,
    name: &str,
    params: &AttachParams,
    command: &[String],
    err: kube::client::UpgradeConnectionError,
) -> Error {
    let mut query = vec![format!("container={}", crate::client::encode(params.container.as_deref().unwrap_or_default()))];
    for (flag, on) in [("stdin", params.stdin), ("stdout", params.stdout), ("stderr", params.stderr), ("tty", params.tty)] {
        if on {
            query.push(format!("{flag}=true"));
        }
    }
    for c in command {
        query.push(format!("command={}", crate::client::encode(c)));
    }
    let path = format!("/api/v1/namespaces/{namespace}/pods/{name}/exec?{}", query.join("&"));
    match ctx.client().await {
        Ok(client) => match client.request(http::Method::POST, &path, "application/json", None).await {
            Err(e) => e,
            Ok(_) => Error::Transport(format!("error: {err}")),
        },
        Err(e) => e,
    }
}

/// Exits as upstream does for a remote failure.
pub fn exit_with(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    eprintln!("command terminated with exit code {code}");
    std::process::exit(code)
}

/// Whether a TTY can be used (stdin asked for and a terminal); warns as upstream.
pub fn use_tty(stdin: bool, tty: bool, quiet: bool) -> bool {
    if !stdin || !tty {
        return false;
    }
    if !std::io::stdin().is_terminal() {
        if !quiet {
            eprintln!("Unable to use a TTY - input is not a terminal or the right kind of file");
        }
        return false;
    }
    true
}

pub async fn run(ctx: &Context, args: ExecArgs) -> Result<()> {
    let Some(target) = args.pod.first() else {
        return Err(Error::usage("pod, type/name or --filename must be specified"));
    };
    if args.pod.len() > 1 {
        return Err(Error::usage(
            "exec [POD] [COMMAND] is not supported anymore. Use exec [POD] -- [COMMAND] instead\nSee 'kubectl exec -h' for help and examples",
        ));
    }
    if args.command.is_empty() {
        return Err(Error::usage(
            "you must specify at least one command for the container",
        ));
    }
    let pod = resolve_pod(ctx, target).await?;
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    if phase == "Succeeded" || phase == "Failed" {
        return Err(Error::usage(format!(
            "cannot exec into a container in a completed pod; current phase is {phase}"
        )));
    }
    // Upstream only defaults the container; a named one is checked by the server.
    let container = match &args.container {
        Some(c) => c.clone(),
        None => pick_container(&pod, None, args.quiet)?,
    };
    let tty = use_tty(args.stdin, args.tty, args.quiet);
    let name = pod["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let namespace = pod["metadata"]["namespace"]
        .as_str()
        .map_or_else(|| ctx.namespace(), str::to_string);
    let client = kube_client(ctx).await?;
    let api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client, &namespace);
    let params = AttachParams::default()
        .container(container)
        .stdin(args.stdin)
        .stdout(true)
        .stderr(!tty)
        .tty(tty);
    let mut process = match api.exec(&name, args.command.clone(), &params).await {
        Ok(p) => p,
        Err(kube::Error::UpgradeConnection(e)) => {
            return Err(refused_upgrade(ctx, &namespace, &name, &params, &args.command, e).await)
        }
        Err(e) => return Err(map_kube_error(e)),
    };
    let _raw = if tty { RawMode::enter() } else { None };
    if tty {
        if let (Some(mut sizes), Some(size)) = (process.terminal_size(), terminal_size()) {
            use futures::SinkExt;
            let _ = sizes.send(size).await;
        }
    }
    let code = stream_process(process, args.stdin).await?;
    drop(_raw);
    if code != 0 {
        exit_with(code);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_default_to_the_first_or_the_annotation() {
        let pod = json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "initContainers": [{"name": "i"}]}
        });
        assert_eq!(pick_container(&pod, None, true).expect("default"), "a");
        assert_eq!(pick_container(&pod, Some("b"), true).expect("b"), "b");
        assert_eq!(pick_container(&pod, Some("i"), true).expect("init"), "i");
        assert_eq!(
            pick_container(&pod, Some("x"), true).expect_err("x").to_string(),
            "error: container x not found in pod p"
        );
        assert_eq!(all_container_names(&pod), vec!["a", "b", "i (init)"]);
        let mut annotated = pod.clone();
        annotated["metadata"]["annotations"] =
            json!({"kubectl.kubernetes.io/default-container": "b"});
        assert_eq!(pick_container(&annotated, None, true).expect("annotated"), "b");
    }

    #[test]
    fn selectors_come_from_match_labels_or_a_plain_map() {
        let deploy = json!({"spec": {"selector": {"matchLabels": {"b": "2", "a": "1"}}}});
        assert_eq!(selector_of(&deploy).as_deref(), Some("a=1,b=2"));
        let svc = json!({"spec": {"selector": {"app": "web"}}});
        assert_eq!(selector_of(&svc).as_deref(), Some("app=web"));
        assert_eq!(selector_of(&json!({"spec": {}})), None);
    }
}
