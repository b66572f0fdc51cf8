//! The command line: global flags (kubeconfig selection and overrides, `-v`) and
//! one subcommand per verb. A verb's own flags live in its module (`cmd/<verb>.rs`).

use clap::{Parser, Subcommand};

use crate::cmd;
use crate::config::ConfigFlags;

#[derive(Debug, Parser)]
#[command(
    name = "kubectl",
    about = "kubectl controls the Kubernetes cluster manager.",
    disable_version_flag = true
)]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigFlags,
    /// number for the log level verbosity
    #[arg(short = 'v', long = "v", global = true, default_value_t = 0)]
    pub verbosity: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Display one or many resources
    Get(cmd::get::GetArgs),
    /// Create a resource from a file or from stdin
    Create(cmd::create::CreateArgs),
    /// Apply a configuration to a resource by file name or stdin
    Apply(cmd::apply::ApplyArgs),
    /// Replace a resource by file name or stdin
    Replace(cmd::replace::ReplaceArgs),
    /// Delete resources by file names, stdin, resources and names, or by resources and label selector
    Delete(cmd::delete::DeleteArgs),
    /// Update fields of a resource
    Patch(cmd::patch::PatchArgs),
    /// Update the labels on a resource
    Label(cmd::label::LabelArgs),
    /// Update the annotations on a resource
    Annotate(cmd::label::LabelArgs),
    /// Set a new size for a deployment, replica set, or replication controller
    Scale(cmd::scale::ScaleArgs),
    /// Print the client and server version information
    Version(cmd::version::VersionArgs),
    /// Display cluster information
    ClusterInfo(cmd::cluster_info::ClusterInfoArgs),
    /// Print the supported API resources on the server
    ApiResources(cmd::api_resources::ApiResourcesArgs),
    /// Print the supported API versions on the server, in the form of "group/version"
    ApiVersions,
    /// Execute a command in a container
    Exec(cmd::exec::ExecArgs),
    /// Attach to a running container
    Attach(cmd::attach::AttachArgs),
    /// Forward one or more local ports to a pod
    PortForward(cmd::port_forward::PortForwardArgs),
    /// Copy files and directories to and from containers
    Cp(cmd::cp::CpArgs),
    /// Perform a rolling update of the given ReplicationController (the legacy 1.x verb)
    RollingUpdate(cmd::rolling_update::RollingUpdateArgs),
    /// Take a replication controller, service, deployment or pod and expose it as a new Kubernetes service
    Expose(cmd::expose::ExposeArgs),
    /// Print the logs for a container in a pod
    Logs(cmd::logs::LogsArgs),
    /// Run a particular image on the cluster
    Run(cmd::run::RunArgs),
    /// Experimental: Wait for a specific condition on one or many resources
    Wait(cmd::wait::WaitArgs),
    /// Mark node as unschedulable
    Cordon(cmd::drain::CordonArgs),
    /// Mark node as schedulable
    Uncordon(cmd::drain::CordonArgs),
    /// Drain node in preparation for maintenance
    Drain(cmd::drain::DrainArgs),
    /// Update the taints on one or more nodes
    Taint(cmd::taint::TaintArgs),
    /// Display resource (CPU/memory) usage
    #[command(subcommand)]
    Top(cmd::top::TopCommand),
    /// Manage the rollout of a resource
    #[command(subcommand)]
    Rollout(cmd::rollout::RolloutCommand),
    /// Set specific features on objects
    #[command(subcommand)]
    Set(cmd::set::SetCommand),
    /// Show details of a specific resource or group of resources
    Describe(cmd::describe::DescribeArgs),
    /// Modify kubeconfig files
    #[command(subcommand)]
    Config(cmd::config::ConfigCommand),
    /// Output shell completion code for the specified shell (bash, zsh, fish, or powershell)
    Completion(cmd::completion::CompletionArgs),
    /// Auto-scale a deployment, replica set, stateful set, or replication controller
    Autoscale(cmd::autoscale::AutoscaleArgs),
    /// Edit a resource on the server
    Edit(cmd::edit::EditArgs),
    /// Get documentation for a resource
    Explain(cmd::explain::ExplainArgs),
    /// Inspect authorization
    #[command(subcommand)]
    Auth(cmd::auth::AuthCommand),
}

/// Translates pflag habits clap lacks. Boolean flags take an optional value
/// upstream (`--watch=false`, `--show-labels=1`, Go's `strconv.ParseBool`
/// spellings): `=true` becomes the bare flag and `=false` drops it. A value
/// Go would refuse is left for clap, whose error is then worded as pflag's.
pub fn normalize_args(args: Vec<String>) -> Vec<String> {
    use clap::CommandFactory;
    let root = Cli::command();
    let mut chain: Vec<clap::Command> = vec![root];
    let mut positional_seen = false;
    let mut skip_next = false;
    let mut out = Vec::with_capacity(args.len());
    let mut words = args.into_iter();
    if let Some(program) = words.next() {
        out.push(program);
    }
    let find = |chain: &[clap::Command], long: &str| -> Option<clap::Arg> {
        chain.iter().rev().find_map(|c| {
            c.get_arguments()
                .find(|a| a.get_long() == Some(long))
                .cloned()
        })
    };
    while let Some(word) = words.next() {
        if skip_next {
            skip_next = false;
            out.push(word);
            continue;
        }
        if word == "--" {
            out.push(word);
            out.extend(words.by_ref());
            break;
        }
        if let Some(flag) = word.strip_prefix("--") {
            let (name, value) = match flag.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (flag, None),
            };
            let arg = find(&chain, name);
            let is_switch = arg
                .as_ref()
                .is_some_and(|a| matches!(a.get_action(), clap::ArgAction::SetTrue));
            match (value, is_switch) {
                (Some(value), true) => match go_bool(value) {
                    Some(true) => out.push(format!("--{name}")),
                    Some(false) => {}
                    None => out.push(word),
                },
                (None, false) => {
                    skip_next = arg.is_some_and(|a| a.get_action().takes_values());
                    out.push(word);
                }
                _ => out.push(word),
            }
            continue;
        }
        // `-w=false`: a shorthand switch with a value, as `--watch=false`.
        if let Some((short, value)) = word.strip_prefix('-').and_then(|w| w.split_once('=')) {
            let mut chars = short.chars();
            if let (Some(short), None) = (chars.next(), chars.next()) {
                let arg = chain.iter().rev().find_map(|c| {
                    c.get_arguments()
                        .find(|a| a.get_short() == Some(short))
                        .cloned()
                });
                if let Some(long) = arg
                    .filter(|a| matches!(a.get_action(), clap::ArgAction::SetTrue))
                    .and_then(|a| a.get_long().map(str::to_string))
                {
                    match go_bool(value) {
                        Some(true) => out.push(format!("--{long}")),
                        Some(false) => {}
                        // Left for the parser, named so that its error is pflag's.
                        None => out.push(format!("--{long}={value}")),
                    }
                    continue;
                }
            }
        }
        if word.len() == 2 && word.starts_with('-') {
            let short = word.chars().nth(1);
            let arg = chain
                .iter()
                .rev()
                .find_map(|c| c.get_arguments().find(|a| a.get_short() == short).cloned());
            skip_next = arg.is_some_and(|a| a.get_action().takes_values());
            out.push(word);
            continue;
        }
        if !word.starts_with('-') && !positional_seen {
            let sub = chain.last().and_then(|c| c.find_subcommand(&word).cloned());
            match sub {
                Some(sub) => chain.push(sub),
                None => positional_seen = true,
            }
        }
        out.push(word);
    }
    out
}

/// Go's `strconv.ParseBool`.
fn go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `kubectl get`, `kubectl config view`: the command words in `args`, for
/// upstream's `See 'kubectl get --help' for usage.`
pub fn command_path(args: &[String]) -> String {
    use clap::CommandFactory;
    const VALUE_FLAGS: [&str; 19] = [
        "-n",
        "--namespace",
        "-s",
        "--server",
        "--kubeconfig",
        "--context",
        "--cluster",
        "--user",
        "--token",
        "--client-certificate",
        "--client-key",
        "--certificate-authority",
        "-v",
        "--v",
        "-o",
        "--output",
        "-l",
        "--selector",
        "-f",
    ];
    let mut command = Cli::command();
    let mut path = vec!["kubectl".to_string()];
    let mut skip_next = false;
    for arg in args.iter().skip(1) {
        if skip_next {
            skip_next = false;
            continue;
        }
        if arg.starts_with('-') {
            skip_next = VALUE_FLAGS.contains(&arg.as_str());
            continue;
        }
        let Some(sub) = command.find_subcommand(arg).cloned() else {
            break;
        };
        path.push(sub.get_name().to_string());
        command = sub;
    }
    path.join(" ")
}

/// Prints a parse error as upstream does and returns the exit code.
pub fn report_parse_error(err: clap::Error, args: &[String]) -> i32 {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            0
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            0
        }
        kind => {
            use clap::error::ContextKind;
            let invalid = err
                .get(ContextKind::InvalidArg)
                .or_else(|| err.get(ContextKind::InvalidSubcommand))
                .map(|v| v.to_string());
            match (kind, invalid) {
                (ErrorKind::UnknownArgument, Some(arg)) => {
                    // Upstream (cobra/pflag) names the flag without its value.
                    let flag = arg.split('=').next().unwrap_or(&arg).to_string();
                    if flag.starts_with("--") {
                        eprintln!("Error: unknown flag: {flag}");
                    } else {
                        let short = flag.trim_start_matches('-').chars().next().unwrap_or('?');
                        eprintln!("Error: unknown shorthand flag: '{short}' in {flag}");
                    }
                }
                (ErrorKind::InvalidValue, Some(arg))
                    if err
                        .get(ContextKind::InvalidValue)
                        .is_none_or(|v| v.to_string().is_empty()) =>
                {
                    // A flag at the end with no value: pflag names it as typed.
                    let flag = flag_name(&arg);
                    match args.iter().rev().find(|a| a.starts_with('-')) {
                        Some(typed) if !typed.starts_with("--") && typed.len() == 2 => {
                            eprintln!(
                                "Error: flag needs an argument: '{}' in {typed}",
                                &typed[1..]
                            );
                        }
                        _ => eprintln!("Error: flag needs an argument: {flag}"),
                    }
                }
                (
                    ErrorKind::ValueValidation | ErrorKind::InvalidValue | ErrorKind::TooManyValues,
                    Some(arg),
                ) => {
                    let value = err
                        .get(ContextKind::InvalidValue)
                        .map(|v| v.to_string())
                        .unwrap_or_default();
                    let value = match (kind, value.is_empty()) {
                        // `--watch=maybe`: clap keeps the value in the flag text.
                        (ErrorKind::TooManyValues, _) => arg
                            .split_once('=')
                            .map(|(_, v)| v.to_string())
                            .unwrap_or(value),
                        _ => value,
                    };
                    let flag = flag_name(&arg);
                    let reason = std::error::Error::source(&err)
                        .map(|e| e.to_string())
                        .unwrap_or_default();
                    eprintln!(
                        "Error: invalid argument {value:?} for \"{}\" flag: {}",
                        flag_display(&flag, args),
                        go_parse_error(kind, &reason, &value)
                    );
                }
                (ErrorKind::InvalidSubcommand, Some(cmd)) => {
                    eprintln!(
                        "Error: unknown command \"{cmd}\" for \"{}\"",
                        command_path(args)
                    );
                    eprintln!("Run 'kubectl --help' for usage.");
                    return 1;
                }
                _ => {
                    let rendered = err.render().to_string();
                    let first = rendered
                        .lines()
                        .next()
                        .unwrap_or("error: invalid arguments");
                    eprintln!("{first}");
                }
            }
            eprintln!("See '{} --help' for usage.", command_path(args));
            1
        }
    }
}

/// `--replicas` from clap's `--replicas <REPLICAS>` (or `--watch=maybe`).
fn flag_name(arg: &str) -> String {
    arg.split([' ', '=']).next().unwrap_or(arg).to_string()
}

/// pflag's flag text in messages: `-w, --watch` when the flag of the
/// command in `args` (or a global one) has a shorthand.
fn flag_display(long: &str, args: &[String]) -> String {
    use clap::CommandFactory;
    let name = long.trim_start_matches("--");
    let mut command = Cli::command();
    let mut short = None;
    let path = command_path(args);
    let mut words = path.split(' ').skip(1);
    loop {
        if let Some(arg) = command.get_arguments().find(|a| a.get_long() == Some(name)) {
            short = arg.get_short();
        }
        let Some(sub) = words
            .next()
            .and_then(|w| command.find_subcommand(w).cloned())
        else {
            break;
        };
        command = sub;
    }
    match short {
        Some(short) => format!("-{short}, {long}"),
        None => long.to_string(),
    }
}

/// The Go `strconv` error upstream shows for a value its flag type refuses.
fn go_parse_error(kind: clap::error::ErrorKind, reason: &str, value: &str) -> String {
    if kind == clap::error::ErrorKind::TooManyValues || reason.contains("`true` or `false`") {
        return format!("strconv.ParseBool: parsing {value:?}: invalid syntax");
    }
    if reason.contains("too large") || reason.contains("too small") {
        return format!("strconv.ParseInt: parsing {value:?}: value out of range");
    }
    if reason.contains("invalid digit") || reason.contains("empty string") {
        return format!("strconv.ParseInt: parsing {value:?}: invalid syntax");
    }
    if reason.contains("float") {
        return format!("strconv.ParseFloat: parsing {value:?}: invalid syntax");
    }
    reason.to_string()
}

/// `-v` as upstream's klog levels: 0-3 warnings, 4-5 info, 6+ request logs.
pub fn init_logging(verbosity: u8) {
    let level = match verbosity {
        0..=3 => "warn",
        4..=5 => "info",
        6..=7 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("kubectl={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn boolean_flags_take_go_bool_values() {
        assert_eq!(
            normalize_args(words("kubectl get pods --watch=true")),
            words("kubectl get pods --watch")
        );
        assert_eq!(
            normalize_args(words("kubectl get pods --show-labels=F")),
            words("kubectl get pods")
        );
        assert_eq!(
            normalize_args(words("kubectl get pods -w=1")),
            words("kubectl get pods --watch")
        );
        assert_eq!(
            normalize_args(words("kubectl get pods -w=x")),
            words("kubectl get pods --watch=x")
        );
        // A value Go refuses is left for the parser to report.
        assert_eq!(
            normalize_args(words("kubectl get pods --watch=maybe")),
            words("kubectl get pods --watch=maybe")
        );
        // Flags taking values, and everything after `--`, are left alone.
        assert_eq!(
            normalize_args(words("kubectl -n get get pods -o=json")),
            words("kubectl -n get get pods -o=json")
        );
        assert_eq!(
            normalize_args(words("kubectl exec p -- ls --watch=true")),
            words("kubectl exec p -- ls --watch=true")
        );
    }

    #[test]
    fn refused_values_are_worded_as_go_parse_errors() {
        use clap::error::ErrorKind;
        assert_eq!(
            go_parse_error(
                ErrorKind::ValueValidation,
                "invalid digit found in string",
                "abc"
            ),
            "strconv.ParseInt: parsing \"abc\": invalid syntax"
        );
        assert_eq!(
            go_parse_error(
                ErrorKind::ValueValidation,
                "number too large to fit in target type",
                "9"
            ),
            "strconv.ParseInt: parsing \"9\": value out of range"
        );
        assert_eq!(
            go_parse_error(ErrorKind::TooManyValues, "", "maybe"),
            "strconv.ParseBool: parsing \"maybe\": invalid syntax"
        );
        let args = words("kubectl get pods");
        assert_eq!(flag_display("--watch", &args), "-w, --watch");
        assert_eq!(flag_display("--chunk-size", &args), "--chunk-size");
    }
}
