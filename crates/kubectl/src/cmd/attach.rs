//! `kubectl attach (POD | TYPE/NAME) -c CONTAINER [-i] [-t]`: the running
//! process of a container, over the same channel protocol as `exec`
//! (`pods/attach` instead of `pods/exec`).

use std::time::Duration;

use serde_json::Value;

use crate::cmd::exec::{
    connect, pick_container, pod_location, resizes_after, resolve_pod, run_streams, use_tty,
    LocalStreams, Outcome, RawMode, StreamFlags,
};
use crate::context::Context;
use crate::errors::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct AttachArgs {
    /// POD or TYPE/NAME.
    pub pod: String,
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
    /// The length of time (like 5s, 2m, or 3h, higher than zero) to wait until at least one pod is running
    #[arg(long, default_value = "1m0s")]
    pub pod_running_timeout: String,
}

/// A Go duration flag (`1m0s`, `500ms`).
pub fn duration_flag(flag: &str, text: &str) -> Result<Duration> {
    crate::cmd::wait::parse_duration(text)
        .ok_or_else(|| crate::cmd::wait::duration_flag_error(flag, text))
}

pub async fn run(ctx: &Context, args: AttachArgs) -> Result<()> {
    // Upstream's `AttachablePodForObject` hands a named pod back as it is
    // (the timeout only bounds the wait for a workload's first pod), and the
    // apiserver refuses a pod without a node.
    duration_flag("pod-running-timeout", &args.pod_running_timeout)?;
    let pod = resolve_pod(ctx, &args.pod).await?;
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    if phase == "Succeeded" || phase == "Failed" {
        return Err(Error::usage(format!(
            "cannot attach a container in a completed pod; current phase is {phase}"
        )));
    }
    let container = pick_container(&pod, args.container.as_deref(), args.quiet)?;
    let mut tty = use_tty(args.stdin, args.tty, args.quiet);
    let spec = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"].as_str() == Some(container.as_str()))
        .cloned()
        .unwrap_or(Value::Null);
    if tty && spec["tty"] != Value::Bool(true) {
        if !args.quiet {
            eprintln!("Unable to use a TTY - container {container} did not allocate one");
        }
        tty = false;
    }
    let (namespace, name) = pod_location(ctx, &pod);
    let flags = StreamFlags {
        stdin: args.stdin,
        stdout: true,
        stderr: !tty,
        tty,
    };
    let path = format!(
        "/api/v1/namespaces/{namespace}/pods/{name}/attach?{}",
        flags.query(&container)
    );
    // Upstream prints this before connecting, with or without a TTY.
    if !args.quiet {
        eprintln!("If you don't see a command prompt, try pressing enter.");
    }
    let connection = connect(ctx, &path).await?;
    let raw = if tty { RawMode::enter() } else { None };
    let mut local = LocalStreams::process(args.stdin);
    if tty {
        // Upstream fakes a resize one cell larger, then the real size, so
        // that the program redraws its screen after a re-attach.
        local.resizes = Some(resizes_after(|(width, height)| {
            vec![
                (width.saturating_add(1), height.saturating_add(1)),
                (width, height),
            ]
        }));
    }
    let outcome = run_streams(connection, local).await;
    drop(raw);
    if tty && !args.quiet && pod["spec"]["restartPolicy"].as_str().unwrap_or("Always") == "Always" {
        println!(
            "Session ended, resume using 'kubectl attach {name} -c {container} -i -t' command when the pod is running"
        );
    }
    match outcome? {
        Outcome::Exited(0) => Ok(()),
        Outcome::Exited(code) => Err(Error::usage(format!(
            "command terminated with exit code {code}"
        ))),
        Outcome::Failed(message) => Err(Error::usage(message)),
    }
}
