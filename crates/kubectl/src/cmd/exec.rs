//! `kubectl exec [-i] [-t] (POD | TYPE/NAME) [-c CONTAINER] -- COMMAND [args...]`.
//!
//! Also the remote-command stream that `attach` and `cp` share: a WebSocket
//! through the apiserver's `pods/exec|attach` proxy, offered as
//! `v5.channel.k8s.io` then `v4.channel.k8s.io` (kube-rs' `Client::connect`).
//! Every binary frame starts with its channel: 0 stdin, 1 stdout, 2 stderr,
//! 3 error (a `Status` when the command ends), 4 resize; under v5 a frame
//! `[255, channel]` closes that channel (stdin EOF). Our kubelet serves v5
//! itself; a server that only speaks v4 (e.g. containerd's streaming server
//! reached directly) has no way to signal stdin EOF, and stdin then stays open
//! until the command ends. The remote exit code is propagated as upstream
//! does: `command terminated with exit code N`, exit N.
//!
//! Also the pod helpers the other pod verbs share: [`resolve_pod`],
//! [`selector_of`] and [`pick_container`].

use std::io::{IsTerminal, Write};

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

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
    let resource = discovery.resolve(kind)?.into_iter().next().ok_or_else(|| {
        Error::usage(format!(
            "the server doesn't have a resource type \"{kind}\""
        ))
    })?;
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
    let labels =
        if spec_sel.get("matchLabels").is_some() || spec_sel.get("matchExpressions").is_some() {
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
            return Err(Error::usage(format!(
                "container {c} not found in pod {pod_name}"
            )));
        }
        return Ok(c.to_string());
    }
    if let Some(def) =
        pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"].as_str()
    {
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
pub struct RawMode {
    saved: rustix::termios::Termios,
}

impl RawMode {
    pub fn enter() -> Option<RawMode> {
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

/// `(width, height)` of the local terminal.
pub fn terminal_size() -> Option<(u16, u16)> {
    let ws = rustix::termios::tcgetwinsize(std::io::stdout()).ok()?;
    Some((ws.ws_col, ws.ws_row))
}

/// The terminal's size now, then again after every `SIGWINCH`, as upstream's
/// `term.TTY.MonitorSize` feeds the resize channel. A size that cannot be
/// read ends the queue, as upstream's `monitorResizeEvents` does.
pub fn terminal_resizes() -> tokio::sync::mpsc::Receiver<(u16, u16)> {
    resizes_after(|size| vec![size])
}

/// Like [`terminal_resizes`], but the current size is first sent as the
/// sizes `initial` makes of it (upstream `attach` sends one a cell larger
/// before the real one, so that a re-attached screen is redrawn).
pub fn resizes_after(
    initial: impl FnOnce((u16, u16)) -> Vec<(u16, u16)>,
) -> tokio::sync::mpsc::Receiver<(u16, u16)> {
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    // Installed before the first size is read, so a resize in between is not lost.
    let winch = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change());
    if let Some(size) = terminal_size() {
        for size in initial(size) {
            let _ = sender.try_send(size);
        }
    }
    match winch {
        Ok(mut winch) => {
            tokio::spawn(async move {
                while winch.recv().await.is_some() {
                    let Some(size) = terminal_size() else { break };
                    // Like upstream: a size the sender cannot take now is dropped, never waited for.
                    if let Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) =
                        sender.try_send(size)
                    {
                        break;
                    }
                }
            });
        }
        Err(e) => {
            tracing::debug!(error = %e, "cannot watch SIGWINCH: terminal resizes are not sent")
        }
    }
    receiver
}

// Channels of upstream's remotecommand protocol (`remotecommand/constants.go`).
const STDIN_CHANNEL: u8 = 0;
const STDOUT_CHANNEL: u8 = 1;
const STDERR_CHANNEL: u8 = 2;
const ERROR_CHANNEL: u8 = 3;
const RESIZE_CHANNEL: u8 = 4;
/// v5 only: `[255, channel]` closes `channel` (the `CLOSE` signal).
const CLOSE_CHANNEL: u8 = 255;

/// Which streams a remote command has, as the query of `pods/exec|attach` names them.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamFlags {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl StreamFlags {
    /// `container=..&stdin=true&...` (upstream's `PodExecOptions` query names).
    pub fn query(&self, container: &str) -> String {
        let mut query = vec![format!("container={}", crate::client::encode(container))];
        for (flag, on) in [
            ("stdin", self.stdin),
            ("stdout", self.stdout),
            ("stderr", self.stderr),
            ("tty", self.tty),
        ] {
            if on {
                query.push(format!("{flag}=true"));
            }
        }
        query.join("&")
    }
}

/// Local ends of a remote command's streams.
#[derive(Default)]
pub struct LocalStreams<'a> {
    pub stdin: Option<Box<dyn AsyncRead + Unpin + Send + 'a>>,
    pub stdout: Option<Box<dyn AsyncWrite + Unpin + Send + 'a>>,
    pub stderr: Option<Box<dyn AsyncWrite + Unpin + Send + 'a>>,
    /// Terminal sizes (`width, height`) to send on the resize channel (TTY only).
    pub resizes: Option<tokio::sync::mpsc::Receiver<(u16, u16)>>,
}

impl LocalStreams<'static> {
    /// This process's stdin (if asked), stdout and stderr.
    pub fn process(stdin: bool) -> LocalStreams<'static> {
        LocalStreams {
            stdin: stdin.then(|| Box::new(tokio::io::stdin()) as Box<dyn AsyncRead + Unpin + Send>),
            stdout: Some(Box::new(tokio::io::stdout())),
            stderr: Some(Box::new(tokio::io::stderr())),
            resizes: None,
        }
    }
}

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Exit code (0: `Success`, or the stream closed without a status).
    Exited(i32),
    /// A `Failure` status other than a non-zero exit: its message.
    Failed(String),
}

/// Opens the upgraded connection for `path` (an `exec`, `attach` or
/// `portforward` URL with its query). A refused upgrade is reported as upstream
/// does: the server's `Status` when it sent one.
pub async fn connect(ctx: &Context, path: &str) -> Result<kube::client::Connection> {
    let client = ctx.client().await?;
    let request = http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| Error::Transport(format!("error: {e}")))?;
    match client.kube().connect(request).await {
        Ok(connection) => Ok(connection),
        Err(kube::Error::UpgradeConnection(err)) => {
            // The same request without the upgrade gets the server's `Status`.
            match client
                .request(http::Method::POST, path, "application/json", None)
                .await
            {
                Err(e) => Err(e),
                Ok(_) => Err(Error::Transport(format!("error: {err}"))),
            }
        }
        Err(e) => Err(map_kube_error(e)),
    }
}

/// Runs the remote-command channel protocol over `connection` until the server
/// closes it: stdin in, stdout/stderr out, the error channel's `Status` decoded.
pub async fn run_streams(
    connection: kube::client::Connection,
    mut local: LocalStreams<'_>,
) -> Result<Outcome> {
    let can_close = connection.supports_stream_close();
    let (mut sink, mut source) = connection.into_stream().split();
    let send_error =
        |e: tokio_tungstenite::tungstenite::Error| Error::Transport(format!("error: {e}"));
    let mut resizes_open = local.resizes.is_some();
    let mut stdin_open = local.stdin.is_some();
    let mut buf = vec![0u8; 32 * 1024];
    let mut status: Vec<u8> = Vec::new();
    loop {
        tokio::select! {
            frame = source.next() => match frame {
                None | Some(Ok(Message::Close(_))) => break,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "stream ended");
                    break;
                }
                Some(Ok(Message::Binary(data))) => {
                    let Some((&channel, payload)) = data.split_first() else { continue };
                    if payload.is_empty() {
                        continue;
                    }
                    let out = match channel {
                        STDOUT_CHANNEL => local.stdout.as_mut(),
                        STDERR_CHANNEL => local.stderr.as_mut(),
                        ERROR_CHANNEL => {
                            status.extend_from_slice(payload);
                            None
                        }
                        _ => None,
                    };
                    if let Some(out) = out {
                        out.write_all(payload).await?;
                        out.flush().await?;
                    }
                }
                Some(Ok(_)) => {}
            },
            read = read_some(local.stdin.as_mut(), &mut buf), if stdin_open => match read {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    if can_close {
                        sink.send(Message::binary(vec![CLOSE_CHANNEL, STDIN_CHANNEL])).await.map_err(send_error)?;
                    }
                    // v4: nothing to say; the command sees EOF when it ends.
                }
                Ok(n) => {
                    let mut frame = Vec::with_capacity(n + 1);
                    frame.push(STDIN_CHANNEL);
                    frame.extend_from_slice(&buf[..n]);
                    sink.send(Message::binary(frame)).await.map_err(send_error)?;
                }
            },
            size = next_resize(local.resizes.as_mut()), if resizes_open => match size {
                None => resizes_open = false,
                Some(size) => sink.send(Message::binary(resize_frame(size))).await.map_err(send_error)?,
            },
        }
    }
    let _ = sink.close().await;
    for out in [local.stdout.as_mut(), local.stderr.as_mut()]
        .into_iter()
        .flatten()
    {
        let _ = out.flush().await;
    }
    Ok(outcome(&status))
}

async fn read_some(
    input: Option<&mut Box<dyn AsyncRead + Unpin + Send + '_>>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match input {
        Some(input) => input.read(buf).await,
        None => Ok(0),
    }
}

async fn next_resize(
    resizes: Option<&mut tokio::sync::mpsc::Receiver<(u16, u16)>>,
) -> Option<(u16, u16)> {
    resizes?.recv().await
}

/// A resize-channel frame: upstream's `TerminalSize` as a `json.Encoder`
/// writes it (with a trailing newline).
fn resize_frame((width, height): (u16, u16)) -> Vec<u8> {
    let mut frame = vec![RESIZE_CHANNEL];
    frame.extend_from_slice(
        serde_json::json!({"Width": width, "Height": height})
            .to_string()
            .as_bytes(),
    );
    frame.push(b'\n');
    frame
}

/// Decodes the error channel: a `Status` (v4+), or plain text (older servers).
fn outcome(status: &[u8]) -> Outcome {
    if status.is_empty() {
        return Outcome::Exited(0);
    }
    let Ok(value) = serde_json::from_slice::<Value>(status) else {
        return Outcome::Failed(String::from_utf8_lossy(status).into_owned());
    };
    if value["status"] == "Success" {
        return Outcome::Exited(0);
    }
    if value["reason"] == "NonZeroExitCode" {
        let code = value["details"]["causes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["reason"] == "ExitCode")
            .and_then(|c| c["message"].as_str())
            .and_then(|m| m.parse::<i32>().ok())
            .unwrap_or(1);
        return Outcome::Exited(code);
    }
    Outcome::Failed(value["message"].as_str().unwrap_or_default().to_string())
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

/// The pod's name and namespace.
pub fn pod_location(ctx: &Context, pod: &Value) -> (String, String) {
    let name = pod["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let namespace = pod["metadata"]["namespace"]
        .as_str()
        .map_or_else(|| ctx.namespace(), str::to_string);
    (namespace, name)
}

/// Runs `command` in a container with the given local streams (used by `cp`).
pub async fn exec_with(
    ctx: &Context,
    namespace: &str,
    pod: &str,
    container: &str,
    command: &[String],
    local: LocalStreams<'_>,
) -> Result<Outcome> {
    let flags = StreamFlags {
        stdin: local.stdin.is_some(),
        stdout: local.stdout.is_some(),
        stderr: local.stderr.is_some(),
        tty: false,
    };
    let path = exec_path(namespace, pod, container, &flags, command);
    let connection = connect(ctx, &path).await?;
    run_streams(connection, local).await
}

fn exec_path(
    namespace: &str,
    pod: &str,
    container: &str,
    flags: &StreamFlags,
    command: &[String],
) -> String {
    let mut query = flags.query(container);
    for c in command {
        query.push_str(&format!("&command={}", crate::client::encode(c)));
    }
    format!("/api/v1/namespaces/{namespace}/pods/{pod}/exec?{query}")
}

pub async fn run(ctx: &Context, args: ExecArgs) -> Result<()> {
    let Some(target) = args.pod.first() else {
        return Err(Error::usage(
            "pod, type/name or --filename must be specified",
        ));
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
    let (namespace, name) = pod_location(ctx, &pod);
    let flags = StreamFlags {
        stdin: args.stdin,
        stdout: true,
        stderr: !tty,
        tty,
    };
    let connection = connect(
        ctx,
        &exec_path(&namespace, &name, &container, &flags, &args.command),
    )
    .await?;
    let raw = if tty { RawMode::enter() } else { None };
    let mut local = LocalStreams::process(args.stdin);
    if tty {
        local.resizes = Some(terminal_resizes());
    }
    let outcome = run_streams(connection, local).await;
    drop(raw);
    match outcome? {
        Outcome::Exited(0) => Ok(()),
        Outcome::Exited(code) => exit_with(code),
        // Other failures come as a `Status` on the error channel: upstream prints its message.
        Outcome::Failed(message) => Err(Error::usage(message)),
    }
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
            pick_container(&pod, Some("x"), true)
                .expect_err("x")
                .to_string(),
            "error: container x not found in pod p"
        );
        assert_eq!(all_container_names(&pod), vec!["a", "b", "i (init)"]);
        let mut annotated = pod.clone();
        annotated["metadata"]["annotations"] =
            json!({"kubectl.kubernetes.io/default-container": "b"});
        assert_eq!(
            pick_container(&annotated, None, true).expect("annotated"),
            "b"
        );
    }

    #[test]
    fn selectors_come_from_match_labels_or_a_plain_map() {
        let deploy = json!({"spec": {"selector": {"matchLabels": {"b": "2", "a": "1"}}}});
        assert_eq!(selector_of(&deploy).as_deref(), Some("a=1,b=2"));
        let svc = json!({"spec": {"selector": {"app": "web"}}});
        assert_eq!(selector_of(&svc).as_deref(), Some("app=web"));
        assert_eq!(selector_of(&json!({"spec": {}})), None);
    }

    #[test]
    fn the_error_channel_decodes_to_an_outcome() {
        assert_eq!(outcome(b""), Outcome::Exited(0));
        assert_eq!(
            outcome(br#"{"metadata":{},"status":"Success"}"#),
            Outcome::Exited(0)
        );
        let failed = br#"{"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#;
        assert_eq!(outcome(failed), Outcome::Exited(3));
        let other = br#"{"status":"Failure","message":"container not found (\"x\")","reason":"InternalError"}"#;
        assert_eq!(
            outcome(other),
            Outcome::Failed("container not found (\"x\")".into())
        );
        assert_eq!(outcome(b"plain text"), Outcome::Failed("plain text".into()));
    }

    #[test]
    fn resize_frames_are_upstream_terminal_sizes() {
        assert_eq!(
            resize_frame((120, 40)),
            b"\x04{\"Width\":120,\"Height\":40}\n".to_vec()
        );
    }

    #[test]
    fn exec_paths_carry_the_streams_and_the_command() {
        let flags = StreamFlags {
            stdin: true,
            stdout: true,
            stderr: false,
            tty: false,
        };
        assert_eq!(
            exec_path("ns", "p", "c 1", &flags, &["sh".into(), "-c".into(), "echo a&b".into()]),
            "/api/v1/namespaces/ns/pods/p/exec?container=c%201&stdin=true&stdout=true&command=sh&command=%2Dc&command=echo%20a%26b"
        );
    }
}
